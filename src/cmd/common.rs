//! What every server subcommand shares: the runtime, binding ports, shutdown signals.

use anyhow::Context;

/// A multi-threaded tokio runtime.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Binds `host:port`, failing with a sentence that names the address.
pub async fn bind(what: &str, host: &str, port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    let addr = format!("{host}:{port}");
    tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => "the port is already in use".to_string(),
            std::io::ErrorKind::AddrNotAvailable => "this machine has no such address".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        anyhow::anyhow!("cannot listen on {addr} for the {what}: {why}")
    })
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}

/// Splits a comma-separated flag value, dropping empty items.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a peers list: empty or `none` means no peers.
pub fn peers(s: &str) -> Vec<String> {
    if s.trim() == "none" {
        Vec::new()
    } else {
        split_list(s)
    }
}

/// Takes an exclusive lock on `<dir>/kelp.lock`, so two kelp processes never share a
/// data directory. The lock lasts as long as the returned file is open.
pub fn lock_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("kelp.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| {
            format!(
                "cannot write in {}: is the directory writable?",
                dir.display()
            )
        })?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            use std::io::Write;
            let mut f = &file;
            let _ = f.write_all(format!("{}\n", std::process::id()).as_bytes());
            Ok(file)
        }
        Err(rustix::io::Errno::WOULDBLOCK) => anyhow::bail!(
            "{} is already in use by another kelp process (lock file {})",
            dir.display(),
            path.display()
        ),
        Err(e) => anyhow::bail!("cannot lock {}: {e}", path.display()),
    }
}

/// `-security` and `-insecure`, shared by every server command.
#[derive(Debug, Clone, clap::Args)]
pub struct SecurityFlags {
    /// The security file (JWT keys, TLS). Default: the first of ./security.toml,
    /// $HOME/.kelp/security.toml and /etc/kelp/security.toml that exists; none means
    /// no checks, and then only loopback addresses are served. `kelp scaffold
    /// -config=security` prints a template.
    #[arg(long = "security", value_name = "FILE")]
    pub security: Option<std::path::PathBuf>,
    /// Serve on a non-loopback address without a security file: anyone who can reach
    /// the ports can read, overwrite and delete data.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub insecure: bool,
}

impl SecurityFlags {
    /// Loads the security file, refuses an unsafe bind address (`bind`: what the
    /// servers listen on), and makes the setup this process's.
    pub fn install(&self, bind: &str) -> anyhow::Result<()> {
        let s = load_security(self.security.as_deref())?;
        kelp_proto::security::check_bind(bind, &s, self.insecure).map_err(anyhow::Error::msg)?;
        if s.enabled() {
            let file = s.path.as_deref().map(|p| p.display().to_string());
            tracing::info!(?file, tls = s.https.is_some(), "security setup in force");
        }
        kelp_proto::security::install(s).map_err(anyhow::Error::msg)
    }
}

/// Loads the security file for a client command (shell, benchmark) and installs it.
pub fn install_client_security(flag: Option<&std::path::Path>) -> anyhow::Result<()> {
    let s = load_security(flag)?;
    kelp_proto::security::install(s).map_err(anyhow::Error::msg)
}

fn load_security(flag: Option<&std::path::Path>) -> anyhow::Result<kelp_proto::security::Security> {
    kelp_proto::security::Security::load(flag).map_err(|e| anyhow::anyhow!("security file: {e}"))
}
