//! The master's maintenance loop: while this master leads, it runs `kelp shell` command
//! lines (`-maintenance.scripts`, such as `ec.encode -collection=logs -fullPercent=95
//! -quietFor=1h`) every `-maintenance.interval`, the way SeaweedFS masters run their
//! maintenance scripts. Followers stay idle, so a failover moves the loop with the lead.

use std::time::Duration;

use crate::error::{Doing, ShellError};
use crate::{parse_duration, parse_script, run_logged};

/// Documented default of `-maintenance.interval` (SeaweedFS sleeps 17 minutes too).
pub const DEFAULT_INTERVAL: &str = "17m";

/// The scripts a master runs when `-maintenance.scripts` is not given: replica repair.
/// A replica lost with its server is re-created once the server has been gone for 15
/// minutes; replicas that differ are reconciled needle by needle.
pub const DEFAULT_SCRIPTS: &str =
    "volume.fix.replication -apply -grace=15m; volume.check.disk -apply";

/// What the loop runs and how often.
#[derive(Debug, Clone)]
pub struct Maintenance {
    pub lines: Vec<String>,
    pub interval: Duration,
}

impl Maintenance {
    /// `None` when no script is configured (the default: nothing runs by itself).
    pub fn from_flags(scripts: &str, interval: &str) -> Result<Option<Maintenance>, ShellError> {
        let lines = parse_script(scripts).doing(|| "-maintenance.scripts".into())?;
        let secs = parse_duration(interval).doing(|| "-maintenance.interval".into())?;
        if lines.is_empty() {
            return Ok(None);
        }
        if secs == 0 {
            return Err(ShellError::BadFlags(
                "-maintenance.interval must be at least 1s".into(),
            ));
        }
        Ok(Some(Maintenance {
            lines,
            interval: Duration::from_secs(secs),
        }))
    }

    /// Starts the loop on the current tokio runtime; `me` is this master's host:port,
    /// which the commands talk to, and `is_leader` says whether this master leads now
    /// (a round runs only then).
    /// `wake` starts a round at once (a volume server came back: its replicas need
    /// reconciling before they are read from).
    pub fn spawn(
        self,
        is_leader: impl Fn() -> bool + Send + Sync + 'static,
        me: String,
        wake: std::sync::Arc<tokio::sync::Notify>,
    ) {
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
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = wake.notified() => {}
                }
                if !is_leader() {
                    continue;
                }
                let started = std::time::Instant::now();
                let started_unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let failed = run_logged(vec![me.clone()], &self.lines).await;
                kelp_proto::runs::record(kelp_proto::runs::Round {
                    started: started_unix,
                    took: started.elapsed(),
                    commands: self.lines.len(),
                    failed,
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_flags() {
        assert!(
            Maintenance::from_flags("", DEFAULT_INTERVAL)
                .unwrap()
                .is_none()
        );
        let m = Maintenance::from_flags("ec.rebuild; ec.balance", DEFAULT_INTERVAL)
            .unwrap()
            .unwrap();
        assert_eq!(m.lines, ["ec.rebuild", "ec.balance"]);
        assert_eq!(m.interval, Duration::from_secs(17 * 60));
        let bad = Maintenance::from_flags("ec.encodee", "1m").unwrap_err();
        assert!(
            bad.chain()
                .to_string()
                .starts_with("-maintenance.scripts: unknown command \"ec.encodee\"")
        );
        let bad = Maintenance::from_flags("ec.rebuild", "soon").unwrap_err();
        assert_eq!(
            bad.chain().to_string(),
            "-maintenance.interval: \"soon\" is not a duration (like 90s, 15m, 1h)"
        );
        assert!(Maintenance::from_flags("ec.rebuild", "0").is_err());
    }
}
