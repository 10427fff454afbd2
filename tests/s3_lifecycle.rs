//! The S3 lifecycle worker of a real `kelp server` survives a crash in the middle of a
//! run: the process aborts (a failpoint) after a checkpoint, and once restarted the
//! run resumes from that checkpoint and expires the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn boto3(endpoint: &str, scenario: &str, extra: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/s3/tests/py/s3_checks.py");
    let out = Command::new("python3")
        .env_remove("AWS_CA_BUNDLE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg(script)
        .arg(scenario)
        .arg(endpoint)
        .args(["ANY", "KEY"])
        .args(extra)
        .output()
        .expect("python3 (with boto3) must be installed");
    assert!(
        out.status.success(),
        "{scenario} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lifecycle_run_resumes_after_a_crash() {
    let mut c = cluster()
        .servers(&[("", 1)])
        .s3(true)
        .server_args(&["-s3.lifecycle.daySeconds=2", "-s3.lifecycle.crashAfter=600"])
        .start();
    let s3 = c.s3_addr().to_string();
    let endpoint = format!("http://{s3}");
    // 1,200 objects, then a rule that makes them all due at once: one run expires
    // them, checkpointing every 500, and the failpoint aborts it at the second.
    boto3(&endpoint, "many", &["1200"]);
    let p = &mut c.servers[0].proc;
    let status = p.wait_exit(Duration::from_secs(120));
    assert!(
        status.is_some(),
        "the failpoint never fired:\n{}",
        p.log_tail(40)
    );
    assert!(
        p.log().contains("lifecycle failpoint"),
        "{}",
        p.log_tail(40)
    );
    p.restart();
    p.wait_http_answers(&s3, "/", Duration::from_secs(60));
    boto3(&endpoint, "many_gone", &[]);
    let log = p.log();
    let crashed = log.find("lifecycle failpoint").unwrap_or(0);
    assert!(
        log[crashed..].contains("resuming the lifecycle run"),
        "the restarted server did not resume the run:\n{}",
        p.log_tail(40)
    );
}
