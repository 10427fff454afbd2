//! Reads and deletes of needles in EC volumes through the normal volume URLs: shards held
//! here are read locally, the others fetched from their holders over
//! `/admin/ec/shard`, and missing ranges are rebuilt from any `data_shards` of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kelp_proto::master_api::Location;
use kelp_proto::volume_api::DeleteResult;
use kelp_proto::{FileId, VolumeId};

use crate::ec::{EcVolume, ShardSource};
use crate::http::AppState;
use crate::http::error::ApiResult;
use crate::http::path::NeedlePath;
use crate::needle::{HEADER_SIZE, parse_header};

/// How long the shard holders learned from the master are trusted.
const HOLDERS_TTL: Duration = Duration::from_secs(10);
/// A holder that could not be reached is skipped this long (or until a refresh).
const DOWN_FOR: Duration = Duration::from_secs(10);
/// A read that misses a shard asks the master again if the list is older than this.
const REFRESH_MIN: Duration = Duration::from_secs(1);
/// Timeout of one remote shard range read.
const SHARD_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// What reads know of the other servers holding shards of the EC volumes here.
#[derive(Default)]
pub(crate) struct ShardHolders {
    /// Remote shard holders per volume, from the master, with when they were asked.
    holders: RwLock<HashMap<u32, (Instant, Vec<Location>)>>,
    /// Servers whose shard reads failed lately, skipped until the instant.
    down: Mutex<HashMap<String, Instant>>,
}

impl ShardHolders {
    /// Drops what is known of the holders of `vid` (its shards here changed).
    pub(crate) fn forget(&self, vid: u32) {
        if let Ok(mut h) = self.holders.write() {
            h.remove(&vid);
        }
    }
}

/// Remote shards of one EC volume, read with blocking calls from a blocking task.
pub(crate) struct RemoteShards {
    state: Arc<AppState>,
    vid: u32,
    holders: Mutex<Vec<Location>>,
    /// Set once this read asked the master again (at most once per read).
    refreshed: AtomicBool,
    rt: tokio::runtime::Handle,
    /// Shards held here, and how many shards a reconstruction needs.
    local: Vec<u8>,
    geo: crate::ec::Geometry,
    /// Ranges fetched ahead for a reconstruction: (shard, offset, len) → bytes.
    prefetched: Mutex<HashMap<(u8, u64, usize), Vec<u8>>>,
    /// `(offset, len)` ranges already prefetched (once each).
    ranges: Mutex<HashSet<(u64, usize)>>,
}

/// Asks the master which other servers hold shards of `vid` and caches the answer.
async fn lookup_holders(state: &AppState, vid: u32) -> Vec<Location> {
    let me = state.cfg.url();
    let found: Vec<Location> = match state.master.lookup_all(VolumeId(vid)).await {
        Ok((_, ec)) => ec.into_iter().filter(|l| l.url != me).collect(),
        Err(e) => {
            tracing::debug!(volume = vid, error = %e, "no ec shard locations from the master");
            Vec::new()
        }
    };
    if let Ok(mut h) = state.ec_holders.holders.write() {
        h.insert(vid, (Instant::now(), found.clone()));
    }
    found
}

fn cached_holders(state: &AppState, vid: u32, max_age: Duration) -> Option<Vec<Location>> {
    state
        .ec_holders
        .holders
        .read()
        .ok()
        .and_then(|h| h.get(&vid).cloned())
        .filter(|(at, _)| at.elapsed() < max_age)
        .map(|(_, l)| l)
}

impl RemoteShards {
    /// Resolves the other holders of `vid` (cached for a few seconds).
    pub(crate) async fn new(state: &Arc<AppState>, vid: u32, ev: &EcVolume) -> RemoteShards {
        let holders = match cached_holders(state, vid, HOLDERS_TTL) {
            Some(h) => h,
            None => lookup_holders(state, vid).await,
        };
        RemoteShards {
            state: state.clone(),
            vid,
            holders: Mutex::new(holders),
            refreshed: AtomicBool::new(false),
            rt: tokio::runtime::Handle::current(),
            local: ev.local_shards(),
            geo: ev.geometry(),
            prefetched: Mutex::new(HashMap::new()),
            ranges: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn urls(&self) -> Vec<String> {
        self.holders
            .lock()
            .map(|h| h.iter().map(|l| l.url.clone()).collect())
            .unwrap_or_default()
    }

    fn is_down(&self, url: &str) -> bool {
        self.state
            .ec_holders
            .down
            .lock()
            .ok()
            .and_then(|d| d.get(url).copied())
            .is_some_and(|until| Instant::now() < until)
    }

    fn mark_down(&self, url: &str) {
        if let Ok(mut d) = self.state.ec_holders.down.lock() {
            d.insert(url.to_string(), Instant::now() + DOWN_FOR);
        }
    }

    /// After a miss: takes the newest holder list (asking the master unless another read
    /// did within the last second) and gives every holder another chance. Once per read.
    fn refresh(&self) -> bool {
        if self.refreshed.swap(true, Ordering::Relaxed) {
            return false;
        }
        let fresh = match cached_holders(&self.state, self.vid, REFRESH_MIN) {
            Some(h) => h,
            None => {
                let h = self.rt.block_on(lookup_holders(&self.state, self.vid));
                if let Ok(mut d) = self.state.ec_holders.down.lock() {
                    for l in &h {
                        d.remove(&l.url);
                    }
                }
                h
            }
        };
        if let Ok(mut h) = self.holders.lock() {
            *h = fresh;
        }
        true
    }

    fn try_read(&self, shard: u8, offset: u64, len: usize) -> Option<Vec<u8>> {
        let holders: Vec<String> = self
            .holders
            .lock()
            .ok()?
            .iter()
            .filter(|h| h.ec_shards.contains(&shard))
            .map(|h| h.url.clone())
            .collect();
        for url in holders {
            if self.is_down(&url) {
                continue;
            }
            let call = self.state.volumes.ec_shard_read(
                &url,
                self.vid,
                shard,
                offset,
                len,
                SHARD_READ_TIMEOUT,
            );
            match self.rt.block_on(call) {
                Ok(b) if b.len() == len => return Some(b.to_vec()),
                Ok(b) => {
                    tracing::warn!(server = %url, shard, got = b.len(), len, "short ec shard read")
                }
                Err(e) => {
                    tracing::debug!(server = %url, shard, error = %e, "remote ec shard read failed");
                    if e.status().is_none() {
                        self.mark_down(&url);
                    }
                }
            }
        }
        None
    }
}

impl RemoteShards {
    /// After a miss of `missing` at `(offset, len)` the reader rebuilds that range from
    /// other shards, asking for them one by one in shard order: fetch the remote ones it
    /// will ask for (plus one spare) in parallel now, so the rebuild costs one round trip.
    fn prefetch(&self, missing: u8, offset: u64, len: usize) {
        if !self
            .ranges
            .lock()
            .is_ok_and(|mut r| r.insert((offset, len)))
        {
            return;
        }
        let Ok(holders) = self.holders.lock().map(|h| h.clone()) else {
            return;
        };
        let need = (self.geo.data_shards() + 1).saturating_sub(self.local.len());
        let cached: Vec<u8> = self
            .prefetched
            .lock()
            .map(|c| {
                c.keys()
                    .filter(|k| k.1 == offset && k.2 == len)
                    .map(|k| k.0)
                    .collect()
            })
            .unwrap_or_default();
        // Shards to fetch, grouped by the holder asked for them.
        let mut jobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut picked = 0;
        for s in 0..crate::ec::MAX_SHARDS as u8 {
            if picked >= need {
                break;
            }
            if s == missing || self.local.contains(&s) || cached.contains(&s) {
                continue;
            }
            if let Some(h) = holders
                .iter()
                .find(|h| h.ec_shards.contains(&s) && !self.is_down(&h.url))
            {
                jobs.entry(h.url.clone()).or_default().push(s);
                picked += 1;
            }
        }
        let calls = jobs.iter().map(|(url, ids)| {
            self.state
                .volumes
                .ec_shards_read(url, self.vid, ids, offset, len, SHARD_READ_TIMEOUT)
        });
        let results = self.rt.block_on(futures::future::join_all(calls));
        let Ok(mut cache) = self.prefetched.lock() else {
            return;
        };
        for ((url, ids), r) in jobs.iter().zip(results) {
            match r {
                Ok(b) if b.len() == len * ids.len() => {
                    for (i, s) in ids.iter().enumerate() {
                        cache.insert((*s, offset, len), b[i * len..(i + 1) * len].to_vec());
                    }
                }
                Ok(_) => {}
                Err(e) if e.status().is_none() => self.mark_down(url),
                Err(_) => {}
            }
        }
    }
}

impl ShardSource for RemoteShards {
    fn read(&self, shard: u8, offset: u64, len: usize) -> crate::Result<Option<Vec<u8>>> {
        let ahead = self
            .prefetched
            .lock()
            .ok()
            .and_then(|mut c| c.remove(&(shard, offset, len)));
        if let Some(b) = ahead {
            return Ok(Some(b));
        }
        if let Some(b) = self.try_read(shard, offset, len) {
            return Ok(Some(b));
        }
        if self.refresh()
            && let Some(b) = self.try_read(shard, offset, len)
        {
            return Ok(Some(b));
        }
        // The reader rebuilds the chunk-aligned range around this one (see `EcVolume`).
        let in_block = offset % self.geo.block();
        let (a, b) = self.geo.chunk_align(in_block, in_block + len as u64);
        self.prefetch(shard, offset - in_block + a, (b - a) as usize);
        Ok(None)
    }
}

/// `GET`/`HEAD /<fid>` of a needle in an EC volume.
pub(crate) async fn get(
    state: &Arc<AppState>,
    ev: Arc<EcVolume>,
    p: &NeedlePath,
    q: &HashMap<String, String>,
    req_headers: &HeaderMap,
    head_only: bool,
) -> ApiResult<Response> {
    let src = Arc::new(RemoteShards::new(state, p.fid.volume.0, &ev).await);
    let (key, cookie) = (p.fid.key, p.fid.cookie);
    let handle = tokio::task::spawn_blocking(move || ev.open_needle(key, cookie, src)).await??;
    crate::http::read::respond_handle(handle, p, q, req_headers, head_only).await
}

/// `DELETE /<fid>` of a needle in an EC volume: appended to the `.ecj` here and on every
/// other server holding the volume's shards (`replicate` = this is such a fan-out).
pub(crate) async fn delete(
    state: &Arc<AppState>,
    ev: Arc<EcVolume>,
    fid: &FileId,
    replicate: bool,
) -> ApiResult<Response> {
    let src = RemoteShards::new(state, fid.volume.0, &ev).await;
    let others = src.urls();
    let (key, cookie) = (fid.key, fid.cookie);
    let size = tokio::task::spawn_blocking(move || -> crate::Result<u32> {
        if !replicate {
            let (off, _) = ev.locate(key).ok_or(crate::VolumeError::NotFound { key })?;
            let head = ev.read_range(off, HEADER_SIZE as u64, &src)?;
            if parse_header(&head)?.cookie != cookie {
                return Err(crate::VolumeError::CookieMismatch { key });
            }
        }
        ev.delete(key)
    })
    .await??;
    if !replicate {
        let calls = others
            .iter()
            .map(|url| state.volumes.delete(url, fid, true));
        for (url, r) in others.iter().zip(futures::future::join_all(calls).await) {
            match r {
                Ok(_) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => {
                    tracing::warn!(server = %url, fid = %fid, error = %e, "ec delete not delivered to a shard holder")
                }
            }
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(DeleteResult { size: size as u64 }),
    )
        .into_response())
}
