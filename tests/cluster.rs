//! Masters and volume servers as real processes: leader election, failover without
//! duplicate file ids, placement across racks, replication and vacuum.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

fn assign(master: &str, query: &str) -> Option<serde_json::Value> {
    let r = http("POST", master, &format!("/dir/assign{query}"), b"").ok()?;
    if r.status != 200 {
        eprintln!("assign{query} at {master}: {} {}", r.status, r.text());
        return None;
    }
    Some(r.json())
}

fn key_of(fid: &str) -> u64 {
    let kc = fid.split(',').nth(1).unwrap();
    u64::from_str_radix(&kc[..kc.len() - 8], 16).unwrap()
}

#[test]
fn failover_never_hands_out_a_file_id_twice() {
    let mut c = cluster()
        .masters(3)
        .volumes(&[("r0", 1), ("r1", 1)])
        .start();
    let addrs = c.master_addrs();
    let leader = c.master().to_string();
    assert!(assign(&leader, "").is_some(), "first assign");

    let keys: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let live: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(addrs.clone()));
    let errors = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (keys, stop, live, errors) =
                (keys.clone(), stop.clone(), live.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let targets = live.lock().unwrap().clone();
                    let m = &targets[i % targets.len()];
                    i += 1;
                    // Every tenth call asks for a batch: keys K..K+4 are all handed out.
                    let count = if i % 10 == 0 { 5 } else { 1 };
                    match assign(m, &format!("?count={count}")) {
                        Some(a) => {
                            let k = key_of(a["fid"].as_str().unwrap());
                            let mut ks = keys.lock().unwrap();
                            ks.extend(k..k + count);
                        }
                        None => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
            })
        })
        .collect();
    let count = || keys.lock().unwrap().len();
    wait_until("8000 ids before the kill", Duration::from_secs(120), || {
        count() >= 8000
    });

    // kill -9 the leader; measure until assigns flow again through the survivors.
    let li = addrs.iter().position(|a| *a == leader).unwrap();
    live.lock().unwrap().retain(|a| *a != leader);
    c.masters[li].proc.kill9();
    let killed_at = Instant::now();
    let before = count();
    let survivors: Vec<String> = addrs.iter().filter(|a| **a != leader).cloned().collect();
    wait_until("assigns after failover", Duration::from_secs(30), || {
        count() > before + 50
    });
    let failover = killed_at.elapsed();
    let new_leader = wait_for_leader(&survivors, Duration::from_secs(30));
    assert_ne!(new_leader, leader);
    println!(
        "failover: a new leader ({new_leader}) served assigns {failover:?} after kill -9 of {leader}"
    );
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );

    wait_until("16000 ids", Duration::from_secs(120), || count() >= 16000);
    c.masters[li].proc.restart();
    live.lock().unwrap().push(leader.clone());
    wait_for_leader(&addrs, Duration::from_secs(30));
    wait_until("22000 ids", Duration::from_secs(120), || count() >= 22000);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }

    let keys = keys.lock().unwrap();
    let unique: HashSet<u64> = keys.iter().copied().collect();
    println!(
        "{} ids assigned ({} failed calls during the run)",
        keys.len(),
        errors.load(Ordering::Relaxed)
    );
    assert_eq!(unique.len(), keys.len(), "a file id was handed out twice");
    for v in &mut c.volumes {
        assert!(v.proc.is_running());
    }
}

#[test]
fn placement_across_racks_and_impossible_placements() {
    let c = cluster().volumes(&[("r1", 2), ("r2", 1)]).start();
    let m = c.master().to_string();

    let a = assign(&m, "?replication=010").expect("010 assign");
    let vid = a["fid"]
        .as_str()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let (_, status) = get_json(&m, "/dir/status");
    let mut racks_of_vid = Vec::new();
    for rack in status["Topology"]["DataCenters"][0]["Racks"]
        .as_array()
        .unwrap()
    {
        for node in rack["DataNodes"].as_array().unwrap() {
            if node["VolumeIds"]
                .as_str()
                .unwrap()
                .split(' ')
                .any(|v| v == vid)
            {
                racks_of_vid.push(rack["Id"].as_str().unwrap().to_string());
            }
        }
    }
    racks_of_vid.sort();
    assert_eq!(
        racks_of_vid,
        vec!["r1", "r2"],
        "010 puts the copies in different racks"
    );

    let a = assign(&m, "?replication=001").expect("001 assign");
    let (_, l) = get_json(
        &m,
        &format!("/dir/lookup?volumeId={}", a["fid"].as_str().unwrap()),
    );
    assert_eq!(l["locations"].as_array().unwrap().len(), 2);

    for bad in ["?replication=200", "?replication=020", "?replication=003"] {
        let r = http("GET", &m, &format!("/dir/assign{bad}"), b"").unwrap();
        assert_eq!(r.status, 406, "{bad}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains("cannot place"),
            "{}",
            r.text()
        );
    }
    for (bad, code) in [
        ("/dir/assign?replication=0x0", 400),
        ("/dir/assign?ttl=7q", 400),
        ("/dir/assign?count=0", 400),
        ("/dir/assign?nosuch=1", 400),
        ("/dir/lookup?volumeId=12345", 404),
        ("/dir/lookup?volumeId=abc", 400),
        ("/dir/lookup", 400),
        ("/vol/grow", 400),
        ("/vol/vacuum?garbageThreshold=7", 400),
        ("/not-a-fid", 400),
    ] {
        let r = http("GET", &m, bad, b"").unwrap();
        assert_eq!(r.status, code, "{bad}: {}", r.text());
        assert!(
            r.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{bad}"
        );
    }
    let r = http("GET", &m, "/vol/grow?count=2&replication=001", b"").unwrap();
    assert_eq!(r.json()["count"], 2, "{}", r.text());

    // /submit: assign and upload in one call.
    let body = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.txt\"\r\n\r\nsubmitted\r\n--B--\r\n";
    let r = submit(&m, "/submit?collection=tmp", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["fileName"], "s.txt");
    assert_eq!(j["size"], 9);
    let (server, fid) = j["fileUrl"].as_str().unwrap().split_once('/').unwrap();
    assert_eq!(
        http("GET", server, &format!("/{fid}"), b"").unwrap().body,
        b"submitted"
    );

    // /col/delete drops the collection's volumes everywhere.
    let r = http("GET", &m, "/col/delete?collection=tmp", b"").unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        http("GET", server, &format!("/{fid}"), b"").unwrap().status,
        404
    );
    let r = http("GET", &m, "/col/delete", b"").unwrap();
    assert_eq!(r.status, 400);
}

fn submit(addr: &str, path: &str, body: &[u8]) -> HttpReply {
    let content_type = ("Content-Type", "multipart/form-data; boundary=B");
    http_with("POST", addr, path, &[content_type], body).unwrap()
}

#[test]
fn replicated_writes_reach_every_copy() {
    let mut c = cluster().volumes(&[("", 2)]).start();
    let m = c.master().to_string();
    let copies = c.volume_addrs();
    let a = assign(&m, "?replication=001").expect("assign");
    let fid = a["fid"].as_str().unwrap().to_string();
    let r = http(
        "PUT",
        a["url"].as_str().unwrap(),
        &format!("/{fid}"),
        b"replicated bytes",
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    for v in &copies {
        let r = http("GET", v, &format!("/{fid}"), b"").unwrap();
        assert_eq!(r.body, b"replicated bytes", "copy on {v}");
    }
    let r = http(
        "DELETE",
        a["url"].as_str().unwrap(),
        &format!("/{fid}"),
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 202);
    for v in &copies {
        let r = http("GET", v, &format!("/{fid}"), b"").unwrap();
        assert_eq!(r.status, 404, "delete reached {v}");
    }

    // One replica down: the write is refused, and the volume stops taking writes
    // instead of letting the copies drift apart.
    let a = assign(&m, "?replication=001").expect("assign");
    let fid = a["fid"].as_str().unwrap().to_string();
    let url = a["url"].as_str().unwrap().to_string();
    let other = if url == copies[0] { 1 } else { 0 };
    c.volumes[other].proc.kill9();
    let r = http("PUT", &url, &format!("/{fid}"), b"one copy only").unwrap();
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    let vid = fid.split(',').next().unwrap();
    let (_, st) = get_json(&url, "/status");
    let vol = st["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"].as_u64() == vid.parse::<u64>().ok())
        .unwrap()
        .clone();
    assert_eq!(vol["readOnly"], true, "{st}");
}

#[test]
fn garbage_threshold_vacuum_reclaims_space() {
    let c = cluster()
        .master_args(&[
            "-vacuumIntervalSeconds=1",
            "-garbageThreshold=0.3",
            "-pulseSeconds=1",
        ])
        .volumes(&[("", 1)])
        .start();
    let (m, v) = (c.master().to_string(), c.volumes[0].addr.clone());
    let body = vec![42u8; 100_000];
    let mut fids = Vec::new();
    for _ in 0..10 {
        let a = assign(&m, "?collection=vac").expect("assign");
        let fid = a["fid"].as_str().unwrap().to_string();
        assert_eq!(
            http("PUT", &v, &format!("/{fid}"), &body).unwrap().status,
            201
        );
        fids.push(fid);
    }
    let vids: HashSet<String> = fids
        .iter()
        .map(|f| f.split(',').next().unwrap().to_string())
        .collect();
    let dat_total = || -> u64 {
        let (_, st) = get_json(&v, "/status");
        st["Volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| vids.contains(&x["id"].to_string()))
            .map(|x| x["size"].as_u64().unwrap())
            .sum()
    };
    let before = dat_total();
    for f in &fids[..8] {
        assert_eq!(
            http("DELETE", &v, &format!("/{f}"), b"").unwrap().status,
            202
        );
    }
    wait_until(
        "the periodic vacuum to shrink the volumes",
        Duration::from_secs(60),
        || dat_total() < before / 2,
    );
    for f in &fids[8..] {
        let r = http("GET", &v, &format!("/{f}"), b"").unwrap();
        assert_eq!(r.body, body, "live needles survive vacuum");
    }
    for f in &fids[..8] {
        assert_eq!(http("GET", &v, &format!("/{f}"), b"").unwrap().status, 404);
    }
}

/// A master with `-pulseSeconds=1` counts a volume server gone after 3 s without a
/// heartbeat; volume servers learn the pulse from heartbeat answers and beat at least
/// that often, so the server never drops out of the topology (it flapped every 5 s).
#[test]
fn volume_servers_follow_the_masters_pulse() {
    let c = cluster()
        .master_args(&["-pulseSeconds=1"])
        .volumes(&[("", 1)])
        .start();
    let m = c.master().to_string();
    let watch_until = std::time::Instant::now() + Duration::from_secs(8);
    let mut seen = 0;
    while std::time::Instant::now() < watch_until {
        assert_eq!(
            node_count(&m),
            Some(1),
            "the volume server dropped out of the topology"
        );
        seen += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen > 10);
}
