//! Server CPU time read from `/proc/<pid>/stat`, so a phase can report CPU per request.

use std::time::Duration;

/// The processes whose CPU time a phase is charged with (`-serverPid`).
#[derive(Debug, Clone, Default)]
pub struct ServerCpu {
    pids: Vec<u32>,
}

impl ServerCpu {
    /// Parses `-serverPid=PID[,PID...]`; empty: nothing is measured.
    pub fn parse(list: &str) -> anyhow::Result<ServerCpu> {
        let mut pids = Vec::new();
        for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let pid: u32 = p
                .parse()
                .map_err(|_| anyhow::anyhow!("-serverPid: {p:?} is not a process id"))?;
            read_stat(pid).map_err(|e| anyhow::anyhow!("-serverPid {pid}: {e}"))?;
            pids.push(pid);
        }
        Ok(ServerCpu { pids })
    }

    /// User plus system time of all watched processes so far (threads included, also
    /// the ones that have exited).
    pub fn total(&self) -> Option<Duration> {
        if self.pids.is_empty() {
            return None;
        }
        let mut sum = Duration::ZERO;
        for &pid in &self.pids {
            sum += read_stat(pid).ok()?;
        }
        Some(sum)
    }
}

/// utime + stime of one process.
fn read_stat(pid: u32) -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: fields start after the
    // last ')'. There, field 0 is the state; utime and stime are fields 11 and 12.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("unreadable /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("unreadable /proc/{pid}/stat"))
    };
    let ticks = tick(11)? + tick(12)?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Ok(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / hz,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let cpu = ServerCpu::parse(&me.to_string()).unwrap();
        assert!(cpu.total().is_some());
        assert!(ServerCpu::parse("").unwrap().total().is_none());
        assert!(ServerCpu::parse("nope").is_err());
    }
}
