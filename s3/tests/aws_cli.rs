//! The S3 gateway driven by the real `aws` cli: buckets, uploads (single PUT, multipart,
//! streamed from stdin), downloads, listings, sync, server-side copies, tagging,
//! presigned URLs, recursive delete; signed with an s3.json identity, and open mode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use kelp_testkit::curl;

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// `s3api head-object` of a key in `cli-bucket`, asking for its checksum.
fn head_object(s: &Stack, key: &str) -> serde_json::Value {
    json(&s.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "cli-bucket",
        "--key",
        key,
        "--checksum-mode",
        "ENABLED",
    ]))
}

fn crc32_b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(s3s::crypto::Crc32::checksum_u32(b).to_be_bytes())
}

fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn aws_cli_workflow_signed() {
    let s = Stack::with_auth();
    let up = s.scratch("up");
    let down = s.scratch("down");

    // Buckets.
    s.aws(&["s3", "mb", "s3://cli-bucket"]);
    s.aws(&["s3", "mb", "s3://other-bucket"]);
    let again = s.aws_as(AK, SK, &["s3", "mb", "s3://cli-bucket"]);
    assert!(!again.status.success());
    assert!(
        show(&again).contains("BucketAlreadyOwnedByYou"),
        "{}",
        show(&again)
    );
    let bad = s.aws_as(AK, SK, &["s3api", "create-bucket", "--bucket", "Bad_Name"]);
    assert!(!bad.status.success(), "{}", show(&bad));
    let ls = s.aws(&["s3", "ls"]);
    assert!(
        ls.contains("cli-bucket") && ls.contains("other-bucket"),
        "{ls}"
    );

    // 1 byte, 10 MiB (single PUT above the 8 MiB chunk size), 21 MiB (multipart 8+8+5),
    // 200 MiB (25 parts). The aws cli sends a CRC32 with every PUT and part, and checks
    // the one a whole-object GET returns.
    let files = [
        ("one.bin", 1usize),
        ("ten.bin", 10 << 20),
        ("big.bin", 21 << 20),
        ("large.bin", 200 << 20),
    ];
    for (i, (name, n)) in files.iter().enumerate() {
        std::fs::write(up.join(name), data(*n, i as u64 + 1)).unwrap();
        s.aws(&[
            "s3",
            "cp",
            up.join(name).to_str().unwrap(),
            &format!("s3://cli-bucket/files/{name}"),
        ]);
    }
    let head = head_object(&s, "files/big.bin");
    assert_eq!(head["ContentLength"], 21 << 20);
    assert!(head["ETag"].as_str().unwrap().ends_with("-3\""), "{head}");
    // The part CRC32s combine into a COMPOSITE checksum (crc32 of the part crc32s).
    let big = data(21 << 20, 3);
    let mut raw = Vec::new();
    for part in big.chunks(8 << 20) {
        raw.extend(s3s::crypto::Crc32::checksum_u32(part).to_be_bytes());
    }
    assert_eq!(
        head["ChecksumCRC32"],
        format!("{}-3", crc32_b64(&raw)),
        "{head}"
    );
    assert_eq!(head["ChecksumType"], "COMPOSITE", "{head}");
    let head = head_object(&s, "files/one.bin");
    assert_eq!(head["ChecksumCRC32"], crc32_b64(&data(1, 1)), "{head}");
    assert_eq!(head["ChecksumType"], "FULL_OBJECT", "{head}");
    // aws s3 cp uploads 10 MiB in two parts (8 MiB threshold); s3api put-object in one PUT.
    let head = head_object(&s, "files/ten.bin");
    let ten_etag = head["ETag"].as_str().unwrap().to_string();
    assert!(ten_etag.ends_with("-2\""), "{head}");
    let ten_path = up.join("ten.bin");
    let put = json(&s.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        "cli-bucket",
        "--key",
        "files/ten-put.bin",
        "--body",
        ten_path.to_str().unwrap(),
    ]));
    let md5_ten = format!("\"{}\"", md5_hex(&data(10 << 20, 2)));
    assert_eq!(put["ETag"].as_str().unwrap(), md5_ten);
    let head = head_object(&s, "files/ten-put.bin");
    assert_eq!(head["ETag"].as_str().unwrap(), md5_ten);
    assert_eq!(head["ContentLength"], 10 << 20);
    for (i, (name, n)) in files.iter().enumerate() {
        let dst = down.join(name);
        s.aws(&[
            "s3",
            "cp",
            &format!("s3://cli-bucket/files/{name}"),
            dst.to_str().unwrap(),
        ]);
        let got = std::fs::read(&dst).unwrap();
        assert_eq!(got.len(), *n, "{name}");
        assert!(got == data(*n, i as u64 + 1), "{name} came back different");
    }

    // A 20 MiB stream from stdin: multipart with --expected-size.
    let stream = data(20 << 20, 9);
    let mut child = Command::new("aws")
        .env_remove("AWS_CA_BUNDLE")
        .env("AWS_ACCESS_KEY_ID", AK)
        .env("AWS_SECRET_ACCESS_KEY", SK)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", s.dir.path().join("aws-config-0"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            s.dir.path().join("aws-config-0"),
        )
        .args(["--endpoint-url", &s.endpoint, "--cli-read-timeout", "15"])
        .args([
            "s3",
            "cp",
            "-",
            "s3://cli-bucket/stream.bin",
            "--expected-size",
        ])
        .arg((20u64 << 20).to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aws cli must be installed");
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    s.aws(&[
        "s3",
        "cp",
        "s3://cli-bucket/stream.bin",
        down.join("stream.bin").to_str().unwrap(),
    ]);
    assert!(std::fs::read(down.join("stream.bin")).unwrap() == stream);

    // Listings: recursive and by delimiter.
    let all = s.aws(&["s3", "ls", "--recursive", "s3://cli-bucket"]);
    for k in [
        "files/one.bin",
        "files/ten.bin",
        "files/big.bin",
        "stream.bin",
    ] {
        assert!(all.contains(k), "{k} missing from\n{all}");
    }
    assert!(!all.contains(".uploads"), "{all}");
    let top = s.aws(&["s3", "ls", "s3://cli-bucket/"]);
    assert!(
        top.contains("PRE files/") && top.contains("stream.bin"),
        "{top}"
    );
    assert!(!top.contains("one.bin"), "{top}");

    // Sync a tree with awkward names up and back down.
    let src = s.scratch("sync-src");
    let names = [
        "a.txt",
        "sub dir/b c.txt",
        "ünï/çødé %41.txt",
        "sub dir/deeper/x+y=z.txt",
        "empty.txt",
    ];
    for (i, n) in names.iter().enumerate() {
        let p = src.join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let len = if *n == "empty.txt" { 0 } else { 100 + i * 37 };
        std::fs::write(&p, data(len, 100 + i as u64)).unwrap();
        // LastModified has one-second resolution: date the local files clearly earlier,
        // or a re-sync within the same second would see them as newer.
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(past)
            .unwrap();
    }
    s.aws(&["s3", "sync", src.to_str().unwrap(), "s3://cli-bucket/sync/"]);
    let back = s.scratch("sync-back");
    s.aws(&[
        "s3",
        "sync",
        "s3://cli-bucket/sync/",
        back.to_str().unwrap(),
    ]);
    assert_eq!(tree(&src), tree(&back));
    // A second sync uploads nothing.
    let again = s.aws(&["s3", "sync", src.to_str().unwrap(), "s3://cli-bucket/sync/"]);
    assert!(again.trim().is_empty(), "{again}");

    // Server-side copies, within and across buckets, with COPY and REPLACE metadata.
    s.aws(&[
        "s3api",
        "copy-object",
        "--bucket",
        "cli-bucket",
        "--key",
        "copy/ten.bin",
        "--copy-source",
        "cli-bucket/files/ten.bin",
    ]);
    let out = s.aws(&[
        "s3api",
        "copy-object",
        "--bucket",
        "other-bucket",
        "--key",
        "x/big.bin",
        "--copy-source",
        "cli-bucket/files/big.bin",
        "--metadata-directive",
        "REPLACE",
        "--metadata",
        "color=blue",
        "--content-type",
        "text/x-kelp",
    ]);
    assert!(out.contains("-3"), "{out}");
    let h = json(&s.aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "other-bucket",
        "--key",
        "x/big.bin",
    ]));
    assert_eq!(h["ContentType"], "text/x-kelp");
    assert_eq!(h["Metadata"]["color"], "blue");
    assert_eq!(h["ContentLength"], 21 << 20);
    s.aws(&[
        "s3",
        "cp",
        "s3://other-bucket/x/big.bin",
        down.join("copied.bin").to_str().unwrap(),
    ]);
    assert!(std::fs::read(down.join("copied.bin")).unwrap() == data(21 << 20, 3));
    let h = head_object(&s, "copy/ten.bin");
    assert_eq!(h["ETag"].as_str().unwrap(), ten_etag);

    // Tagging.
    s.aws(&[
        "s3api",
        "put-object-tagging",
        "--bucket",
        "cli-bucket",
        "--key",
        "files/one.bin",
        "--tagging",
        "TagSet=[{Key=env,Value=test},{Key=team,Value=kelp}]",
    ]);
    let t = json(&s.aws(&[
        "s3api",
        "get-object-tagging",
        "--bucket",
        "cli-bucket",
        "--key",
        "files/one.bin",
    ]));
    let set = t["TagSet"].as_array().unwrap();
    assert_eq!(set.len(), 2, "{t}");
    assert_eq!(set[0]["Key"], "env");
    s.aws(&[
        "s3api",
        "delete-object-tagging",
        "--bucket",
        "cli-bucket",
        "--key",
        "files/one.bin",
    ]);
    let t = json(&s.aws(&[
        "s3api",
        "get-object-tagging",
        "--bucket",
        "cli-bucket",
        "--key",
        "files/one.bin",
    ]));
    assert_eq!(t["TagSet"].as_array().unwrap().len(), 0);

    // Presigned URLs (SigV2, the cli's default, and SigV4): fetched with curl; tampered
    // ones are refused.
    for (config, sig_param) in [
        ("", "Signature="),
        (
            "[default]\ns3 =\n    signature_version = s3v4\n",
            "X-Amz-Signature=",
        ),
    ] {
        let out = s.aws_configured(
            AK,
            SK,
            config,
            &[
                "s3",
                "presign",
                "s3://cli-bucket/files/one.bin",
                "--expires-in",
                "300",
            ],
        );
        assert!(out.status.success(), "{}", show(&out));
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(url.contains(sig_param), "{url}");
        let (st, body) = curl(&[&url]);
        assert_eq!(st, 200, "{url}: {}", String::from_utf8_lossy(&body));
        assert_eq!(body, data(1, 1));
        let tampered_key = url.replace("files/one.bin", "files/ten.bin");
        let (st, body) = curl(&[&tampered_key]);
        assert_eq!(st, 403, "{}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));
        // Change one signature character for another valid one ('0' and '1' are both
        // hex and base64).
        let mut at = url.find(sig_param).unwrap() + sig_param.len();
        let mut tampered_sig = url.clone().into_bytes();
        while !tampered_sig[at].is_ascii_alphanumeric() {
            at += 1;
        }
        tampered_sig[at] = if tampered_sig[at] == b'0' { b'1' } else { b'0' };
        let (st, body) = curl(&[&String::from_utf8(tampered_sig).unwrap()]);
        assert_eq!(st, 403, "{}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));
    }
    // Unsigned requests are refused.
    let (st, body) = curl(&[&format!("{}/cli-bucket/files/one.bin", s.endpoint)]);
    assert_eq!(st, 403, "{}", String::from_utf8_lossy(&body));

    // A bucket with objects cannot be removed; after rm --recursive it can.
    let rb = s.aws_as(AK, SK, &["s3", "rb", "s3://cli-bucket"]);
    assert!(!rb.status.success());
    assert!(show(&rb).contains("BucketNotEmpty"), "{}", show(&rb));
    s.aws(&["s3", "rm", "--recursive", "s3://cli-bucket"]);
    let left = s.aws(&["s3", "ls", "--recursive", "s3://cli-bucket"]);
    assert!(left.trim().is_empty(), "{left}");
    // Deleting objects pruned their now-empty directories (the multipart area stays)
    // and completed uploads left no parts behind.
    let dirs = s
        .block_on(s.filer.list("/buckets/cli-bucket", &Default::default()))
        .unwrap();
    let names: Vec<&str> = dirs.iter().map(|e| e.name()).collect();
    assert_eq!(names, [".uploads"]);
    let uploads = s
        .block_on(
            s.filer
                .list("/buckets/cli-bucket/.uploads", &Default::default()),
        )
        .unwrap();
    assert!(uploads.is_empty(), "{uploads:?}");
    s.aws(&["s3", "rb", "s3://cli-bucket"]);
    s.aws(&["s3", "rb", "--force", "s3://other-bucket"]);
    let ls = s.aws(&["s3", "ls"]);
    assert!(
        !ls.contains("cli-bucket") && !ls.contains("other-bucket"),
        "{ls}"
    );
}

#[test]
fn aws_cli_open_mode_accepts_any_key() {
    let s = Stack::open();
    let f = s.scratch("f").join("hello.txt");
    std::fs::write(&f, b"hello kelp").unwrap();
    let run = |ak: &str, args: &[&str]| {
        let out = s.aws_as(ak, "whatever-secret", args);
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run("ANYKEY1", &["s3", "mb", "s3://open-bucket"]);
    run(
        "ANYKEY2",
        &[
            "s3",
            "cp",
            f.to_str().unwrap(),
            "s3://open-bucket/d/hello.txt",
        ],
    );
    let ls = run("ANYKEY3", &["s3", "ls", "--recursive", "s3://open-bucket"]);
    assert!(ls.contains("d/hello.txt"), "{ls}");
    let back = s.scratch("f").join("back.txt");
    run(
        "OTHER",
        &[
            "s3",
            "cp",
            "s3://open-bucket/d/hello.txt",
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&back).unwrap(), b"hello kelp");
    // Unsigned requests work too, presigned URLs with any signature as well.
    let (st, body) = curl(&[&format!("{}/open-bucket/d/hello.txt", s.endpoint)]);
    assert_eq!((st, body.as_slice()), (200, &b"hello kelp"[..]));
    let (st, _) = curl(&[&format!(
        "{}/open-bucket/d/hello.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00",
        s.endpoint
    )]);
    assert_eq!(st, 200);
}

/// `aws s3api` against a bucket with object lock: versioning calls, versions by id,
/// retention and legal hold, and the refusals a locked version gets.
#[test]
fn aws_cli_versioning_and_retention() {
    let s = Stack::with_auth();
    let b = "cli-locked";
    s.aws(&[
        "s3api",
        "create-bucket",
        "--bucket",
        b,
        "--object-lock-enabled-for-bucket",
    ]);
    let v = json(&s.aws(&["s3api", "get-bucket-versioning", "--bucket", b]));
    assert_eq!(v["Status"], "Enabled", "{v}");
    let f = s.scratch("v").join("one.txt");
    std::fs::write(&f, b"first").unwrap();
    let put = |body: &Path| {
        json(&s.aws(&[
            "s3api",
            "put-object",
            "--bucket",
            b,
            "--key",
            "doc",
            "--body",
            body.to_str().unwrap(),
        ]))["VersionId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let v1 = put(&f);
    std::fs::write(&f, b"second").unwrap();
    let v2 = put(&f);
    assert_ne!(v1, v2);
    let versions = json(&s.aws(&["s3api", "list-object-versions", "--bucket", b]));
    let ids: Vec<&str> = versions["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VersionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [v2.as_str(), v1.as_str()], "{versions}");
    let out = s.scratch("v").join("got.txt");
    s.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        b,
        "--key",
        "doc",
        "--version-id",
        &v1,
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), b"first");

    // COMPLIANCE retention on v1: it cannot be deleted, even with the bypass.
    let until = "2099-01-01T00:00:00Z";
    s.aws(&[
        "s3api",
        "put-object-retention",
        "--bucket",
        b,
        "--key",
        "doc",
        "--version-id",
        &v1,
        "--retention",
        &format!("Mode=COMPLIANCE,RetainUntilDate={until}"),
    ]);
    let r = json(&s.aws(&[
        "s3api",
        "get-object-retention",
        "--bucket",
        b,
        "--key",
        "doc",
        "--version-id",
        &v1,
    ]));
    assert_eq!(r["Retention"]["Mode"], "COMPLIANCE", "{r}");
    let refused = s.aws_as(
        AK,
        SK,
        &[
            "s3api",
            "delete-object",
            "--bucket",
            b,
            "--key",
            "doc",
            "--version-id",
            &v1,
            "--bypass-governance-retention",
        ],
    );
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("AccessDenied") || why.contains("(403)"),
        "{}",
        show(&refused)
    );

    // A legal hold on v2 keeps it too; lifted, v2 goes and v1 is current again.
    s.aws(&[
        "s3api",
        "put-object-legal-hold",
        "--bucket",
        b,
        "--key",
        "doc",
        "--version-id",
        &v2,
        "--legal-hold",
        "Status=ON",
    ]);
    let held = s.aws_as(
        AK,
        SK,
        &[
            "s3api",
            "delete-object",
            "--bucket",
            b,
            "--key",
            "doc",
            "--version-id",
            &v2,
        ],
    );
    assert!(!held.status.success(), "{}", show(&held));
    s.aws(&[
        "s3api",
        "put-object-legal-hold",
        "--bucket",
        b,
        "--key",
        "doc",
        "--version-id",
        &v2,
        "--legal-hold",
        "Status=OFF",
    ]);
    s.aws(&[
        "s3api",
        "delete-object",
        "--bucket",
        b,
        "--key",
        "doc",
        "--version-id",
        &v2,
    ]);
    let h = head_object_in(&s, b, "doc");
    assert_eq!(h["VersionId"], v1.as_str(), "{h}");

    // A plain delete leaves a delete marker; `s3 ls` no longer shows the key.
    let d = json(&s.aws(&["s3api", "delete-object", "--bucket", b, "--key", "doc"]));
    assert_eq!(d["DeleteMarker"], true, "{d}");
    assert!(!s.aws(&["s3", "ls", &format!("s3://{b}/")]).contains("doc"));
}

fn head_object_in(s: &Stack, bucket: &str, key: &str) -> serde_json::Value {
    json(&s.aws(&["s3api", "head-object", "--bucket", bucket, "--key", key]))
}
