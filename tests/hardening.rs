//! Requests an attacker on the same network could send to a running `kelp server`,
//! each refused with a clear 4xx and no file created or removed outside the data
//! directory: collection names with `..` or `/` (filer, volume server, master),
//! deleting the default collection by leaving the name empty, a bogus volume id that
//! would end volume growth, growth beyond the disk under `-max=0`, and more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Every file below `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn names_that_would_escape_the_data_directory_are_refused() {
    let c = cluster().servers(&[("", 1)]).filer(true).start();
    let s = &c.servers[0];
    // Everything the server may create lives under its own -dir; the parent is the
    // test's root, where an escaping name would land.
    let outside_before = files_under(c.root())
        .into_iter()
        .filter(|f| !f.starts_with(&s.name))
        .collect::<Vec<_>>();

    let r = http(
        "PUT",
        c.filer_addr(),
        "/c/f?collection=../../../../tmp/evil",
        b"x",
    )
    .unwrap();
    assert_eq!(r.status, 400, "filer: {}", r.text());
    assert!(r.text().contains("collection"), "{}", r.text());

    let r = http(
        "POST",
        &s.volume,
        "/admin/volume/allocate?volume=100&collection=../../../escape",
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 400, "volume: {}", r.text());
    let r = http(
        "POST",
        &s.volume,
        "/admin/volume/allocate?volume=101&collection=a/b",
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 400, "volume: {}", r.text());

    let r = http("POST", &s.master, "/col/delete?collection=../../x", b"").unwrap();
    assert_eq!(r.status, 400, "master: {}", r.text());
    let r = http("GET", &s.master, "/dir/assign?collection=..%2Fx", b"").unwrap();
    assert_eq!(r.status, 400, "master assign: {}", r.text());

    let outside_after = files_under(c.root())
        .into_iter()
        .filter(|f| !f.starts_with(&s.name))
        .collect::<Vec<_>>();
    assert_eq!(outside_before, outside_after, "files appeared outside -dir");
    assert!(!Path::new("/tmp/evil.dat").exists() && !Path::new("/tmp/evil_1.dat").exists());
}

#[test]
fn the_default_collection_cannot_be_deleted_by_an_empty_name() {
    let c = cluster().servers(&[("", 1)]).filer(true).start();
    let s = &c.servers[0];
    let r = http("PUT", c.filer_addr(), "/keep/me.txt", b"still here").unwrap();
    assert!(r.status < 300, "{}", r.text());
    let dats = |dir: &Path| {
        files_under(dir)
            .into_iter()
            .filter(|f| f.ends_with(".dat"))
            .count()
    };
    let before = dats(&s.dir);
    assert!(before > 0);
    let r = http(
        "POST",
        &s.volume,
        "/admin/collection/delete?collection=",
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let r = http("POST", &s.master, "/col/delete?collection=", b"").unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(dats(&s.dir), before);
    let r = http("GET", c.filer_addr(), "/keep/me.txt", b"").unwrap();
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, b"still here".as_slice())
    );
}

#[test]
fn a_bogus_volume_id_reported_by_a_server_does_not_end_growth() {
    let c = cluster().servers(&[("", 1)]).start();
    let s = &c.servers[0];
    // A volume with the largest id, made behind the master's back (on loopback without
    // a security file nothing stops the call itself).
    let r = http(
        "POST",
        &s.volume,
        "/admin/volume/allocate?volume=4294967295",
        b"",
    )
    .unwrap();
    assert!(r.status < 300, "{}", r.text());
    // Heartbeats carry it to the master, which does not adopt it: growth goes on.
    wait_until(
        "the master to see (and ignore) the id",
        Duration::from_secs(30),
        || {
            s.proc
                .log()
                .contains("ignoring volume ids this master never allocated")
        },
    );
    let (status, v) = get_json(&s.master, "/dir/assign?collection=grown");
    assert_eq!(status, 200, "{v}");
    let vid: u64 = v["fid"]
        .as_str()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(vid < 1000, "{v}");
    let (_, v) = get_json(&s.master, "/cluster/status");
    let max = v["MaxVolumeId"].as_u64().unwrap();
    assert!(max < 1000, "{v}");
    let (_, v) = get_json(&s.master, "/dir/lookup?volumeId=4294967295");
    assert!(v["locations"].as_array().is_none_or(Vec::is_empty), "{v}");
}

/// Free bytes of the file system holding `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

#[test]
fn growth_under_a_free_space_derived_max_stops_when_the_disk_would_be_full() {
    let probe = scratch();
    // Volumes of a third of the free space: at most three fit, however empty they are.
    let limit_mb = free_bytes(probe.path()) / 3 / (1 << 20);
    let c = cluster()
        .servers(&[("", 1)])
        .server_args(&["-volume.max=0", &format!("-volumeSizeLimitMB={limit_mb}")])
        .start();
    let s = &c.servers[0];
    let r = http("POST", &s.master, "/vol/grow?count=20&collection=big", b"").unwrap();
    let (_, v) = get_json(&s.master, "/dir/status");
    let max = v["Topology"]["Max"].as_u64().unwrap();
    assert!(
        max <= 4,
        "grow answered {} {}; topology {v}",
        r.status,
        r.text()
    );
    let dats = files_under(&s.dir)
        .into_iter()
        .filter(|f| f.ends_with(".dat"))
        .count();
    assert!(dats <= 4, "{dats} volumes made on a disk with room for 3");
}

#[test]
fn an_s3_config_without_usable_identities_stops_start_up() {
    let root = scratch();
    let cfg = root.path().join("s3.json");
    std::fs::write(&cfg, r#"{"identities":[]}"#).unwrap();
    let ports = reserve_ports(4);
    let p = ports.ports();
    drop(ports);
    let args: Vec<String> = vec![
        "server".into(),
        format!("-dir={}", root.path().join("data").display()),
        "-ip=127.0.0.1".into(),
        format!("-master.port={}", p[0]),
        format!("-volume.port={}", p[1]),
        format!("-filer.port={}", p[2]),
        format!("-s3.port={}", p[3]),
        format!("-s3.config={}", cfg.display()),
    ];
    let mut k = start_kelp("s3conf", root.path(), &args);
    let st = k
        .wait_exit(std::time::Duration::from_secs(30))
        .expect("kelp server must stop rather than serve an open gateway");
    assert!(!st.success());
    assert!(k.log().contains("no usable identity"), "{}", k.log());
}

/// Connections that send a request head promising a large body, then three bytes, are
/// closed after -idleTimeout; meanwhile ordinary requests are answered.
#[test]
fn slow_bodies_are_cut_off_and_others_still_served() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    let c = cluster()
        .masters(0)
        .volumes(&[("", 1)])
        .volume_args(&["-idleTimeout=2"])
        .start();
    let a = c.volumes[0].addr.clone();
    let r = http("POST", &a, "/admin/volume/allocate?volume=7", b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    let mut slow = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(&a).unwrap();
        let head = format!(
            "PUT /7,{:x}11223344 HTTP/1.1\r\nHost: {a}\r\nContent-Length: 1000000\r\n\r\nabc",
            i + 1
        );
        s.write_all(head.as_bytes()).unwrap();
        slow.push(s);
    }
    let started = Instant::now();
    let r = http("PUT", &a, "/7,ff11223344", b"fine").unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(http("GET", &a, "/7,ff11223344", b"").unwrap().body, b"fine");

    // Every slow connection is closed by the server (a read ends) well before the
    // client would have given up; none of them stored anything.
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 512];
        let closed = match s.read(&mut buf) {
            Ok(_) => true,
            Err(e) => {
                e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
            }
        };
        assert!(closed, "a slow connection was still open after 20 s");
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(http("GET", &a, "/7,111223344", b"").unwrap().status, 404);
}

/// `/admin/ec/copy` pulls only from volume servers the masters know: a caller cannot
/// make a volume server connect to any address (and learn which ports are open).
#[test]
fn ec_copy_only_from_known_volume_servers() {
    let c = cluster().volumes(&[("", 1)]).start();
    let v = c.volumes[0].addr.clone();
    // A loopback port nothing of this cluster listens on.
    let stranger = {
        let r = reserve_ports(1);
        format!("127.0.0.1:{}", r.port(0))
    };
    let r = http(
        "POST",
        &v,
        &format!("/admin/ec/copy?volume=5&collection=&shards=1&from={stranger}"),
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("not a volume server the masters know"),
        "{}",
        r.text()
    );
}

/// A large malformed XML body is refused without being written whole into the log.
#[test]
fn malformed_xml_bodies_do_not_flood_the_log() {
    let c = cluster().servers(&[("", 1)]).s3(true).start();
    let s3 = c.s3_addr().to_string();
    assert_eq!(http("PUT", &s3, "/xml-bucket", b"").unwrap().status, 200);
    let mut body = b"<Delete>".to_vec();
    body.extend(std::iter::repeat_n(b'x', 2 << 20));
    let r = http("POST", &s3, "/xml-bucket?delete", &body).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("MalformedXML"), "{}", r.text());
    let log = c.servers[0].proc.log();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 16 << 10, "a log line of {longest} bytes");
}
