//! The replicated master state, the commands that change it and their deterministic apply
//! logic (no I/O here: storage lives in `state_machine`).

use std::ops::Range;

use serde::Deserialize;
use serde::Serialize;

/// What the masters agree on through Raft. Everything else (topology) is soft state rebuilt
/// from heartbeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterState {
    /// The highest volume id ever handed out (0: none yet).
    pub max_volume_id: u32,
    /// Every file key `<= file_key_ceiling` may have been handed out by some leader; new
    /// blocks always start above it.
    pub file_key_ceiling: u64,
    /// Random cluster identity, set once by the first leader (empty until then).
    pub topology_id: String,
}

/// A state machine command: the application data of a Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Allocate the next volume id (`max_volume_id + 1`).
    NextVolumeId,
    /// Raise `max_volume_id` to at least `at_least` (a volume server reported that id).
    RaiseMaxVolumeId {
        /// A volume id seen in the cluster.
        at_least: u32,
    },
    /// Reserve `block` file keys above both the ceiling and `at_least_above`.
    ReserveFileKeys {
        /// The largest key known to exist (e.g. from heartbeats); the block starts above it.
        at_least_above: u64,
        /// How many keys to reserve.
        block: u64,
    },
    /// Set the topology id unless one is already set (first writer wins).
    SetTopologyId {
        /// The proposed id.
        id: String,
    },
}

/// The result of applying one log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResponse {
    /// A blank or membership entry: nothing to report.
    Empty,
    /// The volume id allocated by [`Command::NextVolumeId`], or the max volume id after
    /// [`Command::RaiseMaxVolumeId`].
    VolumeId(u32),
    /// The keys reserved by [`Command::ReserveFileKeys`]: `start..end`.
    FileKeys {
        /// First reserved key.
        start: u64,
        /// One past the last reserved key.
        end: u64,
    },
    /// The topology id in force after [`Command::SetTopologyId`].
    TopologyId(String),
    /// The command was refused and the state left unchanged (an id space is exhausted or an
    /// argument is invalid).
    Rejected(String),
}

impl MasterState {
    /// Applies `cmd`, returning its response. Deterministic: every replica computes the same
    /// result from the same state. A refused command leaves the state untouched.
    pub fn apply(&mut self, cmd: &Command) -> CommandResponse {
        match cmd {
            Command::NextVolumeId => match self.max_volume_id.checked_add(1) {
                Some(vid) => {
                    self.max_volume_id = vid;
                    CommandResponse::VolumeId(vid)
                }
                None => CommandResponse::Rejected("volume id space exhausted".into()),
            },
            Command::RaiseMaxVolumeId { at_least } => {
                self.max_volume_id = self.max_volume_id.max(*at_least);
                CommandResponse::VolumeId(self.max_volume_id)
            }
            Command::ReserveFileKeys {
                at_least_above,
                block,
            } => match reserve(self.file_key_ceiling, *at_least_above, *block) {
                Some(range) => {
                    self.file_key_ceiling = range.end - 1;
                    CommandResponse::FileKeys {
                        start: range.start,
                        end: range.end,
                    }
                }
                None => CommandResponse::Rejected(format!(
                    "cannot reserve {block} file keys above {}",
                    self.file_key_ceiling.max(*at_least_above)
                )),
            },
            Command::SetTopologyId { id } => {
                if self.topology_id.is_empty() {
                    self.topology_id.clone_from(id);
                }
                CommandResponse::TopologyId(self.topology_id.clone())
            }
        }
    }
}

/// The block of `block` keys strictly above `ceiling` and `above`, or `None` if it is empty or
/// does not fit in `u64` (the exclusive end must be representable).
fn reserve(ceiling: u64, above: u64, block: u64) -> Option<Range<u64>> {
    if block == 0 {
        return None;
    }
    let start = ceiling.max(above).checked_add(1)?;
    let end = start.checked_add(block)?;
    Some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_ids_increment() {
        let mut s = MasterState::default();
        assert_eq!(
            s.apply(&Command::NextVolumeId),
            CommandResponse::VolumeId(1)
        );
        assert_eq!(
            s.apply(&Command::NextVolumeId),
            CommandResponse::VolumeId(2)
        );
        assert_eq!(
            s.apply(&Command::RaiseMaxVolumeId { at_least: 10 }),
            CommandResponse::VolumeId(10)
        );
        assert_eq!(
            s.apply(&Command::RaiseMaxVolumeId { at_least: 3 }),
            CommandResponse::VolumeId(10)
        );
        assert_eq!(
            s.apply(&Command::NextVolumeId),
            CommandResponse::VolumeId(11)
        );
        s.max_volume_id = u32::MAX;
        assert!(matches!(
            s.apply(&Command::NextVolumeId),
            CommandResponse::Rejected(_)
        ));
        assert_eq!(s.max_volume_id, u32::MAX);
    }

    #[test]
    fn reserved_blocks_never_overlap() {
        let mut s = MasterState::default();
        let r = |s: &mut MasterState, above, block| match s.apply(&Command::ReserveFileKeys {
            at_least_above: above,
            block,
        }) {
            CommandResponse::FileKeys { start, end } => start..end,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(r(&mut s, 0, 100), 1..101);
        assert_eq!(s.file_key_ceiling, 100);
        assert_eq!(r(&mut s, 0, 10), 101..111);
        assert_eq!(r(&mut s, 500, 10), 501..511);
        assert_eq!(r(&mut s, 7, 1), 511..512);
        assert_eq!(s.file_key_ceiling, 511);
    }

    #[test]
    fn reserve_rejects_empty_and_overflowing_blocks() {
        let mut s = MasterState::default();
        for (above, block) in [(0, 0), (u64::MAX, 1), (u64::MAX - 5, 5)] {
            let resp = s.apply(&Command::ReserveFileKeys {
                at_least_above: above,
                block,
            });
            assert!(matches!(resp, CommandResponse::Rejected(_)), "{resp:?}");
            assert_eq!(s.file_key_ceiling, 0);
        }
        assert_eq!(reserve(0, u64::MAX - 6, 5), Some(u64::MAX - 5..u64::MAX));
    }

    #[test]
    fn topology_id_is_set_once() {
        let mut s = MasterState::default();
        let set = |id: &str| Command::SetTopologyId { id: id.into() };
        assert_eq!(s.apply(&set("a")), CommandResponse::TopologyId("a".into()));
        assert_eq!(s.apply(&set("b")), CommandResponse::TopologyId("a".into()));
    }
}
