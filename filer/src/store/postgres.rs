//! [`PostgresStore`]: the namespace in PostgreSQL (format version 1, documented in
//! `docs/formats/filer-store.md`), with the same key layout and entry encoding as the
//! embedded store, so several filers can share one namespace.
//!
//! Portable SQL only (no PostgreSQL-only types or functions): `BYTEA` keys compared
//! byte-wise, `INSERT … ON CONFLICT`, `DELETE … RETURNING`, SERIALIZABLE transactions
//! retried on serialization failures: what CockroachDB and YugabyteDB also accept.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{IsolationLevel, NoTls, Transaction};

use super::check_path as check;
use super::{FilerStore, GcItem, ListOptions, Mutation, StoreError, codec};
use crate::entry::Entry;
use crate::path;

/// The schema format this build writes and reads.
pub const FORMAT_VERSION: i64 = 1;
/// Connections the pool keeps at most.
const POOL_SIZE: usize = 16;
/// Descendants moved per statement by a rename.
const MOVE_BATCH: i64 = 1000;
/// Attempts of a transaction that keeps losing serialization races.
const MAX_ATTEMPTS: usize = 20;

/// A filer store in a PostgreSQL database (or one speaking its protocol).
pub struct PostgresStore {
    pool: Pool,
    sql: Sql,
}

/// Every statement, with the schema's name in it.
struct Sql {
    schema: String,
    get: String,
    probe: String,
    upsert: String,
    delete: String,
    range_first: String,
    range_first_open: String,
    drain: String,
    drain_open: String,
    list: String,
    list_open: String,
    kv_get: String,
    kv_put: String,
    kv_delete: String,
    refs_get: String,
    refs_incr: String,
    refs_decr: String,
    refs_drop: String,
    gc_unqueue: String,
    gc_next: String,
    gc_enqueue: String,
    gc_pending: String,
    gc_done: String,
}

impl Sql {
    fn new(s: &str) -> Sql {
        Sql {
            schema: s.to_string(),
            get: format!("SELECT v FROM {s}.entries WHERE k = $1"),
            probe: format!(
                "SELECT k, v FROM {s}.entries WHERE k = $1 \
                 UNION ALL (SELECT k, NULL FROM {s}.entries WHERE k >= $2 AND k < $3 ORDER BY k LIMIT 1) \
                 UNION ALL (SELECT k, NULL FROM {s}.entries WHERE k >= $4 AND k < $5 ORDER BY k LIMIT 1)"
            ),
            upsert: format!(
                "INSERT INTO {s}.entries (k, v) VALUES ($1, $2) \
                 ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
            ),
            delete: format!("DELETE FROM {s}.entries WHERE k = $1"),
            range_first: format!(
                "SELECT k FROM {s}.entries WHERE k >= $1 AND k < $2 ORDER BY k LIMIT 1"
            ),
            range_first_open: format!("SELECT k FROM {s}.entries WHERE k >= $1 ORDER BY k LIMIT 1"),
            drain: format!(
                "DELETE FROM {s}.entries WHERE k IN (SELECT k FROM {s}.entries \
                 WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3) RETURNING k, v"
            ),
            drain_open: format!(
                "DELETE FROM {s}.entries WHERE k IN (SELECT k FROM {s}.entries \
                 WHERE k >= $1 ORDER BY k LIMIT $2) RETURNING k, v"
            ),
            list: format!(
                "SELECT k, v FROM {s}.entries WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3"
            ),
            list_open: format!("SELECT k, v FROM {s}.entries WHERE k >= $1 ORDER BY k LIMIT $2"),
            kv_get: format!("SELECT v FROM {s}.kv WHERE k = $1"),
            kv_put: format!(
                "INSERT INTO {s}.kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
            ),
            kv_delete: format!("DELETE FROM {s}.kv WHERE k = $1"),
            refs_get: format!("SELECT refs FROM {s}.chunk_refs WHERE fid = $1"),
            refs_incr: format!(
                "INSERT INTO {s}.chunk_refs (fid, refs) VALUES ($1, 1) \
                 ON CONFLICT (fid) DO UPDATE SET refs = {s}.chunk_refs.refs + 1 RETURNING refs"
            ),
            refs_decr: format!(
                "UPDATE {s}.chunk_refs SET refs = refs - 1 WHERE fid = $1 RETURNING refs"
            ),
            refs_drop: format!("DELETE FROM {s}.chunk_refs WHERE fid = $1 AND refs <= 0"),
            gc_unqueue: format!("DELETE FROM {s}.gc_queue WHERE fid = $1"),
            gc_next: format!(
                "UPDATE {s}.meta SET value = value + 1 WHERE name = 'gc_next_seq' RETURNING value - 1"
            ),
            gc_enqueue: format!(
                "INSERT INTO {s}.gc_queue (seq, fid) VALUES ($1, $2) ON CONFLICT (fid) DO NOTHING"
            ),
            gc_pending: format!("SELECT seq, fid FROM {s}.gc_queue ORDER BY seq LIMIT $1"),
            gc_done: format!("DELETE FROM {s}.gc_queue WHERE seq = $1"),
        }
    }

    /// The statements that create schema version 1 (idempotent).
    fn create(&self) -> Vec<String> {
        let s = &self.schema;
        vec![
            format!("CREATE SCHEMA IF NOT EXISTS {s}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {s}.meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {s}.entries (k BYTEA PRIMARY KEY, v BYTEA NOT NULL)"
            ),
            format!("CREATE TABLE IF NOT EXISTS {s}.kv (k BYTEA PRIMARY KEY, v BYTEA NOT NULL)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {s}.chunk_refs (fid TEXT PRIMARY KEY, refs BIGINT NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {s}.gc_queue (seq BIGINT PRIMARY KEY, fid TEXT NOT NULL UNIQUE)"
            ),
            format!(
                "INSERT INTO {s}.meta (name, value) VALUES ('format', {FORMAT_VERSION}) ON CONFLICT (name) DO NOTHING"
            ),
            format!(
                "INSERT INTO {s}.meta (name, value) VALUES ('gc_next_seq', 1) ON CONFLICT (name) DO NOTHING"
            ),
        ]
    }
}

/// Whether `s` can name a schema without quoting: `[a-z_][a-z0-9_]*`, at most 63 bytes.
fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_lowercase() || (i > 0 && b.is_ascii_digit()))
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`), creates the
    /// schema `schema` and its tables if missing, and checks their format version.
    pub async fn open(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::Invalid(format!(
                "schema name {schema:?}: use lower-case letters, digits and _ (not first)"
            )));
        }
        let pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("postgres url: {e}")))?;
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(Duration::from_secs(30)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Backend(format!("postgres pool: {e}")))?;
        let store = PostgresStore {
            pool,
            sql: Sql::new(schema),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Creates what is missing, then refuses a schema written by another format.
    async fn migrate(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        for stmt in self.sql.create() {
            if let Err(e) = client.batch_execute(&stmt).await {
                // Two filers starting at once may race to create the same object.
                let again = client.batch_execute(&stmt).await;
                again.map_err(|_| backend(e))?;
            }
        }
        let row = client
            .query_one(
                &format!(
                    "SELECT value FROM {}.meta WHERE name = 'format'",
                    self.sql.schema
                ),
                &[],
            )
            .await
            .map_err(backend)?;
        let v: i64 = row.try_get(0).map_err(backend)?;
        if v != FORMAT_VERSION {
            return Err(StoreError::Corrupt(format!(
                "the filer store in schema {} has format version {v}; this build reads version {FORMAT_VERSION}",
                self.sql.schema
            )));
        }
        Ok(())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Backend(format!("postgres: {e}")))
    }
}

fn backend(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {e}"))
}

/// Whether the transaction lost a race and may simply be run again.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
            || *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// A store error, or a lost race to retry.
enum TxError {
    Store(StoreError),
    Retry(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> TxError {
        if is_retryable(&e) {
            TxError::Retry(e)
        } else {
            TxError::Store(backend(e))
        }
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> TxError {
        TxError::Store(e)
    }
}

type TxResult<T> = Result<T, TxError>;

fn distinct_fids(e: &Entry) -> BTreeSet<String> {
    e.chunk_fids().map(str::to_string).collect()
}

/// One write transaction: the same steps as the embedded store's, in SQL.
struct Tx<'a, 't> {
    t: &'a Transaction<'t>,
    sql: &'a Sql,
}

impl Tx<'_, '_> {
    async fn apply(&self, m: &Mutation) -> TxResult<()> {
        match m {
            Mutation::Put(e) => self.put(e).await,
            Mutation::Delete(p) => self.delete(p).await,
            Mutation::DeleteTree(p) => self.delete_tree(p).await,
            Mutation::Rename { from, to } => self.rename(from, to).await,
            Mutation::KvPut(k, v) => {
                self.t.execute(&self.sql.kv_put, &[k, v]).await?;
                Ok(())
            }
            Mutation::KvDelete(k) => {
                self.t.execute(&self.sql.kv_delete, &[k]).await?;
                Ok(())
            }
            Mutation::Expect { path, entry } => {
                check(path)?;
                if self.get(path).await? == *entry {
                    Ok(())
                } else {
                    Err(StoreError::Changed(path.clone()).into())
                }
            }
            Mutation::ExpectKv { key, value } => {
                let now: Option<Vec<u8>> = match self.t.query_opt(&self.sql.kv_get, &[key]).await? {
                    Some(r) => Some(r.try_get(0)?),
                    None => None,
                };
                if now == *value {
                    Ok(())
                } else {
                    Err(StoreError::Changed(super::kv_key_name(key)).into())
                }
            }
        }
    }

    async fn get(&self, p: &str) -> TxResult<Option<Entry>> {
        let row = self
            .t
            .query_opt(&self.sql.get, &[&codec::entry_key(p)])
            .await?;
        match row {
            Some(r) => Ok(Some(codec::decode_entry(p.to_string(), r.try_get(0)?)?)),
            None => Ok(None),
        }
    }

    /// The entry at `p` and whether anything lies below it, in one round trip when
    /// both descendant ranges are bounded (always, below the root).
    async fn probe(&self, p: &str) -> TxResult<(Option<Entry>, bool)> {
        let key = codec::entry_key(p);
        let ranges = codec::descendant_ranges(p);
        let [(a, Some(a_end)), (b, Some(b_end))] = ranges.as_slice() else {
            let old = self.get(p).await?;
            return Ok((old, self.has_descendants(p).await?));
        };
        let rows = self
            .t
            .query(&self.sql.probe, &[&key, a, a_end, b, b_end])
            .await?;
        let mut old = None;
        let mut below = false;
        for r in &rows {
            let k: &[u8] = r.try_get(0)?;
            if k == key.as_slice() {
                old = Some(codec::decode_entry(p.to_string(), r.try_get(1)?)?);
            } else {
                below = true;
            }
        }
        Ok((old, below))
    }

    async fn has_descendants(&self, p: &str) -> TxResult<bool> {
        for (start, end) in codec::descendant_ranges(p) {
            let row = match &end {
                Some(end) => {
                    self.t
                        .query_opt(&self.sql.range_first, &[&start, end])
                        .await?
                }
                None => {
                    self.t
                        .query_opt(&self.sql.range_first_open, &[&start])
                        .await?
                }
            };
            if row.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn put(&self, e: &Entry) -> TxResult<()> {
        check(&e.path)?;
        if e.path == "/" && !e.is_directory {
            return Err(StoreError::Invalid("the root / must be a directory".into()).into());
        }
        let (old, has_descendants) = self.probe(&e.path).await?;
        let was_dir_or_new = old.as_ref().is_none_or(|o| o.is_directory);
        if !e.is_directory && was_dir_or_new && has_descendants {
            return Err(StoreError::NotEmpty(e.path.clone()).into());
        }
        let value = codec::encode_entry(e)?;
        self.t
            .execute(&self.sql.upsert, &[&codec::entry_key(&e.path), &value])
            .await?;
        let new_fids = distinct_fids(e);
        let old_fids = old.as_ref().map(distinct_fids).unwrap_or_default();
        for fid in new_fids.difference(&old_fids) {
            self.incr(fid).await?;
        }
        for fid in old_fids.difference(&new_fids) {
            self.decr(fid).await?;
        }
        Ok(())
    }

    async fn delete(&self, p: &str) -> TxResult<()> {
        check(p)?;
        if p == "/" {
            return Err(StoreError::Invalid("the root / cannot be deleted".into()).into());
        }
        let Some(old) = self.get(p).await? else {
            return Err(StoreError::NotFound(p.to_string()).into());
        };
        if self.has_descendants(p).await? {
            return Err(StoreError::NotEmpty(p.to_string()).into());
        }
        self.t
            .execute(&self.sql.delete, &[&codec::entry_key(p)])
            .await?;
        for fid in distinct_fids(&old) {
            self.decr(&fid).await?;
        }
        Ok(())
    }

    async fn delete_tree(&self, p: &str) -> TxResult<()> {
        check(p)?;
        if p != "/" {
            let Some(old) = self.get(p).await? else {
                return Err(StoreError::NotFound(p.to_string()).into());
            };
            self.t
                .execute(&self.sql.delete, &[&codec::entry_key(p)])
                .await?;
            for fid in distinct_fids(&old) {
                self.decr(&fid).await?;
            }
        }
        for range in codec::descendant_ranges(p) {
            loop {
                let removed = self.drain(&range).await?;
                if removed.is_empty() {
                    break;
                }
                for (k, v) in removed {
                    let e = codec::decode_entry(codec::key_path(&k)?, &v)?;
                    for fid in distinct_fids(&e) {
                        self.decr(&fid).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes and returns up to [`MOVE_BATCH`] entries of `range`.
    async fn drain(&self, (start, end): &codec::KeyRange) -> TxResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let rows = match end {
            Some(end) => {
                self.t
                    .query(&self.sql.drain, &[start, end, &MOVE_BATCH])
                    .await?
            }
            None => {
                self.t
                    .query(&self.sql.drain_open, &[start, &MOVE_BATCH])
                    .await?
            }
        };
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn rename(&self, from: &str, to: &str) -> TxResult<()> {
        check(from)?;
        check(to)?;
        if from == "/" || to == "/" {
            return Err(
                StoreError::Invalid("the root / cannot be renamed or replaced".into()).into(),
            );
        }
        let from_key = codec::entry_key(from);
        let Some(row) = self.t.query_opt(&self.sql.get, &[&from_key]).await? else {
            return Err(StoreError::NotFound(from.to_string()).into());
        };
        let value: Vec<u8> = row.try_get(0)?;
        let to_key = codec::entry_key(to);
        let exists = self.t.query_opt(&self.sql.get, &[&to_key]).await?.is_some();
        if exists || self.has_descendants(to).await? {
            return Err(StoreError::AlreadyExists(to.to_string()).into());
        }
        if path::is_within(to, from) {
            return Err(
                StoreError::Invalid(format!("cannot move {from} into itself ({to})")).into(),
            );
        }
        self.t.execute(&self.sql.delete, &[&from_key]).await?;
        self.t.execute(&self.sql.upsert, &[&to_key, &value]).await?;
        // Descendant keys start with `from`; the new ones start with `to` instead and
        // never fall in the ranges being drained (`to` is not inside `from`).
        for range in codec::descendant_ranges(from) {
            loop {
                let batch = self.drain(&range).await?;
                if batch.is_empty() {
                    break;
                }
                for (k, v) in batch {
                    let mut new_key = Vec::with_capacity(to.len() + k.len() - from.len());
                    new_key.extend_from_slice(to.as_bytes());
                    new_key.extend_from_slice(&k[from.len()..]);
                    if new_key.len() > path::MAX_PATH_LEN {
                        return Err(StoreError::Invalid(format!(
                            "moving {from} to {to} would make a path longer than {} bytes",
                            path::MAX_PATH_LEN
                        ))
                        .into());
                    }
                    self.t.execute(&self.sql.upsert, &[&new_key, &v]).await?;
                }
            }
        }
        Ok(())
    }

    /// One more entry references `fid`; a queued fid leaves the GC queue.
    async fn incr(&self, fid: &str) -> TxResult<()> {
        let refs: i64 = self
            .t
            .query_one(&self.sql.refs_incr, &[&fid])
            .await?
            .try_get(0)?;
        if refs == 1 {
            self.t.execute(&self.sql.gc_unqueue, &[&fid]).await?;
        }
        Ok(())
    }

    /// One entry fewer references `fid`; at 0 it is queued for deletion.
    async fn decr(&self, fid: &str) -> TxResult<()> {
        let Some(row) = self.t.query_opt(&self.sql.refs_decr, &[&fid]).await? else {
            // Cannot happen while the invariant holds. Leaking the chunk is safer than
            // deleting data something might still reference.
            tracing::warn!(
                fid,
                "chunk had no reference count when an entry released it; not queueing it for deletion"
            );
            return Ok(());
        };
        let refs: i64 = row.try_get(0)?;
        if refs <= 0 {
            self.t.execute(&self.sql.refs_drop, &[&fid]).await?;
            let seq: i64 = self.t.query_one(&self.sql.gc_next, &[]).await?.try_get(0)?;
            self.t.execute(&self.sql.gc_enqueue, &[&seq, &fid]).await?;
        }
        Ok(())
    }
}

fn list_bounds(range: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Vec<u8>, Option<Vec<u8>>) {
    // `codec::list_range` gives an inclusive or exclusive lower bound and an exclusive
    // upper one; an exclusive lower bound `k` is the inclusive `k \0`.
    let start = match &range.0 {
        Bound::Included(k) => k.clone(),
        Bound::Excluded(k) => {
            let mut k = k.clone();
            k.push(0);
            k
        }
        Bound::Unbounded => Vec::new(),
    };
    let end = match &range.1 {
        Bound::Excluded(k) | Bound::Included(k) => Some(k.clone()),
        Bound::Unbounded => None,
    };
    (start, end)
}

#[async_trait]
impl FilerStore for PostgresStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn find(&self, p: &str) -> Result<Option<Entry>, StoreError> {
        check(p)?;
        let client = self.client().await?;
        let row = client
            .query_opt(&self.sql.get, &[&codec::entry_key(p)])
            .await
            .map_err(backend)?;
        match row {
            Some(r) => codec::decode_entry(p.to_string(), r.try_get(0).map_err(backend)?).map(Some),
            None if p == "/" => Ok(Some(Entry::new_dir("/", 0))),
            None => Ok(None),
        }
    }

    async fn list(&self, dir: &str, opts: &ListOptions) -> Result<Vec<Entry>, StoreError> {
        check(dir)?;
        let range = codec::list_range(
            dir,
            opts.start_after.as_deref(),
            opts.inclusive,
            opts.prefix.as_deref(),
        );
        let (start, end) = list_bounds(&range);
        let limit = if opts.limit == 0 {
            i64::MAX
        } else {
            i64::try_from(opts.limit).unwrap_or(i64::MAX)
        };
        let client = self.client().await?;
        let rows = match &end {
            Some(end) => client.query(&self.sql.list, &[&start, end, &limit]).await,
            None => client.query(&self.sql.list_open, &[&start, &limit]).await,
        }
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let k: &[u8] = r.try_get(0).map_err(backend)?;
                codec::decode_entry(codec::key_path(k)?, r.try_get(1).map_err(backend)?)
            })
            .collect()
    }

    async fn apply(&self, muts: Vec<Mutation>) -> Result<(), StoreError> {
        if muts.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let mut last = None;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                // Back off a little, more each time, so racing writers spread out (the
                // clock's nanoseconds stand in for a random jitter).
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| u64::from(d.subsec_nanos()))
                    .unwrap_or(0);
                let ms = 1 + nanos % (2u64 << attempt.min(6));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let t = client
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .start()
                .await
                .map_err(backend)?;
            let tx = Tx {
                t: &t,
                sql: &self.sql,
            };
            let mut outcome = Ok(());
            for m in &muts {
                outcome = tx.apply(m).await;
                if outcome.is_err() {
                    break;
                }
            }
            let outcome = match outcome {
                Ok(()) => t.commit().await.map_err(TxError::from),
                Err(e) => {
                    let _ = t.rollback().await;
                    Err(e)
                }
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(TxError::Store(e)) => return Err(e),
                Err(TxError::Retry(e)) => last = Some(e),
            }
        }
        Err(StoreError::Backend(format!(
            "postgres: gave up after {MAX_ATTEMPTS} serialization conflicts: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    async fn kv_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&self.sql.kv_get, &[&key])
            .await
            .map_err(backend)?;
        row.map(|r| r.try_get(0).map_err(backend)).transpose()
    }

    async fn gc_pending(&self, max: usize) -> Result<Vec<GcItem>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = client
            .query(&self.sql.gc_pending, &[&limit])
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get(0).map_err(backend)?;
                Ok(GcItem {
                    seq: u64::try_from(seq)
                        .map_err(|_| StoreError::Corrupt(format!("gc queue seq {seq}")))?,
                    fid: r.try_get(1).map_err(backend)?,
                })
            })
            .collect()
    }

    async fn gc_done(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let client = self.client().await?;
        for &seq in seqs {
            let Ok(seq) = i64::try_from(seq) else {
                continue;
            };
            client
                .execute(&self.sql.gc_done, &[&seq])
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn chunk_refs(&self, fid: &str) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&self.sql.refs_get, &[&fid])
            .await
            .map_err(backend)?;
        match row {
            Some(r) => {
                let n: i64 = r.try_get(0).map_err(backend)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests;
