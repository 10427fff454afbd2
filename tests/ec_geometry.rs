//! EC volumes with their own geometry, end to end with real processes: `ec.encode
//! -dataShards=4 -parityShards=2` spreads 6 shards, reads survive a lost holder,
//! `ec.rebuild` restores 6 shards; `ec.vacuum` shrinks the shards of a volume after deletes
//! and keeps the placement, every holder serving the live needles byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::ec::*;
use common::*;

/// A master and four volume servers, two in each of two racks.
fn start_cluster() -> Cluster {
    cluster().volumes(&[("r0", 2), ("r1", 2)]).start()
}

/// Assigns a fid in `collection` and uploads `data` to it.
fn put(master: &str, collection: &str, data: Vec<u8>) -> Stored {
    let (st, a) = get_json(master, &format!("/dir/assign?collection={collection}"));
    assert_eq!(st, 200, "assign: {a}");
    let fid = a["fid"].as_str().unwrap().to_string();
    let url = a["url"].as_str().unwrap().to_string();
    let r = http("PUT", &url, &format!("/{fid}"), &data).unwrap();
    assert_eq!(r.status, 201, "upload {fid}: {}", r.text());
    let vid = fid.split(',').next().unwrap().parse().unwrap();
    Stored { fid, vid, data }
}

/// `/admin/ec/info` of `vid` on every server that has it.
fn infos(servers: &[String], vid: u32) -> BTreeMap<String, serde_json::Value> {
    servers
        .iter()
        .filter_map(|s| {
            let r = http("GET", s, &format!("/admin/ec/info?volume={vid}"), b"").ok()?;
            (r.status == 200).then(|| (s.clone(), r.json()))
        })
        .collect()
}

fn shard_bytes(servers: &[String], vid: u32) -> u64 {
    infos(servers, vid)
        .values()
        .flat_map(|v| v["shards"].as_array().unwrap().clone())
        .map(|f| f["size"].as_u64().unwrap())
        .sum()
}

#[test]
fn ec_four_plus_two_encode_lose_rebuild() {
    let mut c = start_cluster();
    let (master, servers) = (c.master().to_string(), c.volume_addrs());
    let stored: Vec<Stored> = (0..60).map(|i| put(&master, "geo", payload(i))).collect();
    let vids: BTreeSet<u32> = stored.iter().map(|s| s.vid).collect();

    // A geometry the codec cannot do is refused with a clear 400.
    for q in [
        "dataShards=30&parityShards=4",
        "dataShards=0",
        "parityShards=x",
    ] {
        let r = http(
            "POST",
            &servers[0],
            &format!("/admin/ec/encode?volume=1&{q}"),
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert!(r.text().contains("Shards"), "{q}: {}", r.text());
    }

    let (code, out, err) = shell(
        &master,
        "ec.encode -collection=geo -fullPercent=0 -quietFor=0 -dataShards=4 -parityShards=2\n",
    );
    assert_eq!(code, 0, "ec.encode failed:\n{out}\n{err}");
    assert_eq!(
        out.matches("encoded into 6 shards").count(),
        vids.len(),
        "{out}"
    );
    for &vid in &vids {
        let (normal, ec) = lookup(&master, vid);
        assert!(normal.is_empty(), "volume {vid} still normal: {normal:?}");
        let all: Vec<u8> = ec.values().flatten().copied().collect();
        assert_eq!(all.len(), 6, "volume {vid}: {ec:?}");
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 6, "{ec:?}");
        assert!(ec.values().all(|s| s.len() <= 2), "volume {vid}: {ec:?}");
        for (url, v) in infos(&servers, vid) {
            assert_eq!(
                (v["dataShards"].as_u64(), v["parityShards"].as_u64()),
                (Some(4), Some(2)),
                "{url}: {v}"
            );
        }
    }
    let first_holder = |vid: u32| lookup(&master, vid).1.keys().next().unwrap().clone();
    read_all(&stored, &BTreeSet::new(), first_holder, "after encode");

    // Lose two shards of every volume: the holder with the most shards of the first one
    // goes down (2 shards = all the parity), and the other volumes lose two shard files.
    let vid0 = *vids.iter().next().unwrap();
    let ec0 = lookup(&master, vid0).1;
    let (dead_url, _) = ec0.iter().max_by_key(|(_, s)| s.len()).unwrap();
    let dead_url = dead_url.clone();
    let dead = servers.iter().position(|s| *s == dead_url).unwrap();
    c.volumes[dead].proc.kill9();
    let live: Vec<String> = servers
        .iter()
        .filter(|s| **s != dead_url)
        .cloned()
        .collect();
    for &vid in &vids {
        let on = shards_on(&live, vid);
        let mut to_drop = on.values().map(Vec::len).sum::<usize>().saturating_sub(4);
        for (url, shards) in on {
            if to_drop == 0 {
                break;
            }
            let gone: Vec<u8> = shards.iter().take(to_drop).copied().collect();
            to_drop -= gone.len();
            delete_shards(&url, vid, &gone);
        }
    }
    for &vid in &vids {
        let n: usize = shards_on(&live, vid).values().map(Vec::len).sum();
        assert_eq!(
            n, 4,
            "volume {vid} should be down to its 4 data shards' worth"
        );
    }
    let live_holder = |vid: u32| shards_on(&live, vid).into_keys().next().unwrap();
    read_all(&stored, &BTreeSet::new(), live_holder, "two shards lost");

    let (code, out, err) = shell(&master, "ec.rebuild -collection=geo\n");
    assert_eq!(code, 0, "ec.rebuild failed:\n{out}\n{err}");
    for &vid in &vids {
        let on = shards_on(&live, vid);
        let all: Vec<u8> = on.values().flatten().copied().collect();
        assert_eq!(all.len(), 6, "volume {vid} after rebuild: {on:?}\n{out}");
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 6, "{on:?}");
        // 3 servers left in 2 racks: the rack cap (3) may keep one server at 3 shards.
        assert!(on.values().all(|s| s.len() <= 3), "volume {vid}: {on:?}");
    }
    read_all(&stored, &BTreeSet::new(), live_holder, "after rebuild");
}

#[test]
fn ec_vacuum_shrinks_shards_and_keeps_placement() {
    let c = start_cluster();
    let (master, servers) = (c.master().to_string(), c.volume_addrs());
    // 40 needles of 300 KB in one volume: 12 MB, 3 stripes of 4 data blocks.
    let mut stored: Vec<Stored> = Vec::new();
    let mut vid = None;
    let mut i = 0;
    while stored.len() < 40 {
        i += 1;
        let mut data = payload(i * 6 + 5);
        data.resize(300_000, (i % 251) as u8);
        let s = put(&master, "vac", data);
        if *vid.get_or_insert(s.vid) == s.vid {
            stored.push(s);
        }
        assert!(i < 2000, "the master never assigned volume {vid:?} again");
    }
    let vid = vid.unwrap();
    let (code, out, err) = shell(
        &master,
        &format!("ec.encode -volumeId={vid} -dataShards=4 -parityShards=2\n"),
    );
    assert_eq!(code, 0, "ec.encode failed:\n{out}\n{err}");
    let placement = shards_on(&servers, vid);
    assert_eq!(placement.values().map(Vec::len).sum::<usize>(), 6);
    let before = shard_bytes(&servers, vid);

    // Nothing to do under the threshold.
    let (code, out, err) = shell(&master, "ec.vacuum -collection=vac\n");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("0 of 1 volume(s) vacuumed"), "{out}");

    // Delete 30 of the 40 needles through the normal volume URLs.
    let mut deleted = BTreeSet::new();
    for (n, s) in stored.iter().enumerate().filter(|(n, _)| n % 4 != 0) {
        let url = &servers[n % servers.len()];
        let url = if placement.contains_key(url) {
            url
        } else {
            placement.keys().next().unwrap()
        };
        let r = http("DELETE", url, &format!("/{}", s.fid), b"").unwrap();
        assert_eq!(r.status, 202, "delete {}: {}", s.fid, r.text());
        deleted.insert(s.fid.clone());
    }
    for (url, v) in infos(&servers, vid) {
        assert_eq!(v["deleted"].as_u64(), Some(30), "{url}: {v}");
    }

    let (code, out, err) = shell(&master, "ec.vacuum -garbageThreshold=0.5\n");
    assert_eq!(code, 0, "ec.vacuum failed:\n{out}\n{err}");
    assert!(out.contains("1 of 1 volume(s) vacuumed"), "{out}");
    let after = shard_bytes(&servers, vid);
    assert!(
        after * 2 < before,
        "shards went from {before} to {after} bytes"
    );
    assert_eq!(
        shards_on(&servers, vid),
        placement,
        "the placement changed\n{out}"
    );
    for (url, v) in infos(&servers, vid) {
        assert_eq!(
            (v["needles"].as_u64(), v["deleted"].as_u64()),
            (Some(10), Some(0)),
            "{url}: {v}"
        );
    }
    for holder in placement.keys() {
        read_all(&stored, &deleted, |_| holder.clone(), "after ec.vacuum");
    }
}
