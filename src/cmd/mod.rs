//! One module per `kelp` subcommand: its flags (clap) and its `run`.

pub mod benchmark;
pub mod common;
pub mod filer;
pub mod master;
pub mod server;
pub mod shell;
pub mod volume;

/// The error for a role that this build does not contain yet: say so, exit non-zero.
#[allow(dead_code)]
pub fn not_built(role: &str) -> anyhow::Result<()> {
    anyhow::bail!("the {role} is not built yet in this version of kelp")
}
