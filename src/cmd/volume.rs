//! `kelp volume`: one volume server storing needles under -dir.

/// Flags of `kelp volume`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address the master and clients use to reach this server.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Address to listen on (default: the -ip address).
    #[arg(long = "ip.bind")]
    pub ip_bind: Option<String>,
    /// HTTP port.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address handed to clients for reads (default: ip:port).
    #[arg(long = "publicUrl", default_value = "")]
    pub public_url: String,
    /// Data directories, comma separated.
    #[arg(long, default_value = "./data")]
    pub dir: String,
    /// Maximum volumes per directory, comma separated like -dir; 0 = from free space.
    #[arg(long, default_value = "8")]
    pub max: String,
    /// Masters as host:port,... (any of them; the leader is found).
    #[arg(long, alias = "master", default_value = "127.0.0.1:9333")]
    pub mserver: String,
    /// Data center of this server.
    #[arg(long = "dataCenter", default_value = "")]
    pub data_center: String,
    /// Rack of this server.
    #[arg(long, default_value = "")]
    pub rack: String,
    /// Largest accepted upload, in MiB.
    #[arg(long = "fileSizeLimitMB", default_value_t = 256)]
    pub file_size_limit_mb: u64,
    /// Fsync every write before answering (otherwise only writes with ?fsync=true).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub fsync: bool,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    super::not_built("volume server")
}
