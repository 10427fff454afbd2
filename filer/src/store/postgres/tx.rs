//! One `apply` as a READ COMMITTED transaction whose every decision rests on a row it
//! has locked, so concurrent batches wait for each other instead of failing:
//!
//! - an entry is read `FOR UPDATE` before it is replaced, deleted, renamed or compared
//!   (`Expect`); a writer that waited re-reads the row as last committed;
//! - a path found absent is created with `INSERT … ON CONFLICT DO NOTHING`: if another
//!   batch created it meanwhile, the put starts over on the row it made (or, after an
//!   `Expect` of absence, the batch fails with `Changed`);
//! - a new child locks its parent's row `FOR SHARE` (siblings share the lock), so
//!   replacing a directory by a file, or deleting it, waits for children being
//!   created and then sees them;
//! - chunk reference counts are single-row `UPDATE`s and upserts, which serialize on
//!   the row.
//!
//! Under SERIALIZABLE, PostgreSQL's page-level predicate locks made siblings created
//! at once conflict and retry, until 100 concurrent writers starved.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use deadpool_postgres::Transaction;
use tokio_postgres::Statement;

use super::{MOVE_BATCH, Sql, TxError, TxResult, check};
use crate::entry::Entry;
use crate::path;
use crate::store::{Mutation, StoreError, codec};

fn distinct_fids(e: &Entry) -> BTreeSet<String> {
    e.chunk_fids().map(str::to_string).collect()
}

/// One write transaction: the same steps as the embedded store's, in SQL.
pub(super) struct Tx<'a, 't> {
    pub(super) t: &'a Transaction<'t>,
    pub(super) sql: &'a Sql,
    /// Entry keys and kv keys an `Expect` of this batch found absent: creating one
    /// that someone else created meanwhile fails the batch.
    absent: Mutex<HashSet<Vec<u8>>>,
    absent_kv: Mutex<HashSet<Vec<u8>>>,
}

impl<'a, 't> Tx<'a, 't> {
    pub(super) fn new(t: &'a Transaction<'t>, sql: &'a Sql) -> Tx<'a, 't> {
        Tx {
            t,
            sql,
            absent: Mutex::default(),
            absent_kv: Mutex::default(),
        }
    }

    /// `sql` prepared once per connection (the pool keeps each connection's statements),
    /// so a statement costs one round trip and no parsing or planning.
    async fn prep(&self, sql: &str) -> TxResult<Statement> {
        Ok(self.t.prepare_cached(sql).await?)
    }

    fn expected_absent(set: &Mutex<HashSet<Vec<u8>>>, key: &[u8]) -> bool {
        set.lock().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    fn note_absent(set: &Mutex<HashSet<Vec<u8>>>, key: Vec<u8>) {
        set.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
    }

    pub(super) async fn apply(&self, m: &Mutation) -> TxResult<()> {
        match m {
            Mutation::Put(e) => self.put(e).await,
            Mutation::Delete(p) => self.delete(p).await,
            Mutation::DeleteTree(p) => self.delete_tree(p).await,
            Mutation::Rename { from, to } => self.rename(from, to).await,
            Mutation::KvPut(k, v) => {
                if Self::expected_absent(&self.absent_kv, k) {
                    if self
                        .t
                        .execute(&self.prep(&self.sql.kv_insert).await?, &[k, v])
                        .await?
                        == 0
                    {
                        return Err(StoreError::Changed(crate::store::kv_key_name(k)).into());
                    }
                } else {
                    self.t
                        .execute(&self.prep(&self.sql.kv_put).await?, &[k, v])
                        .await?;
                }
                Ok(())
            }
            Mutation::KvDelete(k) => {
                self.t
                    .execute(&self.prep(&self.sql.kv_delete).await?, &[k])
                    .await?;
                Ok(())
            }
            Mutation::Expect { path, entry } => {
                check(path)?;
                let now = self.lock(path).await?;
                if now != *entry {
                    return Err(StoreError::Changed(path.clone()).into());
                }
                if now.is_none() {
                    Self::note_absent(&self.absent, codec::entry_key(path));
                }
                Ok(())
            }
            Mutation::ExpectKv { key, value } => {
                let now: Option<Vec<u8>> = match self
                    .t
                    .query_opt(&self.prep(&self.sql.kv_lock).await?, &[key])
                    .await?
                {
                    Some(r) => Some(r.try_get(0)?),
                    None => None,
                };
                if now != *value {
                    return Err(StoreError::Changed(crate::store::kv_key_name(key)).into());
                }
                if now.is_none() {
                    Self::note_absent(&self.absent_kv, key.clone());
                }
                Ok(())
            }
        }
    }

    /// The entry at `p`, its row locked for this transaction when it exists.
    async fn lock(&self, p: &str) -> TxResult<Option<Entry>> {
        let row = self
            .t
            .query_opt(&self.prep(&self.sql.lock).await?, &[&codec::entry_key(p)])
            .await?;
        match row {
            Some(r) => Ok(Some(codec::decode_entry(p.to_string(), r.try_get(0)?)?)),
            None => Ok(None),
        }
    }

    /// Whether anything lies below `p` (one round trip below the root).
    async fn has_descendants(&self, p: &str) -> TxResult<bool> {
        let ranges = codec::descendant_ranges(p);
        if let [(a, Some(a_end)), (b, Some(b_end))] = ranges.as_slice() {
            let rows = self
                .t
                .query(&self.prep(&self.sql.below).await?, &[a, a_end, b, b_end])
                .await?;
            return Ok(!rows.is_empty());
        }
        for (start, end) in ranges {
            let row = match &end {
                Some(end) => {
                    self.t
                        .query_opt(&self.prep(&self.sql.range_first).await?, &[&start, end])
                        .await?
                }
                None => {
                    self.t
                        .query_opt(&self.prep(&self.sql.range_first_open).await?, &[&start])
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
        let key = codec::entry_key(&e.path);
        let value = codec::encode_entry(e)?;
        let parent = path::parent(&e.path).map(codec::entry_key);
        loop {
            // The entry itself locked, and the parent shared with any siblings.
            let (old, _) = match &parent {
                Some(pk) => tokio::try_join!(self.lock(&e.path), async {
                    self.t
                        .execute(&self.prep(&self.sql.lock_shared).await?, &[pk])
                        .await
                        .map_err(TxError::from)
                })?,
                None => (self.lock(&e.path).await?, 0),
            };
            let was_dir_or_new = old.as_ref().is_none_or(|o| o.is_directory);
            if !e.is_directory && was_dir_or_new && self.has_descendants(&e.path).await? {
                return Err(StoreError::NotEmpty(e.path.clone()).into());
            }
            if old.is_some() {
                self.t
                    .execute(&self.prep(&self.sql.update).await?, &[&key, &value])
                    .await?;
            } else if self
                .t
                .execute(&self.prep(&self.sql.insert).await?, &[&key, &value])
                .await?
                == 0
            {
                // Created by another batch since we looked.
                if Self::expected_absent(&self.absent, &key) {
                    return Err(StoreError::Changed(e.path.clone()).into());
                }
                continue;
            }
            let new_fids = distinct_fids(e);
            let old_fids = old.as_ref().map(distinct_fids).unwrap_or_default();
            for fid in new_fids.difference(&old_fids) {
                self.incr(fid).await?;
            }
            for fid in old_fids.difference(&new_fids) {
                self.decr(fid).await?;
            }
            return Ok(());
        }
    }

    async fn delete(&self, p: &str) -> TxResult<()> {
        check(p)?;
        if p == "/" {
            return Err(StoreError::Invalid("the root / cannot be deleted".into()).into());
        }
        let Some(old) = self.lock(p).await? else {
            return Err(StoreError::NotFound(p.to_string()).into());
        };
        if self.has_descendants(p).await? {
            return Err(StoreError::NotEmpty(p.to_string()).into());
        }
        self.t
            .execute(&self.prep(&self.sql.delete).await?, &[&codec::entry_key(p)])
            .await?;
        for fid in distinct_fids(&old) {
            self.decr(&fid).await?;
        }
        Ok(())
    }

    async fn delete_tree(&self, p: &str) -> TxResult<()> {
        check(p)?;
        if p != "/" {
            let Some(old) = self.lock(p).await? else {
                return Err(StoreError::NotFound(p.to_string()).into());
            };
            self.t
                .execute(&self.prep(&self.sql.delete).await?, &[&codec::entry_key(p)])
                .await?;
            for fid in distinct_fids(&old) {
                self.decr(&fid).await?;
            }
        }
        // Until a whole pass finds nothing: a child committed while a pass ran (its
        // creator held the parent's row, which the pass then waited for) is caught by
        // the next.
        loop {
            let mut removed_any = false;
            for range in codec::descendant_ranges(p) {
                loop {
                    let removed = self.drain(&range).await?;
                    if removed.is_empty() {
                        break;
                    }
                    removed_any = true;
                    for (k, v) in removed {
                        let e = codec::decode_entry(codec::key_path(&k)?, &v)?;
                        for fid in distinct_fids(&e) {
                            self.decr(&fid).await?;
                        }
                    }
                }
            }
            if !removed_any {
                return Ok(());
            }
        }
    }

    /// Deletes and returns up to [`MOVE_BATCH`] entries of `range`.
    async fn drain(&self, (start, end): &codec::KeyRange) -> TxResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let rows = match end {
            Some(end) => {
                self.t
                    .query(
                        &self.prep(&self.sql.drain).await?,
                        &[start, end, &MOVE_BATCH],
                    )
                    .await?
            }
            None => {
                self.t
                    .query(
                        &self.prep(&self.sql.drain_open).await?,
                        &[start, &MOVE_BATCH],
                    )
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
        let Some(row) = self
            .t
            .query_opt(&self.prep(&self.sql.lock).await?, &[&from_key])
            .await?
        else {
            return Err(StoreError::NotFound(from.to_string()).into());
        };
        let value: Vec<u8> = row.try_get(0)?;
        let to_key = codec::entry_key(to);
        let exists = self
            .t
            .query_opt(&self.prep(&self.sql.lock).await?, &[&to_key])
            .await?
            .is_some();
        if exists || self.has_descendants(to).await? {
            return Err(StoreError::AlreadyExists(to.to_string()).into());
        }
        if path::is_within(to, from) {
            return Err(
                StoreError::Invalid(format!("cannot move {from} into itself ({to})")).into(),
            );
        }
        self.t
            .execute(&self.prep(&self.sql.delete).await?, &[&from_key])
            .await?;
        if self
            .t
            .execute(&self.prep(&self.sql.insert).await?, &[&to_key, &value])
            .await?
            == 0
        {
            return Err(StoreError::AlreadyExists(to.to_string()).into());
        }
        // Descendant keys start with `from`; the new ones start with `to` instead and
        // never fall in the ranges being drained (`to` is not inside `from`). An entry
        // created under `to` meanwhile fails the rename rather than being overwritten.
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
                    if self
                        .t
                        .execute(&self.prep(&self.sql.insert).await?, &[&new_key, &v])
                        .await?
                        == 0
                    {
                        let p = codec::key_path(&new_key)?;
                        return Err(StoreError::AlreadyExists(p).into());
                    }
                }
            }
        }
        Ok(())
    }

    /// One more entry references `fid`; a queued fid leaves the GC queue.
    async fn incr(&self, fid: &str) -> TxResult<()> {
        let refs: i64 = self
            .t
            .query_one(&self.prep(&self.sql.refs_incr).await?, &[&fid])
            .await?
            .try_get(0)?;
        if refs == 1 {
            let pending = crate::store::pending_key(fid);
            self.t
                .execute(&self.prep(&self.sql.gc_unqueue).await?, &[&fid, &pending])
                .await?;
        }
        Ok(())
    }

    /// One entry fewer references `fid`; at 0 it is queued for deletion.
    async fn decr(&self, fid: &str) -> TxResult<()> {
        let Some(row) = self
            .t
            .query_opt(&self.prep(&self.sql.refs_decr).await?, &[&fid])
            .await?
        else {
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
            self.t
                .execute(&self.prep(&self.sql.refs_drop).await?, &[&fid])
                .await?;
            self.t
                .execute(&self.prep(&self.sql.gc_enqueue).await?, &[&fid])
                .await?;
        }
        Ok(())
    }
}
