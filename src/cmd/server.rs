//! `kelp server`: master, volume server, filer and S3 in one process.

use std::path::PathBuf;

/// Flags of `kelp server`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Data directory (volumes, master state and filer store live under it).
    #[arg(long, default_value = "./data")]
    pub dir: PathBuf,
    /// Address other servers and clients use to reach this one.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Address to listen on (default: the -ip address).
    #[arg(long = "ip.bind")]
    pub ip_bind: Option<String>,
    /// Data center of this server.
    #[arg(long = "dataCenter", default_value = "")]
    pub data_center: String,
    /// Rack of this server.
    #[arg(long, default_value = "")]
    pub rack: String,
    /// Master HTTP port.
    #[arg(long = "master.port", default_value_t = 9333)]
    pub master_port: u16,
    /// All masters as host:port,... (this one included); empty or "none" for a single master.
    #[arg(long = "master.peers", default_value = "")]
    pub master_peers: String,
    /// Master state directory (default: <dir>/master).
    #[arg(long = "master.dir")]
    pub master_dir: Option<PathBuf>,
    /// Volumes at or over this size stop taking writes.
    #[arg(
        long = "volumeSizeLimitMB",
        alias = "master.volumeSizeLimitMB",
        default_value_t = 30720
    )]
    pub volume_size_limit_mb: u64,
    /// Replication for writes that name none, like "000" or "010".
    #[arg(
        long = "defaultReplication",
        alias = "master.defaultReplication",
        default_value = ""
    )]
    pub default_replication: String,
    /// Vacuum volumes whose garbage ratio is over this.
    #[arg(
        long = "garbageThreshold",
        alias = "master.garbageThreshold",
        default_value_t = 0.3
    )]
    pub garbage_threshold: f64,
    /// Volume server HTTP port.
    #[arg(long = "volume.port", default_value_t = 8080)]
    pub volume_port: u16,
    /// Maximum volumes; 0 = from free space.
    #[arg(long = "volume.max", default_value = "8")]
    pub volume_max: String,
    /// Address handed to clients for reads (default: ip:volume.port).
    #[arg(long = "volume.publicUrl", default_value = "")]
    pub volume_public_url: String,
    /// Fsync every volume write before answering.
    #[arg(long = "volume.fsync", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub volume_fsync: bool,
    /// Run the filer.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub filer: bool,
    /// Filer HTTP port.
    #[arg(long = "filer.port", default_value_t = 8888)]
    pub filer_port: u16,
    /// Filer chunk size, in MiB.
    #[arg(long = "filer.maxMB", default_value_t = 8)]
    pub filer_max_mb: u64,
    /// Run the S3 gateway.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub s3: bool,
    /// S3 port.
    #[arg(long = "s3.port", default_value_t = 8333)]
    pub s3_port: u16,
    /// S3 identities file (SeaweedFS s3.json format). Without one, S3 accepts any key.
    #[arg(long = "s3.config", default_value = "")]
    pub s3_config: String,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    super::not_built("all-in-one server")
}
