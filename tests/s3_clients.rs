//! The S3 gateway of a real `kelp server` driven by rclone and restic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

struct S3 {
    root: tempfile::TempDir,
    _server: KelpProcess,
    endpoint: String,
}

fn s3_server() -> S3 {
    let root = scratch();
    let (mp, vp, fp, sp) = (free_port(), free_port(), free_port(), free_port());
    let args: Vec<String> = vec![
        "server".into(),
        format!("-dir={}", root.path().join("data").display()),
        "-ip=127.0.0.1".into(),
        format!("-master.port={mp}"),
        format!("-volume.port={vp}"),
        format!("-filer.port={fp}"),
        format!("-s3.port={sp}"),
        "-filer.maxMB=4".into(),
    ];
    let mut server = KelpProcess::start("server", root.path(), &args);
    let s3 = format!("127.0.0.1:{sp}");
    wait_until("the S3 port", Duration::from_secs(30), || {
        http("GET", &s3, "/", b"").is_ok()
    });
    wait_for_nodes(&format!("127.0.0.1:{mp}"), 1, Duration::from_secs(30));
    server.wait_http_ok(&format!("127.0.0.1:{fp}"), "/", Duration::from_secs(30));
    S3 {
        root,
        _server: server,
        endpoint: format!("http://{s3}"),
    }
}

/// A tree of `n` files of assorted sizes (some empty, some over one chunk).
fn make_tree(dir: &Path, n: usize) {
    for i in 0..n {
        let sub = dir.join(format!("d{}", i % 7)).join(format!("e{}", i % 3));
        std::fs::create_dir_all(&sub).unwrap();
        let len = match i % 50 {
            0 => 0,
            1 => 5 << 20,
            _ => (i * 7919) % 60_000,
        };
        let body: Vec<u8> = (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        std::fs::write(sub.join(format!("file {i} ü%.bin")), body).unwrap();
    }
}

fn same_trees(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trees differ: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (.ci/run installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn rclone(s: &S3) -> Command {
    let mut c = Command::new("rclone");
    c.env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG", s.root.path().join("rclone.conf"))
        .env("RCLONE_CONFIG_KELP_TYPE", "s3")
        .env("RCLONE_CONFIG_KELP_PROVIDER", "Other")
        .env("RCLONE_CONFIG_KELP_ENDPOINT", &s.endpoint)
        .env("RCLONE_CONFIG_KELP_REGION", "us-east-1")
        .env("RCLONE_CONFIG_KELP_FORCE_PATH_STYLE", "true")
        .env("RCLONE_CONFIG_KELP_ACCESS_KEY_ID", "kelpkey")
        .env("RCLONE_CONFIG_KELP_SECRET_ACCESS_KEY", "kelpsecret")
        .arg("--retries=1")
        .arg("--low-level-retries=2");
    c
}

#[test]
fn rclone_copy_sync_check_lsf_delete() {
    let s = s3_server();
    let src: PathBuf = s.root.path().join("src");
    make_tree(&src, 120);
    run(rclone(&s).args(["mkdir", "kelp:rclone-bucket"]));
    run(rclone(&s)
        .arg("copy")
        .arg(&src)
        .arg("kelp:rclone-bucket/tree"));
    run(rclone(&s)
        .arg("check")
        .arg(&src)
        .arg("kelp:rclone-bucket/tree"));
    let out = run(rclone(&s).args(["lsf", "-R", "--files-only", "kelp:rclone-bucket/tree"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 120);

    // Change the source, sync, check again.
    std::fs::remove_file(src.join("d0/e0/file 0 ü%.bin")).unwrap();
    std::fs::write(src.join("d1/e1/new.txt"), b"new file").unwrap();
    std::fs::write(src.join("d2/e2/file 2 ü%.bin"), b"rewritten").unwrap();
    run(rclone(&s)
        .arg("sync")
        .arg(&src)
        .arg("kelp:rclone-bucket/tree"));
    run(rclone(&s)
        .arg("check")
        .arg(&src)
        .arg("kelp:rclone-bucket/tree"));

    let back = s.root.path().join("back");
    run(rclone(&s)
        .arg("copy")
        .arg("kelp:rclone-bucket/tree")
        .arg(&back));
    same_trees(&src, &back);

    run(rclone(&s).args(["delete", "kelp:rclone-bucket/tree/d1"]));
    let out = run(rclone(&s).args(["lsf", "-R", "--files-only", "kelp:rclone-bucket/tree/d1"]));
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
    run(rclone(&s).args(["purge", "kelp:rclone-bucket"]));
}

fn restic(s: &S3) -> Command {
    let mut c = Command::new("restic");
    c.env_remove("AWS_CA_BUNDLE")
        .env(
            "RESTIC_REPOSITORY",
            format!("s3:{}/restic-bucket", s.endpoint),
        )
        .env("RESTIC_PASSWORD", "correct horse battery staple")
        .env("AWS_ACCESS_KEY_ID", "kelpkey")
        .env("AWS_SECRET_ACCESS_KEY", "kelpsecret")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("RESTIC_CACHE_DIR", s.root.path().join("restic-cache"))
        .arg("-q");
    c
}

#[test]
fn restic_backup_check_restore_prune() {
    let s = s3_server();
    let src = s.root.path().join("src");
    make_tree(&src, 300);
    run(restic(&s).arg("init"));
    run(restic(&s).arg("backup").arg(&src));
    run(restic(&s).args(["check", "--read-data"]));
    let target = s.root.path().join("restored");
    run(restic(&s)
        .args(["restore", "latest", "--target"])
        .arg(&target));
    same_trees(&src, &target.join(src.strip_prefix("/").unwrap()));

    // A second backup, then forget the first and prune its data.
    std::fs::write(src.join("d3/e0/added.txt"), b"second snapshot").unwrap();
    run(restic(&s).arg("backup").arg(&src));
    run(restic(&s).args(["forget", "--keep-last", "1", "--prune"]));
    run(restic(&s).args(["check", "--read-data"]));
    let out = run(restic(&s).args(["snapshots", "--json"]));
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
}
