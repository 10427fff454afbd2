//! The common write in one statement: a batch that only creates a file (after the
//! filer's checks that its uploads are still recorded, an optional `Expect` of
//! absence, and an optional `Expect` that the parent directory is as the filer last
//! read it) runs as a single data-modifying SQL statement, atomic on its own, instead of
//! a transaction of about ten round trips. It does exactly what the general path does
//! when the path is free: lock the upload records and the parent row, check nothing
//! lies below the path, insert the entry, count its chunk references (taking first
//! references out of the GC queue and ending their upload records) and append the log
//! record. If the path is taken, or anything else is not as the fast path assumes, the
//! statement changes nothing and the batch takes the general path.
//!
//! A batch of key-value puts alone (the upload records a filer writes before sending a
//! batch of chunks) is likewise one multi-row statement.

use std::collections::BTreeSet;

use tokio_postgres::types::Type;

use super::{MAX_ATTEMPTS, PostgresStore, TxError, check};
use crate::entry::Entry;
use crate::path;
use crate::store::{Mutation, StoreError, codec, log, pending_key};

/// The statement; see the module comment. Parameters: $1/$2 upload-record keys and
/// values to find locked, $3 the parent's key, $4/$5 the entry's key and value, $6 how
/// many records, $7..$10 the two descendant ranges, $11 the chunk fids, $12 their
/// record keys, $13/$14 the log record's time and bytes (NULL: nothing to log), $15 the
/// parent's stored bytes the batch expects (NULL: no expectation).
pub(super) fn statement(s: &str) -> String {
    format!(
        "WITH fence AS (\
            SELECT kv.k FROM {s}.kv JOIN unnest($1::BYTEA[], $2::BYTEA[]) AS e(k, v) \
            ON kv.k = e.k AND kv.v = e.v FOR UPDATE OF kv\
        ), parent AS (\
            SELECT 1 AS one FROM {s}.entries WHERE k = $3 AND ($15::BYTEA IS NULL OR v = $15) \
            FOR SHARE\
        ), ins AS (\
            INSERT INTO {s}.entries (k, v) SELECT $4, $5 \
            WHERE (SELECT count(*) FROM fence) = $6 \
              AND (SELECT count(*) FROM parent) >= CASE WHEN $15::BYTEA IS NULL THEN 0 ELSE 1 END \
              AND NOT EXISTS (SELECT 1 FROM {s}.entries WHERE k >= $7 AND k < $8) \
              AND NOT EXISTS (SELECT 1 FROM {s}.entries WHERE k >= $9 AND k < $10) \
            ON CONFLICT (k) DO NOTHING RETURNING k\
        ), refs AS (\
            INSERT INTO {s}.chunk_refs (fid, refs) \
            SELECT f, 1 FROM unnest($11::TEXT[]) AS f WHERE EXISTS (SELECT 1 FROM ins) \
            ON CONFLICT (fid) DO UPDATE SET refs = {s}.chunk_refs.refs + 1 \
            RETURNING fid, refs\
        ), unqueue AS (\
            DELETE FROM {s}.gc_queue WHERE fid IN (SELECT fid FROM refs WHERE refs = 1)\
        ), pend AS (\
            DELETE FROM {s}.kv WHERE k IN (\
                SELECT u.p FROM unnest($11::TEXT[], $12::BYTEA[]) AS u(f, p) \
                JOIN refs ON refs.fid = u.f AND refs.refs = 1)\
        ), lg AS (\
            INSERT INTO {s}.log (seq, ts, v) \
            SELECT nextval('{s}.log_seq'), $13, $14 FROM ins WHERE $14::BYTEA IS NOT NULL\
        ) SELECT count(*) FROM ins"
    )
}

/// The statement writing a batch of key-value puts: $1 the keys, $2 the values.
pub(super) fn kv_puts_statement(s: &str) -> String {
    format!(
        "INSERT INTO {s}.kv (k, v) SELECT k, v FROM unnest($1::BYTEA[], $2::BYTEA[]) AS u(k, v) \
         ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
    )
}

/// Keys, and their values at the same positions.
pub(super) type KeysValues<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

/// The keys and values of a batch made only of puts of distinct keys, sorted by key
/// (so concurrent batches lock rows in one order); `None` for any other batch.
pub(super) fn kv_puts_of(muts: &[Mutation]) -> Option<KeysValues<'_>> {
    let mut pairs = Vec::with_capacity(muts.len());
    for m in muts {
        let Mutation::KvPut(k, v) = m else {
            return None;
        };
        pairs.push((k.as_slice(), v.as_slice()));
    }
    pairs.sort_unstable_by_key(|(k, _)| *k);
    if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(pairs.into_iter().unzip())
}

/// The parameter types of [`statement`].
pub(super) const TYPES: [Type; 15] = [
    Type::BYTEA_ARRAY,
    Type::BYTEA_ARRAY,
    Type::BYTEA,
    Type::BYTEA,
    Type::BYTEA,
    Type::INT8,
    Type::BYTEA,
    Type::BYTEA,
    Type::BYTEA,
    Type::BYTEA,
    Type::TEXT_ARRAY,
    Type::BYTEA_ARRAY,
    Type::INT8,
    Type::BYTEA,
    Type::BYTEA,
];

/// A batch the fast path can take: upload-record checks, at most an `Expect` that the
/// path is free, and the put of a file (not at the root).
pub(super) struct Create<'a> {
    fence: Vec<(&'a [u8], &'a [u8])>,
    entry: &'a Entry,
    parent: Option<&'a Entry>,
}

impl<'a> Create<'a> {
    pub(super) fn of(muts: &'a [Mutation]) -> Option<Create<'a>> {
        let (last, rest) = muts.split_last()?;
        let Mutation::Put(entry) = last else {
            return None;
        };
        if entry.is_directory || path::parent(&entry.path).is_none() {
            return None;
        }
        let dir = path::parent(&entry.path);
        let mut fence = Vec::new();
        let mut parent = None;
        for m in rest {
            match m {
                Mutation::ExpectKv {
                    key,
                    value: Some(v),
                } => fence.push((key.as_slice(), v.as_slice())),
                Mutation::Expect { path, entry: None } if *path == entry.path => {}
                Mutation::Expect {
                    path,
                    entry: Some(d),
                } if Some(path.as_str()) == dir && parent.is_none() => parent = Some(d),
                _ => return None,
            }
        }
        Some(Create {
            fence,
            entry,
            parent,
        })
    }
}

impl PostgresStore {
    /// Writes a batch from [`kv_puts_of`] in one statement, atomic on its own.
    pub(super) async fn put_kvs(&self, keys: &[&[u8]], values: &[&[u8]]) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_typed_cached(&self.sql.kv_puts, &[Type::BYTEA_ARRAY, Type::BYTEA_ARRAY])
            .await
            .map_err(super::backend)?;
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            match client
                .execute(&stmt, &[&keys, &values])
                .await
                .map_err(TxError::from)
            {
                Ok(_) => return Ok(()),
                Err(TxError::Retry(e)) => last = Some(e),
                Err(TxError::Store(e)) => return Err(e),
            }
        }
        Err(StoreError::Backend(format!(
            "postgres: gave up after {MAX_ATTEMPTS} conflicts writing keys: {}",
            last.map(|e| super::describe(&e)).unwrap_or_default()
        )))
    }

    /// Runs the fast path; `Ok(false)` when the batch must take the general one.
    pub(super) async fn fast_create(
        &self,
        c: &Create<'_>,
        record: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let e = c.entry;
        check(&e.path)?;
        let ranges = codec::descendant_ranges(&e.path);
        let [(a, Some(a_end)), (b, Some(b_end))] = ranges.as_slice() else {
            return Ok(false);
        };
        let parent = path::parent(&e.path)
            .map(codec::entry_key)
            .unwrap_or_default();
        let fence_keys: Vec<&[u8]> = c.fence.iter().map(|(k, _)| *k).collect();
        let fence_values: Vec<&[u8]> = c.fence.iter().map(|(_, v)| *v).collect();
        let fids: Vec<String> = e
            .chunk_fids()
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let pending: Vec<Vec<u8>> = fids.iter().map(|f| pending_key(f)).collect();
        let key = codec::entry_key(&e.path);
        let value = codec::encode_entry(e)?;
        let expected_parent = c.parent.map(codec::encode_entry).transpose()?;
        let n = i64::try_from(c.fence.len()).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let stmt = client
            .prepare_typed_cached(&self.sql.fast_create, &TYPES)
            .await
            .map_err(super::backend)?;
        for _ in 0..MAX_ATTEMPTS {
            let r = client
                .query_one(
                    &stmt,
                    &[
                        &fence_keys,
                        &fence_values,
                        &parent,
                        &key,
                        &value,
                        &n,
                        a,
                        a_end,
                        b,
                        b_end,
                        &fids,
                        &pending,
                        &log::now_ns(),
                        &record,
                        &expected_parent,
                    ],
                )
                .await;
            match r.map_err(TxError::from) {
                Ok(row) => return Ok(row.try_get::<_, i64>(0).map_err(super::backend)? == 1),
                Err(TxError::Retry(_)) => continue,
                Err(TxError::Store(e)) => return Err(e),
            }
        }
        Ok(false)
    }
}
