//! The end-to-end tests' harness: `kelp-testkit` (real processes on reserved loopback
//! ports, each with its own dir and log, polling with deadlines, the one HTTP client)
//! bound to the `kelp` binary cargo built for these tests.

#![allow(dead_code)]

pub mod ec;

use std::path::Path;

pub use kelp_testkit::*;

/// The `kelp` binary cargo built for these tests.
pub fn kelp_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kelp")
}

/// A cluster of `kelp` processes: one master and nothing else until told otherwise.
pub fn cluster() -> ClusterBuilder {
    Cluster::builder(kelp_bin())
}

/// Starts `kelp <args>` by hand, logging to `<log_dir>/<name>.log`.
pub fn start_kelp(name: &str, log_dir: &Path, args: &[String]) -> KelpProcess {
    KelpProcess::start(kelp_bin(), name, log_dir, args)
}

/// Runs `kelp <args>` to completion and returns (status code, stdout, stderr).
pub fn run_kelp(args: &[&str]) -> (i32, String, String) {
    run(kelp_bin(), args)
}
