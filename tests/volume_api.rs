//! The volume server's HTTP API against a real `kelp volume` process on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

struct Vol {
    c: Cluster,
    addr: String,
}

impl Vol {
    fn proc(&mut self) -> &mut KelpProcess {
        &mut self.c.volumes[0].proc
    }
}

/// A volume server with no reachable master and volume 7 allocated.
fn volume_server(extra: &[&str]) -> Vol {
    let c = cluster()
        .masters(0)
        .volumes(&[("", 1)])
        .volume_args(extra)
        .start();
    let addr = c.volumes[0].addr.clone();
    let r = http("POST", &addr, "/admin/volume/allocate?volume=7", b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    Vol { c, addr }
}

fn req(method: &str, addr: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpReply {
    http_with(method, addr, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

#[test]
fn upload_read_conditionals_ranges_delete() {
    let v = volume_server(&[]);
    let a = &v.addr;
    let fid = "/7,01637037d6";
    let r = req(
        "PUT",
        a,
        fid,
        &[("Content-Type", "text/plain")],
        b"hello world\n",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    assert_eq!(j["size"], 12);
    assert_eq!(
        j["eTag"], "f0ff7292",
        "ETag is the CRC32-C of the data, as in the facts sheet"
    );
    assert_eq!(j["mime"], "text/plain");
    assert_eq!(j["name"], "7,01637037d6");
    // The filer takes chunk etags from this rather than hash the chunk again.
    assert_eq!(j["contentMd5"], "b1kCrCNwJL3QwXbLkwY9xA==");
    assert_eq!(r.header("content-md5"), Some("b1kCrCNwJL3QwXbLkwY9xA=="));
    assert_eq!(r.header("etag"), Some("\"f0ff7292\""));

    // The same bytes again: 204, nothing written.
    let r = req(
        "PUT",
        a,
        fid,
        &[("Content-Type", "text/plain")],
        b"hello world\n",
    );
    assert_eq!(r.status, 204);

    for path in [
        fid,
        "/7/01637037d6",
        "/7/01637037d6.txt",
        "/7/01637037d6/greeting.txt",
    ] {
        let r = req("GET", a, path, &[], b"");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, b"hello world\n");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert!(r.header("last-modified").is_some());
    }
    let r = req("GET", a, "/7/01637037d6/greeting.txt", &[], b"");
    assert_eq!(
        r.header("content-disposition"),
        Some("inline; filename=\"greeting.txt\"")
    );
    let r = req("GET", a, "/7/01637037d6/greeting.txt?dl=true", &[], b"");
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"greeting.txt\"")
    );

    let r = req("HEAD", a, fid, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("12"));
    assert!(r.body.is_empty());

    let r = req("GET", a, fid, &[("If-None-Match", "\"f0ff7292\"")], b"");
    assert_eq!(r.status, 304);
    let r = req("GET", a, fid, &[("If-None-Match", "\"00000000\"")], b"");
    assert_eq!(r.status, 200);
    let r = req(
        "GET",
        a,
        fid,
        &[("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT")],
        b"",
    );
    assert_eq!(r.status, 304);
    let r = req(
        "GET",
        a,
        fid,
        &[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")],
        b"",
    );
    assert_eq!(r.status, 200);

    let r = req("GET", a, fid, &[("Range", "bytes=0-4")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"hello"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 0-4/12"));
    let r = req("GET", a, fid, &[("Range", "bytes=-6")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"world\n"[..]));
    let r = req("GET", a, fid, &[("Range", "bytes=12-")], b"");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */12"));

    // Wrong cookie: 404 on read and delete, 400 on overwrite.
    assert_eq!(req("GET", a, "/7,01637037d7", &[], b"").status, 404);
    assert_eq!(req("DELETE", a, "/7,01637037d7", &[], b"").status, 404);
    let r = req("PUT", a, "/7,01637037d7", &[], b"other");
    assert_eq!(r.status, 400, "{}", r.text());

    let r = req("DELETE", a, fid, &[], b"");
    assert_eq!(r.status, 202);
    assert!(
        r.json()["size"].as_u64().unwrap() > 12,
        "size is the needle's Size field"
    );
    assert_eq!(req("GET", a, fid, &[], b"").status, 404);
    let r = req("DELETE", a, fid, &[], b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["size"], 0);
}

#[test]
fn multipart_pairs_md5_gzip_and_form_bodies() {
    let v = volume_server(&[]);
    let a = &v.addr;
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--XyZ--\r\n";
    let r = req(
        "POST",
        a,
        "/7,02aabbccdd",
        &[
            ("Content-Type", "multipart/form-data; boundary=XyZ"),
            ("Seaweed-Owner", "alice"),
        ],
        body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "cat.png");
    let r = req("GET", a, "/7,02aabbccdd", &[], b"");
    assert_eq!(r.body, b"PNGDATA");
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(
        r.header("owner"),
        Some("alice"),
        "Seaweed-* pairs come back as headers"
    );
    assert_eq!(
        r.header("content-disposition"),
        Some("inline; filename=\"cat.png\"")
    );

    // A raw form-urlencoded body (curl --data-binary's default) is stored, not eaten.
    let r = req(
        "POST",
        a,
        "/7,03aabbccdd",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"a=1&b=2",
    );
    assert_eq!(r.status, 201);
    assert_eq!(req("GET", a, "/7,03aabbccdd", &[], b"").body, b"a=1&b=2");

    // Content-MD5: a match is stored, a mismatch is refused and stores nothing.
    let good = "XUFAKrxLKna5cZ2REBfFkg=="; // md5("hello")
    assert_eq!(
        req(
            "PUT",
            a,
            "/7,04aabbccdd",
            &[("Content-MD5", good)],
            b"hello"
        )
        .status,
        201
    );
    let r = req(
        "PUT",
        a,
        "/7,05aabbccdd",
        &[("Content-MD5", good)],
        b"hellO",
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("Content-MD5"));
    assert_eq!(req("GET", a, "/7,05aabbccdd", &[], b"").status, 404);

    // Gzip bodies are stored as sent: gzip clients get them as is, others inflated.
    let gz: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
        0x07, 0x00, 0x86, 0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00,
    ];
    assert_eq!(
        req(
            "PUT",
            a,
            "/7,06aabbccdd",
            &[("Content-Encoding", "gzip")],
            gz
        )
        .status,
        201
    );
    let r = req("GET", a, "/7,06aabbccdd", &[], b"");
    assert_eq!(r.body, b"hello");
    let r = req(
        "GET",
        a,
        "/7,06aabbccdd",
        &[("Accept-Encoding", "gzip")],
        b"",
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.body, gz);
}

#[test]
fn large_needles_stream_and_survive_a_restart() {
    let mut v = volume_server(&[]);
    let a = v.addr.clone();
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let r = req("PUT", &a, "/7,0a11223344?fsync=true", &[], &data);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = req("GET", &a, "/7,0a11223344", &[], b"");
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data);
    let r = req(
        "GET",
        &a,
        "/7,0a11223344",
        &[("Range", "bytes=1048570-2097160")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert!(r.body == data[1_048_570..=2_097_160]);

    v.proc()
        .terminate(Duration::from_secs(10))
        .expect("clean exit on SIGTERM");
    v.proc().restart();
    v.proc()
        .wait_http_ok(&a, "/status", Duration::from_secs(20));
    let r = req("GET", &a, "/7,0a11223344", &[], b"");
    assert!(r.body == data, "data survives a restart");
    let (_, status) = get_json(&a, "/status");
    assert_eq!(status["Volumes"][0]["id"], 7);
    assert_eq!(status["Volumes"][0]["fileCount"], 1);
}

#[test]
fn bad_input_gets_clear_errors() {
    let v = volume_server(&["-fileSizeLimitMB=1"]);
    let a = &v.addr;
    for path in [
        "/7,zz",
        "/7,",
        "/x,01637037d6",
        "/7,0163",
        "/7/0163/a/b",
        "/99999999999,01637037d6",
    ] {
        let r = req("GET", a, path, &[], b"");
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.json()["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let r = req("GET", a, "/8,01637037d6", &[], b"");
    assert_eq!(r.status, 404, "unknown volume");
    let r = req("PUT", a, "/8,01637037d6", &[], b"x");
    assert_eq!(r.status, 404, "write to a volume not here");
    let big = vec![7u8; 2 << 20];
    let r = req("PUT", a, "/7,01637037d6", &[], &big);
    assert_eq!(r.status, 413, "{}", r.text());
    let truncated = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\npartial data";
    let r = req(
        "POST",
        a,
        "/7,02637037d6",
        &[("Content-Type", "multipart/form-data; boundary=XyZ")],
        truncated,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        req("GET", a, "/7,02637037d6", &[], b"").status,
        404,
        "nothing stored"
    );
    let r = req("PUT", a, "/7,03637037d6?ttl=5q", &[], b"x");
    assert_eq!(r.status, 400);
    let r = req("PATCH", a, "/7,03637037d6", &[], b"x");
    assert_eq!(r.status, 405);
    let r = req("POST", a, "/admin/volume/allocate?volume=7", &[], b"");
    assert_eq!(r.status, 409, "volume exists: {}", r.text());
    let r = req("POST", a, "/admin/volume/allocate?volume=x", &[], b"");
    assert_eq!(r.status, 400);
    let r = req(
        "POST",
        a,
        "/admin/volume/allocate?volume=9&replication=abc",
        &[],
        b"",
    );
    assert_eq!(r.status, 400);
    // The server is still healthy after all that.
    assert_eq!(req("PUT", a, "/7,04637037d6", &[], b"ok").status, 201);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A small gzip body that inflates past -fileSizeLimitMB is refused; one within it is
/// served inflated, streamed, to a client that does not take gzip.
#[test]
fn gzip_bodies_are_limited_by_their_inflated_size() {
    let v = volume_server(&["-fileSizeLimitMB=1"]);
    let a = v.addr.clone();
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let r = req(
        "PUT",
        &a,
        "/7,0b11223344",
        &[("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(req("GET", &a, "/7,0b11223344", &[], b"").status, 404);

    let r = req(
        "PUT",
        &a,
        "/7,0c11223344",
        &[("Content-Encoding", "gzip")],
        b"not gzip at all",
    );
    assert_eq!(r.status, 400, "{}", r.text());

    let data: Vec<u8> = (0..900_000u32).map(|i| (i % 251) as u8).collect();
    let r = req(
        "PUT",
        &a,
        "/7,0d11223344",
        &[("Content-Encoding", "gzip")],
        &gzip(&data),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = req("GET", &a, "/7,0d11223344", &[], b"");
    assert_eq!(r.status, 200);
    assert!(
        r.body == data,
        "inflated body differs ({} bytes)",
        r.body.len()
    );
}
