//! Log setup: `tracing` to stderr, filtered by `RUST_LOG` (default `info`, without
//! s3s's dump of malformed XML bodies, which writes a whole request body, megabytes of
//! it, into one line; the error itself is still logged by `s3s::ops`).

use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,s3s::http::de=off";

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
