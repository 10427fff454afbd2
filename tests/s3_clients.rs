//! The S3 gateway of a real `kelp server` driven by rclone and restic (also on a
//! versioned bucket), s5cmd and the AWS SDK for JavaScript v3 (with identities).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

struct S3 {
    c: Cluster,
    endpoint: String,
}

impl S3 {
    /// The test's directory, with room for its own files.
    fn root(&self) -> &Path {
        self.c.root()
    }
}

/// A `kelp server` with its S3 gateway (in open mode) and 4 MiB filer chunks.
fn s3_server() -> S3 {
    let c = cluster()
        .servers(&[("", 1)])
        .s3(true)
        .server_args(&["-filer.maxMB=4"])
        .start();
    let endpoint = format!("http://{}", c.s3_addr());
    S3 { c, endpoint }
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
        .env("RCLONE_CONFIG", s.root().join("rclone.conf"))
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
    let src: PathBuf = s.root().join("src");
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

    let back = s.root().join("back");
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
        .env("RESTIC_CACHE_DIR", s.root().join("restic-cache"))
        .arg("-q");
    c
}

#[test]
fn restic_backup_check_restore_prune() {
    let s = s3_server();
    let src = s.root().join("src");
    make_tree(&src, 300);
    run(restic(&s).arg("init"));
    run(restic(&s).arg("backup").arg(&src));
    run(restic(&s).args(["check", "--read-data"]));
    let target = s.root().join("restored");
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

/// restic on a bucket with versioning enabled (as people set it up for ransomware
/// protection): backup, prune, check and restore work; pruned files leave delete markers.
#[test]
fn restic_on_a_versioned_bucket() {
    let s = s3_server();
    let aws = |args: &[&str]| {
        run(Command::new("aws")
            .env_remove("AWS_CA_BUNDLE")
            .env("AWS_ACCESS_KEY_ID", "kelpkey")
            .env("AWS_SECRET_ACCESS_KEY", "kelpsecret")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["--endpoint-url", &s.endpoint])
            .args(args))
    };
    aws(&["s3api", "create-bucket", "--bucket", "restic-bucket"]);
    aws(&[
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        "restic-bucket",
        "--versioning-configuration",
        "Status=Enabled",
    ]);
    let src = s.root().join("src");
    make_tree(&src, 120);
    run(restic(&s).arg("init"));
    run(restic(&s).arg("backup").arg(&src));
    std::fs::write(src.join("d2/e1/added.txt"), b"second snapshot").unwrap();
    run(restic(&s).arg("backup").arg(&src));
    run(restic(&s).args(["forget", "--keep-last", "1", "--prune"]));
    run(restic(&s).args(["check", "--read-data"]));
    let target = s.root().join("restored");
    run(restic(&s)
        .args(["restore", "latest", "--target"])
        .arg(&target));
    same_trees(&src, &target.join(src.strip_prefix("/").unwrap()));
    // What restic deleted is still there as older versions behind delete markers.
    let out = aws(&["s3api", "list-object-versions", "--bucket", "restic-bucket"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let markers = v["DeleteMarkers"].as_array().map_or(0, Vec::len);
    assert!(markers > 0, "restic's deletes left no delete markers: {v}");
}

/// A `kelp server` whose S3 gateway requires signatures: one admin identity.
fn s3_server_with_keys() -> (S3, tempfile::TempDir) {
    let keys = scratch();
    let json = keys.path().join("s3.json");
    std::fs::write(
        &json,
        r#"{"identities":[{"name":"clients","credentials":[{"accessKey":"AKCLIENTS","secretKey":"clients/secret"}],"actions":["Admin"]}]}"#,
    )
    .unwrap();
    let c = cluster()
        .servers(&[("", 1)])
        .s3(true)
        .server_args(&[&format!("-s3.config={}", json.display())])
        .start();
    let endpoint = format!("http://{}", c.s3_addr());
    (S3 { c, endpoint }, keys)
}

fn s5cmd(s: &S3) -> Command {
    let mut c = Command::new("s5cmd");
    c.args(["--endpoint-url", &s.endpoint])
        .env("AWS_ACCESS_KEY_ID", "AKCLIENTS")
        .env("AWS_SECRET_ACCESS_KEY", "clients/secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    c
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn s5cmd_wildcards_parallel_upload_ls_du_rm_sync() {
    let (s, _keys) = s3_server_with_keys();
    let src = s.root().join("s5-src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..1000 {
        let dir = if i % 10 == 0 {
            src.join("sub")
        } else {
            src.clone()
        };
        std::fs::write(
            dir.join(format!("f{i:04}.txt")),
            format!("small file {i}\n"),
        )
        .unwrap();
    }
    run(s5cmd(&s).args(["mb", "s3://s5-bucket"]));
    // 1,000 files in parallel (s5cmd's workers), with a wildcard.
    run(s5cmd(&s)
        .arg("cp")
        .arg(format!("{}/*", src.display()))
        .arg("s3://s5-bucket/in/"));
    let ls = stdout(&run(s5cmd(&s).args(["ls", "s3://s5-bucket/in/*"])));
    assert_eq!(ls.lines().count(), 1000, "{ls}");
    let du = stdout(&run(s5cmd(&s).args(["du", "s3://s5-bucket/in/*"])));
    assert!(du.contains("in 1000 objects"), "{du}");
    // Back down with a wildcard, and the trees match.
    let back = s.root().join("s5-back");
    run(s5cmd(&s)
        .arg("cp")
        .arg("s3://s5-bucket/in/*")
        .arg(format!("{}/", back.display())));
    same_trees(&src, &back);
    // Remove by wildcard.
    run(s5cmd(&s).args(["rm", "s3://s5-bucket/in/sub/*"]));
    let ls = stdout(&run(s5cmd(&s).args(["ls", "s3://s5-bucket/in/*"])));
    assert_eq!(ls.lines().count(), 900, "{ls}");
    // Sync both ways: up (only what is missing), then down into an empty tree.
    run(s5cmd(&s)
        .arg("sync")
        .arg(format!("{}/", src.display()))
        .arg("s3://s5-bucket/in/"));
    let ls = stdout(&run(s5cmd(&s).args(["ls", "s3://s5-bucket/in/*"])));
    assert_eq!(ls.lines().count(), 1000, "{ls}");
    let down = s.root().join("s5-down");
    run(s5cmd(&s)
        .arg("sync")
        .arg("s3://s5-bucket/in/*")
        .arg(format!("{}/", down.display())));
    same_trees(&src, &down);
}

#[test]
fn aws_sdk_for_javascript_with_its_defaults() {
    let (s, _keys) = s3_server_with_keys();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("s3/tests/js");
    assert!(
        dir.join("node_modules/@aws-sdk/client-s3").is_dir(),
        "run `npm ci --prefix s3/tests/js` first (.ci/run does)"
    );
    let out = run(Command::new("node")
        .current_dir(&dir)
        .arg("sdk_checks.mjs")
        .args([s.endpoint.as_str(), "AKCLIENTS", "clients/secret"]));
    assert!(stdout(&out).contains("js sdk: ok"), "{}", stdout(&out));
}
