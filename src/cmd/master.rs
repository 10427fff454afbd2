//! `kelp master`: one master process (Raft-replicated when -peers names others).

use std::path::PathBuf;

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
    #[arg(long, default_value_t = 9333)]
    pub port: u16,
    /// Directory for the Raft log and state.
    #[arg(long, default_value = "./master")]
    pub mdir: PathBuf,
    /// All masters as host:port,host:port,... (this one included); empty or "none" for a single master.
    #[arg(long, default_value = "")]
    pub peers: String,
    /// Volumes at or over this size stop taking writes.
    #[arg(long = "volumeSizeLimitMB", default_value_t = 30720)]
    pub volume_size_limit_mb: u64,
    /// Replication for writes that name none, like "000" or "010".
    #[arg(long = "defaultReplication", default_value = "")]
    pub default_replication: String,
    /// Vacuum volumes whose garbage ratio is over this.
    #[arg(long = "garbageThreshold", default_value_t = 0.3)]
    pub garbage_threshold: f64,
    /// Seconds between automatic vacuum checks.
    #[arg(long = "vacuumIntervalSeconds", default_value_t = 840)]
    pub vacuum_interval_seconds: u64,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    super::not_built("master")
}
