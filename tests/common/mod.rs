//! Test harness: start real `kelp` processes on ephemeral loopback ports, each with
//! its own temp dir and log file, wait for readiness with a deadline, stop them on drop.

#![allow(dead_code)]

pub mod ec;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `kelp` binary cargo built for these tests.
pub fn kelp_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kelp")
}

/// A port that was free on 127.0.0.1 a moment ago (the OS picked it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Polls `ok` until it returns true or `within` has passed; panics with `what` then.
pub fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if ok() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A minimal blocking HTTP/1.1 request (no dependencies), for readiness probes
/// and simple checks: returns status, headers (lower-cased names) and body.
pub fn http(method: &str, addr: &str, path: &str, body: &[u8]) -> std::io::Result<HttpReply> {
    let sock: SocketAddr = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
    })?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    HttpReply::parse(&raw)
}

#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    fn parse(raw: &[u8]) -> std::io::Result<HttpReply> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("no header end"))?;
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        let mut lines = head.lines();
        let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[end + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        if chunked {
            body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
        }
        Ok(HttpReply {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", self.text()))
    }
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// A running `kelp` process. Killed (and reaped) when dropped.
pub struct KelpProcess {
    pub name: String,
    child: Option<Child>,
    pub log_path: PathBuf,
    args: Vec<String>,
}

impl KelpProcess {
    /// Starts `kelp <args>` with stdout and stderr going to `<log_dir>/<name>.log`.
    pub fn start(name: &str, log_dir: &Path, args: &[String]) -> KelpProcess {
        let log_path = log_dir.join(format!("{name}.log"));
        let mut p = KelpProcess {
            name: name.to_string(),
            child: None,
            log_path,
            args: args.to_vec(),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open log file");
        let err = log.try_clone().expect("clone log file");
        let child = Command::new(kelp_bin())
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("KELP_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn kelp");
        self.child = Some(child);
    }

    /// Starts the same command line again (after a kill or stop).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `within` for a clean exit; returns the exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit by itself (for commands that should fail fast).
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until `GET http://addr/path` answers 200, or panics with the log tail.
    pub fn wait_http_ok(&mut self, addr: &str, path: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = http("GET", addr, path, b"")
                && r.status == 200
            {
                return;
            }
            if !self.is_running() || Instant::now() > deadline {
                let log = self.log();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!(
                    "{} did not answer 200 on {addr}{path} within {within:?}; log:\n{tail}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for KelpProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `kelp <args>` to completion and returns (status code, stdout, stderr).
pub fn run_kelp(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(kelp_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kelp");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A scratch directory for one test, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kelp-test-")
        .tempdir()
        .expect("temp dir")
}

/// `kelp master` on `port` (Raft group `peers`, empty for a single master).
pub fn start_master(
    root: &Path,
    name: &str,
    port: u16,
    peers: &[String],
    extra: &[&str],
) -> KelpProcess {
    let mdir = root.join(name);
    let mut args = vec![
        "master".to_string(),
        "-ip=127.0.0.1".into(),
        format!("-port={port}"),
        format!("-mdir={}", mdir.display()),
        format!("-peers={}", peers.join(",")),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    KelpProcess::start(name, root, &args)
}

/// A single `kelp master` named "m" on a free port, answering; returns the process and
/// its `127.0.0.1:port`.
pub fn single_master(root: &Path, extra: &[&str]) -> (KelpProcess, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut m = start_master(root, "m", port, &[], extra);
    m.wait_http_ok(&addr, "/cluster/status", Duration::from_secs(30));
    (m, addr)
}

/// `kelp volume` on `port` heartbeating to `masters`.
pub fn start_volume(
    root: &Path,
    name: &str,
    port: u16,
    masters: &[String],
    extra: &[&str],
) -> KelpProcess {
    let dir = root.join(name);
    let mut args = vec![
        "volume".to_string(),
        "-ip=127.0.0.1".into(),
        format!("-port={port}"),
        format!("-dir={}", dir.display()),
        format!("-mserver={}", masters.join(",")),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    KelpProcess::start(name, root, &args)
}

/// GETs `path` on `addr` and parses the JSON body (panics on transport errors).
pub fn get_json(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let r = http("GET", addr, path, b"").unwrap_or_else(|e| panic!("GET {addr}{path}: {e}"));
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, v)
}

/// Waits until the master at `addr` leads and has `n` volume servers in its topology.
pub fn wait_for_nodes(addr: &str, n: usize, within: Duration) {
    wait_until(
        &format!("{addr} to lead with {n} volume servers"),
        within,
        || {
            let leads = http("GET", addr, "/cluster/status", b"").is_ok_and(|r| {
                serde_json::from_slice::<serde_json::Value>(&r.body)
                    .is_ok_and(|v| v["IsLeader"] == true)
            });
            if !leads {
                return false;
            }
            let Ok(r) = http("GET", addr, "/dir/status", b"") else {
                return false;
            };
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let count: usize = v["Topology"]["DataCenters"]
                .as_array()
                .map(|dcs| {
                    dcs.iter()
                        .flat_map(|dc| dc["Racks"].as_array().cloned().unwrap_or_default())
                        .map(|r| r["DataNodes"].as_array().map(|a| a.len()).unwrap_or(0))
                        .sum()
                })
                .unwrap_or(0);
            count >= n
        },
    );
}
