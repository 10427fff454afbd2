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
        .filer_args(&["-maxMB=1", "-aliveSeconds=5"])
        .start();
    kill_during_uploads(&mut c, None);
}

/// Two filers on one PostgreSQL store: the one killed stays down, and the other
/// reclaims and collects what it left unfinished.
#[test]
fn a_filer_sharing_postgres_cleans_up_after_a_killed_one() {
    let pg = PgServer::start();
    let args = [
        "-store=postgres".to_string(),
        format!("-postgres.url={}", pg.url()),
        "-maxMB=1".into(),
        "-aliveSeconds=5".into(),
    ];
    let mut c = cluster()
        .volumes(&[("", 1)])
        .filer(true)
        .filer_args(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .start();
    let survivor = start_filer(&c, "survivor", &args);
    kill_during_uploads(&mut c, Some(survivor));
}

/// Uploads through the cluster's filer, `kill -9` it mid-upload, then checks through
/// `survivor` (or the restarted filer) that nothing acknowledged is lost, no entry is
/// dangling, and the unfinished upload's chunks are collected.
fn kill_during_uploads(c: &mut Cluster, survivor: Option<(KelpProcess, String)>) {
    let a = c.filer_addr().to_string();
    let r = survivor
        .as_ref()
        .map_or(a.clone(), |(_, addr)| addr.clone());
    let volume = c.volumes[0].addr.clone();

    // Rounds of: writers uploading, kill -9 while an upload has stored chunks that no
    // entry names yet, restart. Until one round leaves such chunks behind (the kill
    // can land just after the upload's commit).
    let mut acked_all = Vec::new();
    let mut leaked = false;
    for round in 0..5 {
        let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..6)
            .map(|w| {
                let (a, acked, stop) = (a.clone(), acked.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut i = round * 10_000 + w;
                    while !stop.load(Ordering::Relaxed) {
                        match http("PUT", &a, &format!("/up/f{i:05}"), &body(i)) {
                            Ok(r) if r.status < 300 => acked.lock().unwrap().push(i),
                            Ok(_) | Err(_) => return,
                        }
                        i += 6;
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.lock().unwrap().len() < 12 {
            assert!(Instant::now() < deadline, "the writers made no progress");
            std::thread::sleep(Duration::from_millis(20));
        }
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
        if survivor.is_none() {
            filer.proc.restart();
            filer.proc.wait_http_ok(&a, "/", READY);
        }
        // Measured at once, before the dead filer's liveness lease (5 s) runs out, and
        // through the survivor when there is one: the killed filer then stays down
        // unless another round is needed.
        leaked = live_needles(&volume) > referenced(&r, "/up").0;
        if !leaked && survivor.is_some() {
            filer.proc.restart();
            filer.proc.wait_http_ok(&a, "/", READY);
        }
        acked_all.extend(acked.lock().unwrap().iter().copied());
        if leaked {
            break;
        }
    }
    assert!(
        leaked,
        "no kill left an unfinished upload behind in 5 rounds"
    );

    for i in &acked_all {
        let got = http("GET", &r, &format!("/up/f{i:05}"), b"").unwrap();
        assert_eq!(got.status, 200, "acknowledged f{i:05} is gone");
        assert!(got.body == body(*i), "acknowledged f{i:05} differs");
    }
    let (_, files) = referenced(&r, "/up");
    for f in &files {
        // Any entry, acknowledged or not, reads whole: none points at a missing chunk.
        let got = http("GET", &r, f, b"").unwrap();
        assert_eq!(got.status, 200, "{f} does not read back");
    }

    // The dead filer's unfinished uploads are reclaimed and collected.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (chunks, _) = referenced(&r, "/up");
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
    if let Some((mut p, _)) = survivor {
        p.terminate(READY);
    }
}
