//! The change log in PostgreSQL. Positions come from a SEQUENCE, taken in the same
//! statement that inserts the record, as the last step of a batch's transaction. Two
//! batches may commit in the other order than their positions, and a batch that rolls
//! back leaves a gap, so a reader **settles** every gap below what it returns before
//! returning it: it inserts a marker row (`v` NULL) at the missing position with
//! `ON CONFLICT DO NOTHING`. If the batch that holds that position is still running,
//! the insert waits for it: it then either committed (the marker is dropped and the
//! reader sees the batch) or rolled back (the marker fills the gap for good). A batch
//! whose insert comes after a marker fails on the primary key and runs again under a
//! new position. So a follower reading on from `next` never misses a batch.

use tokio_postgres::types::Type;

use super::{PostgresStore, backend, prepared};
use crate::store::StoreError;
use crate::store::log::{self, LogBounds, LogPage};

/// Positions below the head that [`PostgresStore::log_bounds`] settles: batches run
/// for far less than this many later batches take to commit.
const SETTLE_WINDOW: i64 = 100_000;
/// Records examined per transaction of a trim.
const TRIM_BATCH: i64 = 10_000;

/// The change log's statements.
pub(super) struct LogSql {
    pub(super) append: String,
    read: String,
    positions: String,
    claim: String,
    trimmed: String,
    head: String,
    trim_scan: String,
    trim_delete: String,
    trim_mark: String,
}

impl LogSql {
    pub(super) fn new(s: &str) -> LogSql {
        LogSql {
            append: format!(
                "INSERT INTO {s}.log (seq, ts, v) VALUES (nextval('{s}.log_seq'), $1, $2)"
            ),
            read: format!("SELECT seq, v FROM {s}.log WHERE seq > $1 ORDER BY seq LIMIT $2"),
            positions: format!("SELECT seq FROM {s}.log WHERE seq > $1 AND seq <= $2 ORDER BY seq"),
            claim: format!(
                "INSERT INTO {s}.log (seq, ts, v) \
                 SELECT g, $3, NULL FROM generate_series($1::BIGINT, $2::BIGINT) AS g \
                 ON CONFLICT (seq) DO NOTHING"
            ),
            trimmed: format!("SELECT value FROM {s}.meta WHERE name = 'log_trimmed'"),
            head: format!("SELECT max(seq) FROM {s}.log"),
            trim_scan: format!(
                "SELECT seq, ts FROM {s}.log WHERE seq > $1 AND v IS NOT NULL ORDER BY seq LIMIT $2"
            ),
            trim_delete: format!("DELETE FROM {s}.log WHERE seq <= $1"),
            trim_mark: format!(
                "UPDATE {s}.meta SET value = GREATEST(value, $1) WHERE name = 'log_trimmed'"
            ),
        }
    }

    /// The statements that create the log (idempotent).
    pub(super) fn create(s: &str) -> Vec<String> {
        vec![
            format!("CREATE SEQUENCE IF NOT EXISTS {s}.log_seq"),
            format!(
                "CREATE TABLE IF NOT EXISTS {s}.log (seq BIGINT PRIMARY KEY, ts BIGINT NOT NULL, v BYTEA)"
            ),
            format!(
                "INSERT INTO {s}.meta (name, value) VALUES ('log_trimmed', 0) ON CONFLICT (name) DO NOTHING"
            ),
        ]
    }
}

/// Whether `e` is a batch's log insert losing its position to a reader's marker.
pub(super) fn lost_position(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        *d.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION && d.table() == Some("log")
    })
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("change log position {n}")))
}

/// The gaps (inclusive ranges) in `seqs` (ascending) above `after`.
fn gaps(after: i64, seqs: &[i64]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut expect = after + 1;
    for &s in seqs {
        if s > expect {
            out.push((expect, s - 1));
        }
        expect = expect.max(s + 1);
    }
    out
}

impl PostgresStore {
    async fn log_trimmed(&self, client: &tokio_postgres::Client) -> Result<u64, StoreError> {
        let row = client
            .query_opt(&self.sql.log.trimmed, &[])
            .await
            .map_err(backend)?;
        match row {
            Some(r) => to_u64(r.try_get(0).map_err(backend)?),
            None => Ok(0),
        }
    }

    /// Fills each gap with a marker, waiting for any batch still holding a position.
    async fn settle(
        &self,
        client: &tokio_postgres::Client,
        gaps: &[(i64, i64)],
    ) -> Result<(), StoreError> {
        let stmt = client
            .prepare_typed(&self.sql.log.claim, &[Type::INT8, Type::INT8, Type::INT8])
            .await
            .map_err(backend)?;
        for (a, b) in gaps {
            client
                .execute(&stmt, &[a, b, &log::now_ns()])
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    pub(super) async fn read_log(&self, since: u64, max: usize) -> Result<LogPage, StoreError> {
        let client = self.client().await?;
        let after = to_i64(since);
        let limit = to_i64(max.max(1) as u64);
        let mut settled = false;
        loop {
            let rows = client
                .query(
                    &prepared(&client, &self.sql.log.read).await?,
                    &[&after, &limit],
                )
                .await
                .map_err(backend)?;
            // Read after the rows: a trim that removed rows this read missed has
            // raised the mark by now.
            let trimmed = self.log_trimmed(&client).await?;
            if since < trimmed {
                return Err(log::trimmed_error(since, trimmed));
            }
            let mut seqs = Vec::with_capacity(rows.len());
            for r in &rows {
                seqs.push(r.try_get::<_, i64>(0).map_err(backend)?);
            }
            let holes = gaps(after, &seqs);
            if !holes.is_empty() && !settled {
                self.settle(&client, &holes).await?;
                settled = true;
                continue;
            }
            // Return the run without gaps (all of it, unless a trim raced the settling).
            let mut page = LogPage {
                events: Vec::new(),
                next: since,
            };
            for (r, &seq) in rows.iter().zip(&seqs) {
                if seq != to_i64(page.next) + 1 {
                    break;
                }
                page.next = to_u64(seq)?;
                let v: Option<&[u8]> = r.try_get(1).map_err(backend)?;
                if let Some(v) = v {
                    page.events.push(log::decode(page.next, v)?);
                }
            }
            return Ok(page);
        }
    }

    pub(super) async fn bounds_of_log(&self) -> Result<LogBounds, StoreError> {
        let client = self.client().await?;
        let head: Option<i64> = client
            .query_one(&prepared(&client, &self.sql.log.head).await?, &[])
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        let trimmed = self.log_trimmed(&client).await?;
        let Some(head) = head else {
            return Ok(LogBounds {
                trimmed,
                head: trimmed,
            });
        };
        let low = to_i64(trimmed).max(head - SETTLE_WINDOW);
        let rows = client
            .query(
                &prepared(&client, &self.sql.log.positions).await?,
                &[&low, &head],
            )
            .await
            .map_err(backend)?;
        let mut seqs = Vec::with_capacity(rows.len());
        for r in &rows {
            seqs.push(r.try_get::<_, i64>(0).map_err(backend)?);
        }
        self.settle(&client, &gaps(low, &seqs)).await?;
        Ok(LogBounds {
            trimmed,
            head: to_u64(head)?,
        })
    }

    pub(super) async fn trim_log(&self, before_ns: i64) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let mut dropped = 0u64;
        loop {
            let from = to_i64(self.log_trimmed(&client).await?);
            let rows = client
                .query(&self.sql.log.trim_scan, &[&from, &TRIM_BATCH])
                .await
                .map_err(backend)?;
            let mut cut = None;
            for r in &rows {
                let ts: i64 = r.try_get(1).map_err(backend)?;
                if ts >= before_ns {
                    break;
                }
                cut = Some(r.try_get::<_, i64>(0).map_err(backend)?);
            }
            let Some(cut) = cut else {
                return Ok(dropped);
            };
            let t = client.transaction().await.map_err(backend)?;
            let n = t
                .execute(&self.sql.log.trim_delete, &[&cut])
                .await
                .map_err(backend)?;
            t.execute(&self.sql.log.trim_mark, &[&cut])
                .await
                .map_err(backend)?;
            t.commit().await.map_err(backend)?;
            dropped += n;
            if rows.len() < TRIM_BATCH as usize {
                return Ok(dropped);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gaps;

    #[test]
    fn finds_every_gap() {
        assert_eq!(gaps(0, &[1, 2, 3]), vec![]);
        assert_eq!(gaps(0, &[3, 4, 7]), vec![(1, 2), (5, 6)]);
        assert_eq!(gaps(5, &[]), vec![]);
        assert_eq!(gaps(5, &[7]), vec![(6, 6)]);
    }
}
