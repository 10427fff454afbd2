//! Partition tests: masters, volume servers and a client on hosts of their own
//! (network namespaces with one address each, [`NetLab`]), cut off from each other
//! while they work. Needs root and iproute2.
//!
//! - The leader master is cut off from the other masters (clients still reach it): a
//!   new leader is elected within 10 s, the cut-off one stops handing out file ids, no
//!   file id is ever handed out twice, and after healing it follows the new leader.
//! - A volume server is cut off during replicated writes: every acknowledged write is
//!   on all replicas after healing (or `volume.check.disk` makes it so), and reads back
//!   byte-exact.
//! - S3 PUTs through a filer while a volume server and then the leader are cut off:
//!   every acknowledged object reads back byte-exact through S3.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const MASTERS: usize = 3;

/// Hosts: masters 0..3, volume servers 3..7 (racks r0, r0, r1, r1), the client 7, the
/// filer with its S3 gateway 8.
const CLIENT: usize = 7;
const FILER: usize = 8;

fn client_py() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/netns/client.py")
}

/// Fields drop in order: the processes first, then the namespaces, then the files.
struct Lab {
    masters: Vec<KelpProcess>,
    volumes: Vec<KelpProcess>,
    filer: Option<KelpProcess>,
    net: NetLab,
    root: tempfile::TempDir,
}

impl Lab {
    fn master_addr(&self, i: usize) -> String {
        format!("{}:9333", self.net.addr(i))
    }

    fn masters_list(&self) -> String {
        (0..MASTERS)
            .map(|i| self.master_addr(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The leader as master `i` sees it (from the client host).
    fn leader_seen_by(&self, i: usize) -> Option<String> {
        let (st, body) = self
            .net
            .get(CLIENT, &self.master_addr(i), "/cluster/status");
        if st != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["Leader"]
            .as_str()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
    }
}

fn start_lab(extra_master: &[&str]) -> Lab {
    let net = NetLab::new(9);
    let root = tempfile::tempdir().unwrap();
    let mut lab = Lab {
        masters: Vec::new(),
        volumes: Vec::new(),
        filer: None,
        net,
        root,
    };
    let peers = lab.masters_list();
    for i in 0..MASTERS {
        let dir = lab.root.path().join(format!("m{i}"));
        let mut args = vec![
            "master".to_string(),
            format!("-ip={}", lab.net.addr(i)),
            "-port=9333".into(),
            format!("-mdir={}", dir.display()),
            format!("-peers={peers}"),
            "-pulseSeconds=1".into(),
            "-defaultReplication=010".into(),
            "-maintenance.scripts=".into(),
            "-insecure".into(),
        ];
        args.extend(extra_master.iter().map(|s| s.to_string()));
        let p = lab
            .net
            .start(i, kelp_bin(), &format!("m{i}"), lab.root.path(), &args);
        lab.masters.push(p);
    }
    for (k, rack) in ["r0", "r0", "r1", "r1"].iter().enumerate() {
        let host = MASTERS + k;
        let dir = lab.root.path().join(format!("v{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        let args = vec![
            "volume".to_string(),
            format!("-ip={}", lab.net.addr(host)),
            "-port=8080".into(),
            format!("-dir={}", dir.display()),
            format!("-mserver={peers}"),
            format!("-rack={rack}"),
            "-insecure".into(),
        ];
        let p = lab
            .net
            .start(host, kelp_bin(), &format!("v{k}"), lab.root.path(), &args);
        lab.volumes.push(p);
    }
    // Ready when a file id with replication 010 is handed out.
    wait_until("the lab to hand out file ids", READY, || {
        (0..MASTERS).any(|i| {
            lab.net
                .get(CLIENT, &lab.master_addr(i), "/dir/assign?replication=010")
                .0
                == 200
        })
    });
    lab
}

impl Lab {
    /// Starts the filer with its (open) S3 gateway on the filer host; returns the S3
    /// endpoint once it answers.
    fn start_filer(&mut self) -> String {
        let dir = self.root.path().join("filer");
        std::fs::create_dir_all(&dir).unwrap();
        let args = vec![
            "filer".to_string(),
            format!("-ip={}", self.net.addr(FILER)),
            "-port=8888".into(),
            format!("-master={}", self.masters_list()),
            format!("-dir={}", dir.display()),
            "-s3".into(),
            "-s3.port=8333".into(),
            "-insecure".into(),
        ];
        let p = self
            .net
            .start(FILER, kelp_bin(), "filer", self.root.path(), &args);
        self.filer = Some(p);
        let s3 = format!("{}:8333", self.net.addr(FILER));
        wait_until("the S3 gateway to answer", READY, || {
            self.net.get(CLIENT, &s3, "/").0 == 200
        });
        s3
    }
}

/// Runs `kelp shell` with `script` on stdin inside the client host; panics unless it
/// succeeds; returns its output.
fn lab_shell(lab: &Lab, script: &str) -> String {
    use std::io::Write;
    let mut sh = Command::new("ip")
        .args(["netns", "exec", lab.net.ns(CLIENT), kelp_bin(), "shell"])
        .arg(format!("-master={}", lab.masters_list()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sh.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let done = sh.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&done.stdout).into_owned();
    assert!(
        done.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    out
}

/// `client.py <args>` running in the client host; killed if still running when dropped.
struct Client(Option<Child>);

impl Client {
    fn spawn(lab: &Lab, args: &[&str]) -> Client {
        let child = Command::new("ip")
            .args(["netns", "exec", lab.net.ns(CLIENT), "python3", client_py()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the lab client");
        Client(Some(child))
    }

    fn finish(mut self) -> String {
        let out = self.0.take().unwrap().wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_cut_off_leader_is_replaced_and_no_id_is_handed_out_twice() {
    let lab = start_lab(&[]);
    let leader = lab.leader_seen_by(0).expect("a leader");
    let li = (0..MASTERS)
        .find(|&i| lab.master_addr(i) == leader)
        .unwrap();
    let masters = lab.masters_list();
    let assigns = Client::spawn(&lab, &["assign", &masters, "16"]);
    // Let ids flow, then cut the leader off from the other masters only.
    std::thread::sleep(Duration::from_secs(2));
    for j in (0..MASTERS).filter(|&j| j != li) {
        lab.net.cut_between(li, j);
    }
    let cut_at = Instant::now();
    let others: Vec<usize> = (0..MASTERS).filter(|&j| j != li).collect();
    let mut new_leader = String::new();
    wait_until(
        "a new leader among the others",
        Duration::from_secs(10),
        || {
            others.iter().any(|&j| {
                lab.leader_seen_by(j).is_some_and(|l| {
                    let ok = l != leader;
                    if ok {
                        new_leader = l;
                    }
                    ok
                })
            })
        },
    );
    let elected_in = cut_at.elapsed();
    // Keep the cut while the client goes on asking every master, then heal.
    std::thread::sleep(Duration::from_secs(8));
    for j in (0..MASTERS).filter(|&j| j != li) {
        lab.net.heal_between(li, j);
    }
    let out = assigns.finish();
    wait_until(
        "the old leader to follow the new one",
        Duration::from_secs(20),
        || {
            lab.leader_seen_by(li)
                .is_some_and(|l| l != leader && l == new_leader)
        },
    );
    // Every id handed out, by any master, at any time, is unique.
    let mut seen = BTreeSet::new();
    let mut from_cut_late = 0;
    let mut total = 0;
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(fid) = v["fid"].as_str() else {
            continue;
        };
        total += 1;
        assert!(
            seen.insert(fid.to_string()),
            "file id {fid} handed out twice"
        );
        let t = v["t"].as_f64().unwrap();
        // From 3 s after the election until 1 s before the heal (the client started a
        // little after the test's clock), the cut-off one hands out none; once healed
        // it forwards to the new leader again.
        if v["m"].as_str() == Some(leader.as_str())
            && t > 2.0 + elected_in.as_secs_f64() + 3.0
            && t < 2.0 + elected_in.as_secs_f64() + 7.0
        {
            from_cut_late += 1;
        }
    }
    assert!(total > 100, "the client got {total} ids");
    assert_eq!(from_cut_late, 0, "the cut-off master kept handing out ids");
    eprintln!("new leader elected {elected_in:?} after the cut; {total} unique ids");
}

#[test]
fn a_cut_off_volume_server_loses_no_acknowledged_write() {
    let lab = start_lab(&[]);
    let masters = lab.masters_list();
    let acked = lab.root.path().join("acked.json");
    // The file is written by the client inside its namespace: same filesystem.
    let writes = Client::spawn(&lab, &["write", &masters, "12", acked.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(3));
    let victim = MASTERS + 2;
    lab.net.cut(victim);
    std::thread::sleep(Duration::from_secs(5));
    lab.net.heal(victim);
    let summary = writes.finish();
    eprintln!("writes: {summary}");
    // Back in the topology, then the replicas are compared and repaired.
    wait_until(
        "all four volume servers listed",
        Duration::from_secs(30),
        || {
            let (st, body) = lab.net.get(CLIENT, &lab.master_addr(0), "/dir/status");
            st == 200 && body.matches("\"Url\"").count() >= 4
        },
    );
    let shell_out = lab_shell(&lab, "volume.check.disk -apply\n");
    eprintln!("{shell_out}");
    let verdict = Client::spawn(&lab, &["verify", &masters, acked.to_str().unwrap()]).finish();
    let v: serde_json::Value = serde_json::from_str(verdict.trim()).unwrap();
    assert!(v["checked"].as_u64().unwrap() > 20, "{verdict}");
    assert_eq!(v["bad_count"].as_u64(), Some(0), "{verdict}");
    drop(lab);
}

/// S3 PUTs through a filer (boto3, with its retries) while a volume server is cut off
/// and then the leader master is cut off from the others: every acknowledged object
/// reads back byte-exact through S3 after healing and `volume.check.disk`.
#[test]
fn s3_writes_survive_a_cut_volume_server_and_a_cut_leader() {
    let mut lab = start_lab(&[]);
    let s3 = lab.start_filer();
    let leader = lab.leader_seen_by(0).expect("a leader");
    let li = (0..MASTERS)
        .find(|&i| lab.master_addr(i) == leader)
        .unwrap();
    let acked = lab.root.path().join("s3-acked.json");
    let writes = Client::spawn(&lab, &["s3write", &s3, "14", acked.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(3));
    let victim = MASTERS + 1;
    lab.net.cut(victim);
    std::thread::sleep(Duration::from_secs(3));
    for j in (0..MASTERS).filter(|&j| j != li) {
        lab.net.cut_between(li, j);
    }
    std::thread::sleep(Duration::from_secs(4));
    for j in (0..MASTERS).filter(|&j| j != li) {
        lab.net.heal_between(li, j);
    }
    lab.net.heal(victim);
    let summary = writes.finish();
    eprintln!("s3 writes: {summary}");
    let counts: serde_json::Value = serde_json::from_str(summary.trim()).unwrap();
    assert!(counts["acked"].as_u64().unwrap() > 20, "{summary}");
    wait_until(
        "all four volume servers listed",
        Duration::from_secs(30),
        || {
            (0..MASTERS).any(|i| {
                let (st, body) = lab.net.get(CLIENT, &lab.master_addr(i), "/dir/status");
                st == 200 && body.matches("\"Url\"").count() >= 4
            })
        },
    );
    eprintln!("{}", lab_shell(&lab, "volume.check.disk -apply\n"));
    let verdict = Client::spawn(&lab, &["s3verify", &s3, acked.to_str().unwrap()]).finish();
    let v: serde_json::Value = serde_json::from_str(verdict.trim()).unwrap();
    assert_eq!(v["bad_count"].as_u64(), Some(0), "{verdict}");
    // And the volume-level view: every replica of every volume agrees now.
    let again = lab_shell(&lab, "volume.check.disk\n");
    assert!(again.contains("0 needle(s) copied, 0 deleted"), "{again}");
}
