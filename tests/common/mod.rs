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

/// Starts `kelp filer` on the cluster's master with `extra` flags; returns it and its
/// address.
pub fn start_filer(c: &Cluster, name: &str, extra: &[String]) -> (KelpProcess, String) {
    let mut ports = reserve_ports(1);
    let (addr, port) = (ports.addr(0), ports.port(0));
    ports.release(port);
    let mut args = vec![
        "filer".to_string(),
        "-ip=127.0.0.1".into(),
        format!("-port={port}"),
        format!("-dir={}", c.root().join(name).display()),
        format!("-master={}", c.master()),
    ];
    args.extend(extra.iter().cloned());
    let mut p = start_kelp(name, c.root(), &args);
    p.wait_http_ok(&addr, "/", READY);
    (p, addr)
}

pub fn listing(filer: &str, dir: &str) -> serde_json::Value {
    let r = http_with(
        "GET",
        filer,
        &format!("{dir}?limit=1000"),
        &[("Accept", "application/json")],
        b"",
    )
    .unwrap_or_else(|e| panic!("listing {dir} on {filer}: {e}"));
    assert_eq!(r.status, 200, "listing {dir}");
    r.json()
}
