//! Master consensus: openraft 0.9 over HTTP JSON with redb storage, replicating the tiny
//! [`MasterState`] (max volume id, file-key ceiling, topology id).
//!
//! Layout:
//! - [`state`]: the replicated state machine's data, commands and their pure apply logic.
//! - [`store`]: redb-backed `RaftLogStorage`/`RaftLogReader` (the Raft log, vote, committed).
//! - [`state_machine`]: redb-backed `RaftStateMachine`/`RaftSnapshotBuilder`.
//! - [`network`]: the `RaftNetworkFactory` (one pooled reqwest client per node).
//! - [`http`]: the axum routes peers call (`/raft/append`, `/raft/vote`, `/raft/snapshot`).
//! - [`node`]: [`RaftNode`], the handle the rest of the master uses.
//!
//! Everything lives in one redb file, `<mdir>/raft.redb`; its format is documented in
//! [`store`].

pub mod error;
pub mod http;
pub mod network;
pub mod node;
pub mod state;
pub mod state_machine;
pub mod store;

use std::fmt;
use std::io::Cursor;

use serde::Deserialize;
use serde::Serialize;

pub use error::ConsensusError;
pub use error::StoreError;
pub use http::raft_router;
pub use node::RaftNode;
pub use node::RaftNodeConfig;
pub use node::Role;
pub use state::Command;
pub use state::CommandResponse;
pub use state::MasterState;
pub use state_machine::AppliedState;
pub use state_machine::StateMachineStore;
pub use store::LogStore;
pub use store::open_storage;

/// Raft node id: the FNV-1a 64 hash of the peer's `"host:port"` (see [`node_id`]).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft type configuration of the kelp master.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = NodeId,
        Node = Peer,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The running openraft instance of a master.
pub type Raft = openraft::Raft<TypeConfig>;

/// A master peer as Raft knows it: where its HTTP server listens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Peer {
    /// `"host:port"` of the master's HTTP server (the Raft routes are served there too).
    pub addr: String,
}

impl Peer {
    /// A peer listening on `addr` (`"host:port"`).
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into() }
    }

    /// The node id every master derives from this peer's address.
    pub fn id(&self) -> NodeId {
        node_id(&self.addr)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

/// Derives a node id from a peer address: FNV-1a 64 of the trimmed `"host:port"` string.
///
/// Every master computes the same ids from the same `-peers` list, so the address must be
/// spelled identically everywhere (`127.0.0.1:9333` and `localhost:9333` are different peers).
pub fn node_id(addr: &str) -> NodeId {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    addr.trim()
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_fnv1a_and_stable() {
        // Reference values of FNV-1a 64.
        assert_eq!(node_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(node_id("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(node_id(" 127.0.0.1:9333 "), node_id("127.0.0.1:9333"));
        assert_ne!(node_id("127.0.0.1:9333"), node_id("127.0.0.1:9334"));
        assert_eq!(Peer::new("h:1").id(), node_id("h:1"));
    }
}
