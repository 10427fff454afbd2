//! `volume.fsck` and `volume.balance` with real processes: fsck finds a chunk the filer
//! references that a volume server lost and a needle written around the filer, deletes
//! only the latter (and only once it is older than the cutoff); balance spreads the
//! volumes of a server that got them all over servers started later, every needle
//! staying readable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::ec::*;
use common::*;

/// The chunk fids of the filer entry at `path`, each with whether it is a manifest.
fn chunks_of(filer: &str, path: &str) -> Vec<(String, bool)> {
    let (st, e) = get_json(filer, &format!("{path}?metadata=true"));
    assert_eq!(st, 200, "{path}: {e}");
    e["chunks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["file_id"].as_str().unwrap().to_string(),
                c["is_chunk_manifest"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn vid_of(fid: &str) -> u32 {
    fid.split(',').next().unwrap().parse().unwrap()
}

/// Writes `data` straight to a volume server (`/dir/assign<query>`, then a PUT of the
/// fid), around any filer; returns the fid.
fn put_direct(master: &str, query: &str, data: &[u8]) -> String {
    let (st, a) = get_json(master, &format!("/dir/assign{query}"));
    assert_eq!(st, 200, "{a}");
    let fid = a["fid"].as_str().unwrap().to_string();
    let r = http("PUT", a["url"].as_str().unwrap(), &format!("/{fid}"), data).unwrap();
    assert_eq!(r.status, 201, "PUT {fid}: {}", r.text());
    fid
}

/// The summary line of `volume.fsck`.
fn summary(out: &str) -> &str {
    out.lines()
        .rfind(|l| l.starts_with("volume.fsck: ") && l.contains(" volume(s), "))
        .unwrap_or_else(|| panic!("no summary in {out}"))
}

/// `GET fid` from the first server the master lists for its volume.
fn get_fid(master: &str, fid: &str) -> HttpReply {
    let (locs, _) = lookup(master, vid_of(fid));
    let url = locs.first().expect("a holder").clone();
    http("GET", &url, &format!("/{fid}"), b"").unwrap()
}

#[test]
fn fsck_reports_missing_and_orphan_needles_and_deletes_only_orphans() {
    let c = cluster()
        .master_args(&["-maintenance.scripts="])
        .volumes(&[("r0", 2)])
        .start();
    let master = c.master().to_string();
    let (_filer, filer) = start_filer(
        &c,
        "filer",
        &["-maxMB=1".to_string(), "-manifestBatch=2".to_string()],
    );
    // Files of one chunk, of several, and one whose chunks are folded into manifests.
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in [1usize, 2, 3, 10, 20, 50] {
        files.insert(format!("/docs/f{i}.bin"), payload(i));
    }
    let big: Vec<u8> = (0..5 * (1 << 20) + 12345)
        .map(|i: usize| (i * 31 % 251) as u8)
        .collect();
    files.insert("/docs/sub/big.bin".to_string(), big);
    for (path, data) in &files {
        let r = http("PUT", &filer, path, data).unwrap();
        assert_eq!(r.status, 201, "PUT {path}: {}", r.text());
    }
    let big_chunks = chunks_of(&filer, "/docs/sub/big.bin");
    assert!(
        big_chunks.iter().any(|(_, m)| *m),
        "the big file has manifest chunks: {big_chunks:?}"
    );
    assert!(
        chunks_of(&filer, "/docs/f50.bin").len() >= 2,
        "2 MiB in 1 MiB chunks"
    );

    // An orphan: a needle written straight to a volume server, no entry names it.
    let orphan = put_direct(&master, "", b"nobody's");
    // A missing one: a referenced chunk deleted straight on its volume server.
    let (lost, _) = chunks_of(&filer, "/docs/f3.bin")[0].clone();
    let (holders, _) = lookup(&master, vid_of(&lost));
    let r = http("DELETE", &holders[0], &format!("/{lost}"), b"").unwrap();
    assert!(r.status < 300, "DELETE {lost}: {}", r.text());
    let broken = "/docs/f3.bin";

    // With the default cutoff (5 minutes) the orphan is too young to count.
    let fsck = format!("volume.fsck -filer={filer}");
    let (code, out, err) = shell(&master, &format!("{fsck}\n"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(summary(&out).contains(" 1 missing, 0 orphan(s)"), "{out}");
    assert!(out.contains("younger than -cutoffTimeAgo"), "{out}");
    // With no cutoff: one of each, reported and nothing deleted.
    let (code, out, err) = shell(&master, &format!("{fsck} -cutoffTimeAgo=0s -verbose\n"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(summary(&out).contains(" 1 missing, 1 orphan(s) ("), "{out}");
    assert!(!summary(&out).ends_with(" deleted"), "{out}");
    assert!(out.contains(&format!("missing: {lost}")), "{out}");
    assert_eq!(get_fid(&master, &orphan).status, 200, "only reported");
    // Deleting: the orphan goes, every referenced chunk stays.
    let (code, out, err) = shell(
        &master,
        &format!("{fsck} -cutoffTimeAgo=0s -reallyDeleteFromVolume\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    let line = summary(&out);
    assert!(line.contains(" 1 missing, 1 orphan(s) ("), "{out}");
    assert!(line.ends_with(" deleted"), "{out}");
    assert_eq!(get_fid(&master, &orphan).status, 404, "the orphan is gone");
    for (path, data) in files.iter().filter(|(p, _)| *p != broken) {
        let r = http("GET", &filer, path, b"").unwrap();
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body == *data, "{path} reads back byte-exact");
    }
    for (fid, _) in big_chunks {
        assert_eq!(get_fid(&master, &fid).status, 200, "manifest {fid} kept");
    }
    let (code, out, _) = shell(&master, &format!("{fsck} -cutoffTimeAgo=0s\n"));
    assert_eq!(code, 0);
    assert!(summary(&out).contains(" 1 missing, 0 orphan(s)"), "{out}");
}

/// Volumes per volume server, as the master counts them.
fn volume_counts(master: &str) -> BTreeMap<String, u64> {
    let (_, d) = get_json(master, "/dir/status");
    let mut out = BTreeMap::new();
    for dc in d["Topology"]["DataCenters"].as_array().unwrap() {
        for rack in dc["Racks"].as_array().unwrap() {
            for n in rack["DataNodes"].as_array().unwrap() {
                out.insert(
                    n["Url"].as_str().unwrap().to_string(),
                    n["Volumes"].as_u64().unwrap(),
                );
            }
        }
    }
    out
}

fn spread(counts: &BTreeMap<String, u64>) -> u64 {
    counts.values().max().unwrap() - counts.values().min().unwrap()
}

#[test]
fn balance_spreads_the_volumes_of_one_server_over_new_ones() {
    let c = cluster()
        .master_args(&["-maintenance.scripts="])
        .volume_args(&["-max=20"])
        .volumes(&[("r0", 1)])
        .start();
    let master = c.master().to_string();
    let r = http("POST", &master, "/vol/grow?count=6&collection=bal", b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let mut stored = Vec::new();
    for i in 0..30 {
        let data = payload(i);
        let fid = put_direct(&master, "?collection=bal", &data);
        stored.push(Stored {
            vid: vid_of(&fid),
            fid,
            data,
        });
    }
    // Two more servers, one in the same rack, one in another: both empty.
    let more = |rack: &str| [format!("-rack={rack}"), "-max=20".to_string()];
    let (_v1, _) = start_volume(&c, "v1", &more("r0"));
    let (_v2, _) = start_volume(&c, "v2", &more("r1"));
    wait_for_nodes(&master, 3, READY);
    let before = volume_counts(&master);
    assert_eq!(before.len(), 3);
    assert!(spread(&before) >= 6, "{before:?}");

    let (code, out, err) = shell(&master, "volume.balance\n");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("move(s) planned; run with -force"), "{out}");
    assert!(!out.contains(" 0 move(s) planned"), "{out}");
    assert_eq!(volume_counts(&master), before, "a plan moves nothing");

    let (code, out, err) = shell(&master, "volume.balance -collection=bal -force\n");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("volume(s) moved"), "{out}");
    wait_until(
        "the master to count the volumes within 1 of each other",
        Duration::from_secs(30),
        || spread(&volume_counts(&master)) <= 1,
    );
    let after = volume_counts(&master);
    assert_eq!(
        after.values().sum::<u64>(),
        before.values().sum::<u64>(),
        "moved, not copied: {after:?}"
    );
    read_all(
        &stored,
        &Default::default(),
        |vid| lookup(&master, vid).0[0].clone(),
        "after the balance",
    );
    let (code, out, _) = shell(&master, "volume.balance\n");
    assert_eq!(code, 0);
    assert!(out.contains(" 0 move(s) planned"), "{out}");
}
