//! The filer's change log end to end: `GET /?op=meta.events` answers every change in
//! order and wakes a waiting reader, `kelp filer.meta.tail` prints the changes under a
//! prefix, and `kelp filer.backup` keeps a second store from which a new filer serves
//! the same namespace, byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;

fn get_json(filer: &str, path: &str) -> Value {
    let r = http("GET", filer, path, b"").unwrap();
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

fn put(filer: &str, path: &str, body: &[u8]) {
    let r = http("PUT", filer, path, body).unwrap();
    assert!(r.status < 300, "PUT {path}: {} {}", r.status, r.text());
}

/// (op, path) of every change in an events answer.
fn changes(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for ev in v["events"].as_array().unwrap() {
        for c in ev["changes"].as_array().unwrap() {
            let path = match c["op"].as_str().unwrap() {
                "rename" => format!(
                    "{} -> {}",
                    c["from"].as_str().unwrap(),
                    c["to"].as_str().unwrap()
                ),
                _ => c["path"].as_str().unwrap_or("").to_string(),
            };
            out.push((c["op"].as_str().unwrap().to_string(), path));
        }
    }
    out
}

fn body(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

#[test]
fn the_change_log_feeds_tail_and_backup() {
    let mut c = cluster()
        .volumes(&[("", 1)])
        .filer(true)
        .filer_args(&["-maxMB=1"])
        .start();
    let a = c.filer_addr().to_string();
    let head = get_json(&a, "/?op=meta.head")["head"].as_u64().unwrap();

    // A reader waiting on the log is answered as soon as a change lands.
    let waiter = {
        let a = a.clone();
        std::thread::spawn(move || {
            get_json(
                &a,
                &format!("/?op=meta.events&since={head}&wait=30&pathPrefix=/logs/"),
            )
        })
    };
    put(&a, "/logs/a.txt", b"first");
    let woke = waiter.join().unwrap();
    assert_eq!(
        changes(&woke).last().unwrap(),
        &("put".to_string(), "/logs/a.txt".to_string()),
        "{woke}"
    );

    let mut files = vec![("/logs/big.bin".to_string(), body(1, (5 << 19) + 11))];
    put(&a, &files[0].0, &files[0].1);
    put(&a, "/other/o.txt", b"elsewhere");
    let mv = http("POST", &a, "/logs/b.txt?mv.from=/logs/a.txt", b"").unwrap();
    assert!(mv.status < 300, "rename: {}", mv.status);
    put(&a, "/logs/tmp/x", b"x");
    let rm = http("DELETE", &a, "/logs/tmp?recursive=true", b"").unwrap();
    assert!(rm.status < 300, "delete: {}", rm.status);

    let all = get_json(&a, &format!("/?op=meta.events&since={head}"));
    let seen = changes(&all);
    for want in [
        ("put", "/logs/a.txt"),
        ("put", "/logs/big.bin"),
        ("put", "/other/o.txt"),
        ("rename", "/logs/a.txt -> /logs/b.txt"),
        ("put", "/logs/tmp/x"),
        ("deleteTree", "/logs/tmp"),
    ] {
        assert!(
            seen.iter().any(|(o, p)| o == want.0 && p == want.1),
            "missing {want:?} in {seen:?}"
        );
    }
    let seqs: Vec<u64> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(all["next"].as_u64(), seqs.last().copied());
    let bad = http("GET", &a, "/?op=meta.events&since=soon", b"").unwrap();
    assert_eq!(bad.status, 400, "{}", bad.text());

    // The tail prints the changes under its prefix, and only those.
    let (code, out, err) = run_kelp(&[
        "filer.meta.tail",
        &format!("-filer={a}"),
        &format!("-since={head}"),
        "-pathPrefix=/logs/",
        "-once",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(" put /logs/a.txt (5 bytes, 1 chunks)"),
        "{out}"
    );
    assert!(out.contains(" rename /logs/a.txt -> /logs/b.txt"), "{out}");
    assert!(out.contains(" delete -r /logs/tmp"), "{out}");
    assert!(!out.contains("/other/"), "{out}");

    // A backup seeded now, then kept up to date with later changes.
    let store = format!("-to=redb:{}", c.root().join("copy").display());
    let (code, _, err) = run_kelp(&["filer.backup", &format!("-filer={a}"), &store, "-once"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("copied"), "{err}");
    files.push(("/logs/c.bin".to_string(), body(2, 3 << 19)));
    put(&a, &files[1].0, &files[1].1);
    let rm = http("DELETE", &a, "/other/o.txt", b"").unwrap();
    assert!(rm.status < 300);
    let mv = http("POST", &a, "/logs/d.txt?mv.from=/logs/b.txt", b"").unwrap();
    assert!(mv.status < 300);
    let (code, _, err) = run_kelp(&["filer.backup", &format!("-filer={a}"), &store, "-once"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("copied 3 changes"), "{err}");

    let dirs = ["/", "/logs/", "/other/"];
    let before: Vec<Value> = dirs
        .iter()
        .map(|d| listing(&a, d)["Entries"].clone())
        .collect();
    c.filer.as_mut().unwrap().proc.terminate(READY);
    let (mut b_proc, b) = start_filer(&c, "copy", &[]);
    let after: Vec<Value> = dirs
        .iter()
        .map(|d| listing(&b, d)["Entries"].clone())
        .collect();
    assert_eq!(
        before, after,
        "the copy lists the same entries and chunk lists"
    );
    for (p, want) in &files {
        let got = http("GET", &b, p, b"").unwrap();
        assert_eq!(got.status, 200, "{p}");
        assert!(got.body == *want, "{p} differs in the copy");
    }
    let d = http("GET", &b, "/logs/d.txt", b"").unwrap();
    assert_eq!(d.body, b"first");
    b_proc.terminate(READY);
}
