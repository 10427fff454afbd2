//! The S3 gateway of a real `kelp server` driven by rclone and restic (also on a
//! versioned bucket), s5cmd, s3cmd with its default configuration (which signs for the
//! region `US`), the AWS SDK for JavaScript v3 (with identities), and the aws cli's
//! server-side encryption options (with `kelp s3.keys`).

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
    s3_server_with_keys_and(&[])
}

/// [`s3_server_with_keys`] with more `kelp server` flags.
fn s3_server_with_keys_and(args: &[&str]) -> (S3, tempfile::TempDir) {
    let keys = scratch();
    let json = keys.path().join("s3.json");
    std::fs::write(
        &json,
        r#"{"identities":[{"name":"clients","credentials":[{"accessKey":"AKCLIENTS","secretKey":"clients/secret"}],"actions":["Admin"]}]}"#,
    )
    .unwrap();
    let config = format!("-s3.config={}", json.display());
    let mut all = vec![config.as_str()];
    all.extend_from_slice(args);
    let c = cluster()
        .servers(&[("", 1)])
        .s3(true)
        .server_args(&all)
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

/// `s3cmd` with its default configuration plus the endpoint and keys.
fn s3cmd(s: &S3) -> Command {
    let cfg = s.root().join("s3cfg");
    if !cfg.exists() {
        let host = s.endpoint.trim_start_matches("http://");
        std::fs::write(
            &cfg,
            format!(
                "[default]\naccess_key = AKCLIENTS\nsecret_key = clients/secret\n\
                 host_base = {host}\nhost_bucket = {host}\nuse_https = False\n"
            ),
        )
        .unwrap();
    }
    let mut c = Command::new("s3cmd");
    c.arg("-c").arg(cfg);
    c
}

#[test]
fn s3cmd_with_its_default_region() {
    let (s, _keys) = s3_server_with_keys();
    let dir = s.root().join("s3cmd");
    std::fs::create_dir_all(dir.join("tree/sub")).unwrap();
    let big: Vec<u8> = (0..12_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    for i in 0..20 {
        std::fs::write(dir.join(format!("tree/sub/f{i}.txt")), format!("{i}\n")).unwrap();
    }
    let p = |name: &str| dir.join(name).display().to_string();
    run(s3cmd(&s).args(["mb", "s3://s3cmd-bucket"]));
    // A multipart put (5 MiB parts), and a plain one.
    run(s3cmd(&s).args([
        "put",
        "--multipart-chunk-size-mb=5",
        &p("big.bin"),
        "s3://s3cmd-bucket/big.bin",
    ]));
    run(s3cmd(&s).args(["put", &p("tree/sub/f1.txt"), "s3://s3cmd-bucket/one.txt"]));
    run(s3cmd(&s).args([
        "get",
        "--force",
        "s3://s3cmd-bucket/big.bin",
        &p("back.bin"),
    ]));
    assert_eq!(std::fs::read(dir.join("back.bin")).unwrap(), big);
    let ls = stdout(&run(s3cmd(&s).args(["ls", "-r", "s3://s3cmd-bucket"])));
    assert!(
        ls.contains("s3://s3cmd-bucket/big.bin") && ls.contains("one.txt"),
        "{ls}"
    );
    let info = stdout(&run(s3cmd(&s).args(["info", "s3://s3cmd-bucket/big.bin"])));
    assert!(info.contains("12000000"), "{info}");
    // Sync up and back down.
    run(s3cmd(&s).args([
        "sync",
        &format!("{}/", p("tree")),
        "s3://s3cmd-bucket/tree/",
    ]));
    run(s3cmd(&s).args([
        "sync",
        "s3://s3cmd-bucket/tree/",
        &format!("{}/", p("down")),
    ]));
    same_trees(&dir.join("tree"), &dir.join("down"));
    let du = stdout(&run(s3cmd(&s).args(["du", "s3://s3cmd-bucket"])));
    assert!(du.contains("22 objects"), "{du}");
    // setacl --acl-public makes an object readable without a signature.
    let (status, _) = curl(&[&format!("{}/s3cmd-bucket/one.txt", s.endpoint)]);
    assert_eq!(status, 403);
    run(s3cmd(&s).args(["setacl", "--acl-public", "s3://s3cmd-bucket/one.txt"]));
    let (status, body) = curl(&[&format!("{}/s3cmd-bucket/one.txt", s.endpoint)]);
    assert_eq!((status, body.as_slice()), (200, &b"1\n"[..]));
    run(s3cmd(&s).args(["del", "-r", "--force", "s3://s3cmd-bucket/"]));
    run(s3cmd(&s).args(["rb", "s3://s3cmd-bucket"]));
}

#[test]
fn a_pinned_region_refuses_others_and_is_the_bucket_location() {
    let (s, _keys) = s3_server_with_keys_and(&["-s3.region=eu-central-1"]);
    // s3cmd signs for `US`: refused, with the reason.
    let out = s3cmd(&s).args(["mb", "s3://pinned"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AuthorizationHeaderMalformed"), "{err}");
    let aws = |region: &str, args: &[&str]| {
        Command::new("aws")
            .args(["--endpoint-url", &s.endpoint, "--region", region])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "AKCLIENTS")
            .env("AWS_SECRET_ACCESS_KEY", "clients/secret")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .unwrap()
    };
    let out = aws(
        "eu-central-1",
        &["s3api", "create-bucket", "--bucket", "pinned"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = aws(
        "eu-central-1",
        &["s3api", "get-bucket-location", "--bucket", "pinned"],
    );
    assert!(stdout(&out).contains("eu-central-1"), "{}", stdout(&out));
    let out = aws("us-west-2", &["s3api", "head-bucket", "--bucket", "pinned"]);
    assert!(!out.status.success());
}

/// `kelp benchmark` signs its S3 requests with SigV4 (over the body's SHA-256 and with
/// UNSIGNED-PAYLOAD) well enough for a gateway that checks signatures, reports the
/// server's CPU per request, and fails loudly under a wrong secret.
#[test]
fn kelp_benchmark_signs_its_s3_requests() {
    let (s, _keys) = s3_server_with_keys();
    let pid = s.c.servers[0].proc.pid().unwrap().to_string();
    let base = [
        "benchmark".to_string(),
        format!("-master={}", s.c.master()),
        format!("-s3={}", s.c.s3_addr()),
        "-s3.accessKey=AKCLIENTS".to_string(),
        "-n=40".to_string(),
        "-c=4".to_string(),
        "-size=5000".to_string(),
        format!("-serverPid={pid}"),
    ];
    for payload in ["signed", "unsigned"] {
        let payload_flag = format!("-s3.payload={payload}");
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.extend(["-s3.secretKey=clients/secret", &payload_flag]);
        let (code, out, err) = run_kelp(&args);
        assert_eq!(code, 0, "{out}\n{err}");
        let failed: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("Failed requests:"))
            .collect();
        assert_eq!(failed.len(), 2, "{out}");
        assert!(
            failed.iter().all(|l| l.ends_with(" 0")),
            "{payload}: {out}\n{err}"
        );
        assert_eq!(out.matches("Server CPU:").count(), 2, "{out}");
    }
    // -readOnly reads back what the runs above wrote, and only reads.
    let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
    args.extend([
        "-s3.secretKey=clients/secret",
        "-s3.payload=signed",
        "-readOnly",
    ]);
    let (code, out, err) = run_kelp(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("s3 put"), "{out}");
    assert!(out.contains("s3 random get"), "{out}");
    assert!(out.contains("Failed requests:      0"), "{out}\n{err}");
    assert!(out.contains("Transfer rate:"), "{out}");
    let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
    args.extend(["-s3.secretKey=wrong", "-s3.payload=signed"]);
    let (code, out, err) = run_kelp(&args);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
}

/// Server-side encryption from the aws cli against `kelp server`: SSE-S3, SSE-KMS with
/// a key made by `kelp s3.keys`, SSE-C (upload, download, a wrong key refused), and a
/// rotation of the key between writes.
#[test]
fn aws_cli_server_side_encryption() {
    let c = cluster()
        .servers(&[("", 1)])
        .s3(true)
        .server_args(&["-s3.allowInsecureSSE"])
        .start();
    let endpoint = format!("http://{}", c.s3_addr());
    let keys = c.servers[0].dir.join("filer").join("s3-keys.json");
    let keys_arg = format!("-file={}", keys.display());
    let (code, out, err) = run_kelp(&["s3.keys", &keys_arg, "-create=backups"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("backups") && out.contains("sse-s3"), "{out}");
    let aws = |args: &[&str]| {
        Command::new("aws")
            .env_remove("AWS_CA_BUNDLE")
            .env("AWS_ACCESS_KEY_ID", "kelpkey")
            .env("AWS_SECRET_ACCESS_KEY", "kelpsecret")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .args(["--endpoint-url", &endpoint])
            .args(args)
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let out = aws(args);
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let root = c.root().to_path_buf();
    let src = root.join("plain.bin");
    let body: Vec<u8> = (0..(9 << 20)).map(|i: u32| (i % 251) as u8).collect();
    std::fs::write(&src, &body).unwrap();
    let ssec_key = root.join("customer.key");
    std::fs::write(&ssec_key, [42u8; 32]).unwrap();
    let ssec_arg = format!("fileb://{}", ssec_key.display());
    let src_s = src.to_str().unwrap();
    ok(&["s3", "mb", "s3://enc"]);
    ok(&["s3", "cp", src_s, "s3://enc/s3.bin", "--sse", "AES256"]);
    ok(&[
        "s3",
        "cp",
        src_s,
        "s3://enc/kms.bin",
        "--sse",
        "aws:kms",
        "--sse-kms-key-id",
        "backups",
    ]);
    ok(&[
        "s3",
        "cp",
        src_s,
        "s3://enc/c.bin",
        "--sse-c",
        "AES256",
        "--sse-c-key",
        &ssec_arg,
    ]);
    let head = ok(&[
        "s3api",
        "head-object",
        "--bucket",
        "enc",
        "--key",
        "kms.bin",
    ]);
    assert!(
        head.contains("aws:kms") && head.contains("backups"),
        "{head}"
    );
    let head = ok(&["s3api", "head-object", "--bucket", "enc", "--key", "s3.bin"]);
    assert!(head.contains("AES256"), "{head}");
    // Rotate the KMS key while the server runs; old and new objects both read.
    let (code, out, err) = run_kelp(&["s3.keys", &keys_arg, "-rotate=backups"]);
    assert_eq!(code, 0, "{out}{err}");
    ok(&[
        "s3",
        "cp",
        src_s,
        "s3://enc/kms2.bin",
        "--sse",
        "aws:kms",
        "--sse-kms-key-id",
        "backups",
    ]);
    for (key, extra) in [
        ("s3.bin", vec![]),
        ("kms.bin", vec![]),
        ("kms2.bin", vec![]),
        (
            "c.bin",
            vec!["--sse-c", "AES256", "--sse-c-key", ssec_arg.as_str()],
        ),
    ] {
        let dst = root.join(format!("back-{key}"));
        let mut args = vec!["s3", "cp", &*format!("s3://enc/{key}")]
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        args.push(dst.to_str().unwrap().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&refs);
        assert_eq!(std::fs::read(&dst).unwrap(), body, "{key}");
    }
    // SSE-C without its key, or with another, is refused.
    let other = root.join("other.key");
    std::fs::write(&other, [7u8; 32]).unwrap();
    let other_arg = format!("fileb://{}", other.display());
    let dst = root.join("never.bin");
    let dst_s = dst.to_str().unwrap();
    assert!(!aws(&["s3", "cp", "s3://enc/c.bin", dst_s]).status.success());
    let out = aws(&[
        "s3",
        "cp",
        "s3://enc/c.bin",
        dst_s,
        "--sse-c",
        "AES256",
        "--sse-c-key",
        &other_arg,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
