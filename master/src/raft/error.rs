//! Errors of the consensus layer: [`StoreError`] for the redb storage and [`ConsensusError`]
//! for everything a [`RaftNode`](super::RaftNode) caller can see.

use openraft::AnyError;
use openraft::StorageError;
use openraft::StorageIOError;

use super::NodeId;

/// A failure of the redb-backed Raft storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, corruption, transaction or commit error).
    #[error("redb: {0}")]
    Db(#[from] redb::Error),
    /// A stored record could not be (de)serialized.
    #[error("codec: {0}")]
    Codec(#[from] serde_json::Error),
    /// The file holds a format this build does not understand.
    #[error("unsupported raft storage format version {found} (this build knows {known})")]
    Version {
        /// Version found on disk.
        found: u32,
        /// Version this build writes.
        known: u32,
    },
    /// A record that must exist is missing or inconsistent.
    #[error("corrupt raft storage: {0}")]
    Corrupt(String),
    /// Could not create the metadata directory.
    #[error("create {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A blocking storage task died (panicked or was cancelled).
    #[error("storage task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
redb_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The storage operation that failed, so openraft can report what broke.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    ReadLogs,
    WriteLogs,
    ReadVote,
    WriteVote,
    WriteStateMachine,
    ReadSnapshot,
    WriteSnapshot,
}

impl StoreError {
    /// Converts into openraft's storage error, tagged with the failed operation.
    pub(crate) fn into_raft(self, op: Op) -> StorageError<NodeId> {
        let e = AnyError::new(&self);
        let io = match op {
            Op::ReadLogs => StorageIOError::read_logs(e),
            Op::WriteLogs => StorageIOError::write_logs(e),
            Op::ReadVote => StorageIOError::read_vote(e),
            Op::WriteVote => StorageIOError::write_vote(e),
            Op::WriteStateMachine => StorageIOError::write_state_machine(e),
            Op::ReadSnapshot => StorageIOError::read_snapshot(None, e),
            Op::WriteSnapshot => StorageIOError::write_snapshot(None, e),
        };
        StorageError::IO { source: io }
    }
}

/// What can go wrong when using a [`RaftNode`](super::RaftNode).
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// This master is not the leader; `leader` is the leader's `"host:port"` if known. The
    /// HTTP layer forwards the request there or answers 503.
    #[error("not the raft leader (leader: {})", leader.as_deref().unwrap_or("unknown"))]
    NotLeader {
        /// The current leader's address, if known.
        leader: Option<String>,
    },
    /// Opening or using the Raft storage failed.
    #[error("raft storage: {0}")]
    Store(#[from] StoreError),
    /// The Raft configuration is invalid (e.g. election timeouts).
    #[error("raft config: {0}")]
    Config(String),
    /// The HTTP client for Raft RPCs could not be built.
    #[error("raft http client: {0}")]
    HttpClient(String),
    /// A caller passed a bad argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The state machine refused the command (e.g. an id space is exhausted).
    #[error("rejected: {0}")]
    Rejected(String),
    /// Raft stopped (shut down or hit a fatal storage error).
    #[error("raft stopped: {0}")]
    Fatal(String),
    /// Forming the initial cluster failed.
    #[error("raft initialize: {0}")]
    Initialize(String),
    /// The state machine answered with a response of the wrong kind (a bug).
    #[error("unexpected state machine response: {0}")]
    UnexpectedResponse(String),
    /// Waiting for a condition timed out.
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

impl From<openraft::ConfigError> for ConsensusError {
    fn from(e: openraft::ConfigError) -> Self {
        ConsensusError::Config(e.to_string())
    }
}

impl From<openraft::error::Fatal<NodeId>> for ConsensusError {
    fn from(e: openraft::error::Fatal<NodeId>) -> Self {
        ConsensusError::Fatal(e.to_string())
    }
}
