//! `kelp benchmark`: write then random-read phases over the master and volume HTTP APIs.

/// Flags of `kelp benchmark`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Master to assign file ids from (kelp or SeaweedFS).
    #[arg(long, default_value = "127.0.0.1:9333")]
    pub master: String,
    /// Total number of files to write (and then read).
    #[arg(long = "n", default_value_t = 1024 * 1024)]
    pub n: u64,
    /// Concurrent clients.
    #[arg(long = "c", default_value_t = 16)]
    pub c: usize,
    /// Bytes per file.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Replication of the written files.
    #[arg(long, default_value = "000")]
    pub replication: String,
    /// Collection of the written files.
    #[arg(long, default_value = "benchmark")]
    pub collection: String,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    super::not_built("benchmark")
}
