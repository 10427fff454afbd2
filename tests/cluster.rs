//! Masters and volume servers as real processes: leader election, failover without
//! duplicate file ids, placement across racks, replication and vacuum.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Waits until exactly one master says it leads and every live master names it.
fn wait_for_leader(masters: &[String], within: Duration) -> String {
    let mut leader = String::new();
    wait_until("one agreed raft leader", within, || {
        let statuses: Vec<serde_json::Value> = masters
            .iter()
            .filter_map(|m| http("GET", m, "/cluster/status", b"").ok())
            .filter(|r| r.status == 200)
            .map(|r| r.json())
            .collect();
        let leaders: Vec<&serde_json::Value> =
            statuses.iter().filter(|s| s["IsLeader"] == true).collect();
        if statuses.len() != masters.len() || leaders.len() != 1 {
            return false;
        }
        let named = leaders[0]["Leader"].as_str().unwrap_or("").to_string();
        if statuses.iter().all(|s| s["Leader"] == named.as_str()) && !named.is_empty() {
            leader = named;
            true
        } else {
            false
        }
    });
    leader
}

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
    let dir = scratch();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut masters: Vec<KelpProcess> = (0..3)
        .map(|i| start_master(dir.path(), &format!("m{i}"), ports[i], &addrs, &[]))
        .collect();
    let mut vols: Vec<KelpProcess> = (0..2)
        .map(|i| {
            start_volume(
                dir.path(),
                &format!("v{i}"),
                free_port(),
                &addrs,
                &[&format!("-rack=r{i}")],
            )
        })
        .collect();
    let leader = wait_for_leader(&addrs, Duration::from_secs(30));
    wait_for_nodes(&leader, 2, Duration::from_secs(30));
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
    masters[li].kill9();
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
    masters[li].restart();
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
    for v in &mut vols {
        assert!(v.is_running());
    }
}

#[test]
fn placement_across_racks_and_impossible_placements() {
    let dir = scratch();
    let (_master, m) = single_master(dir.path(), &[]);
    let _v: Vec<KelpProcess> = [("a", "r1"), ("b", "r1"), ("c", "r2")]
        .iter()
        .map(|(n, rack)| {
            start_volume(
                dir.path(),
                n,
                free_port(),
                std::slice::from_ref(&m),
                &[&format!("-rack={rack}")],
            )
        })
        .collect();
    wait_for_nodes(&m, 3, Duration::from_secs(30));

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
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = String::from_utf8_lossy(&raw[..end])
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    HttpReply {
        status,
        headers: Vec::new(),
        body: raw[end + 4..].to_vec(),
    }
}

#[test]
fn replicated_writes_reach_every_copy() {
    let dir = scratch();
    let (_master, m) = single_master(dir.path(), &[]);
    let ports = [free_port(), free_port()];
    let mut vols: Vec<KelpProcess> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            start_volume(
                dir.path(),
                &format!("v{i}"),
                *p,
                std::slice::from_ref(&m),
                &[],
            )
        })
        .collect();
    wait_for_nodes(&m, 2, Duration::from_secs(30));
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
    for p in ports {
        let r = http("GET", &format!("127.0.0.1:{p}"), &format!("/{fid}"), b"").unwrap();
        assert_eq!(r.body, b"replicated bytes", "copy on port {p}");
    }
    let r = http(
        "DELETE",
        a["url"].as_str().unwrap(),
        &format!("/{fid}"),
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 202);
    for p in ports {
        let r = http("GET", &format!("127.0.0.1:{p}"), &format!("/{fid}"), b"").unwrap();
        assert_eq!(r.status, 404, "delete reached port {p}");
    }

    // One replica down: the write is refused, and the volume stops taking writes
    // instead of letting the copies drift apart.
    let a = assign(&m, "?replication=001").expect("assign");
    let fid = a["fid"].as_str().unwrap().to_string();
    let url = a["url"].as_str().unwrap().to_string();
    let other = if url.ends_with(&ports[0].to_string()) {
        1
    } else {
        0
    };
    vols[other].kill9();
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
    let dir = scratch();
    let mp = free_port();
    let m = format!("127.0.0.1:{mp}");
    let mut master = start_master(
        dir.path(),
        "m",
        mp,
        &[],
        &[
            "-vacuumIntervalSeconds=1",
            "-garbageThreshold=0.3",
            "-pulseSeconds=1",
        ],
    );
    master.wait_http_ok(&m, "/cluster/status", Duration::from_secs(30));
    let vp = free_port();
    let v = format!("127.0.0.1:{vp}");
    let _vol = start_volume(dir.path(), "v", vp, std::slice::from_ref(&m), &[]);
    wait_for_nodes(&m, 1, Duration::from_secs(30));
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
