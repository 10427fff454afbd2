//! Master group membership with real processes: a fourth master started with
//! `-raft.join` is added with `cluster.raft.add` (catching up from the log or a
//! snapshot), an old one is removed with `cluster.raft.remove`, and when the leader is
//! then killed the group elects another and keeps handing out file ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::ec::shell;
use common::*;

fn members(master: &str) -> Vec<(String, bool)> {
    let (st, v) = get_json(master, "/cluster/raft/ps");
    assert_eq!(st, 200, "{v}");
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["address"].as_str().unwrap().to_string(),
                m["voter"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn leader_of(master: &str) -> Option<String> {
    let (st, v) = get_json(master, "/cluster/status");
    (st == 200)
        .then(|| v["Leader"].as_str().unwrap_or("").to_string())
        .filter(|l| !l.is_empty())
}

#[test]
fn masters_join_leave_and_survive_losing_the_leader() {
    let mut c = cluster().masters(3).volumes(&[("", 1)]).start();
    let old: Vec<String> = c.masters.iter().map(|m| m.addr.clone()).collect();
    let leader = c.master().to_string();
    // A fourth master, told to join rather than form a group.
    let mut held = reserve_ports(1);
    let port = held.port(0);
    let new = format!("127.0.0.1:{port}");
    let mut peers = old.clone();
    peers.push(new.clone());
    held.release(port);
    let dir = c.root().join("m3");
    let mut m3 = start_kelp(
        "m3",
        c.root(),
        &[
            "master".into(),
            "-ip=127.0.0.1".into(),
            format!("-port={port}"),
            format!("-mdir={}", dir.display()),
            format!("-peers={}", peers.join(",")),
            "-raft.join".into(),
        ],
    );
    m3.wait_http_answers(&new, "/cluster/status", Duration::from_secs(30));
    // Some history for it to catch up on.
    for _ in 0..20 {
        assert_eq!(get_json(&leader, "/dir/assign").0, 200);
    }
    let (code, out, err) = shell(&leader, &format!("cluster.raft.add -address={new}\n"));
    assert_eq!(code, 0, "{out}{err}");
    wait_until("four voters", Duration::from_secs(30), || {
        let m = members(&leader);
        m.len() == 4 && m.iter().all(|(_, voter)| *voter)
    });
    wait_until(
        "the new master to know the leader",
        Duration::from_secs(30),
        || leader_of(&new).is_some(),
    );
    let (code, out, _) = shell(&new, "cluster.raft.ps\n");
    assert_eq!(code, 0);
    assert!(out.contains("4 master(s)"), "{out}");

    // Remove one old follower, then stop it.
    let idx = (0..3).find(|&i| old[i] != leader).unwrap();
    let removed = old[idx].clone();
    let (code, out, err) = shell(
        &leader,
        &format!("cluster.raft.remove -address={removed}\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    wait_until("three members", Duration::from_secs(30), || {
        let m = members(&leader);
        m.len() == 3 && !m.iter().any(|(a, _)| *a == removed)
    });
    c.masters[idx].proc.kill9();

    // Kill the leader: the two left (one of them the new master) elect another.
    let li = (0..3).find(|&i| old[i] == leader).unwrap();
    c.masters[li].proc.kill9();
    let survivors: Vec<String> = [old[3 - idx - li].clone(), new.clone()].to_vec();
    let mut next = String::new();
    wait_until(
        "a new leader among the survivors",
        Duration::from_secs(30),
        || {
            survivors.iter().any(|s| {
                leader_of(s).is_some_and(|l| {
                    let ok = l != leader && survivors.contains(&l);
                    if ok {
                        next = l;
                    }
                    ok
                })
            })
        },
    );
    wait_until(
        "file ids from the new leader",
        Duration::from_secs(30),
        || get_json(&next, "/dir/assign").0 == 200,
    );
    drop(m3);
}
