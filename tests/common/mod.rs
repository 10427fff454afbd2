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

/// Starts `kelp <role>` as `name` on a free port with its own dir under the cluster's
/// root, pointed at the cluster's master by `-<master_flag>`, with `extra` flags; waits
/// until `ready` answers 200. Returns it and its address.
fn start_role(
    c: &Cluster,
    role: &str,
    name: &str,
    master_flag: &str,
    ready: &str,
    extra: &[String],
) -> (KelpProcess, String) {
    let mut ports = reserve_ports(1);
    let (addr, port) = (ports.addr(0), ports.port(0));
    ports.release(port);
    let mut args = vec![
        role.to_string(),
        "-ip=127.0.0.1".into(),
        format!("-port={port}"),
        format!("-dir={}", c.root().join(name).display()),
        format!("-{master_flag}={}", c.master()),
    ];
    args.extend(extra.iter().cloned());
    let mut p = start_kelp(name, c.root(), &args);
    p.wait_http_ok(&addr, ready, READY);
    (p, addr)
}

/// Starts `kelp filer` on the cluster's master with `extra` flags; returns it and its
/// address.
pub fn start_filer(c: &Cluster, name: &str, extra: &[String]) -> (KelpProcess, String) {
    start_role(c, "filer", name, "master", "/", extra)
}

/// Starts one more `kelp volume` for the cluster's master after the cluster started,
/// with `extra` flags (`-rack=r1`, `-max=20`); returns it and its address.
pub fn start_volume(c: &Cluster, name: &str, extra: &[String]) -> (KelpProcess, String) {
    start_role(c, "volume", name, "mserver", "/status", extra)
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
