//! Two `kelp filer` processes on one PostgreSQL database serve one namespace: what one
//! writes, the other reads, lists and deletes at once, and the first then sees it gone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn two_filers_share_one_postgres_namespace() {
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
    let mut ports = reserve_ports(1);
    let b = ports.addr(0);
    let port = ports.port(0);
    ports.release(port);
    let mut args = vec![
        "filer".to_string(),
        "-ip=127.0.0.1".into(),
        format!("-port={port}"),
        format!("-dir={}", c.root().join("f2").display()),
        format!("-master={}", c.master()),
    ];
    args.extend(pg_args.iter().cloned());
    let mut second = start_kelp("filer2", c.root(), &args);
    second.wait_http_ok(&b, "/", READY);

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
