//! `kelp master`: one master process (Raft-replicated when -peers names others).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use kelp_master::{Master, MasterConfig};
use kelp_shell::Maintenance;

use super::common;

/// Flags of `kelp master`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address other servers and clients use to reach this master.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Address to listen on (default: the -ip address).
    #[arg(long = "ip.bind")]
    pub ip_bind: Option<String>,
    /// HTTP port.
    #[arg(long, default_value_t = MasterConfig::DEFAULT_PORT)]
    pub port: u16,
    /// Directory for the Raft log and state.
    #[arg(long, default_value = "./master")]
    pub mdir: PathBuf,
    /// All masters as host:port,host:port,... (this one included); empty or "none" for a single master.
    #[arg(long, default_value = "")]
    pub peers: String,
    /// Volumes at or over this size stop taking writes.
    #[arg(long = "volumeSizeLimitMB", default_value_t = MasterConfig::DEFAULT_VOLUME_SIZE_LIMIT_MB)]
    pub volume_size_limit_mb: u64,
    /// Replication for writes that name none, like "000" or "010".
    #[arg(long = "defaultReplication", default_value = "")]
    pub default_replication: String,
    /// Vacuum volumes whose garbage ratio is over this.
    #[arg(long = "garbageThreshold", default_value_t = MasterConfig::DEFAULT_GARBAGE_THRESHOLD)]
    pub garbage_threshold: f64,
    /// Seconds between automatic vacuum rounds; 0 turns them off.
    #[arg(long = "vacuumIntervalSeconds", default_value_t = MasterConfig::DEFAULT_VACUUM_INTERVAL_SECS)]
    pub vacuum_interval_seconds: u64,
    /// Seconds between volume server heartbeats (3 missed ones mean a dead server).
    #[arg(long = "pulseSeconds", default_value_t = MasterConfig::DEFAULT_PULSE_SECS)]
    pub pulse_seconds: u64,
    /// Close a connection after this many seconds without a byte moving either way
    /// (a stalled request head or body, an idle keep-alive connection).
    #[arg(long = "idleTimeout", default_value_t = kelp_proto::server::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout: u64,
    #[command(flatten)]
    pub security: common::SecurityFlags,
    /// `kelp shell` commands the leader runs every -maintenance.interval, separated by
    /// ';' (e.g. "ec.encode -collection=logs -fullPercent=95 -quietFor=1h; ec.rebuild").
    /// The default repairs replicas; empty: nothing runs by itself.
    #[arg(long = "maintenance.scripts", default_value = kelp_shell::maintenance::DEFAULT_SCRIPTS)]
    pub maintenance_scripts: String,
    /// Join a running master group: on first start, wait to be added with
    /// `cluster.raft.add` instead of forming a group with -peers.
    #[arg(long = "raft.join", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_name = "BOOL")]
    pub raft_join: bool,
    /// Time between maintenance rounds (like 17m, 1h, 30s).
    #[arg(long = "maintenance.interval", default_value = kelp_shell::maintenance::DEFAULT_INTERVAL)]
    pub maintenance_interval: String,
}

impl Args {
    pub fn maintenance(&self) -> anyhow::Result<Option<Maintenance>> {
        Ok(Maintenance::from_flags(
            &self.maintenance_scripts,
            &self.maintenance_interval,
        )?)
    }

    pub fn config(&self) -> anyhow::Result<MasterConfig> {
        let default_replication = self
            .default_replication
            .parse()
            .map_err(|e| anyhow::anyhow!("-defaultReplication: {e}"))?;
        if !(0.0..=1.0).contains(&self.garbage_threshold) {
            anyhow::bail!("-garbageThreshold must be between 0 and 1");
        }
        Ok(MasterConfig {
            ip: self.ip.clone(),
            port: self.port,
            mdir: self.mdir.clone(),
            peers: common::peers(&self.peers),
            volume_size_limit_mb: self.volume_size_limit_mb,
            default_replication,
            garbage_threshold: self.garbage_threshold,
            vacuum_interval_secs: self.vacuum_interval_seconds,
            pulse_secs: self.pulse_seconds.max(1),
            limits: kelp_proto::server::Limits {
                idle: std::time::Duration::from_secs(self.idle_timeout.max(1)),
                ..Default::default()
            },
            raft_join: self.raft_join,
        })
    }
}

/// Binds the master's port and starts its Raft member.
pub async fn start(
    cfg: MasterConfig,
    bind_host: &str,
) -> anyhow::Result<(tokio::net::TcpListener, Arc<Master>)> {
    let listener = common::bind("master", bind_host, cfg.port).await?;
    std::fs::create_dir_all(&cfg.mdir)
        .with_context(|| format!("cannot create -mdir {}", cfg.mdir.display()))?;
    let master = kelp_master::start(cfg)
        .await
        .context("cannot start the master's raft member")?;
    Ok((listener, master))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.security
        .install(&args.ip_bind.clone().unwrap_or(args.ip.clone()))?;
    let cfg = args.config()?;
    let maintenance = args.maintenance()?;
    std::fs::create_dir_all(&cfg.mdir)
        .with_context(|| format!("cannot create -mdir {}", cfg.mdir.display()))?;
    let _lock = common::lock_dir(&cfg.mdir)?;
    let rt = common::runtime()?;
    rt.block_on(async {
        let bind = args.ip_bind.clone().unwrap_or_else(|| args.ip.clone());
        let (listener, master) = start(cfg, &bind).await?;
        if let Some(m) = maintenance {
            let leader = master.clone();
            let wake = master.topology.rejoined.clone();
            m.spawn(
                move || leader.raft.is_leader(),
                format!("{}:{}", args.ip, args.port),
                wake,
            );
        }
        println!(
            "master: {}://{}:{}",
            kelp_proto::client::scheme(),
            args.ip,
            args.port
        );
        kelp_master::http::serve(listener, master, common::shutdown_signal())
            .await
            .context("master failed")
    })
}
