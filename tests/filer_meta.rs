//! Metadata backup and restore through `kelp shell`: `fs.meta.save` from one filer,
//! `fs.meta.load` into a filer with an empty store gives the same listing, the same
//! chunk lists and the same bytes; a damaged file is refused with nothing loaded; a
//! second load changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ec::shell;
use common::*;

#[test]
fn save_then_load_into_an_empty_store() {
    let mut c = cluster()
        .volumes(&[("", 1)])
        .filer(true)
        .filer_args(&["-maxMB=1"])
        .start();
    let a = c.filer_addr().to_string();
    let mut files = Vec::new();
    for (i, len) in [0usize, 10, 5000, (2 << 20) + 3].into_iter().enumerate() {
        let body: Vec<u8> = (0..len).map(|j| ((i * 13 + j * 5) % 251) as u8).collect();
        let p = format!("/keep/sub{}/f{i}.bin", i % 2);
        let put = http("PUT", &a, &p, &body).unwrap();
        assert!(put.status < 300, "PUT {p}: {}", put.status);
        files.push((p, body));
    }
    let before: Vec<serde_json::Value> = ["/keep/", "/keep/sub0/", "/keep/sub1/"]
        .iter()
        .map(|d| listing(&a, d)["Entries"].clone())
        .collect();
    let file = c.root().join("meta.bin");
    let (_, out, err) = shell(
        c.master(),
        &format!("fs.meta.save -filer={a} -o={}\n", file.display()),
    );
    assert!(out.contains("saved 7 records"), "{out}\n{err}");
    let filer = c.filer.as_mut().unwrap();
    filer.proc.terminate(READY);

    // A filer with an empty store, on the same volume servers.
    let (mut b_proc, b) = start_filer(&c, "fresh", &[]);
    assert_eq!(
        listing(&b, "/")["Entries"],
        serde_json::Value::Null,
        "empty to begin with"
    );

    let mut damaged = std::fs::read(&file).unwrap();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 1;
    let bad = c.root().join("damaged.bin");
    std::fs::write(&bad, &damaged).unwrap();
    let (_, out, err) = shell(
        c.master(),
        &format!("fs.meta.load -filer={b} {}\n", bad.display()),
    );
    assert!(
        err.contains("damaged") || out.contains("damaged"),
        "{out}\n{err}"
    );
    assert_eq!(
        listing(&b, "/")["Entries"],
        serde_json::Value::Null,
        "nothing loaded"
    );

    for _ in 0..2 {
        let (_, out, err) = shell(
            c.master(),
            &format!("fs.meta.load -filer={b} {}\n", file.display()),
        );
        assert!(out.contains("loaded 7 records"), "{out}\n{err}");
    }
    let after: Vec<serde_json::Value> = ["/keep/", "/keep/sub0/", "/keep/sub1/"]
        .iter()
        .map(|d| listing(&b, d)["Entries"].clone())
        .collect();
    assert_eq!(before, after, "same entries and chunk lists");
    for (p, body) in &files {
        let got = http("GET", &b, p, b"").unwrap();
        assert_eq!(got.status, 200, "{p}");
        assert!(got.body == *body, "{p} differs after the load");
    }
    b_proc.terminate(READY);
}
