//! The redb file `<mdir>/raft.redb` and the Raft log kept in it: `RaftLogStorage` +
//! `RaftLogReader` (log entries, vote, committed log id, last purged log id).
//!
//! # On-disk format (version 1)
//!
//! One redb database with two tables. All values are JSON (serde of openraft's types).
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `raft_log` (`u64 -> bytes`) | log index | `openraft::Entry<TypeConfig>` |
//! | `raft_meta` (`str -> bytes`) | `format` | format version, `1` |
//! | | `vote` | `Vote<u64>` |
//! | | `committed` | `Option<LogId<u64>>` (written non-durably: it may lag after a crash) |
//! | | `last_purged` | `LogId<u64>` |
//! | | `state_machine` | `{ state, last_applied, membership }` (see `state_machine`) |
//! | | `snapshot_meta` | `SnapshotMeta<u64, Peer>` of the current snapshot |
//! | | `snapshot_data` | the snapshot itself: `{ "version": 1, "state": MasterState }` |
//!
//! Every write is one redb transaction committed with `Durability::Immediate` (fsync) before
//! openraft is told it happened, except `committed`, which openraft allows to lag.

use std::fmt::Debug;
use std::ops::Bound;
use std::ops::Deref;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use openraft::LogId;
use openraft::LogState;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::StorageError;
use openraft::Vote;
use openraft::storage::LogFlushed;
use openraft::storage::RaftLogStorage;
use redb::Database;
use redb::Durability;
use redb::ReadableDatabase;
use redb::ReadableTable;
use redb::TableDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::NodeId;
use super::StateMachineStore;
use super::TypeConfig;
use super::error::Op;
use super::error::StoreError;

/// Raft log entries by index.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// Everything else, by name (see the module docs).
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

/// The storage format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The file name of the Raft database inside `-mdir`.
pub const DB_FILE: &str = "raft.redb";

pub(crate) const KEY_FORMAT: &str = "format";
const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";

type Entry = openraft::Entry<TypeConfig>;

/// Opens (creating if needed) `<mdir>/raft.redb` and returns the log store and the state
/// machine sharing it.
pub async fn open_storage(mdir: &Path) -> Result<(LogStore, StateMachineStore), StoreError> {
    let mdir = mdir.to_path_buf();
    let db = tokio::task::spawn_blocking(move || open_db(&mdir)).await??;
    let (closed, _) = watch::channel(());
    let db = Arc::new(Db { db, closed });
    let sm = StateMachineStore::load(db.clone()).await?;
    Ok((LogStore { db }, sm))
}

fn open_db(mdir: &Path) -> Result<Database, StoreError> {
    std::fs::create_dir_all(mdir).map_err(|source| StoreError::Io {
        path: mdir.display().to_string(),
        source,
    })?;
    let db = Database::create(mdir.join(DB_FILE))?;
    let txn = db.begin_write()?;
    {
        txn.open_table(LOG)?;
        let mut meta = txn.open_table(META)?;
        match get_json::<u32>(&meta, KEY_FORMAT)? {
            Some(FORMAT_VERSION) => {}
            Some(found) => {
                return Err(StoreError::Version {
                    found,
                    known: FORMAT_VERSION,
                });
            }
            None => put_json(&mut meta, KEY_FORMAT, &FORMAT_VERSION)?,
        }
    }
    txn.commit()?;
    Ok(db)
}

/// The open database. Dropped when openraft drops the last store, reader and builder; its
/// `closed` sender goes away only after the database itself is closed (fields drop in order),
/// which tells [`LogStore::closed`] watchers that the file can be reopened.
pub(crate) struct Db {
    db: Database,
    closed: watch::Sender<()>,
}

impl Deref for Db {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

/// Runs `f` on the blocking pool: redb reads and fsyncing commits must not stall the async
/// workers that also carry heartbeats.
pub(crate) async fn blocking<T, F>(db: &Arc<Db>, f: F) -> Result<T, StoreError>
where
    F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let db = db.clone();
    tokio::task::spawn_blocking(move || f(&db)).await?
}

/// Reads a JSON value from `raft_meta`.
pub(crate) fn get_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
        None => Ok(None),
    }
}

/// Writes a JSON value into `raft_meta`.
pub(crate) fn put_json<T: Serialize + ?Sized>(
    table: &mut redb::Table<'_, &'static str, &'static [u8]>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value)?;
    table.insert(key, bytes.as_slice())?;
    Ok(())
}

/// Reads one meta value in its own read transaction.
pub(crate) fn read_meta<T: DeserializeOwned>(
    db: &Database,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    get_json(&meta, key)
}

/// Writes one meta value in its own transaction.
fn write_meta<T: Serialize>(
    db: &Database,
    key: &str,
    value: &T,
    durability: Durability,
) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(durability).map_err(redb::Error::from)?;
    {
        let mut meta = txn.open_table(META)?;
        put_json(&mut meta, key, value)?;
    }
    txn.commit()?;
    Ok(())
}

/// Normalizes any range of log indexes to `start..end` (`end == None`: unbounded); `None` if
/// the range is empty.
fn index_range(range: &impl RangeBounds<u64>) -> Option<(u64, Option<u64>)> {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.checked_add(1),
        Bound::Excluded(e) => Some(*e),
        Bound::Unbounded => None,
    };
    match end {
        Some(end) if start >= end => None,
        _ => Some((start, end)),
    }
}

fn read_entries(db: &Database, start: u64, end: Option<u64>) -> Result<Vec<Entry>, StoreError> {
    let txn = db.begin_read()?;
    let log = txn.open_table(LOG)?;
    let iter = match end {
        Some(end) => log.range(start..end)?,
        None => log.range(start..)?,
    };
    let mut out = Vec::new();
    for item in iter {
        let (_, v) = item?;
        out.push(serde_json::from_slice(v.value())?);
    }
    Ok(out)
}

async fn get_entries<RB: RangeBounds<u64>>(
    db: &Arc<Db>,
    range: RB,
) -> Result<Vec<Entry>, StorageError<NodeId>> {
    let Some((start, end)) = index_range(&range) else {
        return Ok(Vec::new());
    };
    blocking(db, move |db| read_entries(db, start, end))
        .await
        .map_err(|e| e.into_raft(Op::ReadLogs))
}

/// The Raft log half of the storage. Owned by openraft's core once the node runs.
pub struct LogStore {
    db: Arc<Db>,
}

impl LogStore {
    /// A receiver that reports "closed" (`changed()` fails) once the database file is closed,
    /// i.e. openraft has dropped every store, reader and snapshot builder using it.
    pub fn closed(&self) -> watch::Receiver<()> {
        self.db.closed.subscribe()
    }

    /// True if nothing was ever written by Raft: no vote, no log entry, nothing purged.
    pub async fn is_pristine(&self) -> Result<bool, StoreError> {
        blocking(&self.db, |db| {
            let txn = db.begin_read()?;
            let log = txn.open_table(LOG)?;
            let meta = txn.open_table(META)?;
            let no_log = log.last()?.is_none();
            let no_vote = meta.get(KEY_VOTE)?.is_none();
            let no_purge = meta.get(KEY_LAST_PURGED)?.is_none();
            Ok(no_log && no_vote && no_purge)
        })
        .await
    }
}

/// A cheap reader of the log, handed to openraft's replication tasks.
pub struct LogReader {
    db: Arc<Db>,
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        get_entries(&self.db, range).await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        get_entries(&self.db, range).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        blocking(&self.db, |db| {
            let txn = db.begin_read()?;
            let log = txn.open_table(LOG)?;
            let meta = txn.open_table(META)?;
            let last_purged: Option<LogId<NodeId>> = get_json(&meta, KEY_LAST_PURGED)?;
            let last_entry = match log.last()? {
                Some((_, v)) => Some(serde_json::from_slice::<Entry>(v.value())?.log_id),
                None => None,
            };
            Ok(LogState {
                last_log_id: last_entry.or(last_purged),
                last_purged_log_id: last_purged,
            })
        })
        .await
        .map_err(|e| e.into_raft(Op::ReadLogs))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            db: self.db.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote = *vote;
        blocking(&self.db, move |db| {
            write_meta(db, KEY_VOTE, &vote, Durability::Immediate)
        })
        .await
        .map_err(|e| e.into_raft(Op::WriteVote))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        blocking(&self.db, |db| read_meta(db, KEY_VOTE))
            .await
            .map_err(|e| e.into_raft(Op::ReadVote))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Non-durable: the next log or state machine commit flushes it, and openraft only uses
        // it to re-apply entries sooner after a restart.
        blocking(&self.db, move |db| {
            write_meta(db, KEY_COMMITTED, &committed, Durability::None)
        })
        .await
        .map_err(|e| e.into_raft(Op::WriteLogs))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        blocking(&self.db, |db| {
            Ok(read_meta::<Option<LogId<NodeId>>>(db, KEY_COMMITTED)?.flatten())
        })
        .await
        .map_err(|e| e.into_raft(Op::ReadLogs))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry)
                .map_err(|e| StoreError::from(e).into_raft(Op::WriteLogs))?;
            rows.push((entry.log_id.index, bytes));
        }
        let res = blocking(&self.db, move |db| {
            let txn = db.begin_write()?;
            {
                let mut log = txn.open_table(LOG)?;
                for (index, bytes) in &rows {
                    log.insert(*index, bytes.as_slice())?;
                }
            }
            // Durability::Immediate (the default): fsynced when commit returns.
            txn.commit()?;
            Ok(())
        })
        .await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e.into_raft(Op::WriteLogs))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        blocking(&self.db, move |db| {
            let txn = db.begin_write()?;
            {
                let mut log = txn.open_table(LOG)?;
                log.retain_in(log_id.index.., |_, _| false)?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| e.into_raft(Op::WriteLogs))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        blocking(&self.db, move |db| {
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                let prev: Option<LogId<NodeId>> = get_json(&meta, KEY_LAST_PURGED)?;
                if prev.is_none_or(|p| p < log_id) {
                    put_json(&mut meta, KEY_LAST_PURGED, &log_id)?;
                }
                let mut log = txn.open_table(LOG)?;
                log.retain_in(..=log_id.index, |_, _| false)?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| e.into_raft(Op::WriteLogs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_ranges_normalize() {
        assert_eq!(index_range(&(3..7)), Some((3, Some(7))));
        assert_eq!(index_range(&(3..=7)), Some((3, Some(8))));
        assert_eq!(index_range(&(3..)), Some((3, None)));
        assert_eq!(index_range(&(..)), Some((0, None)));
        assert_eq!(index_range(&(5..5)), None);
        assert_eq!(index_range(&(..=u64::MAX)), Some((0, None)));
        let excluded = (Bound::Excluded(u64::MAX), Bound::Unbounded);
        assert_eq!(index_range(&excluded), None);
    }
}
