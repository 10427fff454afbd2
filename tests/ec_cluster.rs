//! Erasure coding end to end with real processes: a master and five volume servers in
//! three racks; `kelp shell` encodes, rebuilds and decodes while every needle stays
//! readable byte for byte through the normal volume URLs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::ec::*;
use common::*;

/// `GET` with a `Range` header (HEAD if `head`): (status, Content-Range, body).
fn get_range(addr: &str, path: &str, range: &str, head: bool) -> (u16, String, Vec<u8>) {
    let method = if head { "HEAD" } else { "GET" };
    let r = http_with(method, addr, path, &[("Range", range)], b"").unwrap();
    let content_range = r.header("content-range").unwrap_or_default().to_string();
    (r.status, content_range, r.body)
}

#[test]
fn ec_encode_read_rebuild_decode() {
    let mut c = cluster()
        .volumes(&[("r0", 2), ("r1", 2), ("r2", 1)])
        .start();
    let master = c.master().to_string();
    let servers = c.volume_addrs();
    let racks: Vec<String> = c.volumes.iter().map(|v| v.rack.clone()).collect();

    // Write needles of mixed sizes (1 B … 2 MiB).
    let stored = write_needles(&master, "collection=ec", 200);
    let vids: BTreeSet<u32> = stored.iter().map(|s| s.vid).collect();

    // Encode one volume by id, then every other used volume of the collection.
    let first = *vids.iter().next().unwrap();
    let (code, out, err) = shell(
        &master,
        &format!(
            "lock\nec.encode -volumeId={first}\nec.encode -collection=ec -fullPercent=0 -quietFor=0\nunlock\n"
        ),
    );
    assert_eq!(code, 0, "ec.encode failed:\n{out}\n{err}");
    assert_eq!(
        out.matches("encoded into 14 shards").count(),
        vids.len(),
        "{out}"
    );
    let (code, out, err) = shell(&master, "cluster.status\nvolume.list\n");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("ecShards=") && out.contains("ec volume id:"),
        "{out}"
    );
    // A failing command: reported, exit status non-zero, later commands still run.
    let (code, out, err) = shell(
        &master,
        "ec.encode -volumeId=9999\nnot.a.command\ncluster.status\n",
    );
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("9999") && err.contains("not.a.command"),
        "{err}"
    );
    assert!(out.contains("cluster:"), "{out}");
    for &vid in &vids {
        let (normal, ec) = lookup(&master, vid);
        assert!(
            normal.is_empty(),
            "volume {vid} still a normal volume: {normal:?}"
        );
        let all: BTreeSet<u8> = ec.values().flatten().copied().collect();
        assert_eq!(all.len(), 14, "volume {vid}: {ec:?}");
        assert!(
            ec.len() >= 4,
            "volume {vid} spread over {} servers",
            ec.len()
        );
        assert!(ec.values().all(|s| s.len() <= 4), "volume {vid}: {ec:?}");
        let mut per_rack: BTreeMap<&str, usize> = BTreeMap::new();
        for (url, s) in &ec {
            let i = servers.iter().position(|x| x == url).unwrap();
            *per_rack.entry(&racks[i]).or_default() += s.len();
        }
        assert!(
            per_rack.values().all(|&n| n <= 6),
            "volume {vid}: {per_rack:?}"
        );
    }

    // Every needle reads back byte-exact through the normal volume URLs.
    let mut deleted = BTreeSet::new();
    let first_holder = |vid: u32| lookup(&master, vid).1.keys().next().unwrap().clone();
    read_all(&stored, &deleted, first_holder, "after encode");
    // Ranges and HEAD work on EC volumes too (a 2 MiB needle crosses a 1 MiB block).
    let big = &stored[0];
    assert_eq!(big.data.len(), 2 << 20);
    let url = first_holder(big.vid);
    let (st, cr, body) = get_range(
        &url,
        &format!("/{}", big.fid),
        "bytes=1048000-1049999",
        false,
    );
    assert_eq!((st, cr.as_str()), (206, "bytes 1048000-1049999/2097152"));
    assert!(body == big.data[1_048_000..1_050_000]);
    let (st, _, body) = get_range(&url, &format!("/{}", big.fid), "bytes=0-9", true);
    assert_eq!((st, body.len()), (206, 0));

    // Delete a needle: gone on every holder.
    let victim = stored[3].fid.clone();
    let holders = lookup(&master, stored[3].vid).1;
    let url = holders.keys().last().unwrap();
    let r = http("DELETE", url, &format!("/{victim}"), b"").unwrap();
    assert_eq!(r.status, 202, "delete: {}", r.text());
    deleted.insert(victim.clone());
    for h in holders.keys() {
        let r = http("GET", h, &format!("/{victim}"), b"").unwrap();
        assert_eq!(r.status, 404, "deleted needle served by {h}");
    }

    // Stop a server holding shards: reads keep working (reconstruction).
    let vid0 = *vids.iter().next().unwrap();
    let ec0 = lookup(&master, vid0).1;
    let (dead_url, _) = ec0.iter().max_by_key(|(_, s)| s.len()).unwrap();
    let dead = servers.iter().position(|s| s == dead_url).unwrap();
    c.volumes[dead].proc.kill9();
    let live: Vec<String> = servers.iter().filter(|s| *s != dead_url).cloned().collect();
    let live_holder = |vid: u32| {
        lookup(&master, vid)
            .1
            .keys()
            .find(|u| *u != dead_url)
            .unwrap()
            .clone()
    };
    read_all(&stored, &deleted, live_holder, "one server down");

    // ec.rebuild regenerates the lost shards on the live servers.
    let (code, out, err) = shell(&master, "ec.rebuild -collection=ec\n");
    assert_eq!(code, 0, "ec.rebuild failed:\n{out}\n{err}");
    assert!(out.contains("rebuilt"), "{out}");
    for &vid in &vids {
        let on = shards_on(&live, vid);
        let all: BTreeSet<u8> = on.values().flatten().copied().collect();
        assert_eq!(all.len(), 14, "volume {vid} after rebuild: {on:?}");
        assert!(on.values().all(|s| s.len() <= 4), "volume {vid}: {on:?}");
    }
    read_all(&stored, &deleted, live_holder, "after rebuild");

    // The stopped server comes back with its old shards (loaded from disk at start):
    // ec.balance drops the duplicates.
    c.volumes[dead].proc.restart();
    wait_until(
        "the restarted server serves its ec shards",
        Duration::from_secs(30),
        || !shards_on(std::slice::from_ref(dead_url), vid0).is_empty(),
    );
    wait_until(
        "the master sees the restarted server's shards",
        Duration::from_secs(30),
        || lookup(&master, vid0).1.contains_key(dead_url),
    );
    let (code, out, err) = shell(&master, "ec.balance\n");
    assert_eq!(code, 0, "ec.balance failed:\n{out}\n{err}");
    assert!(out.contains("duplicate"), "{out}");
    for &vid in &vids {
        let on = shards_on(&servers, vid);
        let n: usize = on.values().map(Vec::len).sum();
        let all: BTreeSet<u8> = on.values().flatten().copied().collect();
        assert_eq!(
            (n, all.len()),
            (14, 14),
            "volume {vid} after balance: {on:?}"
        );
        assert!(
            on.values().all(|s| s.len() <= 4),
            "volume {vid}: {on:?}\n{out}"
        );
    }
    read_all(&stored, &deleted, first_holder, "after balance");

    // ec.decode turns them back into normal volumes.
    let (code, out, err) = shell(
        &master,
        &format!("ec.decode -volumeId={first}\nec.decode -collection=ec\n"),
    );
    assert_eq!(code, 0, "ec.decode failed:\n{out}\n{err}");
    wait_until(
        "every volume to be normal again",
        Duration::from_secs(20),
        || vids.iter().all(|&vid| !lookup(&master, vid).0.is_empty()),
    );
    let normal_holder = |vid: u32| lookup(&master, vid).0[0].clone();
    read_all(&stored, &deleted, normal_holder, "after decode");
    for &vid in &vids {
        assert!(
            shards_on(&live, vid).is_empty(),
            "shards of {vid} left behind"
        );
    }
}

/// Read throughput of 4 KiB needles through the volume HTTP path: normal volumes, EC
/// volumes with all shards, and EC volumes with data shards 0-3 deleted (reads that touch
/// them reconstruct). Run: `cargo test --release --test ec_cluster -- --ignored --nocapture`.
#[test]
#[ignore]
fn ec_read_throughput() {
    let c = cluster()
        .volumes(&[("r0", 2), ("r1", 2), ("r2", 1)])
        .start();
    let master = c.master().to_string();
    let mut stored = Vec::new();
    for i in 0..2000 {
        let (_, a) = get_json(&master, "/dir/assign?collection=bench");
        let fid = a["fid"].as_str().unwrap().to_string();
        let url = a["url"].as_str().unwrap().to_string();
        let mut data = payload(i * 6 + 3);
        data.truncate(4096);
        let r = http("PUT", &url, &format!("/{fid}"), &data).unwrap();
        assert_eq!(r.status, 201);
        let vid: u32 = fid.split(',').next().unwrap().parse().unwrap();
        stored.push((fid, vid, data));
    }
    let vids: BTreeSet<u32> = stored.iter().map(|s| s.1).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let measure = |label: &str, urls: &BTreeMap<u32, Vec<String>>, conc: usize| {
        let client = reqwest::Client::new();
        let jobs: Vec<(String, Vec<u8>)> = (0..conc.max(2) * 1250)
            .map(|i| {
                let (fid, vid, data) = &stored[(i * 7919) % stored.len()];
                let us = &urls[vid];
                (format!("http://{}/{fid}", us[i % us.len()]), data.clone())
            })
            .collect();
        let jobs = std::sync::Arc::new(jobs);
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Instant::now();
        let lat: Vec<Duration> = rt.block_on(async {
            let tasks: Vec<_> = (0..conc)
                .map(|_| {
                    let (client, jobs, next) = (client.clone(), jobs.clone(), next.clone());
                    tokio::spawn(async move {
                        let mut lat = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((url, want)) = jobs.get(i) else {
                                break;
                            };
                            let t = Instant::now();
                            let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
                            lat.push(t.elapsed());
                            assert_eq!(&body[..], &want[..], "{url}");
                        }
                        lat
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        });
        let secs = start.elapsed().as_secs_f64();
        let mut lat = lat;
        lat.sort();
        let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
        eprintln!(
            "{label}, {conc} clients: {} reads in {secs:.2}s = {:.0} req/s, p50 {:?} p99 {:?}",
            lat.len(),
            lat.len() as f64 / secs,
            p(0.5),
            p(0.99)
        );
    };
    let normal: BTreeMap<u32, Vec<String>> =
        vids.iter().map(|&v| (v, lookup(&master, v).0)).collect();
    measure("normal volumes", &normal, 1);
    measure("normal volumes", &normal, 16);
    let (code, out, err) = shell(
        &master,
        "ec.encode -collection=bench -fullPercent=0 -quietFor=0\n",
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let ec: BTreeMap<u32, Vec<String>> = vids
        .iter()
        .map(|&v| (v, lookup(&master, v).1.into_keys().collect()))
        .collect();
    measure("ec, 14 of 14 shards", &ec, 1);
    measure("ec, 14 of 14 shards", &ec, 16);
    for &vid in &vids {
        for (url, shards) in lookup(&master, vid).1 {
            let gone: Vec<u8> = shards.iter().copied().filter(|s| *s < 4).collect();
            if !gone.is_empty() {
                delete_shards(&url, vid, &gone);
            }
        }
    }
    wait_until(
        "the master sees 10 shards per volume",
        Duration::from_secs(20),
        || {
            vids.iter()
                .all(|&v| lookup(&master, v).1.values().map(Vec::len).sum::<usize>() == 10)
        },
    );
    let ec: BTreeMap<u32, Vec<String>> = vids
        .iter()
        .map(|&v| (v, lookup(&master, v).1.into_keys().collect()))
        .collect();
    measure("ec, data shards 0-3 missing", &ec, 1);
    measure("ec, data shards 0-3 missing", &ec, 16);
}
