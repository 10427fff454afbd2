//! The chunk collector: deletes from volume servers the chunks no entry references any
//! more, working through the store's persistent queue (so a crash delays, never loses,
//! a deletion; and the queue only ever holds unreferenced chunks). One filer of those
//! sharing a store collects at a time (the store's `gc` lease).

use std::sync::Arc;
use std::time::Duration;

use kelp_proto::FileId;
use tokio::sync::watch;

use crate::filer::Filer;
use crate::lease::Lease;

/// Deletes one chunk everywhere; true when it is gone (or its volume is).
async fn delete_chunk(filer: &Filer, fid: &str) -> bool {
    let Ok(fid) = fid.parse::<FileId>() else {
        tracing::warn!(
            fid,
            "dropping a malformed chunk id from the collection queue"
        );
        return true;
    };
    let locations = match filer.master.lookup(fid.volume).await {
        Ok(l) => l,
        Err(e) if e.status() == Some(404) => return true,
        Err(_) => return false,
    };
    // One holder fans the delete out to the volume's other copies.
    for loc in &locations {
        match filer.volumes.delete(&loc.url, &fid, false).await {
            Ok(_) => return true,
            Err(e) if e.status() == Some(404) => return true,
            Err(e) => tracing::debug!(%fid, server = %loc.url, error = %e, "chunk delete failed"),
        }
    }
    filer.master.forget(fid.volume);
    false
}

/// If `fid` is a manifest, deletes the chunks it lists (recursively) first; true when
/// the manifest itself may now be deleted.
async fn expand_for_deletion(filer: &Arc<Filer>, fid: &str) -> bool {
    let key = crate::manifest::marker(fid);
    match filer.store.kv_get(&key).await {
        Ok(None) => return true,
        Ok(Some(_)) => {}
        Err(_) => return false,
    }
    let children = match filer.load_manifest(fid).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(fid, error = %e, "cannot read a manifest to collect its chunks");
            return false;
        }
    };
    for c in &children {
        if !Box::pin(expand_for_deletion(filer, &c.fid)).await || !delete_chunk(filer, &c.fid).await
        {
            return false;
        }
    }
    filer
        .store
        .apply(vec![crate::store::Mutation::KvDelete(key)])
        .await
        .is_ok()
}

/// Renews the filer's liveness lease (see `pending.rs`) until `stop` turns true.
pub async fn keep_alive(filer: Arc<Filer>, mut stop: watch::Receiver<bool>) {
    let every = (filer.cfg.alive_ttl / 4).max(Duration::from_millis(100));
    loop {
        if !filer.pending.keep_alive().await {
            tracing::warn!("renewing this filer's liveness lease failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// How often the lease holder trims the change log.
const TRIM_EVERY: Duration = Duration::from_secs(600);
/// The least time between the starts of two rounds woken by writes: under a stream of
/// writes each one wakes the collector, and a round per write would cost the store
/// several queries per write for nothing.
const MIN_ROUND_GAP: Duration = Duration::from_millis(100);

/// How often the lease holder looks for the uploads of dead filers: a quarter of a
/// liveness lease, so they are reclaimed soon after it ends, and not on every round
/// (the scan reads every upload record in flight).
fn reclaim_every(alive_ttl: Duration) -> Duration {
    (alive_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

/// Runs until `stop` turns true. Filers sharing a store take turns through the store's
/// `gc` lease: only its holder collects. A round in progress is dropped when `stop`
/// turns true: its deletes may wait on unreachable servers, and every step is safe to
/// repeat (a chunk deleted but not yet marked done is found gone next time).
pub async fn run(filer: Arc<Filer>, mut stop: watch::Receiver<bool>) {
    let lease = Lease::new(
        filer.store.clone(),
        "gc",
        Lease::unique_holder("filer"),
        // As long as a liveness lease: a dead holder's work is taken over as soon as
        // its uploads are reclaimed.
        filer.cfg.alive_ttl,
    );
    let mut clock = Clock::default();
    loop {
        let round_at = std::time::Instant::now();
        let next = tokio::select! {
            n = round(&filer, &lease, &mut clock) => n,
            _ = stop.changed() => return,
        };
        let wait = match next {
            Next::Now => continue,
            Next::After(wait) => wait,
            Next::NotHolder(wait) => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = filer.gc_wake.notified() => {
                let next = round_at + MIN_ROUND_GAP;
                tokio::select! {
                    _ = tokio::time::sleep_until(next.into()) => {}
                    _ = stop.changed() => return,
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// When the collector last did its occasional work.
#[derive(Default)]
struct Clock {
    trimmed_at: Option<std::time::Instant>,
    reclaimed_at: Option<std::time::Instant>,
}

/// When the next round is due.
enum Next {
    /// At once: the queue had more than one round's worth.
    Now,
    /// After this long, or sooner when a write wakes the collector.
    After(Duration),
    /// After this long: another filer holds the lease, so writes here do not matter.
    NotHolder(Duration),
}

/// One round: take the lease, trim the change log and reclaim dead filers' uploads when
/// due, then delete up to 256 queued chunks.
async fn round(filer: &Arc<Filer>, lease: &Lease, clock: &mut Clock) -> Next {
    if !lease.acquire().await {
        return Next::NotHolder(filer.cfg.alive_ttl / 4);
    }
    if let Some(retain) = filer.cfg.meta_retain
        && clock.trimmed_at.is_none_or(|t| t.elapsed() >= TRIM_EVERY)
    {
        clock.trimmed_at = Some(std::time::Instant::now());
        let before = crate::store::log::now_ns()
            .saturating_sub(i64::try_from(retain.as_nanos()).unwrap_or(i64::MAX));
        match filer.store.log_trim(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "trimmed the change log"),
            Err(e) => tracing::warn!(error = %e, "trimming the change log failed"),
        }
    }
    if clock
        .reclaimed_at
        .is_none_or(|t| t.elapsed() >= reclaim_every(filer.cfg.alive_ttl))
    {
        clock.reclaimed_at = Some(std::time::Instant::now());
        match filer.pending.reclaim().await {
            Ok(0) => {}
            Ok(n) => {
                filer
                    .reclaimed
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(chunks = n, "reclaimed the chunks of unfinished uploads");
            }
            Err(e) => tracing::warn!(error = %e, "reclaiming unfinished uploads failed"),
        }
    }
    if let Ok(n) = filer.store.gc_queue_len().await {
        filer
            .gc_queued
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }
    let pending = match filer.store.gc_pending(256).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "reading the chunk collection queue failed");
            Vec::new()
        }
    };
    let mut done = Vec::new();
    let mut failed = false;
    for item in &pending {
        if !expand_for_deletion(filer, &item.fid).await {
            failed = true;
            continue;
        }
        if delete_chunk(filer, &item.fid).await {
            done.push(item.seq);
        } else {
            failed = true;
        }
    }
    if !done.is_empty() {
        filer
            .collected
            .fetch_add(done.len() as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(count = done.len(), "chunks collected");
        if let Err(e) = filer.store.gc_done(&done).await {
            tracing::warn!(error = %e, "recording collected chunks failed");
        }
    }
    if failed {
        Next::After(Duration::from_secs(2))
    } else if !pending.is_empty() {
        Next::Now
    } else {
        // Often enough to reclaim a dead filer's uploads soon after its lease ends.
        Next::After(reclaim_every(filer.cfg.alive_ttl))
    }
}
