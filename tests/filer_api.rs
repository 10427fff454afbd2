//! The filer REST API on a real `kelp server`, driven with `curl` where a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// A `kelp server` with its filer (4 MiB chunks unless `extra` says otherwise).
struct Server {
    c: Cluster,
    filer: String,
    volume: String,
}

impl Server {
    /// The test's directory, with room for its own files.
    fn dir(&self) -> &Path {
        self.c.root()
    }

    fn proc(&mut self) -> &mut KelpProcess {
        &mut self.c.servers[0].proc
    }
}

fn server() -> Server {
    server_with(&[])
}

fn server_with(extra: &[&str]) -> Server {
    let c = cluster()
        .servers(&[("", 1)])
        .filer(true)
        .server_args(&["-filer.maxMB=4"])
        .server_args(extra)
        .start();
    let filer = c.filer_addr().to_string();
    let volume = c.servers[0].volume.clone();
    Server { c, filer, volume }
}

fn md5_of_file(p: &Path) -> String {
    let out = Command::new("md5sum").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

#[test]
fn curl_round_trips_small_and_large_files() {
    let s = server();
    let f = &s.filer;
    // Small file, raw PUT and multipart POST into a directory.
    let small = s.dir().join("hello.txt");
    std::fs::write(&small, b"hello kelp\n").unwrap();
    let (st, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        &format!("@{}", small.display()),
        &format!("http://{f}/docs/hello.txt"),
    ]);
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["size"], 11);
    let (st, body) = curl(&[
        "-F",
        &format!("file=@{}", small.display()),
        &format!("http://{f}/docs/"),
    ]);
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["name"], "hello.txt");
    let (st, body) = curl(&[&format!("http://{f}/docs/hello.txt")]);
    assert_eq!((st, body.as_slice()), (200, &b"hello kelp\n"[..]));

    // 100 MiB: 25 chunks of 4 MiB, streamed both ways, md5 equal.
    let big = s.dir().join("big.bin");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..(100 << 20) / 8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.write_all(&x.to_le_bytes()).unwrap();
        }
    }
    let (st, body) = curl(&[
        "-T",
        &big.display().to_string(),
        &format!("http://{f}/data/big.bin"),
    ]);
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    let back = s.dir().join("back.bin");
    let out = Command::new("curl")
        .args([
            "-s",
            "-f",
            "-o",
            &back.display().to_string(),
            &format!("http://{f}/data/big.bin"),
        ])
        .status()
        .unwrap();
    assert!(out.success());
    assert_eq!(
        md5_of_file(&back),
        md5_of_file(&big),
        "100 MiB file differs after a round trip"
    );
    let (_, meta) = curl(&[&format!("http://{f}/data/big.bin?metadata=true")]);
    let meta = json(&meta);
    assert_eq!(meta["FileSize"], 100 << 20);
    assert_eq!(meta["chunks"].as_array().unwrap().len(), 25);

    // Ranges across chunk boundaries.
    let all = std::fs::read(&big).unwrap();
    for (a, b) in [
        (4_194_300u64, 4_194_310u64),
        (0, 0),
        (8_388_600, 16_777_300),
        ((100 << 20) - 5, (100 << 20) - 1),
    ] {
        let (st, body) = curl(&[
            "-H",
            &format!("Range: bytes={a}-{b}"),
            &format!("http://{f}/data/big.bin"),
        ]);
        assert_eq!(st, 206);
        assert!(body == all[a as usize..=b as usize], "range {a}-{b}");
    }
    let (st, _) = curl(&[
        "-H",
        "Range: bytes=-10",
        &format!("http://{f}/data/big.bin"),
    ]);
    assert_eq!(st, 206);
    let (st, _) = curl(&[
        "-H",
        &format!("Range: bytes={}-", 100 << 20),
        &format!("http://{f}/data/big.bin"),
    ]);
    assert_eq!(st, 416);
}

#[test]
fn append_conditionals_listing_rename_delete() {
    let s = server();
    let f = &s.filer;
    assert_eq!(http("PUT", f, "/log/a.txt", b"one,").unwrap().status, 201);
    // A one-chunk file's ETag is the MD5 of its bytes (the chunk's, as stored).
    let r = http("GET", f, "/log/a.txt", b"").unwrap();
    assert_eq!(
        r.header("etag"),
        Some("\"bf6e60dc0c8c5952aabcfbfaacc9fb6f\""),
        "md5(\"one,\")"
    );
    let r = http("PUT", f, "/log/a.txt?op=append", b"two,").unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["size"], 8);
    assert_eq!(
        http("PUT", f, "/log/a.txt?op=append", b"three")
            .unwrap()
            .status,
        201
    );
    let r = http("GET", f, "/log/a.txt", b"").unwrap();
    assert_eq!(r.text(), "one,two,three");
    let etag = r.header("etag").unwrap().to_string();
    assert!(etag.ends_with("-3\""), "multi-chunk ETag: {etag}");
    let (st, _) = curl(&[
        "-H",
        &format!("If-None-Match: {etag}"),
        &format!("http://{f}/log/a.txt"),
    ]);
    assert_eq!(st, 304);
    let (st, _) = curl(&["-H", "If-Match: \"nope\"", &format!("http://{f}/log/a.txt")]);
    assert_eq!(st, 412);
    let (st, _) = curl(&[
        "-H",
        "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT",
        &format!("http://{f}/log/a.txt"),
    ]);
    assert_eq!(st, 304);

    // 2,500 entries, listed in pages of 1,000 by lastFileName.
    for i in 0..2500 {
        let r = http("PUT", f, &format!("/many/f{i:05}"), b"x").unwrap();
        assert_eq!(r.status, 201);
    }
    let mut names = Vec::new();
    let mut last = String::new();
    loop {
        let (st, body) = curl(&[
            "-H",
            "Accept: application/json",
            &format!("http://{f}/many/?limit=1000&lastFileName={last}"),
        ]);
        assert_eq!(st, 200);
        let page = json(&body);
        let entries = page["Entries"].as_array().cloned().unwrap_or_default();
        names.extend(
            entries
                .iter()
                .map(|e| e["FullPath"].as_str().unwrap().to_string()),
        );
        last = page["LastFileName"].as_str().unwrap().to_string();
        if page["ShouldDisplayLoadMore"] != true {
            break;
        }
    }
    assert_eq!(names.len(), 2500);
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "listing is sorted by name"
    );
    let (_, body) = curl(&[
        "-H",
        "Accept: application/json",
        &format!("http://{f}/many/?namePattern=f0001*"),
    ]);
    assert_eq!(json(&body)["Entries"].as_array().unwrap().len(), 10);
    let (st, html) = curl(&[&format!("http://{f}/many/?limit=5")]);
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&html).contains("<table>"));

    // Rename a directory with children, atomically.
    assert_eq!(
        http("PUT", f, "/tree/a/b/c.txt", b"deep").unwrap().status,
        201
    );
    assert_eq!(
        http("PUT", f, "/tree/a/d.txt", b"shallow").unwrap().status,
        201
    );
    assert_eq!(
        http("POST", f, "/moved?mv.from=/tree/a", b"")
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        http("GET", f, "/moved/b/c.txt", b"").unwrap().text(),
        "deep"
    );
    assert_eq!(
        http("GET", f, "/moved/d.txt", b"").unwrap().text(),
        "shallow"
    );
    assert_eq!(http("GET", f, "/tree/a/d.txt", b"").unwrap().status, 404);

    // Copy shares chunks; deleting the source keeps the copy readable.
    assert_eq!(
        http("POST", f, "/copy.txt?cp.from=/moved/d.txt", b"")
            .unwrap()
            .status,
        204
    );
    assert_eq!(http("DELETE", f, "/moved/d.txt", b"").unwrap().status, 204);
    assert_eq!(http("GET", f, "/copy.txt", b"").unwrap().text(), "shallow");

    // Recursive delete.
    let r = http("DELETE", f, "/moved", b"").unwrap();
    assert_eq!(
        r.status,
        409,
        "non-empty delete needs recursive: {}",
        r.text()
    );
    assert!(r.json()["error"].as_str().unwrap().contains("non-empty"));
    assert_eq!(
        http("DELETE", f, "/moved?recursive=true", b"")
            .unwrap()
            .status,
        204
    );
    assert_eq!(http("GET", f, "/moved/b/c.txt", b"").unwrap().status, 404);
    assert_eq!(http("DELETE", f, "/never/was", b"").unwrap().status, 204);
}

#[test]
fn chunks_are_collected_and_entries_survive_restart() {
    let mut s = server();
    let f = s.filer.clone();
    let body = vec![5u8; 9 << 20];
    assert_eq!(http("PUT", &f, "/gc/big.bin", &body).unwrap().status, 201);
    assert_eq!(
        http("PUT", &f, "/keep/me.txt", b"kept").unwrap().status,
        201
    );
    let (_, meta) = get_json(&f, "/gc/big.bin?metadata=true");
    let fids: Vec<String> = meta["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["file_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fids.len(), 3);
    for fid in &fids {
        assert_eq!(
            http("GET", &s.volume, &format!("/{fid}"), b"")
                .unwrap()
                .status,
            200
        );
    }
    assert_eq!(http("DELETE", &f, "/gc/big.bin", b"").unwrap().status, 204);
    wait_until(
        "the collector to delete the chunks",
        Duration::from_secs(30),
        || {
            fids.iter().all(|fid| {
                http("GET", &s.volume, &format!("/{fid}"), b"")
                    .unwrap()
                    .status
                    == 404
            })
        },
    );

    s.proc()
        .terminate(Duration::from_secs(10))
        .expect("clean shutdown");
    s.proc().restart();
    s.proc().wait_http_ok(&f, "/", Duration::from_secs(30));
    assert_eq!(http("GET", &f, "/keep/me.txt", b"").unwrap().text(), "kept");
}

#[test]
fn bad_input_gets_clear_errors() {
    let s = server();
    let f = &s.filer;
    assert_eq!(http("PUT", f, "/a/file.txt", b"x").unwrap().status, 201);
    for p in [
        "/a/../etc/passwd",
        "/a/./b",
        "/a//b",
        "/%2e%2e/x",
        "/a/%00b",
    ] {
        let r = http("PUT", f, p, b"x").unwrap();
        assert_eq!(r.status, 400, "{p}: {}", r.text());
        assert!(r.json()["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert_eq!(http("GET", f, p, b"").unwrap().status, 400, "{p}");
    }
    let long = format!("/{}", "n".repeat(300));
    assert_eq!(http("PUT", f, &long, b"x").unwrap().status, 400);
    // A file cannot become a directory, nor a directory overwrite a file.
    let r = http("PUT", f, "/a/file.txt/child", b"x").unwrap();
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(http("POST", f, "/d/", b"").unwrap().status, 201);
    let r = http("POST", f, "/a/file.txt?mv.from=/d", b"").unwrap();
    assert_eq!(r.status, 409, "{}", r.text());
    let r = http("POST", f, "/x?mv.from=/no/such", b"").unwrap();
    assert_eq!(r.status, 404);
    let r = http("PUT", f, "/d", b"x").unwrap();
    assert_eq!(r.status, 409, "writing over a directory: {}", r.text());
    let r = http("PUT", f, "/a/y.txt?ttl=3q", b"x").unwrap();
    assert_eq!(r.status, 400);
    let r = http("POST", f, "/a/z.txt?op=append", b"x").unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(http("GET", f, "/nope", b"").unwrap().status, 404);
    assert_eq!(
        http("GET", f, "/a/file.txt", b"").unwrap().text(),
        "x",
        "nothing was lost"
    );
}

#[test]
fn many_chunk_files_fold_into_manifests() {
    // 1 MiB chunks, manifests of 8: a 50 MiB file keeps 6 manifests and 2 data chunks.
    let s = server_with(&["-filer.maxMB=1", "-filer.manifestBatch=8"]);
    let f = &s.filer;
    let data: Vec<u8> = (0..50u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let r = http("PUT", f, "/m/big.bin", &data).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let (_, meta) = get_json(f, "/m/big.bin?metadata=true");
    let chunks = meta["chunks"].as_array().unwrap().clone();
    let manifests: Vec<String> = chunks
        .iter()
        .filter(|c| c["is_chunk_manifest"] == true)
        .map(|c| c["file_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!((chunks.len(), manifests.len()), (8, 6), "{meta}");
    let r = http("GET", f, "/m/big.bin", b"").unwrap();
    assert!(r.body == data, "manifested file reads back whole");
    let (a, b) = (7_340_000usize, 9_500_000usize);
    let (st, body) = curl(&[
        "-H",
        &format!("Range: bytes={a}-{b}"),
        &format!("http://{f}/m/big.bin"),
    ]);
    assert_eq!(st, 206);
    assert!(body == data[a..=b], "range across a manifest boundary");
    // Appends fold their own chunks (10 MiB = 10 chunks: one manifest of 8 + 2 chunks)
    // and never the chunks the entry already held.
    let more: Vec<u8> = (0..10u32 << 20).map(|i| (i % 241) as u8).collect();
    let r = http("PUT", f, "/m/big.bin?op=append", &more).unwrap();
    assert_eq!(r.status, 201);
    let (_, meta) = get_json(f, "/m/big.bin?metadata=true");
    let after = meta["chunks"].as_array().unwrap();
    let manifests: Vec<String> = after
        .iter()
        .filter(|c| c["is_chunk_manifest"] == true)
        .map(|c| c["file_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(manifests.len(), 7, "{meta}");
    // Make the collector run after the append: once another file's chunk is gone, any
    // chunk wrongly queued by the append would be gone too (the queue is in order).
    assert_eq!(
        http("PUT", f, "/m/other.bin", b"other").unwrap().status,
        201
    );
    let (_, other) = get_json(f, "/m/other.bin?metadata=true");
    let other_fid = other["chunks"][0]["file_id"].as_str().unwrap().to_string();
    assert_eq!(http("DELETE", f, "/m/other.bin", b"").unwrap().status, 204);
    wait_until("the collector to run", Duration::from_secs(30), || {
        http("GET", &s.volume, &format!("/{other_fid}"), b"")
            .unwrap()
            .status
            == 404
    });
    let r = http("GET", f, "/m/big.bin", b"").unwrap();
    assert_eq!(r.body.len(), data.len() + more.len());
    assert!(
        r.body[..data.len()] == data[..] && r.body[data.len()..] == more[..],
        "an append kept every chunk"
    );

    // Deleting the file collects the manifests and every chunk they list.
    let mut listed = Vec::new();
    for m in &manifests {
        let r = http("GET", &s.volume, &format!("/{m}"), b"").unwrap();
        let blob: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        listed.extend(
            blob["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["fid"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(listed.len(), 48 + 8);
    assert_eq!(http("DELETE", f, "/m/big.bin", b"").unwrap().status, 204);
    wait_until(
        "manifests and their chunks to be collected",
        Duration::from_secs(60),
        || {
            manifests.iter().chain(listed.iter()).all(|fid| {
                http("GET", &s.volume, &format!("/{fid}"), b"")
                    .unwrap()
                    .status
                    == 404
            })
        },
    );
}

#[test]
fn a_filer_stops_promptly_while_its_collector_cannot_reach_anyone() {
    let mut ports = reserve_ports(1);
    let (metrics, metrics_port) = (ports.addr(0), ports.port(0));
    ports.release(metrics_port);
    let mut c = cluster()
        .volumes(&[("", 1)])
        .filer(true)
        .filer_args(&["-maxMB=1", &format!("-metricsPort={metrics_port}")])
        .start();
    let f = c.filer_addr().to_string();
    let data = vec![7u8; 4 << 20];
    let r = http("PUT", &f, "/stop/big.bin", &data).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    // With the volume server and the master gone, every delete of the collector waits
    // out the master client's retries (10 s a chunk, four chunks).
    c.volumes[0].proc.terminate(Duration::from_secs(10));
    c.masters[0].proc.terminate(Duration::from_secs(10));
    assert_eq!(
        http("DELETE", &f, "/stop/big.bin", b"").unwrap().status,
        204
    );
    // The collector counts its queue at the start of a round, before the deletes.
    wait_until(
        "the collector to start on the queued chunks",
        Duration::from_secs(30),
        || {
            http("GET", &metrics, "/metrics", b"").is_ok_and(|r| {
                r.text().lines().any(|l| {
                    l.starts_with("kelp_filer_gc_queue ")
                        && l.rsplit(' ').next().is_some_and(|v| v != "0")
                })
            })
        },
    );
    let filer = c.filer.as_mut().unwrap();
    let status = filer.proc.terminate(Duration::from_secs(8));
    assert!(
        status.is_some(),
        "the filer must stop while its collector waits on unreachable servers:\n{}",
        filer.proc.log_tail(20)
    );
}

#[test]
fn reads_fail_over_to_another_copy() {
    let mut c = cluster()
        .volumes(&[("", 2)])
        .filer(true)
        .filer_args(&["-maxMB=1"])
        .start();
    let f = c.filer_addr().to_string();
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
    let r = http("PUT", &f, "/r/two-copies.bin?replication=001", &data).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(http("GET", &f, "/r/two-copies.bin", b"").unwrap().body == data);
    // One copy's server dies: every chunk is still read, from the other copy.
    c.volumes[0].proc.kill9();
    let r = http("GET", &f, "/r/two-copies.bin", b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == data, "read through the surviving copy");
    let (st, body) = curl(&[
        "-H",
        "Range: bytes=1048570-2097160",
        &format!("http://{f}/r/two-copies.bin"),
    ]);
    assert_eq!(st, 206);
    assert!(body == data[1_048_570..=2_097_160]);
}

#[test]
fn expired_entries_read_as_404_and_are_collected() {
    let s = server();
    let f = &s.filer;
    let r = http("PUT", f, "/ttl/short.txt?ttl=1m", b"fleeting").unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(
        http("PUT", f, "/ttl/long.txt", b"stays").unwrap().status,
        201
    );
    let (_, meta) = get_json(f, "/ttl/short.txt?metadata=true");
    assert_eq!(meta["TtlSec"], 60);
    let fid = meta["chunks"][0]["file_id"].as_str().unwrap().to_string();
    // TTLs count in whole minutes: poll until the entry has expired.
    wait_until("the 1-minute TTL to pass", Duration::from_secs(100), || {
        http("GET", f, "/ttl/short.txt", b"").unwrap().status == 404
    });
    assert_eq!(
        http("GET", f, "/ttl/long.txt", b"").unwrap().text(),
        "stays"
    );
    let listing = http("GET", f, "/ttl/?limit=10", b"").unwrap();
    assert!(
        !listing.text().contains("short.txt"),
        "expired entries are not listed"
    );
    // The chunk carries the same TTL, so the volume server stops serving it too.
    assert_eq!(
        http("GET", &s.volume, &format!("/{fid}"), b"")
            .unwrap()
            .status,
        404
    );
}

#[test]
fn an_interrupted_upload_leaves_no_chunks_behind() {
    use std::io::Write;
    let s = server(); // 4 MiB chunks
    // Promise 10 MiB, send 6 MiB, hang up: one 4 MiB chunk is stored before the body breaks.
    let mut sock = std::net::TcpStream::connect(&s.filer).unwrap();
    let head = format!(
        "PUT /cut/file.bin HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        s.filer,
        10 << 20
    );
    sock.write_all(head.as_bytes()).unwrap();
    sock.write_all(&vec![3u8; 6 << 20]).unwrap();
    drop(sock);
    let counts = || {
        let (_, st) = get_json(&s.volume, "/status");
        st["Volumes"]
            .as_array()
            .unwrap()
            .iter()
            .fold((0, 0), |(f, d), v| {
                (
                    f + v["fileCount"].as_u64().unwrap(),
                    d + v["deleteCount"].as_u64().unwrap(),
                )
            })
    };
    wait_until(
        "the stored chunk to be written, then collected",
        Duration::from_secs(30),
        || {
            let (files, deletes) = counts();
            files >= 1 && files == deletes
        },
    );
    assert_eq!(
        http("GET", &s.filer, "/cut/file.bin", b"").unwrap().status,
        404
    );
}

/// A write into a directory the filer read lately skips its read before the upload;
/// when the directory changed meanwhile (here: deleted, or replaced by a file) the
/// write reads again and does what a write that read first would have done.
#[test]
fn writes_into_a_remembered_directory_follow_its_changes() {
    let s = server();
    let f = &s.filer;
    let put = |p: &str, body: &[u8]| http("PUT", f, p, body).unwrap().status;
    // Two writes: the second reads /d as a directory and remembers it.
    assert!(put("/d/a", b"a") < 300);
    assert!(put("/d/b", b"b") < 300);
    assert!(put("/d/c", b"c") < 300);
    // Deleted: the next write creates the directory again.
    assert!(http("DELETE", f, "/d?recursive=true", b"").unwrap().status < 300);
    assert!(put("/d/e", b"e") < 300);
    let r = http_with("GET", f, "/d/", &[("Accept", "application/json")], b"").unwrap();
    let names: Vec<String> = json(&r.body)["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["FullPath"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["/d/e"]);
    assert_eq!(http("GET", f, "/d/e", b"").unwrap().body, b"e");
    // Replaced by a file: a write below it is refused and the file is untouched.
    assert!(http("DELETE", f, "/d?recursive=true", b"").unwrap().status < 300);
    assert!(put("/d", b"now a file") < 300);
    assert_eq!(put("/d/x", b"x"), 409);
    assert_eq!(http("GET", f, "/d", b"").unwrap().body, b"now a file");
    // A write onto a directory in a remembered directory is refused too.
    assert!(put("/p/q/r", b"r") < 300);
    assert!(put("/p/s", b"s") < 300);
    assert_eq!(put("/p/q", b"q"), 409);
    assert_eq!(http("GET", f, "/p/q/r", b"").unwrap().body, b"r");
}
