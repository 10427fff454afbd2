//! A server process a test started: output to a log file, stopped (and reaped) when its
//! handle is dropped, restartable with the same command line.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::wait::poll_until;

/// A running process of `bin`. Killed (and reaped) when dropped.
#[derive(Debug)]
pub struct KelpProcess {
    pub name: String,
    pub log_path: PathBuf,
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl KelpProcess {
    /// Starts `bin <args>` with stdout and stderr going to `<log_dir>/<name>.log` and
    /// `RUST_LOG` set from `KELP_TEST_LOG` (default: the binary's own default filter).
    pub fn start(bin: impl AsRef<Path>, name: &str, log_dir: &Path, args: &[String]) -> Self {
        let mut p = KelpProcess {
            name: name.to_string(),
            log_path: log_dir.join(format!("{name}.log")),
            bin: bin.as_ref().to_path_buf(),
            args: args.to_vec(),
            child: None,
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
        let mut cmd = Command::new(&self.bin);
        // The binary's own default filter unless a test run asks for another.
        match std::env::var("KELP_TEST_LOG") {
            Ok(filter) => cmd.env("RUST_LOG", filter),
            Err(_) => cmd.env_remove("RUST_LOG"),
        };
        let child = cmd
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        self.child = Some(child);
    }

    /// Starts the same command line again (after a kill or stop; kills it first if not).
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

    /// SIGTERM, then waits up to `within` for a clean exit; returns the exit status
    /// (`None`, after a `kill -9`, if it did not exit in time).
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let mut status = None;
        poll_until(within, || {
            status = c.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
        status
    }

    /// Waits for the process to exit by itself (for commands that should fail fast).
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        let mut status = None;
        poll_until(within, || {
            status = c.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_some() {
            self.child = None;
        }
        status
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until `GET http://addr/path` answers 200; panics with the log tail if the
    /// process exits first or `within` passes.
    pub fn wait_http_ok(&mut self, addr: &str, path: &str, within: Duration) {
        self.wait_http(addr, path, within, |status| status == 200);
    }

    /// Waits until `GET http://addr/path` gets any HTTP answer (see [`Self::wait_http_ok`]).
    pub fn wait_http_answers(&mut self, addr: &str, path: &str, within: Duration) {
        self.wait_http(addr, path, within, |_| true);
    }

    fn wait_http(&mut self, addr: &str, path: &str, within: Duration, ok: fn(u16) -> bool) {
        let mut answered = false;
        poll_until(within, || {
            answered = crate::http::admin_get(addr, path).is_ok_and(|r| ok(r.status));
            answered || !self.is_running()
        });
        if !answered {
            panic!(
                "{} did not answer on {addr}{path} within {within:?}; log:\n{}",
                self.name,
                self.log_tail(40)
            );
        }
    }
}

impl Drop for KelpProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `bin <args>` to completion and returns (status code, stdout, stderr).
pub fn run(bin: impl AsRef<Path>, args: &[&str]) -> (i32, String, String) {
    let bin = bin.as_ref();
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}
