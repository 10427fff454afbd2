//! Uploads in flight, recorded in the store before their bytes reach a volume server,
//! so the chunks of an upload whose entry never lands (the filer was killed, the client
//! went away, the commit failed) are collected instead of leaking.
//!
//! - Before a chunk is sent, its fid is written under [`pending_key`] with this filer's
//!   name and the time. The store deletes that key in the transaction that first makes
//!   an entry reference the fid.
//! - Each filer keeps a liveness lease (`lease/alive/<name>`) that it renews.
//! - The chunk collector's lease holder reclaims records whose filer's lease has
//!   expired, or that are older than a day: each such fid that no entry references
//!   goes to the collection queue.
//! - A commit of an entry naming a fid this filer recorded expects the record to be
//!   still there ([`Mutation::ExpectKv`]): an upload reclaimed meanwhile fails instead
//!   of pointing at deleted chunks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::entry::{Entry, FileChunk};
use crate::error::FilerError;
use crate::lease::Lease;
use crate::store::{FilerStore, Mutation, PENDING_PREFIX, StoreError, pending_key};

/// Records older than this are reclaimed even when their filer is alive: no upload
/// takes a day, and a commit after that fails on the record check.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Records examined per page of a reclaim.
const PAGE: usize = 1000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A record's value: `filer name \n unix ms`.
fn parse(v: &[u8]) -> Option<(&str, u64)> {
    let text = std::str::from_utf8(v).ok()?;
    let (holder, at) = text.split_once('\n')?;
    Some((holder, at.parse().ok()?))
}

/// This filer's uploads in flight.
pub struct Pending {
    store: Arc<dyn FilerStore>,
    name: String,
    alive: Lease,
    /// Fids this filer recorded and has not yet committed or given up: fid -> the
    /// record's value.
    fresh: Mutex<HashMap<String, Vec<u8>>>,
}

impl Pending {
    /// A filer's record keeper; `alive_ttl` is how long its liveness lease lasts
    /// between renewals (how soon after a crash its uploads are reclaimed).
    pub fn new(store: Arc<dyn FilerStore>, alive_ttl: Duration) -> Pending {
        let name = Lease::unique_holder("filer");
        Pending {
            alive: Lease::new(
                store.clone(),
                &format!("alive/{name}"),
                name.clone(),
                alive_ttl,
            ),
            store,
            name,
            fresh: Mutex::default(),
        }
    }

    fn fresh(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.fresh.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Renews this filer's liveness lease (call well within its ttl).
    pub async fn keep_alive(&self) -> bool {
        self.alive.acquire().await
    }

    /// Records fids before any byte is sent to them.
    pub async fn record(&self, fids: &[String]) -> Result<(), FilerError> {
        if !self.alive.held() && !self.alive.acquire().await {
            return Err(FilerError::Unavailable(
                "cannot renew this filer's liveness lease in the store".into(),
            ));
        }
        let value = format!("{}\n{}", self.name, now_ms()).into_bytes();
        let muts = fids
            .iter()
            .map(|f| Mutation::KvPut(pending_key(f), value.clone()))
            .collect();
        self.store.apply(muts).await?;
        let mut fresh = self.fresh();
        for f in fids {
            fresh.insert(f.clone(), value.clone());
        }
        Ok(())
    }

    /// Puts, before `muts`, a check that every fid this filer recorded and that an entry
    /// of `muts` names is still recorded. Returns those fids.
    pub fn fence(&self, muts: &mut Vec<Mutation>) -> Vec<String> {
        let fresh = self.fresh();
        if fresh.is_empty() {
            return Vec::new();
        }
        let mut checks = Vec::new();
        let mut fids = Vec::new();
        for m in muts.iter() {
            let Mutation::Put(e) = m else { continue };
            for fid in e.chunk_fids() {
                if let Some(v) = fresh.get(fid)
                    && !fids.iter().any(|f| f == fid)
                {
                    fids.push(fid.to_string());
                    checks.push(Mutation::ExpectKv {
                        key: pending_key(fid),
                        value: Some(v.clone()),
                    });
                }
            }
        }
        drop(fresh);
        if !checks.is_empty() {
            checks.append(muts);
            *muts = checks;
        }
        fids
    }

    /// The check and the end of the records of chunks folded into a manifest: no entry
    /// names them, the manifest does.
    pub fn settle_folded(&self, chunks: &[FileChunk]) -> Vec<Mutation> {
        let fresh = self.fresh();
        let mut out = Vec::new();
        for c in chunks {
            if let Some(v) = fresh.get(&c.fid) {
                out.push(Mutation::ExpectKv {
                    key: pending_key(&c.fid),
                    value: Some(v.clone()),
                });
                out.push(Mutation::KvDelete(pending_key(&c.fid)));
            }
        }
        out
    }

    /// Ends the records of fids that were never sent a byte (reserved, then unused).
    pub async fn give_back(&self, fids: &[String]) {
        let muts = fids
            .iter()
            .map(|f| Mutation::KvDelete(pending_key(f)))
            .collect();
        match self.store.apply(muts).await {
            Ok(()) => self.forget(fids.iter().map(String::as_str)),
            // Left to the reclaim: deleting a chunk that was never written is harmless.
            Err(e) => tracing::debug!(error = %e, "giving back reserved file ids"),
        }
    }

    /// Forgets fids that were committed or handed to the collector.
    pub fn forget<'a>(&self, fids: impl IntoIterator<Item = &'a str>) {
        let mut fresh = self.fresh();
        for f in fids {
            fresh.remove(f);
        }
    }

    /// Whether a failed commit failed because one of its uploads was reclaimed.
    pub fn was_reclaimed(e: &StoreError) -> bool {
        matches!(e, StoreError::Changed(what) if what.starts_with("kv:pending/"))
    }

    /// Reclaims the records of dead filers and stale uploads; returns how many fids
    /// went to the collection queue. Run by the chunk collector's lease holder.
    pub async fn reclaim(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut alive: HashMap<String, bool> = HashMap::new();
        let mut after: Option<Vec<u8>> = None;
        let mut queued = 0;
        loop {
            let page = self
                .store
                .kv_scan(PENDING_PREFIX, after.as_deref(), PAGE)
                .await?;
            let Some((last, _)) = page.last() else {
                return Ok(queued);
            };
            after = Some(last.clone());
            for (key, value) in &page {
                let fid = String::from_utf8_lossy(&key[PENDING_PREFIX.len()..]).to_string();
                let stale = match parse(value) {
                    None => true,
                    Some((holder, at)) => {
                        let holder_alive = match alive.get(holder) {
                            Some(&a) => a,
                            None => {
                                let a = self.is_alive(holder, now).await?;
                                alive.insert(holder.to_string(), a);
                                a
                            }
                        };
                        !holder_alive || now.saturating_sub(at) > MAX_AGE.as_millis() as u64
                    }
                };
                if !stale {
                    continue;
                }
                // The throwaway entry takes the fid's first reference (which ends the
                // record) and its delete queues the chunk unless an entry still names
                // it. The record check keeps a commit that got there first.
                let tmp = format!("/.kelp-reclaim-{}", crate::chunks::now_ns());
                let mut e = Entry::new_file(&tmp, 0);
                e.chunks.push(FileChunk {
                    fid: fid.clone(),
                    ..FileChunk::default()
                });
                let r = self
                    .store
                    .apply(vec![
                        Mutation::ExpectKv {
                            key: key.clone(),
                            value: Some(value.clone()),
                        },
                        Mutation::Put(e),
                        Mutation::Delete(tmp),
                        Mutation::KvDelete(key.clone()),
                    ])
                    .await;
                match r {
                    Ok(()) => {
                        queued += 1;
                        self.forget([fid.as_str()]);
                    }
                    Err(StoreError::Changed(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            if page.len() < PAGE {
                return Ok(queued);
            }
        }
    }

    /// Whether `holder`'s liveness lease is unexpired.
    async fn is_alive(&self, holder: &str, now: u64) -> Result<bool, StoreError> {
        let key = format!("lease/alive/{holder}").into_bytes();
        let v = self.store.kv_get(&key).await?;
        Ok(v.as_deref()
            .and_then(crate::lease::parse)
            .is_some_and(|(_, until)| until > now))
    }
}
