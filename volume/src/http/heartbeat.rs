//! The heartbeat loop: tells every master what this server holds, every few seconds and on
//! change. Sending to all masters (not just the leader) means a newly elected leader
//! already knows the whole cluster.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kelp_proto::master_api::Heartbeat;
use tokio::sync::watch;

use super::AppState;

fn build(state: &AppState) -> Heartbeat {
    Heartbeat {
        ip: state.cfg.ip.clone(),
        port: state.cfg.port,
        public_url: state.cfg.public_url(),
        data_center: state.cfg.data_center.clone(),
        rack: state.cfg.rack.clone(),
        max_volume_count: state.store.max_volume_count() as u32,
        max_file_key: state.store.max_file_key(),
        volumes: state.store.volume_infos(),
        ec_shards: state.ec.shard_infos(),
    }
}

pub(crate) async fn run(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    if state.cfg.masters.is_empty() {
        return;
    }
    let mut period = Duration::from_secs(state.cfg.heartbeat_secs.max(1));
    // The masters named on the command line, plus those the masters tell us about.
    let mut targets: BTreeSet<String> = state.cfg.masters.iter().cloned().collect();
    let mut failing_rounds = 0u32;
    loop {
        let s = state.clone();
        let hb = match tokio::task::spawn_blocking(move || build(&s)).await {
            Ok(hb) => hb,
            Err(e) => {
                tracing::error!(error = %e, "building a heartbeat failed");
                return;
            }
        };
        let calls = targets.iter().map(|m| {
            let hb = &hb;
            let state = &state;
            async move { (m.clone(), state.master.heartbeat_to(m, hb).await) }
        });
        let results = futures::future::join_all(calls).await;
        let mut answered = false;
        for (m, r) in results {
            match r {
                Ok(resp) => {
                    answered = true;
                    state
                        .size_limit
                        .store(resp.volume_size_limit, Ordering::Relaxed);
                    targets.extend(resp.masters.into_iter().filter(|x| !x.is_empty()));
                    // Beat at least once per master pulse, or the master counts this
                    // server as gone between beats.
                    if resp.pulse_seconds > 0 {
                        let pulse = Duration::from_secs(resp.pulse_seconds);
                        period = pulse.min(Duration::from_secs(state.cfg.heartbeat_secs.max(1)));
                    }
                }
                Err(e) => tracing::debug!(master = %m, error = %e, "heartbeat not delivered"),
            }
        }
        if answered {
            if failing_rounds > 0 {
                tracing::info!("heartbeats reach the masters again");
            }
            failing_rounds = 0;
        } else {
            failing_rounds += 1;
            if failing_rounds == 1 || failing_rounds.is_multiple_of(20) {
                tracing::warn!(masters = ?targets, "no master answers heartbeats");
            }
        }
        // Retry sooner while no master answers.
        let wait = if answered {
            period
        } else {
            Duration::from_millis(500)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.changed.notified() => {}
            _ = stop.changed() => return,
        }
    }
}
