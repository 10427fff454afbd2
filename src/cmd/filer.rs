//! `kelp filer`: the namespace server (HTTP REST, optionally S3).

use std::path::PathBuf;

/// Flags of `kelp filer`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address clients use to reach this filer.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Address to listen on (default: the -ip address).
    #[arg(long = "ip.bind")]
    pub ip_bind: Option<String>,
    /// HTTP port of the REST API.
    #[arg(long, default_value_t = 8888)]
    pub port: u16,
    /// Masters as host:port,...
    #[arg(long, default_value = "127.0.0.1:9333")]
    pub master: String,
    /// Metadata store.
    #[arg(long, default_value = "redb", value_parser = ["redb", "postgres"])]
    pub store: String,
    /// Directory of the embedded store.
    #[arg(long, default_value = "./filer")]
    pub dir: PathBuf,
    /// Serve the S3 API too.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub s3: bool,
    /// S3 port.
    #[arg(long = "s3.port", default_value_t = 8333)]
    pub s3_port: u16,
    /// S3 identities file (SeaweedFS s3.json format). Without one, S3 accepts any key.
    #[arg(long = "s3.config", default_value = "")]
    pub s3_config: String,
    /// Chunk size for uploads, in MiB.
    #[arg(long = "maxMB", default_value_t = 8)]
    pub max_mb: u64,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    super::not_built("filer")
}
