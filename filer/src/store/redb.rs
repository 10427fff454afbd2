//! [`RedbStore`]: the embedded default [`FilerStore`], one redb file `<dir>/filer.redb`.
//! Every operation is one redb transaction run on tokio's blocking pool; writes commit
//! with fsync. Layout and encoding: `docs/formats/filer-store.md` and [`super::codec`].

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use ::redb::Database;
use ::redb::ReadableDatabase;
use ::redb::ReadableTable;
use ::redb::ReadableTableMetadata;
use ::redb::Table;
use ::redb::TableDefinition;
use ::redb::WriteTransaction;
use async_trait::async_trait;

use super::FilerStore;
use super::GcItem;
use super::ListOptions;
use super::Mutation;
use super::StoreError;
use super::codec;
use super::log::{self, LogBounds, LogPage};
use crate::entry::Entry;
use crate::path;

/// Entries by `dir \0 name` (see [`codec::entry_key`]); values per [`codec::encode_entry`].
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
/// The key-value space of [`Mutation::KvPut`].
const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// Chunk fid -> number of entries referencing it (absent = 0).
const CHUNK_REFS: TableDefinition<&str, u64> = TableDefinition::new("chunk_refs");
/// GC queue: seq -> fid of a chunk no entry references any more.
const GC_QUEUE: TableDefinition<u64, &str> = TableDefinition::new("gc_queue");
/// Index of the GC queue: fid -> its seq.
const GC_BY_FID: TableDefinition<&str, u64> = TableDefinition::new("gc_by_fid");
/// `format` (the store format version), `gc_next_seq`, `log_next_seq`, `log_trimmed`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The change log: seq -> record ([`log::encode`]).
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");

/// The file name of the store inside its directory.
pub const DB_FILE: &str = "filer.redb";
/// The store format (tables and keys) this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;
const META_FORMAT: &str = "format";
const META_GC_NEXT: &str = "gc_next_seq";
const META_LOG_NEXT: &str = "log_next_seq";
const META_LOG_TRIMMED: &str = "log_trimmed";
/// Log records dropped per transaction of a trim.
const TRIM_BATCH: usize = 10_000;
/// Entries moved per step of a rename (bounds the memory a huge rename needs).
const MOVE_BATCH: usize = 1024;

/// The redb filer store. Cloning shares the open database.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    group: Arc<std::sync::Mutex<Group>>,
}

/// One waiting `apply`: its mutations and where to send the outcome.
type Job = (
    Vec<Mutation>,
    tokio::sync::oneshot::Sender<Result<(), StoreError>>,
);

/// Group commit: `apply` calls that arrive while a commit is running wait here, and the
/// next round commits them together with a single fsync.
#[derive(Default)]
struct Group {
    jobs: Vec<Job>,
    running: bool,
}

/// Applies one batch of mutations in its own transaction (all or nothing).
fn apply_one(db: &Database, muts: Vec<Mutation>, durable: bool) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    if !durable {
        txn.set_durability(redb::Durability::None)
            .map_err(|e| StoreError::Backend(format!("setting durability: {e}")))?;
    }
    {
        let record = log::encode(log::now_ns(), &muts)?;
        let mut t = Tables::open(&txn)?;
        for m in muts {
            t.apply(m)?;
        }
        if let Some(record) = record {
            let seq = t
                .refs
                .meta
                .get(META_LOG_NEXT)?
                .map(|g| g.value())
                .unwrap_or(1);
            t.log.insert(seq, record.as_slice())?;
            t.refs.meta.insert(META_LOG_NEXT, seq + 1)?;
        }
    }
    // On error the transaction is dropped, which aborts it: nothing is applied.
    txn.commit()?;
    Ok(())
}

/// Commits queued jobs until the queue is empty. Each job is its own transaction, so
/// one job's failure never touches another's; only the last transaction of a round is
/// durable (fsync), which makes every earlier one of the round durable too, and no job
/// is answered before that.
fn commit_rounds(db: &std::sync::Weak<Database>, group: &std::sync::Mutex<Group>) {
    loop {
        let jobs = {
            let mut g = group.lock().unwrap_or_else(|p| p.into_inner());
            if g.jobs.is_empty() {
                g.running = false;
                return;
            }
            std::mem::take(&mut g.jobs)
        };
        // Hold the database only while committing: once the callers have their answers
        // they may close the store and reopen it at once.
        let Some(db) = db.upgrade() else {
            for (_, tx) in jobs {
                let _ = tx.send(Err(StoreError::Backend(
                    "the filer store was closed".into(),
                )));
            }
            continue;
        };
        let n = jobs.len();
        let mut results = Vec::with_capacity(n);
        let mut senders = Vec::with_capacity(n);
        for (i, (muts, tx)) in jobs.into_iter().enumerate() {
            results.push(apply_one(&db, muts, i + 1 == n));
            senders.push(tx);
        }
        // If the durable last job failed, an empty durable commit still flushes the rest.
        if n > 1 && results.last().is_some_and(|r| r.is_err()) {
            let flushed = db
                .begin_write()
                .map_err(StoreError::from)
                .and_then(|t| t.commit().map_err(StoreError::from));
            if let Err(e) = flushed {
                let msg = e.to_string();
                for r in results.iter_mut().filter(|r| r.is_ok()) {
                    *r = Err(StoreError::Backend(format!(
                        "flushing the filer store: {msg}"
                    )));
                }
            }
        }
        drop(db);
        for (tx, r) in senders.into_iter().zip(results) {
            let _ = tx.send(r);
        }
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbStore")
    }
}

impl RedbStore {
    /// Opens `<dir>/filer.redb`, creating the directory and the file if missing. This
    /// blocks (file I/O); call it before serving or from a blocking context.
    pub fn open(dir: &Path) -> Result<RedbStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        let file = dir.join(DB_FILE);
        let db = Database::create(&file)
            .map_err(|e| StoreError::Backend(format!("opening {}: {e}", file.display())))?;
        let txn = db.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            let format = t.refs.meta.get(META_FORMAT)?.map(|g| g.value());
            match format {
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(StoreError::Corrupt(format!(
                        "{} has filer store format version {found}; this build reads version {FORMAT_VERSION}",
                        file.display()
                    )));
                }
                None => {
                    t.refs.meta.insert(META_FORMAT, FORMAT_VERSION)?;
                }
            }
        }
        txn.commit()?;
        Ok(RedbStore {
            db: Arc::new(db),
            group: Arc::default(),
        })
    }

    /// Runs a point read `f` with the database on the caller's task: a lookup of one
    /// key is served from redb's cache or one positioned read, which costs less than the
    /// hand-off to the blocking pool and back. Readers never wait for writers in redb.
    fn read_now<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&self.db)
    }

    /// Runs `f` on the blocking pool with the database.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Backend(format!("filer store task failed: {e}")))?
    }
}

use super::check_path as check;

fn bounds(range: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        range.0.as_ref().map(Vec::as_slice),
        range.1.as_ref().map(Vec::as_slice),
    )
}

fn key_bounds(range: &codec::KeyRange) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        Bound::Included(range.0.as_slice()),
        range.1.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
    )
}

fn distinct_fids(e: &Entry) -> BTreeSet<&str> {
    e.chunk_fids().collect()
}

/// The tables of one write transaction.
struct Tables<'t> {
    entries: Table<'t, &'static [u8], &'static [u8]>,
    kv: Table<'t, &'static [u8], &'static [u8]>,
    log: Table<'t, u64, &'static [u8]>,
    refs: Refs<'t>,
}

/// The reference counts and the GC queue.
struct Refs<'t> {
    counts: Table<'t, &'static str, u64>,
    queue: Table<'t, u64, &'static str>,
    by_fid: Table<'t, &'static str, u64>,
    meta: Table<'t, &'static str, u64>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Tables<'t>, StoreError> {
        Ok(Tables {
            entries: txn.open_table(ENTRIES)?,
            kv: txn.open_table(KV)?,
            log: txn.open_table(LOG)?,
            refs: Refs {
                counts: txn.open_table(CHUNK_REFS)?,
                queue: txn.open_table(GC_QUEUE)?,
                by_fid: txn.open_table(GC_BY_FID)?,
                meta: txn.open_table(META)?,
            },
        })
    }

    fn apply(&mut self, m: Mutation) -> Result<(), StoreError> {
        match m {
            Mutation::Put(e) => self.put(e),
            Mutation::Delete(p) => self.delete(&p),
            Mutation::DeleteTree(p) => self.delete_tree(&p),
            Mutation::Rename { from, to } => self.rename(&from, &to),
            Mutation::KvPut(k, v) => {
                self.kv.insert(k.as_slice(), v.as_slice())?;
                Ok(())
            }
            Mutation::KvDelete(k) => {
                self.kv.remove(k.as_slice())?;
                Ok(())
            }
            Mutation::Expect { path, entry } => {
                check(&path)?;
                if self.get(&path)? == entry {
                    Ok(())
                } else {
                    Err(StoreError::Changed(path))
                }
            }
            Mutation::ExpectKv { key, value } => {
                let now = self.kv.get(key.as_slice())?.map(|v| v.value().to_vec());
                if now == value {
                    Ok(())
                } else {
                    Err(StoreError::Changed(super::kv_key_name(&key)))
                }
            }
        }
    }

    fn get(&self, p: &str) -> Result<Option<Entry>, StoreError> {
        match self.entries.get(codec::entry_key(p).as_slice())? {
            Some(v) => codec::decode_entry(p.to_string(), v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn exists(&self, p: &str) -> Result<bool, StoreError> {
        Ok(self.entries.get(codec::entry_key(p).as_slice())?.is_some())
    }

    fn has_descendants(&self, p: &str) -> Result<bool, StoreError> {
        for range in codec::descendant_ranges(p) {
            if self
                .entries
                .range::<&[u8]>(key_bounds(&range))?
                .next()
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn put(&mut self, e: Entry) -> Result<(), StoreError> {
        check(&e.path)?;
        if e.path == "/" && !e.is_directory {
            return Err(StoreError::Invalid("the root / must be a directory".into()));
        }
        let old = self.get(&e.path)?;
        let was_dir_or_new = old.as_ref().is_none_or(|o| o.is_directory);
        if !e.is_directory && was_dir_or_new && self.has_descendants(&e.path)? {
            return Err(StoreError::NotEmpty(e.path));
        }
        let value = codec::encode_entry(&e)?;
        self.entries
            .insert(codec::entry_key(&e.path).as_slice(), value.as_slice())?;
        let new_fids = distinct_fids(&e);
        let old_fids = old.as_ref().map(distinct_fids).unwrap_or_default();
        for fid in new_fids.difference(&old_fids) {
            if self.refs.incr(fid)? {
                self.kv.remove(super::pending_key(fid).as_slice())?;
            }
        }
        for fid in old_fids.difference(&new_fids) {
            self.refs.decr(fid)?;
        }
        Ok(())
    }

    fn delete(&mut self, p: &str) -> Result<(), StoreError> {
        check(p)?;
        if p == "/" {
            return Err(StoreError::Invalid("the root / cannot be deleted".into()));
        }
        let Some(old) = self.get(p)? else {
            return Err(StoreError::NotFound(p.to_string()));
        };
        if self.has_descendants(p)? {
            return Err(StoreError::NotEmpty(p.to_string()));
        }
        self.entries.remove(codec::entry_key(p).as_slice())?;
        for fid in distinct_fids(&old) {
            self.refs.decr(fid)?;
        }
        Ok(())
    }

    fn delete_tree(&mut self, p: &str) -> Result<(), StoreError> {
        check(p)?;
        if p != "/" {
            self.delete_leaf_or_dir(p)?;
        }
        for range in codec::descendant_ranges(p) {
            let removed = self
                .entries
                .extract_from_if::<&[u8], _>(key_bounds(&range), |_, _| true)?;
            for item in removed {
                let (k, v) = item?;
                let e = codec::decode_entry(codec::key_path(k.value())?, v.value())?;
                for fid in distinct_fids(&e) {
                    self.refs.decr(fid)?;
                }
            }
        }
        Ok(())
    }

    /// Removes the entry `p` itself (not its descendants).
    fn delete_leaf_or_dir(&mut self, p: &str) -> Result<(), StoreError> {
        let Some(old) = self.get(p)? else {
            return Err(StoreError::NotFound(p.to_string()));
        };
        self.entries.remove(codec::entry_key(p).as_slice())?;
        for fid in distinct_fids(&old) {
            self.refs.decr(fid)?;
        }
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StoreError> {
        check(from)?;
        check(to)?;
        if from == "/" || to == "/" {
            return Err(StoreError::Invalid(
                "the root / cannot be renamed or replaced".into(),
            ));
        }
        let from_key = codec::entry_key(from);
        let Some(value) = self
            .entries
            .get(from_key.as_slice())?
            .map(|v| v.value().to_vec())
        else {
            return Err(StoreError::NotFound(from.to_string()));
        };
        if self.exists(to)? || self.has_descendants(to)? {
            return Err(StoreError::AlreadyExists(to.to_string()));
        }
        if path::is_within(to, from) {
            return Err(StoreError::Invalid(format!(
                "cannot move {from} into itself ({to})"
            )));
        }
        self.entries.remove(from_key.as_slice())?;
        self.entries
            .insert(codec::entry_key(to).as_slice(), value.as_slice())?;
        // Descendant keys start with `from` (their dir does); the new keys start with `to`
        // instead and never fall in the ranges being drained (`to` is not inside `from`).
        for range in codec::descendant_ranges(from) {
            loop {
                let batch: Vec<(Vec<u8>, Vec<u8>)> = self
                    .entries
                    .extract_from_if::<&[u8], _>(key_bounds(&range), |_, _| true)?
                    .take(MOVE_BATCH)
                    .map(|item| item.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
                    .collect::<Result<_, _>>()?;
                if batch.is_empty() {
                    break;
                }
                for (k, v) in batch {
                    let mut new_key = Vec::with_capacity(to.len() + k.len() - from.len());
                    new_key.extend_from_slice(to.as_bytes());
                    new_key.extend_from_slice(&k[from.len()..]);
                    // Below a non-root directory a key is as long as its path.
                    if new_key.len() > path::MAX_PATH_LEN {
                        return Err(StoreError::Invalid(format!(
                            "moving {from} to {to} would make a path longer than {} bytes",
                            path::MAX_PATH_LEN
                        )));
                    }
                    self.entries.insert(new_key.as_slice(), v.as_slice())?;
                }
            }
        }
        Ok(())
    }
}

impl Refs<'_> {
    /// One more entry references `fid`; a queued fid leaves the GC queue. True when
    /// this is the fid's first reference.
    fn incr(&mut self, fid: &str) -> Result<bool, StoreError> {
        let n = self.counts.get(fid)?.map(|g| g.value()).unwrap_or(0);
        self.counts.insert(fid, n.saturating_add(1))?;
        if n == 0 {
            let queued = self.by_fid.remove(fid)?.map(|g| g.value());
            if let Some(seq) = queued {
                self.queue.remove(seq)?;
            }
        }
        Ok(n == 0)
    }

    /// One entry fewer references `fid`; at 0 it is queued for deletion.
    fn decr(&mut self, fid: &str) -> Result<(), StoreError> {
        let count = self.counts.get(fid)?.map(|g| g.value());
        match count {
            Some(n) if n > 1 => {
                self.counts.insert(fid, n - 1)?;
            }
            Some(_) => {
                self.counts.remove(fid)?;
                self.enqueue(fid)?;
            }
            None => {
                // Cannot happen while the invariant holds. Leaking the chunk is safer than
                // deleting data something might still reference.
                tracing::warn!(
                    fid,
                    "chunk had no reference count when an entry released it; not queueing it for deletion"
                );
            }
        }
        Ok(())
    }

    fn enqueue(&mut self, fid: &str) -> Result<(), StoreError> {
        if self.by_fid.get(fid)?.is_some() {
            return Ok(());
        }
        let seq = self.meta.get(META_GC_NEXT)?.map(|g| g.value()).unwrap_or(1);
        self.queue.insert(seq, fid)?;
        self.by_fid.insert(fid, seq)?;
        self.meta.insert(META_GC_NEXT, seq + 1)?;
        Ok(())
    }
}

#[async_trait]
impl FilerStore for RedbStore {
    fn name(&self) -> &'static str {
        "redb"
    }

    async fn find(&self, p: &str) -> Result<Option<Entry>, StoreError> {
        check(p)?;
        self.read_now(|db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(ENTRIES)?;
            match t.get(codec::entry_key(p).as_slice())? {
                Some(v) => codec::decode_entry(p.to_string(), v.value()).map(Some),
                None if p == "/" => Ok(Some(Entry::new_dir("/", 0))),
                None => Ok(None),
            }
        })
    }

    async fn list(&self, dir: &str, opts: &ListOptions) -> Result<Vec<Entry>, StoreError> {
        check(dir)?;
        let range = codec::list_range(
            dir,
            opts.start_after.as_deref(),
            opts.inclusive,
            opts.prefix.as_deref(),
        );
        let limit = if opts.limit == 0 {
            usize::MAX
        } else {
            opts.limit
        };
        self.run(move |db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(ENTRIES)?;
            let mut out = Vec::new();
            for item in t.range::<&[u8]>(bounds(&range))?.take(limit) {
                let (k, v) = item?;
                out.push(codec::decode_entry(codec::key_path(k.value())?, v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn apply(&self, muts: Vec<Mutation>) -> Result<(), StoreError> {
        if muts.is_empty() {
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lead = {
            let mut g = self.group.lock().unwrap_or_else(|p| p.into_inner());
            g.jobs.push((muts, tx));
            !std::mem::replace(&mut g.running, true)
        };
        if lead {
            let (db, group) = (Arc::downgrade(&self.db), self.group.clone());
            tokio::task::spawn_blocking(move || commit_rounds(&db, &group));
        }
        rx.await
            .map_err(|_| StoreError::Backend("the filer store's commit task stopped".into()))?
    }

    async fn kv_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_now(|db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(KV)?;
            Ok(t.get(key)?.map(|v| v.value().to_vec()))
        })
    }

    async fn kv_scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        max: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let lower = match start_after {
            Some(a) if a > prefix => Bound::Excluded(a.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        let upper = codec::prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        self.run(move |db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(KV)?;
            let mut out = Vec::new();
            for item in t.range::<&[u8]>(bounds(&(lower, upper)))?.take(max) {
                let (k, v) = item?;
                out.push((k.value().to_vec(), v.value().to_vec()));
            }
            Ok(out)
        })
        .await
    }

    async fn gc_pending(&self, max: usize) -> Result<Vec<GcItem>, StoreError> {
        self.run(move |db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(GC_QUEUE)?;
            let mut out = Vec::new();
            for item in t.range::<u64>(..)?.take(max) {
                let (seq, fid) = item?;
                out.push(GcItem {
                    seq: seq.value(),
                    fid: fid.value().to_string(),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn gc_queue_len(&self) -> Result<u64, StoreError> {
        self.read_now(|db| {
            let txn = db.begin_read()?;
            Ok(txn.open_table(GC_QUEUE)?.len()?)
        })
    }

    async fn gc_done(&self, seqs: &[u64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let seqs = seqs.to_vec();
        self.run(move |db| {
            let txn = db.begin_write()?;
            {
                let mut t = Tables::open(&txn)?;
                for seq in seqs {
                    let fid = t.refs.queue.remove(seq)?.map(|g| g.value().to_string());
                    let Some(fid) = fid else {
                        continue;
                    };
                    let indexed = t.refs.by_fid.get(fid.as_str())?.map(|g| g.value());
                    if indexed == Some(seq) {
                        t.refs.by_fid.remove(fid.as_str())?;
                    }
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    async fn chunk_refs(&self, fid: &str) -> Result<u64, StoreError> {
        let fid = fid.to_string();
        self.run(move |db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(CHUNK_REFS)?;
            Ok(t.get(fid.as_str())?.map(|g| g.value()).unwrap_or(0))
        })
        .await
    }

    async fn log_read(&self, since: u64, max: usize) -> Result<LogPage, StoreError> {
        // Transactions are serialized, so positions are handed out in commit order and
        // a read never races a batch that will land below what it returns.
        self.run(move |db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let trimmed = meta.get(META_LOG_TRIMMED)?.map_or(0, |g| g.value());
            if since < trimmed {
                return Err(log::trimmed_error(since, trimmed));
            }
            let t = txn.open_table(LOG)?;
            let mut page = LogPage {
                events: Vec::new(),
                next: since,
            };
            for item in t.range::<u64>(since.saturating_add(1)..)?.take(max.max(1)) {
                let (seq, v) = item?;
                page.events.push(log::decode(seq.value(), v.value())?);
                page.next = seq.value();
            }
            Ok(page)
        })
        .await
    }

    async fn log_bounds(&self) -> Result<LogBounds, StoreError> {
        self.read_now(|db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let get = |k| -> Result<u64, StoreError> { Ok(meta.get(k)?.map_or(0, |g| g.value())) };
            Ok(LogBounds {
                trimmed: get(META_LOG_TRIMMED)?,
                head: get(META_LOG_NEXT)?.saturating_sub(1),
            })
        })
    }

    async fn log_trim(&self, before_ns: i64) -> Result<u64, StoreError> {
        let mut dropped = 0u64;
        loop {
            let n = self
                .run(move |db| {
                    let txn = db.begin_write()?;
                    let mut n = 0u64;
                    {
                        let mut t = Tables::open(&txn)?;
                        let mut last = None;
                        for item in t.log.range::<u64>(..)?.take(TRIM_BATCH) {
                            let (seq, v) = item?;
                            if log::timestamp(seq.value(), v.value())? >= before_ns {
                                break;
                            }
                            last = Some(seq.value());
                            n += 1;
                        }
                        if let Some(last) = last {
                            t.log.retain_in(..=last, |_, _| false)?;
                            t.refs.meta.insert(META_LOG_TRIMMED, last)?;
                        }
                    }
                    txn.commit()?;
                    Ok(n)
                })
                .await?;
            dropped += n;
            if n < TRIM_BATCH as u64 {
                return Ok(dropped);
            }
        }
    }
}

macro_rules! backend_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> StoreError {
                StoreError::Backend(format!("redb: {e}"))
            }
        }
    )*};
}
backend_errors!(
    ::redb::Error,
    ::redb::DatabaseError,
    ::redb::TransactionError,
    ::redb::TableError,
    ::redb::StorageError,
    ::redb::CommitError
);

#[cfg(test)]
mod tests;
