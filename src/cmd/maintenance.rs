//! The master's maintenance loop: while this master leads, it runs `kelp shell` command
//! lines (`-maintenance.scripts`, such as `ec.encode -collection=logs -fullPercent=95
//! -quietFor=1h`) every `-maintenance.interval`, the way SeaweedFS masters run their
//! maintenance scripts. Followers stay idle, so a failover moves the loop with the lead.

use std::sync::Arc;
use std::time::Duration;

use kelp_master::Master;

use super::shell;

/// Documented default of `-maintenance.interval` (SeaweedFS sleeps 17 minutes too).
pub const DEFAULT_INTERVAL: &str = "17m";

/// What the loop runs and how often.
#[derive(Debug, Clone)]
pub struct Maintenance {
    pub lines: Vec<String>,
    pub interval: Duration,
}

impl Maintenance {
    /// `None` when no script is configured (the default: nothing runs by itself).
    pub fn from_flags(scripts: &str, interval: &str) -> anyhow::Result<Option<Maintenance>> {
        let lines = shell::parse_script(scripts)
            .map_err(|e| anyhow::anyhow!("-maintenance.scripts: {e:#}"))?;
        let secs = shell::parse_duration(interval)
            .map_err(|e| anyhow::anyhow!("-maintenance.interval: {e:#}"))?;
        if lines.is_empty() {
            return Ok(None);
        }
        if secs == 0 {
            anyhow::bail!("-maintenance.interval must be at least 1s");
        }
        Ok(Some(Maintenance {
            lines,
            interval: Duration::from_secs(secs),
        }))
    }

    /// Starts the loop; `me` is this master's host:port, which the commands talk to.
    pub fn spawn(self, master: Arc<Master>, me: String) {
        tracing::info!(
            target: "kelp::maintenance",
            interval_secs = self.interval.as_secs(),
            scripts = ?self.lines,
            "maintenance scripts run by the leader"
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if !master.raft.is_leader() {
                    continue;
                }
                let failed = shell::run_logged(vec![me.clone()], &self.lines).await;
                if failed > 0 {
                    tracing::warn!(
                        target: "kelp::maintenance",
                        failed,
                        "maintenance round finished with failures"
                    );
                }
            }
        });
    }
}
