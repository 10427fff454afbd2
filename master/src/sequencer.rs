//! File keys: handed out by the leader from blocks reserved through Raft, so no key is
//! ever handed out twice, even across leader changes.

use std::ops::Range;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::raft::{ConsensusError, RaftNode};

/// Keys reserved per Raft round trip.
pub const BLOCK: u64 = 10_000;

/// The leader's current block of file keys.
pub struct Sequencer {
    raft: Arc<RaftNode>,
    block: Mutex<Range<u64>>,
}

impl Sequencer {
    pub fn new(raft: Arc<RaftNode>) -> Sequencer {
        Sequencer {
            raft,
            block: Mutex::new(0..0),
        }
    }

    /// Hands out `count` consecutive keys and returns the first. `seen` is the largest key
    /// any volume server reports, so new blocks also start above keys written to disk.
    ///
    /// A block is reserved through Raft before any of its keys is handed out, and the
    /// replicated ceiling only grows, so two leaders can never hand out the same key.
    pub async fn next(&self, count: u64, seen: u64) -> Result<u64, ConsensusError> {
        let count = count.max(1);
        let mut block = self.block.lock().await;
        if block.end - block.start < count {
            let size = BLOCK.max(count);
            *block = self.raft.reserve_file_keys(seen, size).await?;
        }
        let first = block.start;
        block.start += count;
        Ok(first)
    }
}
