//! [`NetLab`]: hosts of their own on one machine for partition tests. Each host is a
//! network namespace with one address (`10.77.0.N/24`) on a veth whose other end is on a
//! bridge inside a hub namespace of the lab; cutting a host takes its bridge port down.
//! Nothing is added to the machine's own namespace but the namespaces themselves (and
//! veth ends only while they are moved), and everything goes when the lab is dropped,
//! also when a test fails. Needs root and `ip` (iproute2).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::process::KelpProcess;

/// Labs made by this process (names stay unique within it; the pid keeps them apart
/// between processes).
static LABS: AtomicU32 = AtomicU32::new(0);

/// A lab of hosts; see the module doc.
pub struct NetLab {
    tag: String,
    hub: String,
    hosts: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e} (iproute2 is needed)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetLab {
    /// A lab of `n` hosts (at most 200). Panics with the reason when namespaces cannot
    /// be made (not root, no iproute2).
    pub fn new(n: usize) -> NetLab {
        assert!(n <= 200, "at most 200 hosts");
        let id = LABS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:x}{id}", std::process::id() % 0xfffff);
        let mut lab = NetLab {
            hub: format!("kl{tag}h"),
            tag,
            hosts: Vec::new(),
        };
        if let Err(e) = lab.build(n) {
            panic!("cannot build the network lab (root and iproute2 are needed): {e}");
        }
        lab
    }

    fn build(&mut self, n: usize) -> Result<(), String> {
        let hub = self.hub.clone();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..n {
            let ns = format!("kl{}n{i}", self.tag);
            ip(&["netns", "add", &ns])?;
            self.hosts.push(ns.clone());
            // Made in the hub (so no name is taken in the machine's namespace), then
            // one end moves to the host.
            let (inner, outer) = (format!("h{i}"), format!("p{i}"));
            ip(&[
                "-n", &hub, "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ])?;
            ip(&["-n", &hub, "link", "set", &inner, "netns", &ns])?;
            ip(&["-n", &hub, "link", "set", &outer, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &outer, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.addr(i)),
                "dev",
                &inner,
            ])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
        }
        Ok(())
    }

    /// Host `i`'s address.
    pub fn addr(&self, i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// Host `i`'s namespace name.
    pub fn ns(&self, i: usize) -> &str {
        &self.hosts[i]
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Starts `bin <args>` inside host `i` (its log in `log_dir/<name>.log`).
    pub fn start(
        &self,
        i: usize,
        bin: impl AsRef<Path>,
        name: &str,
        log_dir: &Path,
        args: &[String],
    ) -> KelpProcess {
        let mut all = vec![
            "netns".to_string(),
            "exec".into(),
            self.hosts[i].clone(),
            bin.as_ref().display().to_string(),
        ];
        all.extend(args.iter().cloned());
        // `ip netns exec` execs the command: the handle's pid is the server's own.
        KelpProcess::start("ip", name, log_dir, &all)
    }

    /// Runs `program <args>` inside host `i` to completion: (status, stdout, stderr).
    pub fn run(&self, i: usize, program: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.hosts[i], program])
            .args(args)
            .output()
            .expect("run ip netns exec");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `GET http://<addr><path>` from inside host `from`: (status, body); status 0 when
    /// nothing answered within 3 s.
    pub fn get(&self, from: usize, addr: &str, path: &str) -> (u16, String) {
        let (_, out, _) = self.run(
            from,
            "curl",
            &[
                "-s",
                "-m",
                "3",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                &format!("http://{addr}{path}"),
            ],
        );
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Cuts host `i` off from every other host.
    pub fn cut(&self, i: usize) {
        ip(&["-n", &self.hub, "link", "set", &format!("p{i}"), "down"]).expect("cut a host");
    }

    /// Cuts hosts `a` and `b` off from each other only (a blackhole route each way);
    /// both still reach every other host.
    pub fn cut_between(&self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let to = format!("{}/32", self.addr(y));
            ip(&["-n", &self.hosts[x], "route", "add", "blackhole", &to]).expect("cut a link");
        }
    }

    /// Undoes [`NetLab::cut_between`].
    pub fn heal_between(&self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let to = format!("{}/32", self.addr(y));
            ip(&["-n", &self.hosts[x], "route", "del", "blackhole", &to]).expect("heal a link");
        }
    }

    /// Connects host `i` again.
    pub fn heal(&self, i: usize) {
        ip(&["-n", &self.hub, "link", "set", &format!("p{i}"), "up"]).expect("heal a host");
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it, and so their peers.
        for ns in self.hosts.iter().chain(std::iter::once(&self.hub)) {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cleaning up the network lab: {e}");
            }
        }
    }
}
