//! `kelp shell`: reads cluster maintenance commands from stdin, one per line, and runs
//! them with the `kelp-shell` library; the exit status is non-zero when any failed.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use kelp_shell::Shell;

/// Flags of `kelp shell`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Masters as host:port,...
    #[arg(long, default_value = "127.0.0.1:9333")]
    pub master: String,
    /// The cluster's security file (admin calls need its credential).
    #[arg(long = "security", value_name = "FILE")]
    pub security: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::common::install_client_security(args.security.as_deref())?;
    let rt = super::common::runtime()?;
    let owner = format!("kelp shell (pid {})", std::process::id());
    let shell = Shell::new(super::common::split_list(&args.master), owner);
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut failed = 0usize;
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("> ");
            let _ = std::io::stdout().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin")?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if matches!(line, "exit" | "quit") {
            break;
        }
        if let Err(e) = rt.block_on(shell.execute(line)) {
            failed += 1;
            eprintln!("error: {line}: {}", e.chain());
        }
    }
    rt.block_on(shell.unlock());
    if failed > 0 {
        bail!("{failed} command(s) failed");
    }
    Ok(())
}
