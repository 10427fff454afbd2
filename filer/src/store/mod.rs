//! The [`FilerStore`] trait every metadata backend implements, the [`Mutation`]s it
//! applies atomically, and the chunk reference counts and GC queue it keeps (see
//! `docs/formats/filer-store.md`). [`redb::RedbStore`] is the embedded default,
//! [`postgres::PostgresStore`] the shared one;
//! [`conformance`] is the suite every backend must pass.

use async_trait::async_trait;

use crate::entry::Entry;

pub mod codec;
pub mod conformance;
pub mod log;
pub mod measured;
pub mod postgres;
pub mod redb;
pub mod walk;

pub use self::log::{LogBounds, LogEvent, LogPage};
pub use self::postgres::PostgresStore;
pub use self::redb::RedbStore;

/// Every way a store operation fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The entry a mutation needs does not exist.
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// The directory still has children.
    #[error("{0}: directory not empty")]
    NotEmpty(String),
    /// The target of a rename already exists.
    #[error("{0}: already exists")]
    AlreadyExists(String),
    /// The request itself is impossible: a path that is not normalized, deleting or
    /// renaming the root, moving a directory into itself, a file at `/`.
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// Stored data could not be decoded (damaged file, or written by an unknown format).
    #[error("filer store data is corrupt: {0}")]
    Corrupt(String),
    /// A [`Mutation::Expect`] found the entry other than the batch expected (a
    /// concurrent writer got there first): nothing of the batch was applied.
    #[error("{0}: changed since it was read")]
    Changed(String),
    /// A change-log read from `since` asked for records the log no longer holds
    /// (everything at or below `trimmed` was trimmed): the follower must start over.
    #[error(
        "the change log was trimmed up to {trimmed}; reading from {since} is no longer possible: start from a fresh copy"
    )]
    Trimmed { since: u64, trimmed: u64 },
    /// The backend failed (I/O, database or task error).
    #[error("filer store backend error: {0}")]
    Backend(String),
}

/// One change to the store; [`FilerStore::apply`] applies a list of them atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Insert or replace the entry at `entry.path`. Replacing a directory that has
    /// children with a file is refused ([`StoreError::NotEmpty`]). Parents are not checked:
    /// creating them is the filer's job.
    Put(Entry),
    /// Remove one entry (a directory must be empty of children, else
    /// [`StoreError::NotEmpty`]; a missing entry is [`StoreError::NotFound`]).
    Delete(String),
    /// Remove an entry and everything under it ([`StoreError::NotFound`] if the entry is
    /// missing). `DeleteTree("/")` removes every entry; the root itself always exists.
    DeleteTree(String),
    /// Atomically move an entry and all its descendants from `from` to `to` (paths
    /// rewritten; `to` must not exist, else [`StoreError::AlreadyExists`]; `from` must,
    /// else [`StoreError::NotFound`]; `to` may not lie inside `from`).
    Rename { from: String, to: String },
    /// Set a key of the store's key-value space (separate from entries).
    KvPut(Vec<u8>, Vec<u8>),
    /// Remove a key of the key-value space (a missing key is fine).
    KvDelete(Vec<u8>),
    /// Changes nothing, but fails the whole batch with [`StoreError::Changed`] unless
    /// the entry at `path` is, at this point of the batch, exactly `entry` (`None`: no
    /// entry there). An `Expect` before a `Put` or `Delete` of the same path makes a
    /// compare-and-set: of two writers that read the same state, one wins.
    Expect { path: String, entry: Option<Entry> },
    /// [`Mutation::Expect`] for the key-value space: fails the whole batch with
    /// [`StoreError::Changed`] unless `key` holds exactly `value` (`None`: absent) at
    /// this point of the batch. With a `KvPut` after it, a compare-and-set of a key
    /// (leases are built on it).
    ExpectKv {
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    },
}

/// Which children [`FilerStore::list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Start after the child with this name (a cursor: it need not exist).
    pub start_after: Option<String>,
    /// Also return the child named `start_after` itself, if it exists.
    pub inclusive: bool,
    /// At most this many entries; 0 means no limit.
    pub limit: usize,
    /// Only children whose name starts with this.
    pub prefix: Option<String>,
}

impl ListOptions {
    /// The first `limit` children.
    pub fn first(limit: usize) -> ListOptions {
        ListOptions {
            limit,
            ..ListOptions::default()
        }
    }

    /// Up to `limit` children after the child named `name` (exclusive).
    pub fn after(name: impl Into<String>, limit: usize) -> ListOptions {
        ListOptions {
            start_after: Some(name.into()),
            limit,
            ..ListOptions::default()
        }
    }
}

/// A chunk waiting for deletion on the volume servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcItem {
    /// Position in the queue (strictly increasing, never reused).
    pub seq: u64,
    pub fid: String,
}

/// The key-value key under which the filer records a chunk fid it is uploading to
/// before the entry naming it lands (`filer/src/pending.rs`). A store deletes it in the
/// transaction that first makes an entry reference the fid.
pub fn pending_key(fid: &str) -> Vec<u8> {
    let mut k = PENDING_PREFIX.to_vec();
    k.extend_from_slice(fid.as_bytes());
    k
}

/// The prefix of [`pending_key`]s.
pub const PENDING_PREFIX: &[u8] = b"pending/";

/// Where the filer keeps its namespace.
///
/// The invariant every backend keeps, in the same transaction as each mutation: a
/// reference count per chunk fid = the number of entries whose chunk list names it (each
/// entry counts once however often it lists the fid). A fid whose count drops to 0 is
/// appended to a persistent GC queue; a queued fid that gets referenced again leaves the
/// queue. So nothing referenced is ever queued, and a crash never loses a queued chunk.
/// When a fid's count goes from 0 to 1, its [`pending_key`] is deleted in the same
/// transaction.
///
/// Paths given to a store must be normalized ([`crate::path::normalize`]); others are
/// refused with [`StoreError::Invalid`]. The root `/` always exists (as a directory).
#[async_trait]
pub trait FilerStore: Send + Sync + 'static {
    /// A short name for logs (`"redb"`).
    fn name(&self) -> &'static str;

    /// The entry at `path`, if any (TTL is not applied: that is the filer's job).
    async fn find(&self, path: &str) -> Result<Option<Entry>, StoreError>;

    /// The entries at several paths, in the order asked (one round trip where the
    /// backend allows).
    async fn find_many(&self, paths: &[&str]) -> Result<Vec<Option<Entry>>, StoreError> {
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            out.push(self.find(p).await?);
        }
        Ok(out)
    }

    /// Children of `dir` in name order (byte order), one range scan whatever the dir
    /// size. A missing directory (or a file) has no children.
    async fn list(&self, dir: &str, opts: &ListOptions) -> Result<Vec<Entry>, StoreError>;

    /// Applies all mutations atomically (all or nothing), in order: each sees the
    /// effects of those before it.
    async fn apply(&self, muts: Vec<Mutation>) -> Result<(), StoreError>;

    /// A value of the key-value space.
    async fn kv_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Up to `max` keys of the key-value space starting with `prefix`, after
    /// `start_after` when given, in byte order, with their values.
    async fn kv_scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        max: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;

    /// The oldest `max` chunk fids waiting for deletion on volume servers.
    async fn gc_pending(&self, max: usize) -> Result<Vec<GcItem>, StoreError>;

    /// How many chunks wait in the GC queue.
    async fn gc_queue_len(&self) -> Result<u64, StoreError>;

    /// Forget GC items once their chunks are deleted (unknown seqs are ignored).
    async fn gc_done(&self, seqs: &[u64]) -> Result<(), StoreError>;

    /// How many entries reference this chunk fid (0 = none).
    async fn chunk_refs(&self, fid: &str) -> Result<u64, StoreError>;

    /// Up to `max` change-log events after position `since`, in order
    /// ([`StoreError::Trimmed`] when `since` lies below what the log still holds). Every
    /// batch that commits later gets a position above the returned `next`: a follower
    /// that reads on from `next` misses nothing.
    async fn log_read(&self, since: u64, max: usize) -> Result<LogPage, StoreError>;

    /// What part of the change log the store holds; `head` is settled (no batch still
    /// in flight will appear at or below it).
    async fn log_bounds(&self) -> Result<LogBounds, StoreError>;

    /// Drops log events written before `before_ns` (unix nanoseconds); returns how many.
    async fn log_trim(&self, before_ns: i64) -> Result<u64, StoreError>;
}

/// Refuses a path that is not normalized, saying how to write it.
pub(crate) fn check_path(p: &str) -> Result<(), StoreError> {
    if crate::path::is_normalized(p) {
        return Ok(());
    }
    let why = match crate::path::normalize(p) {
        Err(e) => e.to_string(),
        Ok(n) => format!("write it as {n:?}"),
    };
    Err(StoreError::Invalid(format!(
        "path {p:?} is not normalized: {why}"
    )))
}

/// A key of the key-value space as text for messages (`kv:` and the key, lossy).
pub(crate) fn kv_key_name(key: &[u8]) -> String {
    format!("kv:{}", String::from_utf8_lossy(key))
}
