//! EC volumes with their own geometry, end to end with real processes: `ec.encode
//! -dataShards=4 -parityShards=2` spreads 6 shards, reads survive two lost shards,
//! `ec.rebuild` restores all 6.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::ec::*;
use common::*;

/// A master and `racks.len()` volume servers (one per entry, in that rack).
struct TestCluster {
    _dir: tempfile::TempDir,
    master: String,
    servers: Vec<String>,
    _m: KelpProcess,
    vols: Vec<KelpProcess>,
}

fn start_cluster(racks: &[&str]) -> TestCluster {
    let dir = scratch();
    let mport = free_port();
    let master = format!("127.0.0.1:{mport}");
    let mut m = start_master(dir.path(), "m", mport, &[], &[]);
    m.wait_http_ok(&master, "/cluster/status", Duration::from_secs(30));
    let ports: Vec<u16> = racks.iter().map(|_| free_port()).collect();
    let servers = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let vols = racks
        .iter()
        .zip(&ports)
        .enumerate()
        .map(|(i, (rack, port))| {
            start_volume(
                dir.path(),
                &format!("v{i}"),
                *port,
                std::slice::from_ref(&master),
                &[&format!("-rack={rack}")],
            )
        })
        .collect();
    wait_for_nodes(&master, racks.len(), Duration::from_secs(30));
    TestCluster {
        _dir: dir,
        master,
        servers,
        _m: m,
        vols,
    }
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

#[test]
fn ec_four_plus_two_encode_lose_rebuild() {
    let mut c = start_cluster(&["r0", "r0", "r1", "r1"]);
    let stored: Vec<Stored> = (0..60).map(|i| put(&c.master, "geo", payload(i))).collect();
    let vids: BTreeSet<u32> = stored.iter().map(|s| s.vid).collect();

    // A geometry the codec cannot do is refused with a clear 400.
    for q in [
        "dataShards=30&parityShards=4",
        "dataShards=0",
        "parityShards=x",
    ] {
        let r = http(
            "POST",
            &c.servers[0],
            &format!("/admin/ec/encode?volume=1&{q}"),
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert!(r.text().contains("Shards"), "{q}: {}", r.text());
    }

    let (code, out, err) = shell(
        &c.master,
        "ec.encode -collection=geo -fullPercent=0 -quietFor=0 -dataShards=4 -parityShards=2\n",
    );
    assert_eq!(code, 0, "ec.encode failed:\n{out}\n{err}");
    assert_eq!(
        out.matches("encoded into 6 shards").count(),
        vids.len(),
        "{out}"
    );
    for &vid in &vids {
        let (normal, ec) = lookup(&c.master, vid);
        assert!(normal.is_empty(), "volume {vid} still normal: {normal:?}");
        let all: Vec<u8> = ec.values().flatten().copied().collect();
        assert_eq!(all.len(), 6, "volume {vid}: {ec:?}");
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 6, "{ec:?}");
        assert!(ec.values().all(|s| s.len() <= 2), "volume {vid}: {ec:?}");
        for (url, v) in infos(&c.servers, vid) {
            assert_eq!(
                (v["dataShards"].as_u64(), v["parityShards"].as_u64()),
                (Some(4), Some(2)),
                "{url}: {v}"
            );
        }
    }
    let first_holder = |vid: u32| lookup(&c.master, vid).1.keys().next().unwrap().clone();
    read_all(&stored, &BTreeSet::new(), first_holder, "after encode");

    // Lose two shards of every volume: the holder with the most shards of the first one
    // goes down (2 shards = all the parity), and the other volumes lose two shard files.
    let vid0 = *vids.iter().next().unwrap();
    let ec0 = lookup(&c.master, vid0).1;
    let (dead_url, _) = ec0.iter().max_by_key(|(_, s)| s.len()).unwrap();
    let dead_url = dead_url.clone();
    let dead = c.servers.iter().position(|s| *s == dead_url).unwrap();
    c.vols[dead].kill9();
    let live: Vec<String> = c
        .servers
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

    let (code, out, err) = shell(&c.master, "ec.rebuild -collection=geo\n");
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
