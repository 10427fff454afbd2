//! Cluster security end to end: master-signed tokens on volume writes, deletes and
//! reads; filer tokens; admin credentials on every admin endpoint; TLS and mutual TLS
//! between separate processes (curl, aws cli, rclone over HTTPS); and the start-up
//! refusals (non-loopback without a security file, unusable security files).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use kelp_proto::security::{Claims, Security, jwt};

const KEY: &str = "test-signing-key";
const READ_KEY: &str = "test-read-key";
const FILER_KEY: &str = "test-filer-key";

/// Gives this test process the cluster's signing key, so the test kit's status polls
/// carry an admin token. Every test here uses the same key.
fn install_admin_key() {
    let s = Security::parse(&format!("[jwt.signing]\nkey = \"{KEY}\"\n"), Path::new("."))
        .expect("the test security setup parses");
    let _ = kelp_proto::security::install(s);
}

fn admin_token() -> String {
    kelp_proto::security::current()
        .admin_token()
        .expect("an admin token")
}

/// Writes `security.toml` into `dir` with the signing key and `extra`.
fn security_file(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("security.toml");
    std::fs::write(&p, format!("[jwt.signing]\nkey = \"{KEY}\"\n{extra}")).unwrap();
    p
}

/// One `kelp server` (with a filer) under a security file with the signing key and
/// `extra`; the file's directory lives as long as the first value.
fn secure_server(extra: &str) -> (tempfile::TempDir, PathBuf, Cluster) {
    install_admin_key();
    let keys = scratch();
    let file = security_file(keys.path(), extra);
    let c = cluster()
        .servers(&[("", 1)])
        .filer(true)
        .server_args(&[&format!("-security={}", file.display())])
        .start();
    (keys, file, c)
}

/// `kelp benchmark` ran `phases` phases of `n` requests each, and none failed.
fn every_request_served(out: &str, n: u64, phases: usize) {
    let value = |prefix: &str| -> Vec<u64> {
        out.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().parse().unwrap())
            .collect()
    };
    assert_eq!(value("Completed requests:"), vec![n; phases], "{out}");
    assert_eq!(value("Failed requests:"), vec![0; phases], "{out}");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// `/dir/assign?count=N` on `master`: (fid, volume server, token).
fn assign(master: &str, count: u32) -> (String, String, String) {
    let r = http("GET", master, &format!("/dir/assign?count={count}"), b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let token = v["auth"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("authorization").map(str::to_string),
        Some(bearer(&token)),
        "the token is also in the Authorization header"
    );
    (
        v["fid"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
        token,
    )
}

fn put(addr: &str, path: &str, auth: Option<&str>, body: &[u8]) -> HttpReply {
    let h = auth.map(bearer);
    let headers: Vec<(&str, &str)> = h.iter().map(|h| ("Authorization", h.as_str())).collect();
    http_with("PUT", addr, path, &headers, body).unwrap()
}

#[test]
fn volume_writes_and_deletes_need_the_token_assigned_with_the_fid() {
    let (_keys, file, c) = secure_server("");
    let s = &c.servers[0];

    let (fid, url, token) = assign(&s.master, 3);
    let r = put(&url, &format!("/{fid}"), None, b"no token");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("no token"), "{}", r.text());
    let r = put(&url, &format!("/{fid}"), Some(&token), b"first");
    assert_eq!(r.status, 201, "{}", r.text());
    // The batch's token covers its `count` keys (`_N`), and only those.
    let r = put(&url, &format!("/{fid}_2"), Some(&token), b"third");
    assert_eq!(r.status, 201, "{}", r.text());
    let r = put(
        &url,
        &format!("/{fid}_3"),
        Some(&token),
        b"beyond the batch",
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("another file id"), "{}", r.text());

    // A token for another fid, an expired one, one signed with another key.
    let (other_fid, _, other_token) = assign(&s.master, 1);
    let r = put(&url, &format!("/{fid}"), Some(&other_token), b"overwrite");
    assert_eq!(r.status, 401, "{}", r.text());
    let expired = jwt::sign(
        KEY.as_bytes(),
        &Claims {
            fid: Some(fid.clone()),
            exp: now() - 1,
            ..Default::default()
        },
    );
    let r = put(&url, &format!("/{fid}"), Some(&expired), b"overwrite");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("expired"), "{}", r.text());
    let forged = jwt::sign(
        b"not-the-key",
        &Claims {
            fid: Some(fid.clone()),
            exp: now() + 60,
            ..Default::default()
        },
    );
    let r = put(&url, &format!("/{fid}"), Some(&forged), b"overwrite");
    assert_eq!(r.status, 401, "{}", r.text());

    // Nothing was overwritten; reads are open without a read key.
    let r = http("GET", &url, &format!("/{fid}"), b"").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"first"[..]));
    // Deletes need a token too.
    let r = http("DELETE", &url, &format!("/{fid}"), b"").unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    let r = http_with(
        "DELETE",
        &url,
        &format!("/{other_fid}"),
        &[("Authorization", &bearer(&token))],
        b"",
    )
    .unwrap();
    assert_eq!(
        r.status,
        401,
        "a token for one fid deletes no other: {}",
        r.text()
    );
    let r = http_with("DELETE", &url, &format!("/{fid}?jwt={token}"), &[], b"").unwrap();
    assert_eq!(r.status, 202, "{}", r.text());

    // The filer REST API: writes need a filer token or the admin credential.
    let filer = s.filer.as_deref().unwrap();
    let r = put(filer, "/docs/a.txt", None, b"hello");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = put(filer, "/docs/a.txt", Some(&admin_token()), b"hello");
    assert_eq!(r.status, 201, "{}", r.text());
    let r = http("GET", filer, "/docs/a.txt", b"").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    let r = http("DELETE", filer, "/docs?recursive=true", b"").unwrap();
    assert_eq!(r.status, 401, "{}", r.text());

    // `kelp benchmark` passes the assigned tokens on; `kelp shell` needs the file for
    // its admin calls.
    let (code, out, err) = run_kelp(&[
        "benchmark",
        &format!("-master={}", s.master),
        "-n=40",
        "-c=2",
        "-size=100",
        "-upload=raw",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    every_request_served(&out, 40, 2);
    let shell = |security: Option<&Path>| {
        let mut args = vec!["shell".to_string(), format!("-master={}", s.master)];
        if let Some(f) = security {
            args.push(format!("-security={}", f.display()));
        }
        let mut child = std::process::Command::new(kelp_bin())
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"lock\nunlock\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, err) = shell(None);
    assert!(!ok, "the shell took the lock without a credential: {err}");
    assert!(err.contains("401"), "{err}");
    let (ok, err) = shell(Some(&file));
    assert!(ok, "{err}");
}

#[test]
fn admin_endpoints_refuse_requests_without_the_admin_credential() {
    let (_keys, _file, c) = secure_server("");
    let s = &c.servers[0];
    let (fid, _, write_token) = assign(&s.master, 1);
    let calls: [(&str, &str, String); 10] = [
        (
            "POST",
            &s.volume,
            "/admin/volume/allocate?volume=4294967295".into(),
        ),
        (
            "POST",
            &s.volume,
            "/admin/collection/delete?collection=x".into(),
        ),
        (
            "POST",
            &s.volume,
            "/admin/ec/copy?volume=1&from=127.0.0.1:1&shards=0".into(),
        ),
        ("GET", &s.master, "/cluster/status".into()),
        ("POST", &s.master, "/vol/grow?count=1".into()),
        ("POST", &s.master, "/col/delete?collection=x".into()),
        ("POST", &s.master, "/cluster/lock?owner=x".into()),
        ("POST", &s.master, "/heartbeat".into()),
        ("POST", &s.master, "/raft/vote".into()),
        ("GET", &s.master, "/vol/status".into()),
    ];
    for (method, addr, path) in &calls {
        let r = http(method, addr, path, b"").unwrap();
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
        // A write token for a fid is no admin credential.
        let r = http_with(
            method,
            addr,
            path,
            &[("Authorization", &bearer(&write_token))],
            b"",
        )
        .unwrap();
        assert_eq!(
            r.status,
            401,
            "{method} {path} with a fid token: {}",
            r.text()
        );
    }
    let r = http_with(
        "GET",
        &s.master,
        "/cluster/status",
        &[("Authorization", &bearer(&admin_token()))],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // Nothing changed: growth still works, the volume is still there.
    let (fid2, _, _) = assign(&s.master, 1);
    assert_ne!(fid, fid2);
    let r = http(
        "GET",
        &s.master,
        &format!("/dir/lookup?volumeId={fid}"),
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn guarded_reads_need_a_read_token_from_the_master() {
    let (_keys, file, c) = secure_server(&format!(
        "[jwt.signing.read]\nkey = \"{READ_KEY}\"\n[jwt.filer_signing]\nkey = \"{FILER_KEY}\"\n"
    ));
    let s = &c.servers[0];
    let (fid, url, token) = assign(&s.master, 1);
    assert_eq!(
        put(&url, &format!("/{fid}"), Some(&token), b"secret").status,
        201
    );
    let r = http("GET", &url, &format!("/{fid}"), b"").unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    // A write token is not a read token.
    let r = http("GET", &url, &format!("/{fid}?jwt={token}"), b"").unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    let (status, v) = get_json(&s.master, &format!("/dir/lookup?fileId={fid}&read=yes"));
    assert_eq!(status, 200);
    let read = v["auth"].as_str().unwrap();
    let r = http("GET", &url, &format!("/{fid}?jwt={read}"), b"").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"secret"[..]));
    // Without read=yes the lookup hands out no token.
    let (_, v) = get_json(&s.master, &format!("/dir/lookup?fileId={fid}"));
    assert!(v.get("auth").is_none(), "{v}");

    // The filer reads its chunks with its own credential; its writes take a filer
    // token signed with [jwt.filer_signing].
    let filer = s.filer.as_deref().unwrap();
    let filer_token = jwt::sign(
        FILER_KEY.as_bytes(),
        &Claims {
            exp: now() + 60,
            ..Default::default()
        },
    );
    let r = put(filer, "/f/x.bin", Some(&filer_token), &[7u8; 5000]);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = http("GET", filer, "/f/x.bin", b"").unwrap();
    assert_eq!((r.status, r.body.len()), (200, 5000));
    // A read-guarded cluster is still measurable by `kelp benchmark` with the file.
    let (code, out, err) = run_kelp(&[
        "benchmark",
        &format!("-master={}", s.master),
        &format!("-security={}", file.display()),
        "-n=40",
        "-c=2",
        "-size=100",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("random read"), "{out}");
    every_request_served(&out, 40, 2);
}

/// A CA, and one certificate it signed for 127.0.0.1 and localhost, usable by servers
/// and clients; written as ca.pem, node.pem, node.key into `dir`.
fn make_certs(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "kelp test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut node =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    node.distinguished_name
        .push(DnType::CommonName, "kelp node");
    node.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let issuer = Issuer::new(ca, ca_key);
    let node_cert = node.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("node.pem"), node_cert.pem()).unwrap();
    std::fs::write(dir.join("node.key"), key.serialize_pem()).unwrap();
}

/// `curl` over HTTPS trusting `ca.pem` in `dir`, with the node certificate when
/// `client_cert`; returns (status, body). Status 0: no HTTP answer.
fn curl_tls(dir: &Path, client_cert: bool, args: &[&str]) -> (u16, String) {
    let ca = dir.join("ca.pem");
    let mut all: Vec<String> = vec![
        "-s".into(),
        "-w".into(),
        "\n%{http_code}".into(),
        "--max-time".into(),
        "20".into(),
        "--cacert".into(),
        ca.display().to_string(),
    ];
    if client_cert {
        all.extend([
            "--cert".to_string(),
            dir.join("node.pem").display().to_string(),
            "--key".to_string(),
            dir.join("node.key").display().to_string(),
        ]);
    }
    if !args.contains(&"-o") {
        all.extend(["-o".to_string(), "-".to_string()]);
    }
    all.extend(args.iter().map(|a| a.to_string()));
    let out = std::process::Command::new("curl")
        .args(&all)
        .output()
        .expect("curl must be installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn wait_https(dir: &Path, proc: &mut KelpProcess, url: &str) {
    let ok = poll_until(READY, || {
        curl_tls(dir, true, &[url]).0 == 200 || !proc.is_running()
    });
    assert!(
        ok.is_some() && proc.is_running(),
        "{url} did not answer over HTTPS; log:\n{}",
        proc.log_tail(30)
    );
}

#[test]
fn separate_servers_speak_tls_and_take_cluster_certificates_as_admin_credentials() {
    let tmp = scratch();
    let dir = tmp.path();
    make_certs(dir);
    // Mutual TLS alone: no signing key, so admin calls are authorised by the client
    // certificate servers present to each other.
    std::fs::write(
        dir.join("security.toml"),
        "[https]\nca = \"ca.pem\"\ncert = \"node.pem\"\nkey = \"node.key\"\nclient_auth = \"optional\"\n",
    )
    .unwrap();
    let security = format!("-security={}", dir.join("security.toml").display());
    let mut ports = reserve_ports(4);
    let (m, v, f, s3) = (ports.addr(0), ports.addr(1), ports.addr(2), ports.addr(3));
    for i in 0..4 {
        let p = ports.port(i);
        ports.release(p);
    }
    // Each role on its own port, in its own directory, with the security file.
    let start = |role: &str, addr: &str, data: &str, extra: &[String]| {
        let port = addr.rsplit(':').next().unwrap();
        let mut args = vec![
            role.to_string(),
            "-ip=127.0.0.1".into(),
            format!("-port={port}"),
            format!("{data}={}", dir.join(role).display()),
            security.clone(),
        ];
        args.extend_from_slice(extra);
        start_kelp(role, dir, &args)
    };
    let at_master = format!("-master={m}");
    let mut master = start("master", &m, "-mdir", &[]);
    let mut volume = start("volume", &v, "-dir", std::slice::from_ref(&at_master));
    let s3_port = s3.rsplit(':').next().unwrap();
    let mut filer = start(
        "filer",
        &f,
        "-dir",
        &[at_master, "-s3=true".into(), format!("-s3.port={s3_port}")],
    );
    wait_https(dir, &mut master, &format!("https://{m}/cluster/status"));
    wait_https(dir, &mut volume, &format!("https://{v}/status"));
    wait_https(dir, &mut filer, &format!("https://{f}/"));
    // The volume server registered over HTTPS.
    let registered = poll_until(READY, || {
        let (_, body) = curl_tls(dir, true, &[&format!("https://{m}/dir/status")]);
        body.contains(&v)
    });
    assert!(registered.is_some(), "volume log:\n{}", volume.log_tail(30));

    // Plain HTTP gets no answer.
    let (code, _) = curl_tls(dir, false, &[&format!("http://{m}/dir/status")]);
    assert_eq!(code, 0);
    // Without a client certificate the admin API refuses; with one it answers.
    let (code, body) = curl_tls(dir, false, &[&format!("https://{m}/cluster/status")]);
    assert_eq!(code, 401, "{body}");
    let (code, body) = curl_tls(
        dir,
        false,
        &[
            "-X",
            "POST",
            &format!("https://{v}/admin/volume/allocate?volume=77"),
        ],
    );
    assert_eq!(code, 401, "{body}");

    // The filer over HTTPS: a client without a certificate reads; writes need the
    // cluster's credential.
    let src = dir.join("payload.bin");
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &payload).unwrap();
    let file_url = format!("https://{f}/tls/payload.bin");
    let (code, body) = curl_tls(dir, false, &["-T", &src.display().to_string(), &file_url]);
    assert_eq!(code, 401, "{body}");
    let (code, body) = curl_tls(dir, true, &["-T", &src.display().to_string(), &file_url]);
    assert_eq!(code, 201, "{body}");
    let out = dir.join("back.bin");
    let (code, _) = curl_tls(dir, false, &["-o", &out.display().to_string(), &file_url]);
    assert_eq!(code, 200);
    assert_eq!(std::fs::read(&out).unwrap(), payload);

    // S3 over HTTPS with the aws cli and rclone, trusting the CA.
    let endpoint = format!("https://{s3}");
    let aws = |args: &[&str]| {
        let mut cmd = std::process::Command::new("aws");
        cmd.args(["--endpoint-url", &endpoint])
            .args(["--ca-bundle", &dir.join("ca.pem").display().to_string()])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "any")
            .env("AWS_SECRET_ACCESS_KEY", "any")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        succeeds(cmd)
    };
    aws(&["s3", "mb", "s3://tls-bucket"]);
    aws(&[
        "s3",
        "cp",
        &src.display().to_string(),
        "s3://tls-bucket/a/payload.bin",
    ]);
    let listed = aws(&["s3", "ls", "s3://tls-bucket/a/"]);
    assert!(listed.contains("payload.bin"), "{listed}");
    let back = dir.join("aws-back.bin");
    aws(&[
        "s3",
        "cp",
        "s3://tls-bucket/a/payload.bin",
        &back.display().to_string(),
    ]);
    assert_eq!(std::fs::read(&back).unwrap(), payload);

    let rclone = |args: &[&str]| {
        let mut cmd = std::process::Command::new("rclone");
        cmd.args(args)
            .args(["--ca-cert", &dir.join("ca.pem").display().to_string()])
            // rclone 1.60 fails every call when AWS_CA_BUNDLE is set (some images set
            // it); the CA comes from --ca-cert instead.
            .env_remove("AWS_CA_BUNDLE")
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_CONFIG_K_TYPE", "s3")
            .env("RCLONE_CONFIG_K_PROVIDER", "Other")
            .env("RCLONE_CONFIG_K_ENDPOINT", &endpoint)
            .env("RCLONE_CONFIG_K_ACCESS_KEY_ID", "any")
            .env("RCLONE_CONFIG_K_SECRET_ACCESS_KEY", "any");
        succeeds(cmd)
    };
    let rdir = dir.join("rc");
    std::fs::create_dir_all(&rdir).unwrap();
    std::fs::write(rdir.join("one.txt"), b"over tls").unwrap();
    rclone(&["copy", &rdir.display().to_string(), "k:tls-bucket/rc"]);
    let listed = rclone(&["ls", "k:tls-bucket/rc"]);
    assert!(listed.contains("one.txt"), "{listed}");
    let cat = rclone(&["cat", "k:tls-bucket/rc/one.txt"]);
    assert_eq!(cat, "over tls");

    for p in [&mut filer, &mut volume, &mut master] {
        p.terminate(Duration::from_secs(20));
    }
}

/// Runs a client command that must succeed; returns its standard output.
fn succeeds(mut cmd: std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} must be installed: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Starts `kelp <args>` and waits for it to exit by itself; returns its log.
fn refused(dir: &Path, name: &str, args: &[String]) -> String {
    let mut p = start_kelp(name, dir, args);
    let status = p.wait_exit(Duration::from_secs(30));
    let log = p.log();
    assert!(
        status.is_some_and(|s| !s.success()),
        "{name} should refuse to start: {status:?}\n{log}"
    );
    log
}

#[test]
fn servers_refuse_to_start_when_they_would_serve_unprotected_or_misconfigured() {
    let tmp = scratch();
    let dir = tmp.path();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[jwt.signing]\nkye = \"x\"\n").unwrap();
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "[jwt.signing]\nkey = \"\"\n").unwrap();
    let flag = |p: &Path| format!("-security={}", p.display());
    // (name, role and flags after -dir/-mdir, what the refusal must say)
    let cases: [(&str, Vec<String>, &str); 6] = [
        // A non-loopback address without a security file.
        (
            "open-volume",
            vec!["volume".into(), "-ip.bind=0.0.0.0".into()],
            "refusing to serve on 0.0.0.0",
        ),
        (
            "open-master",
            vec![
                "master".into(),
                "-ip=10.255.255.1".into(),
                "-ip.bind=0.0.0.0".into(),
            ],
            "-insecure",
        ),
        // A security file with a misspelt key, without an admin credential, missing.
        ("misspelt", vec!["server".into(), flag(&bad)], "kye"),
        (
            "keyless",
            vec!["server".into(), flag(&empty)],
            "no admin credential",
        ),
        (
            "missing",
            vec!["server".into(), flag(&dir.join("nope.toml"))],
            "nope.toml",
        ),
        // HTTPS for S3 needs both halves.
        (
            "half-tls",
            vec!["server".into(), "-s3.cert.file=x.pem".into()],
            "-s3.key.file",
        ),
    ];
    for (name, mut args, says) in cases {
        let data = if args[0] == "master" { "-mdir" } else { "-dir" };
        args.push(format!("{data}={}", dir.join(name).display()));
        let log = refused(dir, name, &args);
        assert!(log.contains(says), "{name}: {log}");
    }
}
