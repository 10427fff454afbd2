//! `kelp server`: the one-machine path (start, write, restart, graceful stop, clear
//! refusals) and a cluster of three `kelp server` processes with `-master.peers`.

mod common;

use std::time::{Duration, Instant};

use common::*;

struct Ports {
    master: u16,
    volume: u16,
    filer: u16,
}

/// Ports for a `kelp server` started by hand, held until the reservation is dropped.
fn reserve() -> (Ports, PortReservation) {
    let r = reserve_ports(3);
    let p = Ports {
        master: r.port(0),
        volume: r.port(1),
        filer: r.port(2),
    };
    (p, r)
}

fn server_args(dir: &std::path::Path, p: &Ports, extra: &[String]) -> Vec<String> {
    let mut a = vec![
        "server".to_string(),
        format!("-dir={}", dir.display()),
        "-ip=127.0.0.1".into(),
        format!("-master.port={}", p.master),
        format!("-volume.port={}", p.volume),
        format!("-filer.port={}", p.filer),
        "-s3=false".into(),
    ];
    a.extend(extra.iter().cloned());
    a
}

#[test]
fn one_machine_start_write_restart_stop() {
    let mut c = cluster().servers(&[("", 1)]).s3(true).start();
    let root = c.root().to_path_buf();
    let s = &mut c.servers[0];
    let data = s.dir.clone();
    let (filer, s3) = (s.filer.clone().unwrap(), s.s3.clone().unwrap());
    let master = s.master.clone();
    let s = &mut s.proc;
    let log = s.log();
    for role in [
        "master: http://",
        "volume server: http://",
        "filer: http://",
        "s3: http://",
    ] {
        assert!(log.contains(role), "startup line {role:?} missing:\n{log}");
    }
    assert_eq!(
        http("PUT", &filer, "/notes/a.txt", b"kept across restarts")
            .unwrap()
            .status,
        201
    );
    // S3 (open mode: unsigned requests are accepted): a bucket and an object.
    assert_eq!(http("PUT", &s3, "/bucket1", b"").unwrap().status, 200);
    assert_eq!(
        http("PUT", &s3, "/bucket1/k.txt", b"via s3")
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        http("GET", &s3, "/bucket1/k.txt", b"").unwrap().body,
        b"via s3"
    );
    let a = http("GET", &master, "/dir/assign", b"").unwrap().json();
    let fid = a["fid"].as_str().unwrap().to_string();
    let vol = a["url"].as_str().unwrap().to_string();
    assert_eq!(
        http("PUT", &vol, &format!("/{fid}"), b"blob")
            .unwrap()
            .status,
        201
    );

    // SIGTERM: a clean exit with status 0 within a few seconds.
    let t = Instant::now();
    let st = s
        .terminate(Duration::from_secs(10))
        .expect("kelp server did not stop on SIGTERM");
    assert!(st.success(), "exit status {st:?}");
    println!("graceful shutdown took {:?}", t.elapsed());

    s.restart();
    s.wait_http_ok(&filer, "/", Duration::from_secs(30));
    assert_eq!(
        http("GET", &filer, "/notes/a.txt", b"").unwrap().text(),
        "kept across restarts"
    );
    wait_until("the S3 gateway to be back", Duration::from_secs(30), || {
        http("GET", &s3, "/bucket1/k.txt", b"")
            .is_ok_and(|r| r.status == 200 && r.body == b"via s3")
    });
    wait_until(
        "the volume server to be back",
        Duration::from_secs(30),
        || {
            http("GET", &vol, &format!("/{fid}"), b"")
                .is_ok_and(|r| r.status == 200 && r.body == b"blob")
        },
    );

    // A second server on the same -dir is refused at once, with a sentence.
    let (p2, held) = reserve();
    drop(held);
    let mut second = start_kelp("second", &root, &server_args(&data, &p2, &[]));
    let st = second
        .wait_exit(Duration::from_secs(10))
        .expect("second server should exit");
    assert!(!st.success());
    assert!(
        second
            .log()
            .contains("already in use by another kelp process"),
        "{}",
        second.log()
    );

    // A busy port fails at once too.
    let (mut p3, held) = reserve();
    p3.master = master.rsplit_once(':').unwrap().1.parse().unwrap();
    drop(held);
    let mut third = start_kelp("third", &root, &server_args(&root.join("other"), &p3, &[]));
    let st = third
        .wait_exit(Duration::from_secs(10))
        .expect("busy port should fail fast");
    assert!(!st.success());
    assert!(third.log().contains("already in use"), "{}", third.log());
}

#[test]
fn unwritable_dir_is_refused_clearly() {
    let root = scratch();
    let file = root.path().join("a-file");
    std::fs::write(&file, b"not a dir").unwrap();
    let (p, held) = reserve();
    drop(held);
    let (code, _, err) = run_kelp(
        &server_args(&file.join("data"), &p, &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_ne!(code, 0);
    assert!(err.contains("cannot create -dir"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn three_server_cluster_survives_losing_the_leader_node() {
    let mut c = cluster()
        .servers(&[("r0", 1), ("r1", 1), ("r2", 1)])
        .start();
    let masters = c.master_addrs();
    let volumes = c.volume_addrs();
    let leader = c.master().to_string();

    // A write through each node's volume server, with a copy in another rack.
    let mut written = Vec::new();
    for (i, volume) in volumes.iter().enumerate() {
        let a = http(
            "GET",
            &masters[i],
            &format!("/dir/assign?replication=010&dataNode={volume}"),
            b"",
        )
        .unwrap();
        assert_eq!(a.status, 200, "{}", a.text());
        let a = a.json();
        let fid = a["fid"].as_str().unwrap().to_string();
        let url = a["url"].as_str().unwrap().to_string();
        let body = format!("written via node {i}");
        let r = http("PUT", &url, &format!("/{fid}"), body.as_bytes()).unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
        written.push((fid, body));
    }

    // Kill the node that leads.
    let li = masters.iter().position(|m| *m == leader).unwrap();
    c.servers[li].proc.kill9();
    let survivors: Vec<String> = masters
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != li)
        .map(|(_, m)| m.clone())
        .collect();
    // Reads continue: every file has a copy on a surviving node.
    for (fid, body) in &written {
        let vid = fid.split(',').next().unwrap();
        let mut ok = false;
        wait_until("a surviving copy", Duration::from_secs(30), || {
            let Ok(l) = http(
                "GET",
                &survivors[0],
                &format!("/dir/lookup?volumeId={vid}"),
                b"",
            ) else {
                return false;
            };
            let locs = l.json()["locations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            ok = locs.iter().any(|loc| {
                http("GET", loc["url"].as_str().unwrap(), &format!("/{fid}"), b"")
                    .is_ok_and(|r| r.status == 200 && r.body == body.as_bytes())
            });
            ok
        });
        assert!(ok);
    }
    // Writes continue through the survivors (single-copy writes; 010 needs two racks alive).
    wait_until(
        "writes after losing the leader node",
        Duration::from_secs(30),
        || {
            survivors.iter().any(|m| {
                let Ok(a) = http("GET", m, "/dir/assign?replication=000", b"") else {
                    return false;
                };
                if a.status != 200 {
                    return false;
                }
                let a = a.json();
                let (fid, url) = (
                    a["fid"].as_str().unwrap().to_string(),
                    a["url"].as_str().unwrap().to_string(),
                );
                http("PUT", &url, &format!("/{fid}"), b"after failover")
                    .is_ok_and(|r| r.status == 201)
                    && http("GET", &url, &format!("/{fid}"), b"")
                        .is_ok_and(|r| r.body == b"after failover")
            })
        },
    );
}
