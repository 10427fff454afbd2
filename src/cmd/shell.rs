//! `kelp shell`: cluster maintenance commands, one per line from stdin.

/// Flags of `kelp shell`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Masters as host:port,...
    #[arg(long, default_value = "127.0.0.1:9333")]
    pub master: String,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    super::not_built("shell")
}
