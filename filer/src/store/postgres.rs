//! [`PostgresStore`]: the namespace in PostgreSQL (format version 1, documented in
//! `docs/formats/filer-store.md`), with the same key layout and entry encoding as the
//! embedded store, so several filers can share one namespace.
//!
//! Portable SQL only (no PostgreSQL-only types or functions): `BYTEA` keys compared
//! byte-wise, `INSERT … ON CONFLICT`, `DELETE … RETURNING`, `SELECT … FOR UPDATE /
//! FOR SHARE` in READ COMMITTED transactions (`tx.rs` says which lock guards what),
//! retried on deadlocks and serialization failures: what CockroachDB and YugabyteDB
//! also accept.

use std::ops::Bound;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{IsolationLevel, NoTls};

use super::check_path as check;
use super::{FilerStore, GcItem, ListOptions, LogBounds, LogPage, Mutation, StoreError, codec};
use crate::entry::Entry;

mod changes;
mod fast;
mod tx;

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
    get_many: String,
    lock: String,
    lock_shared: String,
    below: String,
    insert: String,
    update: String,
    delete: String,
    range_first: String,
    range_first_open: String,
    drain: String,
    drain_open: String,
    list: String,
    list_open: String,
    kv_get: String,
    kv_lock: String,
    kv_put: String,
    kv_insert: String,
    kv_delete: String,
    kv_scan: String,
    kv_scan_open: String,
    refs_get: String,
    refs_incr: String,
    refs_decr: String,
    refs_drop: String,
    gc_unqueue: String,
    gc_enqueue: String,
    gc_pending: String,
    gc_done: String,
    gc_len: String,
    log: changes::LogSql,
    fast_create: String,
    kv_puts: String,
}

impl Sql {
    fn new(s: &str) -> Sql {
        Sql {
            schema: s.to_string(),
            get: format!("SELECT v FROM {s}.entries WHERE k = $1"),
            get_many: format!("SELECT k, v FROM {s}.entries WHERE k = ANY($1::BYTEA[])"),
            lock: format!("SELECT v FROM {s}.entries WHERE k = $1 FOR UPDATE"),
            lock_shared: format!("SELECT 1 FROM {s}.entries WHERE k = $1 FOR SHARE"),
            below: format!(
                "(SELECT 1 FROM {s}.entries WHERE k >= $1 AND k < $2 ORDER BY k LIMIT 1) \
                 UNION ALL (SELECT 1 FROM {s}.entries WHERE k >= $3 AND k < $4 ORDER BY k LIMIT 1)"
            ),
            insert: format!(
                "INSERT INTO {s}.entries (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING"
            ),
            update: format!("UPDATE {s}.entries SET v = $2 WHERE k = $1"),
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
            kv_lock: format!("SELECT v FROM {s}.kv WHERE k = $1 FOR UPDATE"),
            kv_insert: format!(
                "INSERT INTO {s}.kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING"
            ),
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
            // A fid's first reference also ends its upload's record (`pending_key`).
            gc_unqueue: format!(
                "WITH p AS (DELETE FROM {s}.kv WHERE k = $2) DELETE FROM {s}.gc_queue WHERE fid = $1"
            ),
            kv_scan: format!(
                "SELECT k, v FROM {s}.kv WHERE k > $1 AND k >= $2 AND k < $3 ORDER BY k LIMIT $4"
            ),
            kv_scan_open: format!(
                "SELECT k, v FROM {s}.kv WHERE k > $1 AND k >= $2 ORDER BY k LIMIT $3"
            ),
            // A sequence, not a counter row: a counter every overwrite updates would make
            // all concurrent overwrites conflict with each other.
            gc_enqueue: format!(
                "INSERT INTO {s}.gc_queue (seq, fid) VALUES (nextval('{s}.gc_seq'), $1) \
                 ON CONFLICT (fid) DO NOTHING"
            ),
            gc_pending: format!("SELECT seq, fid FROM {s}.gc_queue ORDER BY seq LIMIT $1"),
            gc_done: format!("DELETE FROM {s}.gc_queue WHERE seq = $1"),
            gc_len: format!("SELECT count(*) FROM {s}.gc_queue"),
            log: changes::LogSql::new(s),
            fast_create: fast::statement(s),
            kv_puts: fast::kv_puts_statement(s),
        }
    }

    /// The statements that create schema version 1 (idempotent).
    fn create(&self) -> Vec<String> {
        let s = &self.schema;
        let mut all = vec![
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
            format!("CREATE SEQUENCE IF NOT EXISTS {s}.gc_seq"),
            // Schemas from before the sequence numbered their queue from a counter row.
            format!(
                "SELECT setval('{s}.gc_seq', (SELECT max(seq) FROM {s}.gc_queue)) \
                 WHERE (SELECT max(seq) FROM {s}.gc_queue) >= (SELECT last_value FROM {s}.gc_seq)"
            ),
        ];
        all.extend(changes::LogSql::create(s));
        all
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

/// The session settings every connection of the store starts with, after those the
/// URL's `options` gives. Every statement of this store reads rows by primary or
/// unique key, or walks a key range in key order, so neither a sequential scan nor a
/// sort is ever the better plan; but table statistics lag behind this workload and
/// make the planner choose them:
///
/// - a table that grew fast since it was last analyzed (a namespace filled in the last
///   minute) looks small, and a page of 1,000 of 100,000 entries was planned as a scan
///   of the whole directory and a sort: 26 ms instead of 0.4;
/// - the upload records (`kv`) are inserted and deleted once per upload, so between
///   two autovacuum runs the table holds many dead rows, and a statement planned once
///   (the pool keeps prepared statements) while it looked small kept scanning it all.
///
/// These settings only price those plans out where an index gives the rows or the
/// order; nothing else changes.
fn session_options(url_options: Option<&str>) -> String {
    const OURS: &str = "-c enable_sort=off -c enable_seqscan=off";
    match url_options.map(str::trim).filter(|o| !o.is_empty()) {
        Some(theirs) => format!("{theirs} {OURS}"),
        None => OURS.to_string(),
    }
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
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("postgres url: {e}")))?;
        pg.options(session_options(pg.get_options()));
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

/// `sql` prepared once per pooled connection (the pool keeps each connection's
/// statements), so running it costs one round trip and no parsing or planning.
async fn prepared(
    client: &deadpool_postgres::Object,
    sql: &str,
) -> Result<tokio_postgres::Statement, StoreError> {
    client.prepare_cached(sql).await.map_err(backend)
}

fn backend(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(describe(&e))
}

/// The error with the server's own message, which `Display` leaves out.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("postgres: {} ({})", db.message(), db.code().code()),
        None => format!("postgres: {e}"),
    }
}

/// Whether the transaction lost a race and may simply be run again.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    changes::lost_position(e)
        || e.code().is_some_and(|c| {
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
            .query_opt(
                &prepared(&client, &self.sql.get).await?,
                &[&codec::entry_key(p)],
            )
            .await
            .map_err(backend)?;
        match row {
            Some(r) => codec::decode_entry(p.to_string(), r.try_get(0).map_err(backend)?).map(Some),
            None if p == "/" => Ok(Some(Entry::new_dir("/", 0))),
            None => Ok(None),
        }
    }

    async fn find_many(&self, paths: &[&str]) -> Result<Vec<Option<Entry>>, StoreError> {
        for p in paths {
            check(p)?;
        }
        let keys: Vec<Vec<u8>> = paths.iter().map(|p| codec::entry_key(p)).collect();
        let client = self.client().await?;
        let rows = client
            .query(&prepared(&client, &self.sql.get_many).await?, &[&keys])
            .await
            .map_err(backend)?;
        let mut out: Vec<Option<Entry>> = vec![None; paths.len()];
        for r in &rows {
            let k: &[u8] = r.try_get(0).map_err(backend)?;
            for (i, key) in keys.iter().enumerate() {
                if key.as_slice() == k {
                    out[i] = Some(codec::decode_entry(
                        paths[i].to_string(),
                        r.try_get(1).map_err(backend)?,
                    )?);
                }
            }
        }
        for (i, p) in paths.iter().enumerate() {
            if *p == "/" && out[i].is_none() {
                out[i] = Some(Entry::new_dir("/", 0));
            }
        }
        Ok(out)
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
            Some(end) => {
                let stmt = prepared(&client, &self.sql.list).await?;
                client.query(&stmt, &[&start, end, &limit]).await
            }
            None => {
                let stmt = prepared(&client, &self.sql.list_open).await?;
                client.query(&stmt, &[&start, &limit]).await
            }
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
        let record = super::log::encode(super::log::now_ns(), &muts)?;
        if record.is_none()
            && let Some((keys, values)) = fast::kv_puts_of(&muts)
        {
            return self.put_kvs(&keys, &values).await;
        }
        if let Some(c) = fast::Create::of(&muts)
            && self.fast_create(&c, record.as_deref()).await?
        {
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
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()
                .await
                .map_err(backend)?;
            let tx = tx::Tx::new(&t, &self.sql);
            let mut outcome = Ok(());
            for m in &muts {
                outcome = tx.apply(m).await;
                if outcome.is_err() {
                    break;
                }
            }
            if let (Ok(()), Some(record)) = (&outcome, &record) {
                // Last, so the position is held for as short a time as possible.
                outcome = async {
                    let stmt = t.prepare_cached(&self.sql.log.append).await?;
                    t.execute(&stmt, &[&super::log::now_ns(), record]).await?;
                    Ok(())
                }
                .await;
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
            last.map(|e| describe(&e)).unwrap_or_default()
        )))
    }

    async fn kv_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&prepared(&client, &self.sql.kv_get).await?, &[&key])
            .await
            .map_err(backend)?;
        row.map(|r| r.try_get(0).map_err(backend)).transpose()
    }

    async fn kv_scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        max: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let after = start_after.unwrap_or_default();
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = match codec::prefix_end(prefix) {
            Some(end) => {
                client
                    .query(
                        &prepared(&client, &self.sql.kv_scan).await?,
                        &[&after, &prefix, &end, &limit],
                    )
                    .await
            }
            None => {
                client
                    .query(
                        &prepared(&client, &self.sql.kv_scan_open).await?,
                        &[&after, &prefix, &limit],
                    )
                    .await
            }
        }
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(backend)?,
                    r.try_get(1).map_err(backend)?,
                ))
            })
            .collect()
    }

    async fn gc_pending(&self, max: usize) -> Result<Vec<GcItem>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = client
            .query(&prepared(&client, &self.sql.gc_pending).await?, &[&limit])
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

    async fn gc_queue_len(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(&prepared(&client, &self.sql.gc_len).await?, &[])
            .await
            .map_err(backend)?;
        let n: i64 = row.try_get(0).map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn gc_done(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let client = self.client().await?;
        for &seq in seqs {
            let Ok(seq) = i64::try_from(seq) else {
                continue;
            };
            client
                .execute(&prepared(&client, &self.sql.gc_done).await?, &[&seq])
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn chunk_refs(&self, fid: &str) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&prepared(&client, &self.sql.refs_get).await?, &[&fid])
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

    async fn log_read(&self, since: u64, max: usize) -> Result<LogPage, StoreError> {
        self.read_log(since, max).await
    }

    async fn log_bounds(&self) -> Result<LogBounds, StoreError> {
        self.bounds_of_log().await
    }

    async fn log_trim(&self, before_ns: i64) -> Result<u64, StoreError> {
        self.trim_log(before_ns).await
    }
}

#[cfg(test)]
mod tests;
