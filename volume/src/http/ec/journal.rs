//! Catching up on EC deletions: a delete is journaled on every shard holder that answers,
//! so a holder that was down (or unreachable) misses it. Every few minutes, and soon
//! after start, each server merges the other holders' `.ecj` journals into its own.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::read::RemoteShards;
use crate::http::AppState;

/// Time between journal merges after the first.
const SYNC_EVERY: Duration = Duration::from_secs(120);

/// Merges the peers' journals of every local EC volume; returns deletions applied.
pub(crate) async fn sync_once(state: &Arc<AppState>) -> usize {
    let mut applied = 0;
    for (vid, ev) in state.ec.all() {
        let peers = RemoteShards::new(state, vid, &ev).await.urls();
        for url in peers {
            let keys = match state.volumes.ec_journal(&url, vid).await {
                Ok(k) => k,
                Err(e) => {
                    tracing::debug!(volume = vid, server = %url, error = %e, "ec journal not fetched");
                    continue;
                }
            };
            let ev = ev.clone();
            match tokio::task::spawn_blocking(move || ev.merge_deletions(&keys)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::info!(volume = vid, from = %url, deletions = n, "ec deletions caught up");
                    applied += n;
                }
                Ok(Err(e)) => {
                    tracing::warn!(volume = vid, error = %e, "merging an ec journal failed")
                }
                Err(e) => tracing::warn!(volume = vid, error = %e, "merging an ec journal failed"),
            }
        }
    }
    applied
}

/// The merge loop: first after one heartbeat period (so the master knows the holders),
/// then every [`SYNC_EVERY`].
pub(crate) async fn run(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let mut wait = Duration::from_secs(state.cfg.heartbeat_secs.max(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if !state.ec.is_empty() {
            sync_once(&state).await;
        }
        wait = SYNC_EVERY;
    }
}
