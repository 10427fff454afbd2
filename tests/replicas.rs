//! Replica repair with real processes: a volume server killed for good has its replicas
//! re-created by the master's maintenance (`volume.fix.replication`) while every needle
//! stays readable; replicas that diverged (a write or a delete that reached one replica
//! only) are reconciled by `volume.check.disk` without undoing the delete; volumes are
//! moved, marked and deleted with the shell.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::ec::*;
use common::*;

/// Writes `n` needles with replication `010`; returns them.
fn write_replicated(master: &str, n: usize) -> Vec<Stored> {
    write_needles(master, "replication=010&collection=rep", n)
}

/// The volume holding the most of `stored` (the writes spread over the volumes the
/// master grew, so the first needle's volume may hold only that one).
fn busiest(stored: &[Stored]) -> u32 {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for s in stored {
        *counts.entry(s.vid).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(vid, _)| vid)
        .unwrap_or_else(|| panic!("nothing was written"))
}

/// The servers the master lists for `vid`.
fn holders(master: &str, vid: u32) -> Vec<String> {
    lookup(master, vid).0
}

/// The rack of each volume server, by address.
fn racks(c: &Cluster) -> BTreeMap<String, String> {
    c.volumes
        .iter()
        .map(|v| (v.addr.clone(), v.rack.clone()))
        .collect()
}

#[test]
fn a_lost_server_is_replaced_and_reads_never_fail() {
    let mut c = cluster()
        .master_args(&[
            "-pulseSeconds=1",
            "-maintenance.interval=1s",
            "-maintenance.scripts=volume.fix.replication -apply -grace=3s; volume.check.disk -apply",
        ])
        .volumes(&[("r0", 2), ("r1", 2)])
        .start();
    let master = c.master().to_string();
    let rack_of = racks(&c);
    let stored = write_replicated(&master, 40);
    let vids: std::collections::BTreeSet<u32> = stored.iter().map(|s| s.vid).collect();
    // Kill the server holding the most replicas, for good.
    let victim = (0..c.volumes.len())
        .max_by_key(|&i| {
            vids.iter()
                .filter(|v| holders(&master, **v).contains(&c.volumes[i].addr))
                .count()
        })
        .unwrap();
    let gone = c.volumes[victim].addr.clone();
    let lost: Vec<u32> = vids
        .iter()
        .copied()
        .filter(|v| holders(&master, *v).contains(&gone))
        .collect();
    assert!(!lost.is_empty());
    c.volumes[victim].proc.kill9();
    // Until every volume has two replicas on two racks again, every needle reads from
    // some replica the master lists.
    let mut rounds = 0;
    wait_until(
        "every volume to have two replicas in two racks again",
        Duration::from_secs(120),
        || {
            rounds += 1;
            for s in &stored {
                let locs: Vec<String> = holders(&master, s.vid)
                    .into_iter()
                    .filter(|l| *l != gone)
                    .collect();
                let ok = locs.iter().any(|l| {
                    http("GET", l, &format!("/{}", s.fid), b"")
                        .map(|r| r.status == 200 && r.body == s.data)
                        .unwrap_or(false)
                });
                assert!(
                    ok,
                    "needle {} unreadable during repair (round {rounds})",
                    s.fid
                );
            }
            vids.iter().all(|v| {
                let h = holders(&master, *v);
                let r: std::collections::BTreeSet<&String> =
                    h.iter().filter_map(|u| rack_of.get(u)).collect();
                h.len() == 2 && !h.contains(&gone) && r.len() == 2
            })
        },
    );
    // Every replica of every volume serves every needle byte-exact.
    for s in &stored {
        for l in holders(&master, s.vid) {
            let r = http("GET", &l, &format!("/{}", s.fid), b"").unwrap();
            assert_eq!(r.status, 200, "{} on {l}", s.fid);
            assert_eq!(r.body, s.data, "{} on {l}", s.fid);
        }
    }
    let log = c.masters[0].proc.log();
    assert!(log.contains("copied"), "the repair is in the master's log");
}

#[test]
fn check_disk_reconciles_diverged_replicas_without_undoing_deletes() {
    let c = cluster()
        .master_args(&["-maintenance.scripts="])
        .volumes(&[("r0", 1), ("r1", 1)])
        .start();
    let master = c.master().to_string();
    let stored = write_replicated(&master, 12);
    let vid = busiest(&stored);
    let reps = holders(&master, vid);
    assert_eq!(reps.len(), 2);
    let (a, b) = (&reps[0], &reps[1]);
    let mine: Vec<&Stored> = stored.iter().filter(|s| s.vid == vid).collect();
    assert!(mine.len() >= 2, "two needles in one volume");
    // A write that reached A only: a new needle sent as a replica write to A.
    let (_, assigned) = get_json(&master, "/dir/assign?replication=010&collection=rep");
    let key = assigned["fid"]
        .as_str()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    let only_a = format!("{vid},{key}");
    let r = http("PUT", a, &format!("/{only_a}?type=replicate"), b"on a only").unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        http("GET", b, &format!("/{only_a}"), b"").unwrap().status,
        404
    );
    // A delete that reached B only.
    let deleted = &mine[0].fid;
    let r = http("DELETE", b, &format!("/{deleted}?type=replicate"), b"").unwrap();
    assert!(r.status < 300, "{}", r.text());
    assert_eq!(
        http("GET", a, &format!("/{deleted}"), b"").unwrap().status,
        200
    );

    let (code, out, err) = shell(&master, &format!("volume.check.disk -volumeId={vid}\n"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 needle(s) copied, 1 deleted"), "{out}");
    assert_eq!(
        http("GET", b, &format!("/{only_a}"), b"").unwrap().status,
        404,
        "nothing changes without -apply"
    );
    let (code, out, err) = shell(
        &master,
        &format!("volume.check.disk -volumeId={vid} -apply\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    let r = http("GET", b, &format!("/{only_a}"), b"").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"on a only"[..]));
    assert_eq!(
        http("GET", a, &format!("/{deleted}"), b"").unwrap().status,
        404,
        "the delete won"
    );
    for s in &mine[1..] {
        for l in [a, b] {
            assert_eq!(
                http("GET", l, &format!("/{}", s.fid), b"").unwrap().body,
                s.data
            );
        }
    }
    let (code, out, _) = shell(
        &master,
        &format!("volume.check.disk -volumeId={vid} -apply\n"),
    );
    assert_eq!(code, 0);
    assert!(out.contains("0 needle(s) copied, 0 deleted"), "{out}");
}

#[test]
fn volumes_move_copy_mark_and_delete_with_the_shell() {
    let c = cluster()
        .master_args(&["-maintenance.scripts="])
        .volumes(&[("r0", 1), ("r1", 2)])
        .start();
    let master = c.master().to_string();
    let stored = write_replicated(&master, 8);
    let vid = stored[0].vid;
    let reps = holders(&master, vid);
    let spare = c
        .volume_addrs()
        .into_iter()
        .find(|a| !reps.contains(a))
        .unwrap();
    // Move the replica off its server onto the spare one (same rack as one of them).
    let from = reps
        .iter()
        .find(|r| racks(&c)[r.as_str()] == racks(&c)[&spare])
        .unwrap()
        .clone();
    let (code, out, err) = shell(
        &master,
        &format!("volume.move -volumeId={vid} -source={from} -target={spare}\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    wait_until(
        "the master to see the move",
        Duration::from_secs(20),
        || {
            let h = holders(&master, vid);
            h.contains(&spare) && !h.contains(&from)
        },
    );
    for s in stored.iter().filter(|s| s.vid == vid) {
        let r = http("GET", &spare, &format!("/{}", s.fid), b"").unwrap();
        assert_eq!(r.body, s.data);
    }
    // A third replica by hand: fix.replication plans its removal, and makes it.
    let (code, out, err) = shell(
        &master,
        &format!("volume.copy -volumeId={vid} -source={spare} -target={from}\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    wait_until("three replicas", Duration::from_secs(20), || {
        holders(&master, vid).len() == 3
    });
    let (code, out, _) = shell(
        &master,
        &format!("volume.fix.replication -volumeId={vid}\n"),
    );
    assert_eq!(code, 0);
    assert!(out.contains("1 change(s) planned"), "{out}");
    let (code, out, err) = shell(
        &master,
        &format!("volume.fix.replication -volumeId={vid} -apply\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    wait_until("two replicas again", Duration::from_secs(20), || {
        holders(&master, vid).len() == 2
    });
    // Mark, list, delete.
    let (code, out, err) = shell(&master, &format!("volume.mark -volumeId={vid} -readonly\n"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 replica(s) marked read-only"), "{out}");
    let (code, out, _) = shell(&master, "collection.list\n");
    assert_eq!(code, 0);
    assert!(out.contains("collection:\"rep\""), "{out}");
    let (code, out, _) = shell(&master, "collection.delete -collection=rep\n");
    assert_eq!(code, 0);
    assert!(out.contains("would be removed"), "{out}");
    let (code, out, err) = shell(&master, "collection.delete -collection=rep -apply\n");
    assert_eq!(code, 0, "{out}{err}");
    wait_until("the collection to be gone", Duration::from_secs(20), || {
        holders(&master, vid).is_empty()
    });
}

/// A server that comes back within the grace period is not read from until its
/// replicas are reconciled, and the master reconciles them at once (not at its next
/// round): a needle deleted while it was away is gone from it, one written meanwhile
/// is on it.
#[test]
fn a_returning_server_is_reconciled_before_it_is_read_from() {
    let mut c = cluster()
        .master_args(&[
            "-pulseSeconds=1",
            "-maintenance.interval=1h",
            "-maintenance.scripts=volume.fix.replication -apply -grace=1h; volume.check.disk -apply",
        ])
        .volumes(&[("r0", 1), ("r1", 1)])
        .start();
    let master = c.master().to_string();
    // More needles than the volumes the master grows: one volume holds two or more.
    let stored = write_replicated(&master, 12);
    let vid = busiest(&stored);
    let mine: Vec<&Stored> = stored.iter().filter(|s| s.vid == vid).collect();
    assert!(mine.len() >= 2, "two needles in one volume");
    let away = c.volumes[1].addr.clone();
    let here = c.volumes[0].addr.clone();
    c.volumes[1].proc.kill9();
    wait_until(
        "the master to drop the server",
        Duration::from_secs(20),
        || holders(&master, vid) == vec![here.clone()],
    );
    // While it is away: a delete (reaches the one replica left), and a new needle
    // written to that replica alone (as a write during the absence would be).
    let deleted = &mine[0].fid;
    let r = http("DELETE", &here, &format!("/{deleted}?type=replicate"), b"").unwrap();
    assert!(r.status < 300, "{}", r.text());
    // A fresh key and cookie (any volume: one rack is left, so 010 cannot be placed).
    let (_, a) = get_json(&master, "/dir/assign?collection=spare");
    let key = a["fid"]
        .as_str()
        .unwrap_or_else(|| panic!("assign: {a}"))
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    let written = format!("{vid},{key}");
    let r = http(
        "PUT",
        &here,
        &format!("/{written}?type=replicate"),
        b"meanwhile",
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    c.volumes[1].proc.restart();
    // Back, reconciled by the round its return started (the interval is an hour).
    wait_until(
        "the returning replica to be reconciled",
        Duration::from_secs(60),
        || {
            let (_, v) = get_json(&master, &format!("/dir/lookup?volumeId={vid}"));
            let locs = v["locations"].as_array().cloned().unwrap_or_default();
            locs.len() == 2 && locs.iter().all(|l| l["stale"].as_bool() != Some(true))
        },
    );
    assert_eq!(
        http("GET", &away, &format!("/{deleted}"), b"")
            .unwrap()
            .status,
        404,
        "the delete made while it was away reached it"
    );
    let r = http("GET", &away, &format!("/{written}"), b"").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"meanwhile"[..]));
    assert!(
        c.masters[0]
            .proc
            .log()
            .contains("came back after it was dropped"),
        "the master noticed the return"
    );
}
