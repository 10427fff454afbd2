//! `kill -9` of a filer in the middle of uploads: every acknowledged file reads back
//! byte-exact, no entry points at a missing chunk, and once the restarted filer has
//! reclaimed the dead one's unfinished uploads and collected them, the volume holds
//! exactly the chunks the entries reference: nothing leaked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

fn body(i: usize) -> Vec<u8> {
    let len = [10, 700_000, 1_500_000, 2_600_000][i % 4] + i;
    (0..len).map(|j| ((i * 131 + j * 7) % 251) as u8).collect()
}

/// Live needles on the volume server (written minus deleted), over all its volumes.
fn live_needles(volume: &str) -> u64 {
    let v = http("GET", volume, "/status", b"").unwrap().json();
    v["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["fileCount"].as_u64().unwrap() - v["deleteCount"].as_u64().unwrap())
        .sum()
}

/// Chunk references of every file under `dir`, and the files.
fn referenced(filer: &str, dir: &str) -> (u64, Vec<String>) {
    let list = listing(filer, &format!("{dir}/"));
    let mut chunks = 0;
    let mut files = Vec::new();
    for e in list["Entries"].as_array().cloned().unwrap_or_default() {
        chunks += e["chunks"].as_array().map_or(0, |c| c.len() as u64);
        files.push(e["FullPath"].as_str().unwrap().to_string());
    }
    (chunks, files)
}

#[test]
fn kill_9_during_uploads_loses_nothing_acknowledged_and_leaks_nothing() {
    let mut c = cluster()
        .volumes(&[("", 1)])
        .filer(true)
        .filer_args(&["-maxMB=1", "-aliveSeconds=2"])
        .start();
    let a = c.filer_addr().to_string();
    let volume = c.volumes[0].addr.clone();

    let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let (a, acked, stop) = (a.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    match http("PUT", &a, &format!("/up/f{i:04}"), &body(i)) {
                        Ok(r) if r.status < 300 => acked.lock().unwrap().push(i),
                        Ok(_) | Err(_) => return,
                    }
                    i += 6;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 24 {
        assert!(Instant::now() < deadline, "the writers made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Kill it while an upload has stored chunks that no entry names yet.
    let filer = c.filer.as_mut().unwrap();
    loop {
        assert!(
            Instant::now() < deadline,
            "never caught an upload in flight"
        );
        if live_needles(&volume) > referenced(&a, "/up").0 {
            filer.proc.kill9();
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    filer.proc.restart();
    filer.proc.wait_http_ok(&a, "/", READY);

    let acked = acked.lock().unwrap().clone();
    for i in &acked {
        let got = http("GET", &a, &format!("/up/f{i:04}"), b"").unwrap();
        assert_eq!(got.status, 200, "acknowledged f{i:04} is gone");
        assert!(got.body == body(*i), "acknowledged f{i:04} differs");
    }
    let (_, files) = referenced(&a, "/up");
    for f in &files {
        // Any entry, acknowledged or not, reads whole: none points at a missing chunk.
        let got = http("GET", &a, f, b"").unwrap();
        assert_eq!(got.status, 200, "{f} does not read back");
    }

    // The dead filer's unfinished uploads are reclaimed and collected.
    let (before, chunks) = (live_needles(&volume), referenced(&a, "/up").0);
    assert!(
        before > chunks,
        "the kill left no unfinished upload to reclaim"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (chunks, _) = referenced(&a, "/up");
        let live = live_needles(&volume);
        if live == chunks {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{live} needles on the volume but {chunks} chunks referenced: leaked chunks"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
