//! A kelp cluster of real processes on loopback ports: `kelp master`s, `kelp volume`
//! servers in racks, a `kelp filer` (with S3 if asked), or `kelp server` nodes holding
//! those roles in one process each. Every process gets its own directory and log file
//! under the cluster's temp dir; all ports are reserved before the first process starts
//! and each is released just before its own server starts. [`ClusterBuilder::start`]
//! returns once the masters agree on a leader and every volume server is registered.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http::{admin_get, http};
use crate::ports::{PortReservation, reserve_ports};
use crate::process::KelpProcess;
use crate::wait::wait_until;

/// How long a cluster may take to come up (the test machine has 2 shared cores).
use crate::READY;

/// One process of a cluster with a single role.
#[derive(Debug)]
pub struct Node {
    /// `m0`, `v3`, `filer`: also the name of its directory and log file.
    pub name: String,
    /// `127.0.0.1:<port>` it serves HTTP on.
    pub addr: String,
    /// Its data directory (`-mdir`, `-dir`).
    pub dir: PathBuf,
    /// The `-rack` it was given (volume servers; empty: none).
    pub rack: String,
    pub proc: KelpProcess,
}

/// One `kelp server` process: a master, a volume server and optionally a filer and S3.
#[derive(Debug)]
pub struct ServerNode {
    /// `server0`, ...: also the name of its directory and log file.
    pub name: String,
    /// Its `-dir`.
    pub dir: PathBuf,
    pub rack: String,
    pub master: String,
    pub volume: String,
    pub filer: Option<String>,
    pub s3: Option<String>,
    pub proc: KelpProcess,
}

/// What to start; see [`Cluster::builder`].
#[derive(Debug)]
pub struct ClusterBuilder {
    bin: PathBuf,
    root: tempfile::TempDir,
    masters: Option<usize>,
    volume_racks: Vec<String>,
    server_racks: Vec<String>,
    filer: bool,
    s3: bool,
    master_args: Vec<String>,
    volume_args: Vec<String>,
    filer_args: Vec<String>,
    server_args: Vec<String>,
}

/// Running processes, stopped when dropped (then the directory is removed).
#[derive(Debug)]
pub struct Cluster {
    pub masters: Vec<Node>,
    pub volumes: Vec<Node>,
    pub filer: Option<Node>,
    /// S3 of the filer (`kelp filer -s3`), if asked for.
    pub s3: Option<String>,
    pub servers: Vec<ServerNode>,
    leader: Option<String>,
    /// Last, so it is removed after the processes are gone.
    root: tempfile::TempDir,
}

fn expand(racks: &[(&str, usize)]) -> Vec<String> {
    racks
        .iter()
        .flat_map(|(rack, n)| std::iter::repeat_n(rack.to_string(), *n))
        .collect()
}

fn owned<'a>(args: &'a [&'a str]) -> impl Iterator<Item = String> + 'a {
    args.iter().map(|s| s.to_string())
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

impl ClusterBuilder {
    /// Separate `kelp master` processes (default 1). With none, volume servers are
    /// pointed at a reserved port no master listens on and are ready once they answer.
    pub fn masters(mut self, n: usize) -> Self {
        self.masters = Some(n);
        self
    }

    /// `kelp volume` servers: `n` in each `(rack, n)`, in that order (rack `""`: no
    /// `-rack` flag). Named `v0`, `v1`, ...
    pub fn volumes(mut self, racks: &[(&str, usize)]) -> Self {
        self.volume_racks = expand(racks);
        self
    }

    /// `kelp server` processes instead of separate masters and volume servers: `n` in
    /// each `(rack, n)`; more than one form a Raft group with `-master.peers`. Named
    /// `server0`, ...
    pub fn servers(mut self, racks: &[(&str, usize)]) -> Self {
        self.server_racks = expand(racks);
        self
    }

    /// A filer: one `kelp filer` process, or the filer of every `kelp server`.
    pub fn filer(mut self, on: bool) -> Self {
        self.filer = on;
        self
    }

    /// S3 (implies a filer): `kelp filer -s3`, or `-s3` of every `kelp server`.
    pub fn s3(mut self, on: bool) -> Self {
        self.s3 = on;
        self.filer |= on;
        self
    }

    /// Extra flags of every `kelp master`.
    pub fn master_args(mut self, args: &[&str]) -> Self {
        self.master_args.extend(owned(args));
        self
    }

    /// Extra flags of every `kelp volume`.
    pub fn volume_args(mut self, args: &[&str]) -> Self {
        self.volume_args.extend(owned(args));
        self
    }

    /// Extra flags of the `kelp filer`.
    pub fn filer_args(mut self, args: &[&str]) -> Self {
        self.filer_args.extend(owned(args));
        self
    }

    /// Extra flags of every `kelp server` (after the builder's own: the last value wins).
    pub fn server_args(mut self, args: &[&str]) -> Self {
        self.server_args.extend(owned(args));
        self
    }

    /// The directory every process's directory and log file will be in.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The `-dir` volume server `i` will get (to put files there before it starts).
    pub fn volume_dir(&self, i: usize) -> PathBuf {
        self.root().join(format!("v{i}"))
    }

    /// Starts every process and waits until the cluster is ready; panics (with the log
    /// of a process that did not come up) after a deadline.
    pub fn start(self) -> Cluster {
        if self.server_racks.is_empty() {
            self.start_split()
        } else {
            assert!(
                self.masters.is_none() && self.volume_racks.is_empty(),
                "a cluster of `kelp server`s has no separate masters or volume servers"
            );
            self.start_servers()
        }
    }

    fn start_split(self) -> Cluster {
        let nm = self.masters.unwrap_or(1);
        let nv = self.volume_racks.len();
        // masters (or one dead master address), volumes, filer, s3
        let mut ports = reserve_ports(nm.max(1) + nv + 2);
        let p = ports.ports();
        let (mports, rest) = p.split_at(nm.max(1));
        let (vports, fports) = rest.split_at(nv);
        let master_addrs: Vec<String> = mports.iter().map(|p| addr(*p)).collect();
        let root = self.root.path();

        let mut masters = Vec::new();
        for (i, port) in mports.iter().take(nm).enumerate() {
            let name = format!("m{i}");
            let dir = root.join(&name);
            let peers = if nm > 1 {
                master_addrs.join(",")
            } else {
                String::new()
            };
            let args: Vec<String> = [
                "master".to_string(),
                "-ip=127.0.0.1".into(),
                format!("-port={port}"),
                format!("-mdir={}", dir.display()),
                format!("-peers={peers}"),
            ]
            .into_iter()
            .chain(self.master_args.iter().cloned())
            .collect();
            masters.push(spawn(
                &self.bin, &mut ports, *port, name, dir, "", root, &args,
            ));
        }
        if nm == 0 {
            // Nobody listens there: heartbeats are refused, not left hanging.
            ports.release(mports[0]);
        }
        let volume_args = |dir: &Path, port: u16, rack: &str| {
            let mut args = vec![
                "volume".to_string(),
                "-ip=127.0.0.1".into(),
                format!("-port={port}"),
                format!("-dir={}", dir.display()),
                format!("-mserver={}", master_addrs.join(",")),
            ];
            if !rack.is_empty() {
                args.push(format!("-rack={rack}"));
            }
            args.extend(self.volume_args.iter().cloned());
            args
        };
        let mut volumes = Vec::new();
        for (i, (port, rack)) in vports.iter().zip(&self.volume_racks).enumerate() {
            let name = format!("v{i}");
            let dir = root.join(&name);
            let args = volume_args(&dir, *port, rack);
            volumes.push(spawn(
                &self.bin, &mut ports, *port, name, dir, rack, root, &args,
            ));
        }
        // Each volume server answers before the cluster counts them; one whose port was
        // taken in the moment between release and bind starts again on another port.
        for v in &mut volumes {
            let (dir, rack) = (v.dir.clone(), v.rack.clone());
            listening_or_rebound(&self.bin, v, root, |p| volume_args(&dir, p, &rack));
        }

        let mut leader = None;
        if nm == 0 {
            for v in &mut volumes {
                v.proc.wait_http_ok(&v.addr, "/status", READY);
            }
        } else {
            for m in &mut masters {
                m.proc.wait_http_ok(&m.addr, "/cluster/status", READY);
            }
            let l = wait_for_leader(&master_addrs, READY);
            let counted =
                crate::wait::poll_until(READY, || node_count(&l).is_some_and(|c| c >= nv));
            if counted.is_none() {
                // Say what the master saw and what every volume server logged.
                let status = admin_get(&l, "/cluster/status").map(|r| r.text());
                let logs: Vec<String> = volumes
                    .iter()
                    .map(|v| format!("--- {} ({})\n{}", v.name, v.addr, v.proc.log_tail(15)))
                    .collect();
                panic!(
                    "{l} counts {:?} of {nv} volume servers after {READY:?}; cluster status \
                     {status:?}\n{}",
                    node_count(&l),
                    logs.join("\n")
                );
            }
            wait_for_nodes(&l, nv, READY);
            leader = Some(l);
        }

        let (mut filer, mut s3) = (None, None);
        if self.filer {
            let name = "filer".to_string();
            let dir = root.join("f");
            let mut args = vec![
                "filer".to_string(),
                "-ip=127.0.0.1".into(),
                format!("-port={}", fports[0]),
                format!("-dir={}", dir.display()),
                format!("-master={}", master_addrs.join(",")),
            ];
            if self.s3 {
                args.extend(["-s3=true".to_string(), format!("-s3.port={}", fports[1])]);
                ports.release(fports[1]);
            }
            args.extend(self.filer_args.iter().cloned());
            let mut f = spawn(&self.bin, &mut ports, fports[0], name, dir, "", root, &args);
            f.proc.wait_http_ok(&f.addr, "/", READY);
            if self.s3 {
                let a = addr(fports[1]);
                f.proc.wait_http_answers(&a, "/", READY);
                s3 = Some(a);
            }
            filer = Some(f);
        }
        drop(ports);
        Cluster {
            masters,
            volumes,
            filer,
            s3,
            servers: Vec::new(),
            leader,
            root: self.root,
        }
    }

    fn start_servers(self) -> Cluster {
        let n = self.server_racks.len();
        // master, volume, filer, s3 of each
        let mut ports = reserve_ports(4 * n);
        let p = ports.ports();
        let master_addrs: Vec<String> = p.chunks(4).map(|c| addr(c[0])).collect();
        let root = self.root.path();
        let mut servers = Vec::new();
        for (i, (c, rack)) in p.chunks(4).zip(&self.server_racks).enumerate() {
            let name = if n == 1 {
                "server".to_string()
            } else {
                format!("server{i}")
            };
            let dir = root.join(&name);
            let mut args = vec![
                "server".to_string(),
                format!("-dir={}", dir.display()),
                "-ip=127.0.0.1".into(),
                format!("-master.port={}", c[0]),
                format!("-volume.port={}", c[1]),
                format!("-filer.port={}", c[2]),
                format!("-filer={}", self.filer),
                format!("-s3={}", self.s3),
            ];
            if self.s3 {
                args.push(format!("-s3.port={}", c[3]));
            }
            if n > 1 {
                args.push(format!("-master.peers={}", master_addrs.join(",")));
            }
            if !rack.is_empty() {
                args.push(format!("-rack={rack}"));
            }
            args.extend(self.server_args.iter().cloned());
            for port in c {
                ports.release(*port);
            }
            let proc = KelpProcess::start(&self.bin, &name, root, &args);
            servers.push(ServerNode {
                name,
                dir,
                rack: rack.clone(),
                master: addr(c[0]),
                volume: addr(c[1]),
                filer: self.filer.then(|| addr(c[2])),
                s3: self.s3.then(|| addr(c[3])),
                proc,
            });
        }
        for s in &mut servers {
            s.proc.wait_http_ok(&s.master, "/cluster/status", READY);
        }
        let leader = wait_for_leader(&master_addrs, READY);
        wait_for_nodes(&leader, n, READY);
        for s in &mut servers {
            if let Some(f) = &s.filer {
                s.proc.wait_http_ok(f, "/", READY);
            }
            if let Some(a) = &s.s3 {
                s.proc.wait_http_answers(a, "/", READY);
            }
        }
        Cluster {
            masters: Vec::new(),
            volumes: Vec::new(),
            filer: None,
            s3: None,
            servers,
            leader: Some(leader),
            root: self.root,
        }
    }
}

/// Waits until `node` answers `/status`. If it exited because its port was taken (by
/// another process between the reservation's release and its bind), starts it again on
/// a fresh port, up to three times; any other exit panics with the log tail.
fn listening_or_rebound(
    bin: &Path,
    node: &mut Node,
    log_dir: &Path,
    args_for: impl Fn(u16) -> Vec<String>,
) {
    for _ in 0..3 {
        let addr_now = node.addr.clone();
        let mut up = false;
        crate::wait::poll_until(READY, || {
            up = http("GET", &addr_now, "/status", b"").is_ok_and(|r| r.status == 200);
            up || !node.proc.is_running()
        });
        if up {
            return;
        }
        if node.proc.is_running() || !node.proc.log().contains("in use") {
            panic!(
                "{} did not answer on {addr_now}/status within {READY:?}; log:\n{}",
                node.name,
                node.proc.log_tail(40)
            );
        }
        let mut r = reserve_ports(1);
        let port = r.port(0);
        r.release(port);
        node.addr = addr(port);
        node.proc = KelpProcess::start(bin, &node.name, log_dir, &args_for(port));
    }
    panic!("{} could not bind a port three times", node.name);
}

/// Releases `port` and starts `bin <args>` as `name`, logging to `<log_dir>/<name>.log`.
#[allow(clippy::too_many_arguments)]
fn spawn(
    bin: &Path,
    ports: &mut PortReservation,
    port: u16,
    name: String,
    dir: PathBuf,
    rack: &str,
    log_dir: &Path,
    args: &[String],
) -> Node {
    ports.release(port);
    let proc = KelpProcess::start(bin, &name, log_dir, args);
    Node {
        name,
        addr: addr(port),
        dir,
        rack: rack.to_string(),
        proc,
    }
}

impl Cluster {
    /// A builder for a cluster of `bin` (the `kelp` binary: in the root package's tests
    /// `env!("CARGO_BIN_EXE_kelp")`) with one master and nothing else yet.
    pub fn builder(bin: impl AsRef<Path>) -> ClusterBuilder {
        ClusterBuilder {
            bin: bin.as_ref().to_path_buf(),
            root: crate::scratch(),
            masters: None,
            volume_racks: Vec::new(),
            server_racks: Vec::new(),
            filer: false,
            s3: false,
            master_args: Vec::new(),
            volume_args: Vec::new(),
            filer_args: Vec::new(),
            server_args: Vec::new(),
        }
    }

    /// The directory holding every process's directory and log file (and room for the
    /// test's own files).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The master that led when the cluster came up.
    pub fn master(&self) -> &str {
        self.leader
            .as_deref()
            .expect("this cluster has no master (masters(0))")
    }

    /// Every master's address (of `kelp master`s or of `kelp server`s).
    pub fn master_addrs(&self) -> Vec<String> {
        let split = self.masters.iter().map(|m| m.addr.clone());
        split
            .chain(self.servers.iter().map(|s| s.master.clone()))
            .collect()
    }

    /// Every volume server's address (of `kelp volume`s or of `kelp server`s).
    pub fn volume_addrs(&self) -> Vec<String> {
        let split = self.volumes.iter().map(|v| v.addr.clone());
        split
            .chain(self.servers.iter().map(|s| s.volume.clone()))
            .collect()
    }

    /// The filer's address (of the first `kelp server` in a cluster of servers).
    pub fn filer_addr(&self) -> &str {
        self.filer
            .as_ref()
            .map(|f| f.addr.as_str())
            .or_else(|| self.servers.first().and_then(|s| s.filer.as_deref()))
            .expect("this cluster has no filer")
    }

    /// The S3 gateway's address (of the first `kelp server` in a cluster of servers).
    pub fn s3_addr(&self) -> &str {
        self.s3
            .as_deref()
            .or_else(|| self.servers.first().and_then(|s| s.s3.as_deref()))
            .expect("this cluster has no S3 gateway")
    }
}

/// Waits until every master in `masters` answers, exactly one says it leads and all of
/// them name it; returns its address.
pub fn wait_for_leader(masters: &[String], within: Duration) -> String {
    let mut leader = String::new();
    wait_until("one agreed raft leader", within, || {
        let statuses: Vec<serde_json::Value> = masters
            .iter()
            .filter_map(|m| admin_get(m, "/cluster/status").ok())
            .filter(|r| r.status == 200)
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect();
        let leaders: Vec<&serde_json::Value> =
            statuses.iter().filter(|s| s["IsLeader"] == true).collect();
        if statuses.len() != masters.len() || leaders.len() != 1 {
            return false;
        }
        let named = leaders[0]["Leader"].as_str().unwrap_or("").to_string();
        if !named.is_empty() && statuses.iter().all(|s| s["Leader"] == named.as_str()) {
            leader = named;
            true
        } else {
            false
        }
    });
    leader
}

/// Waits until the master at `addr` leads and has at least `n` volume servers in its
/// topology.
pub fn wait_for_nodes(addr: &str, n: usize, within: Duration) {
    wait_until(
        &format!("{addr} to lead with {n} volume servers"),
        within,
        || {
            let leads = admin_get(addr, "/cluster/status").is_ok_and(|r| {
                serde_json::from_slice::<serde_json::Value>(&r.body)
                    .is_ok_and(|v| v["IsLeader"] == true)
            });
            leads && node_count(addr).is_some_and(|c| c >= n)
        },
    );
}

/// How many volume servers the master at `addr` has in its topology (`/dir/status`).
pub fn node_count(addr: &str) -> Option<usize> {
    let r = http("GET", addr, "/dir/status", b"").ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    let dcs = v["Topology"]["DataCenters"].as_array()?;
    Some(
        dcs.iter()
            .flat_map(|dc| dc["Racks"].as_array().cloned().unwrap_or_default())
            .map(|r| r["DataNodes"].as_array().map_or(0, Vec::len))
            .sum(),
    )
}
