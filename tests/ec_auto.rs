//! EC upkeep with real processes: a master started with `-maintenance.scripts="ec.encode
//! ..."` erasure-codes full, quiet volumes by itself (a bad script stops it at start);
//! `/col/delete` takes EC volumes along; a delete missed by a holder that was down
//! reaches it when it is back; `ec.rebuild` removes shards `ec.decode` left on such a
//! holder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

fn payload(i: usize) -> Vec<u8> {
    let len = [1, 700, 5000, 70_000][i % 4];
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

/// A master whose maintenance loop encodes the volumes of "auto" (any bit full, quiet
/// for 1 s), four volume servers in four racks (so none holds more than the 4 shards
/// parity covers), and 60 needles (every 6th in "keep",
/// which the script does not name). Returns once every used "auto" volume is EC.
struct Encoded {
    c: Cluster,
    master: String,
    /// (fid, volume id, collection, bytes)
    stored: Vec<(String, u32, &'static str, Vec<u8>)>,
    auto: BTreeSet<u32>,
}

fn ec_shards(master: &str, vid: u32) -> (BTreeSet<u64>, usize) {
    let (_, v) = get_json(master, &format!("/dir/lookup?volumeId={vid}"));
    let shards = v["ecLocations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .flat_map(|l| l["ecShards"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s.as_u64())
        .collect();
    let normal = v["locations"]
        .as_array()
        .map(|a| a.iter().filter(|l| l.get("ecShards").is_none()).count())
        .unwrap_or(0);
    (shards, normal)
}

/// `by_master`: the master's maintenance loop encodes (else `kelp shell` does, once, and
/// nothing re-encodes a volume a test decodes).
fn encoded_cluster(by_master: bool) -> Encoded {
    let script = [
        "-maintenance.interval=1s",
        "-maintenance.scripts=ec.encode -collection=auto -fullPercent=0 -quietFor=1s",
    ];
    let extra: &[&str] = if by_master { &script } else { &[] };
    let c = cluster()
        .master_args(extra)
        .volumes(&[("r0", 1), ("r1", 1), ("r2", 1), ("r3", 1)])
        .start();
    let master = c.master().to_string();

    let mut stored = Vec::new();
    for (i, col) in (0..60).map(|i| (i, if i % 6 == 0 { "keep" } else { "auto" })) {
        let (st, a) = get_json(&master, &format!("/dir/assign?collection={col}"));
        assert_eq!(st, 200, "assign: {a}");
        let fid = a["fid"].as_str().unwrap().to_string();
        let url = a["url"].as_str().unwrap().to_string();
        let data = payload(i);
        let r = http("PUT", &url, &format!("/{fid}"), &data).unwrap();
        assert_eq!(r.status, 201, "upload {fid}: {}", r.text());
        let vid: u32 = fid.split(',').next().unwrap().parse().unwrap();
        stored.push((fid, vid, col, data));
    }
    let auto: BTreeSet<u32> = stored
        .iter()
        .filter(|s| s.2 == "auto")
        .map(|s| s.1)
        .collect();
    if !by_master {
        let (code, out, err) = common::ec::shell(
            &master,
            "ec.encode -collection=auto -fullPercent=0 -quietFor=0\n",
        );
        assert_eq!(code, 0, "ec.encode failed:\n{out}\n{err}");
    }
    wait_until(
        "the master to erasure-code every used volume of \"auto\"",
        Duration::from_secs(90),
        || {
            auto.iter().all(|vid| {
                let (shards, normal) = ec_shards(&master, *vid);
                shards.len() == 14 && normal == 0
            })
        },
    );
    Encoded {
        c,
        master,
        stored,
        auto,
    }
}

#[test]
fn master_encodes_quiet_volumes_by_itself() {
    let Encoded {
        mut c,
        master,
        stored,
        auto,
    } = encoded_cluster(true);
    let keep: BTreeSet<u32> = stored
        .iter()
        .filter(|s| s.2 == "keep")
        .map(|s| s.1)
        .collect();
    assert!(
        c.masters[0].proc.log().contains("maintenance"),
        "the master logs its maintenance rounds"
    );
    // And counts them, shows them on its page; the volume servers count their encodes.
    // A round is recorded when all its commands are done, which can be after the
    // encode the cluster helper waited for: poll.
    let rounds = || {
        http("GET", &master, "/metrics", b"")
            .unwrap()
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("kelp_master_maintenance_rounds_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        poll_until(Duration::from_secs(60), || rounds() >= 1.0).is_some(),
        "no maintenance round was counted"
    );
    let page = http("GET", &master, "/", b"").unwrap().text();
    assert!(
        page.contains("Maintenance rounds") && page.contains("<td>"),
        "{page}"
    );
    let encodes: f64 = c
        .volumes
        .iter()
        .map(|v| {
            http("GET", &v.addr, "/metrics", b"")
                .unwrap()
                .text()
                .lines()
                .find_map(|l| l.strip_prefix("kelp_volume_ec_encodes_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        })
        .sum();
    assert!(encodes >= 1.0, "no volume server counted an EC encode");
    for vid in &keep {
        let (_, v) = get_json(&master, &format!("/dir/lookup?volumeId={vid}"));
        assert!(
            v["ecLocations"].as_array().is_none_or(|a| a.is_empty()),
            "volume {vid} of \"keep\" was encoded: {v}"
        );
    }
    // Every needle reads back byte for byte from where the master says it lives.
    for (fid, _, _, data) in &stored {
        let vid: u32 = fid.split(',').next().unwrap().parse().unwrap();
        let (_, v) = get_json(&master, &format!("/dir/lookup?volumeId={vid}"));
        let url = v["locations"][0]["url"]
            .as_str()
            .or_else(|| v["ecLocations"][0]["url"].as_str())
            .unwrap()
            .to_string();
        let r = http("GET", &url, &format!("/{fid}"), b"").unwrap();
        assert_eq!(r.status, 200, "GET {fid} on {url}: {}", r.text());
        assert!(r.body == *data, "{fid} on {url} differs");
    }

    // Deleting the collection takes its EC volumes along: no shard file is left, the
    // shard slots are free again, and the master stops listing the shards.
    let r = http("POST", &master, "/col/delete?collection=auto", b"").unwrap();
    assert!(r.status < 300, "col/delete: {}", r.text());
    let ec_files = || {
        c.volumes
            .iter()
            .flat_map(|v| std::fs::read_dir(&v.dir).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("auto_") && (n.contains(".ec") || n.ends_with(".vif")))
            .collect::<Vec<_>>()
    };
    assert!(ec_files().is_empty(), "left behind: {:?}", ec_files());
    wait_until(
        "the master to drop the deleted collection's shards",
        Duration::from_secs(30),
        || {
            auto.iter().all(|vid| {
                let (_, v) = get_json(&master, &format!("/dir/lookup?volumeId={vid}"));
                v["ecLocations"].as_array().is_none_or(|a| a.is_empty())
            })
        },
    );
    for (fid, vid, col, data) in &stored {
        if *col == "keep" {
            let (_, v) = get_json(&master, &format!("/dir/lookup?volumeId={vid}"));
            let url = v["locations"][0]["url"].as_str().unwrap().to_string();
            let r = http("GET", &url, &format!("/{fid}"), b"").unwrap();
            assert!(
                r.status == 200 && r.body == *data,
                "{fid} of \"keep\" after the delete"
            );
        }
    }

    for v in &mut c.volumes {
        v.proc.terminate(Duration::from_secs(10));
    }
    c.masters[0].proc.terminate(Duration::from_secs(10));

    // A script naming an unknown command stops the master with a clear message.
    let (code, _, err) = run_kelp(&[
        "master",
        "-port=0",
        &format!("-mdir={}", c.root().join("bad").display()),
        "-maintenance.scripts=ec.encodee -collection=x",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown command"), "{err}");
}

/// A delete made while a shard holder is down reaches it once it is back: the holders
/// merge each other's deletion journals.
#[test]
fn ec_deletes_missed_by_a_down_holder_are_caught_up() {
    let Encoded {
        mut c,
        master,
        stored,
        ..
    } = encoded_cluster(false);
    let (fid, vid, _, _) = stored.iter().find(|s| s.2 == "auto").cloned().unwrap();
    let down = 0;
    c.volumes[down].proc.kill9();
    let other = c.volumes[1].addr.clone();
    let r = http("DELETE", &other, &format!("/{fid}"), b"").unwrap();
    assert!(r.status < 300, "delete {fid} on {other}: {}", r.text());
    assert_eq!(
        http("GET", &other, &format!("/{fid}"), b"").unwrap().status,
        404
    );
    c.volumes[down].proc.restart();
    let back = c.volumes[down].addr.clone();
    wait_until(
        "the restarted holder to learn about the delete",
        Duration::from_secs(60),
        || {
            http("GET", &back, &format!("/{fid}"), b"")
                .map(|r| r.status == 404)
                .unwrap_or(false)
        },
    );
    assert!(
        c.volumes[down]
            .proc
            .log()
            .contains("ec deletions caught up")
    );
    // Its journal now holds the key: a restart keeps the delete.
    let (shards, _) = ec_shards(&master, vid);
    assert_eq!(shards.len(), 14);
    for v in &mut c.volumes {
        v.proc.terminate(Duration::from_secs(10));
    }
    c.masters[0].proc.terminate(Duration::from_secs(10));
}

/// `ec.decode` while a shard holder is down leaves that holder's shards behind; once it
/// is back, `ec.rebuild` recognises them as stale (the volume is normal again, too few
/// shards remain to read anything) and removes them.
#[test]
fn stale_shards_after_a_decode_are_removed() {
    let Encoded {
        mut c,
        master,
        stored,
        auto,
    } = encoded_cluster(false);
    let vid = *auto.iter().next().unwrap();
    let down = 0;
    let down_url = c.volumes[down].addr.clone();
    let (_, holders) = common::ec::lookup(&master, vid);
    assert!(holders.contains_key(&down_url), "{holders:?}");
    c.volumes[down].proc.kill9();
    let (code, out, err) = common::ec::shell(&master, &format!("ec.decode -volumeId={vid}\n"));
    assert_eq!(code, 0, "ec.decode failed:\n{out}\n{err}");
    c.volumes[down].proc.restart();
    // The master may still list the killed server (it has not missed enough
    // heartbeats yet), so wait for the restarted one itself to answer too.
    wait_until(
        "the restarted server to report its old shards",
        Duration::from_secs(30),
        || {
            admin_get(&down_url, &format!("/admin/ec/info?volume={vid}"))
                .is_ok_and(|r| r.status == 200)
                && common::ec::lookup(&master, vid).1.contains_key(&down_url)
        },
    );
    let (code, out, err) = common::ec::shell(&master, &format!("ec.rebuild -volumeId={vid}\n"));
    assert_eq!(code, 0, "ec.rebuild failed:\n{out}\n{err}");
    assert!(out.contains("removed stale shards"), "{out}");
    let left: Vec<String> = std::fs::read_dir(&c.volumes[down].dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("auto_{vid}.ec")))
        .collect();
    assert!(left.is_empty(), "stale shard files left: {left:?}");
    wait_until(
        "the master to forget the stale shards",
        Duration::from_secs(30),
        || common::ec::lookup(&master, vid).1.is_empty(),
    );
    // The decoded volume serves every needle it held.
    let (normal, _) = common::ec::lookup(&master, vid);
    for (fid, _, _, data) in stored.iter().filter(|s| s.1 == vid) {
        let r = http("GET", &normal[0], &format!("/{fid}"), b"").unwrap();
        assert!(r.status == 200 && r.body == *data, "{fid} on {}", normal[0]);
    }
    for v in &mut c.volumes {
        v.proc.terminate(Duration::from_secs(10));
    }
    c.masters[0].proc.terminate(Duration::from_secs(10));
}

/// The cluster lock: while one shell holds it, another shell's data-moving commands
/// are refused with the holder's name (read-only ones still run); `unlock` frees it.
#[test]
fn shell_lock_keeps_other_shells_out() {
    use std::io::{BufRead, Write};

    let mut c = cluster().start();
    let master = c.master().to_string();

    let mut holder = common::ec::spawn_shell(&master);
    let mut to_holder = holder.stdin.take().unwrap();
    to_holder.write_all(b"lock\n").unwrap();
    let out = holder.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let said = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(said.starts_with("locked"), "{said}");

    let (code, out, err) = common::ec::shell(&master, "cluster.status\nvolume.vacuum\n");
    assert_ne!(
        code, 0,
        "volume.vacuum ran while another shell held the lock"
    );
    assert!(err.contains("locked by kelp shell"), "{err}");
    assert!(
        out.contains("master"),
        "read-only commands still run: {out}"
    );

    to_holder.write_all(b"unlock\n").unwrap();
    drop(to_holder);
    assert!(holder.wait().unwrap().success());
    let (code, out, err) = common::ec::shell(&master, "volume.vacuum\n");
    assert_eq!(code, 0, "after unlock:\n{out}\n{err}");
    c.masters[0].proc.terminate(Duration::from_secs(10));
}
