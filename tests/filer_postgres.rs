//! Two `kelp filer` processes on one PostgreSQL database serve one namespace: what one
//! writes, the other reads, lists and deletes at once, and the first then sees it gone.
//! `kelp filer.copy.meta` moves a namespace from redb to PostgreSQL byte-exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// A cluster whose filer and a second `kelp filer` share one new PostgreSQL database:
/// the server, the cluster, the first filer's address, the second and its address.
fn two_filers() -> (PgServer, Cluster, String, KelpProcess, String) {
    let pg = PgServer::start();
    let pg_args = [
        "-store=postgres".to_string(),
        format!("-postgres.url={}", pg.url()),
    ];
    let c = cluster()
        .volumes(&[("", 1)])
        .filer(true)
        .filer_args(&[&pg_args[0], &pg_args[1]])
        .start();
    let a = c.filer_addr().to_string();
    let (second, b) = start_filer(&c, "f2", &pg_args);
    (pg, c, a, second, b)
}

#[test]
fn two_filers_share_one_postgres_namespace() {
    let (_pg, _c, a, mut second, b) = two_filers();

    for i in 0..20 {
        let body = format!("file {i} written through the first filer").into_bytes();
        let put = http("PUT", &a, &format!("/shared/d/f{i:02}.txt"), &body).unwrap();
        assert!(put.status < 300, "PUT answered {}", put.status);
        // Read-after-write through the other filer, at once.
        let got = http("GET", &b, &format!("/shared/d/f{i:02}.txt"), b"").unwrap();
        assert_eq!((got.status, got.body), (200, body));
    }
    let r = http_with(
        "GET",
        &b,
        "/shared/d/?limit=100",
        &[("Accept", "application/json")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let listing = r.json();
    let names: Vec<&str> = listing["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["FullPath"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 20, "{listing}");
    assert_eq!(names[0], "/shared/d/f00.txt");

    let del = http("DELETE", &b, "/shared/d/f07.txt", b"").unwrap();
    assert!(del.status < 300, "DELETE answered {}", del.status);
    assert_eq!(
        http("GET", &a, "/shared/d/f07.txt", b"").unwrap().status,
        404
    );
    assert_eq!(
        http("GET", &a, "/shared/d/f08.txt", b"").unwrap().status,
        200
    );
    // Each filer's change log is the store's: the delete made through the second shows
    // in the first's.
    let log = http("GET", &a, "/?op=meta.events&since=0", b"")
        .unwrap()
        .json();
    let deleted = log["events"].as_array().unwrap().iter().any(|e| {
        e["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["op"] == "delete" && c["path"] == "/shared/d/f07.txt")
    });
    assert!(deleted, "{log}");
    second.terminate(READY);
}

/// 100 clients at once, each writing its own object through one filer (REST or S3) and
/// reading, listing and deleting it through the other: every read sees the write just
/// acknowledged, every delete is seen at once.
#[test]
fn a_hundred_clients_see_their_writes_across_two_gateways() {
    let pg = PgServer::start();
    let pg_args = [
        "-store=postgres".to_string(),
        format!("-postgres.url={}", pg.url()),
    ];
    let c = cluster()
        .volumes(&[("", 1)])
        .s3(true)
        .filer_args(&[&pg_args[0], &pg_args[1]])
        .start();
    let (a, a3) = (c.filer_addr().to_string(), c.s3_addr().to_string());
    let mut ports = reserve_ports(1);
    let (b3, b3_port) = (ports.addr(0), ports.port(0));
    ports.release(b3_port);
    let mut extra = pg_args.to_vec();
    extra.extend(["-s3=true".to_string(), format!("-s3.port={b3_port}")]);
    let (mut second, b) = start_filer(&c, "f2", &extra);
    second.wait_http_answers(&b3, "/", READY);
    let mk = http("PUT", &a3, "/shared", b"").unwrap();
    assert!(mk.status < 300, "CreateBucket: {} {}", mk.status, mk.text());

    let clients: Vec<_> = (0..100)
        .map(|t| {
            let (a, a3, b, b3) = (a.clone(), a3.clone(), b.clone(), b3.clone());
            std::thread::spawn(move || {
                let name = format!("t{t:03}.txt");
                let rest = format!("/buckets/shared/{name}");
                let s3 = format!("/shared/{name}");
                for round in 0..4 {
                    let body = format!("client {t} round {round}").into_bytes();
                    // Even clients write over REST and read over S3; odd ones the other way.
                    let (w, wpath, r, rpath) = if t % 2 == 0 {
                        (&a, &rest, &b3, &s3)
                    } else {
                        (&a3, &s3, &b, &rest)
                    };
                    let put = http("PUT", w, wpath, &body).unwrap();
                    assert!(
                        put.status < 300,
                        "client {t}: PUT {} {}",
                        put.status,
                        put.text()
                    );
                    let got = http("GET", r, rpath, b"").unwrap();
                    assert_eq!(
                        (got.status, got.text()),
                        (200, String::from_utf8(body).unwrap()),
                        "client {t} round {round} read an older write"
                    );
                    let list = http_with(
                        "GET",
                        &b,
                        "/buckets/shared/?limit=1000",
                        &[("Accept", "application/json")],
                        b"",
                    )
                    .unwrap()
                    .json();
                    let listed = list["Entries"].as_array().is_some_and(|es| {
                        es.iter()
                            .any(|e| e["FullPath"].as_str() == Some(rest.as_str()))
                    });
                    assert!(
                        listed,
                        "client {t}: {name} missing from the other filer's listing"
                    );
                }
                let del = http("DELETE", &b3, &s3, b"").unwrap();
                assert!(del.status < 300, "client {t}: DELETE {}", del.status);
                let gone = http("GET", &a, &rest, b"").unwrap();
                assert_eq!(gone.status, 404, "client {t}: deleted object still served");
            })
        })
        .collect();
    for t in clients {
        t.join().unwrap();
    }
    second.terminate(READY);
}

/// A filer remembers directories it read, to create files in them in one store call;
/// another filer deleting such a directory, or putting a file in its place, is seen.
#[test]
fn a_directory_changed_by_another_filer_is_seen_by_the_next_write() {
    let (_pg, _c, a, mut second, b) = two_filers();
    let put = |f: &str, p: &str, body: &[u8]| http("PUT", f, p, body).unwrap().status;
    for name in ["x", "y", "z"] {
        assert!(put(&a, &format!("/m/{name}"), name.as_bytes()) < 300);
    }
    // B deletes /m; A's next write there puts it back.
    assert!(http("DELETE", &b, "/m?recursive=true", b"").unwrap().status < 300);
    assert!(put(&a, "/m/w", b"w") < 300);
    let r = http_with("GET", &b, "/m/", &[("Accept", "application/json")], b"").unwrap();
    assert_eq!(r.status, 200);
    let listed = r.json()["Entries"].as_array().unwrap().len();
    assert_eq!(listed, 1);
    assert_eq!(http("GET", &b, "/m/w", b"").unwrap().body, b"w");
    // B puts a file where /m was; A's write below it is refused.
    assert!(http("DELETE", &b, "/m?recursive=true", b"").unwrap().status < 300);
    assert!(put(&b, "/m", b"a file") < 300);
    assert_eq!(put(&a, "/m/v", b"v"), 409);
    assert_eq!(http("GET", &a, "/m", b"").unwrap().body, b"a file");
    second.terminate(READY);
}

#[test]
fn postgres_store_needs_a_url() {
    let dir = scratch();
    let dir_flag = format!("-dir={}", dir.path().display());
    let (code, _, err) = run_kelp(&["filer", "-store=postgres", "-port=0", &dir_flag]);
    assert_ne!(code, 0);
    assert!(err.contains("-postgres.url"), "{err}");
}

#[test]
fn copy_meta_moves_a_namespace_from_redb_to_postgres() {
    let pg = PgServer::start();
    let mut c = cluster()
        .volumes(&[("", 1)])
        .filer(true)
        .filer_args(&["-maxMB=1"])
        .start();
    let a = c.filer_addr().to_string();
    let mut files = Vec::new();
    for (i, len) in [0usize, 10, 4000, 1 << 20, (3 << 20) + 17]
        .into_iter()
        .enumerate()
    {
        let body: Vec<u8> = (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        let p = format!("/m/d{}/file {i}.bin", i % 2);
        let put = http("PUT", &a, &p.replace(' ', "%20"), &body).unwrap();
        assert!(put.status < 300, "PUT {p}: {}", put.status);
        files.push((p, body));
    }
    let before = listing(&a, "/m/d1/");
    let filer = c.filer.as_mut().unwrap();
    filer.proc.terminate(READY);
    let from = format!("-from=redb:{}", filer.dir.display());
    let to = format!("-to=postgres:{}", pg.url());
    let (code, out, err) = run_kelp(&["filer.copy.meta", &from, &to]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("copied 3 directories and 5 files"), "{out}");
    // A second copy into the now full target is refused without -force.
    let (code, _, err) = run_kelp(&["filer.copy.meta", &from, &to]);
    assert_ne!(code, 0);
    assert!(err.contains("-force"), "{err}");

    let (mut f, addr) = start_filer(
        &c,
        "fpg",
        &[
            "-store=postgres".into(),
            format!("-postgres.url={}", pg.url()),
        ],
    );
    for (p, body) in &files {
        let got = http("GET", &addr, &p.replace(' ', "%20"), b"").unwrap();
        assert_eq!(got.status, 200, "{p}");
        assert!(got.body == *body, "{p} differs after the copy");
    }
    let after = listing(&addr, "/m/d1/");
    assert_eq!(
        before["Entries"], after["Entries"],
        "same entries, same chunk lists"
    );
    f.terminate(READY);
}

/// The same settings in a filer.toml: a filer started with `-config` alone serves the
/// namespace a filer started with the equivalent flags sees.
#[test]
fn filer_toml_names_the_store() {
    let pg = PgServer::start();
    let c = cluster().volumes(&[("", 1)]).start();
    let file = c.root().join("filer.toml");
    std::fs::write(
        &file,
        format!(
            "store = \"postgres\"\n[postgres]\nurl = \"{}\"\nschema = \"from_toml\"\n",
            pg.url()
        ),
    )
    .unwrap();
    let (mut a_proc, a) = start_filer(&c, "ft", &[format!("-config={}", file.display())]);
    let put = http("PUT", &a, "/t/hello.txt", b"from the toml").unwrap();
    assert!(put.status < 300, "{}", put.status);
    let (mut b_proc, b) = start_filer(
        &c,
        "fflags",
        &[
            "-store=postgres".into(),
            format!("-postgres.url={}", pg.url()),
            "-postgres.schema=from_toml".into(),
        ],
    );
    let got = http("GET", &b, "/t/hello.txt", b"").unwrap();
    assert_eq!(
        (got.status, got.body.as_slice()),
        (200, &b"from the toml"[..])
    );
    b_proc.terminate(READY);
    a_proc.terminate(READY);

    std::fs::write(&file, "store = \"postgres\"\n[postgres]\nulr = \"x\"\n").unwrap();
    let dir = format!("-dir={}", c.root().join("bad").display());
    let (code, _, err) = run_kelp(&[
        "filer",
        "-port=0",
        &dir,
        &format!("-config={}", file.display()),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("ulr"), "{err}");
}
