//! Test support for kelp's tests, shared by the root package's end-to-end tests and the
//! master and S3 crates' tests: polling with a deadline ([`wait_until`],
//! [`wait_until_async`]), loopback ports held until a test's servers start
//! ([`reserve_ports`]), one small HTTP client ([`http`], [`http_with`], [`curl`]), a
//! process handle that kills its process on drop ([`KelpProcess`]) and a cluster builder
//! ([`Cluster::builder`]) that starts masters, volume servers, a filer and S3 as real
//! processes, each with its own directory and log file; and a PostgreSQL server of a
//! test's own ([`PgServer`]); and hosts with addresses of their own in network
//! namespaces, for partition tests ([`NetLab`]).
//!
//! Rules it keeps for every test: servers listen on 127.0.0.1 only, on ports the OS
//! picked (a [`NetLab`] host's servers: on the address the lab made in its namespace); readiness is polled with a deadline, never slept for; every process started
//! is stopped through its own handle.

// Test support, not product code: a harness that cannot bind, spawn or parse must stop
// the test at once with the reason, so `expect`/`unwrap` panics are what we want here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod cluster;
mod http;
mod netns;
mod ports;
mod postgres;
mod process;
mod wait;

pub use cluster::{
    Cluster, ClusterBuilder, Node, ServerNode, node_count, wait_for_leader, wait_for_nodes,
};
pub use http::{HttpReply, admin_get, curl, get_json, http, http_with};
pub use netns::NetLab;
pub use ports::{PortReservation, reserve_ports};
pub use postgres::PgServer;
pub use process::{KelpProcess, run};
pub use wait::{poll_until, wait_until, wait_until_async};

/// How long the helpers wait for a server to come up.
pub const READY: std::time::Duration = std::time::Duration::from_secs(60);

/// A scratch directory for one test, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kelp-test-")
        .tempdir()
        .expect("temp dir")
}
