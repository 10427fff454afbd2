//! `kelp shell`: cluster maintenance commands, one per line from stdin, with
//! SeaweedFS-style flags (`ec.encode -volumeId=3`). Each command prints progress lines and
//! a summary; the exit status is non-zero when any command failed.

mod ec;
mod ec_vacuum;
mod lock;
mod topo;

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use kelp_proto::client::{MasterClient, VolumeClient, base_url, http_client};

pub(crate) use topo::parse_duration;

/// Flags of `kelp shell`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Masters as host:port,...
    #[arg(long, default_value = "127.0.0.1:9333")]
    pub master: String,
}

/// Parsed flags of one command line: `-name=value`, `--name=value`, `-name value`, `-flag`.
#[derive(Debug, Default)]
pub(crate) struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(words: &[&str]) -> anyhow::Result<Flags> {
        let mut out = HashMap::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            let Some(name) = w.strip_prefix("--").or_else(|| w.strip_prefix('-')) else {
                bail!("unexpected argument {w:?} (flags look like -name=value)");
            };
            if let Some((k, v)) = name.split_once('=') {
                out.insert(k.to_string(), v.to_string());
            } else if let Some(next) = words.get(i + 1).filter(|n| !n.starts_with('-')) {
                out.insert(name.to_string(), next.to_string());
                i += 1;
            } else {
                out.insert(name.to_string(), "true".to_string());
            }
            i += 1;
        }
        Ok(Flags(out))
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub(crate) fn num<T: std::str::FromStr>(&self, k: &str) -> anyhow::Result<Option<T>> {
        self.get(k)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| anyhow::anyhow!("-{k}={v} is not a valid number"))
            })
            .transpose()
    }

    fn check_known(&self, known: &[&str]) -> anyhow::Result<()> {
        for k in self.0.keys() {
            if !known.contains(&k.as_str()) {
                bail!("unknown flag -{k} (known: {})", known.join(" "));
            }
        }
        Ok(())
    }
}

/// The clients every command uses.
pub(crate) struct Shell {
    pub master: MasterClient,
    pub volumes: VolumeClient,
    pub http: reqwest::Client,
    /// Names this session as a holder of the cluster lock.
    owner: String,
    /// The renewal task while the session holds the lock.
    lease: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Shell {
    fn new(masters: Vec<String>, owner: String) -> Shell {
        let http = http_client();
        Shell {
            master: MasterClient::with_http(masters, http.clone()),
            volumes: VolumeClient::new(http.clone()),
            http,
            owner,
            lease: std::sync::Mutex::new(None),
        }
    }

    /// GETs a JSON document from the first master that answers.
    pub(crate) async fn master_get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<T> {
        let mut last = None;
        for m in self.master.masters() {
            let url = format!("{}{path}", base_url(m));
            match self.http.get(&url).send().await {
                Ok(r) if r.status().is_success() => {
                    return r.json().await.with_context(|| format!("decoding {url}"));
                }
                Ok(r) => last = Some(anyhow::anyhow!("{url} answered {}", r.status())),
                Err(e) => last = Some(anyhow::anyhow!("{url}: {e}")),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no master given")))
    }
}

/// Set when commands run inside a server (the master's maintenance scripts): progress
/// lines then go to the log instead of stdout.
static TO_LOG: AtomicBool = AtomicBool::new(false);

/// Prints a progress line at once (stdout may be a pipe).
pub(crate) fn say(msg: impl std::fmt::Display) {
    if TO_LOG.load(Ordering::Relaxed) {
        tracing::info!(target: "kelp::maintenance", "{msg}");
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{msg}");
    let _ = out.flush();
}

/// Every command `kelp shell` knows.
pub(crate) const COMMANDS: &[&str] = &[
    "lock",
    "unlock",
    "cluster.status",
    "volume.list",
    "volume.vacuum",
    "ec.encode",
    "ec.rebuild",
    "ec.decode",
    "ec.balance",
    "ec.vacuum",
];

/// Splits a maintenance script (commands separated by `;` or newlines, `#` comments)
/// into command lines, checking each names a known command with well-formed flags.
pub(crate) fn parse_script(script: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for line in script.split([';', '\n']).map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if !COMMANDS.contains(&words[0]) {
            bail!(
                "unknown command {:?} in {line:?} (known: {})",
                words[0],
                COMMANDS.join(" ")
            );
        }
        Flags::parse(&words[1..]).with_context(|| format!("in {line:?}"))?;
        out.push(line.to_string());
    }
    Ok(out)
}

/// Runs command lines against `masters` with progress going to the log, as the master's
/// maintenance loop does; returns how many failed (each failure is logged).
pub(crate) async fn run_logged(masters: Vec<String>, lines: &[String]) -> usize {
    TO_LOG.store(true, Ordering::Relaxed);
    let shell = Shell::new(
        masters.clone(),
        format!("master maintenance ({})", masters.join(",")),
    );
    // The whole round runs under the cluster lock; someone else holding it skips it.
    if let Err(e) = shell.lock().await {
        tracing::info!(target: "kelp::maintenance", "round skipped: {e:#}");
        return 0;
    }
    let mut failed = 0;
    for line in lines {
        tracing::info!(target: "kelp::maintenance", "running {line:?}");
        if let Err(e) = execute(&shell, line).await {
            failed += 1;
            tracing::warn!(target: "kelp::maintenance", "{line:?} failed: {e:#}");
        }
    }
    shell.unlock().await;
    failed
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = super::common::runtime()?;
    let owner = format!("kelp shell (pid {})", std::process::id());
    let shell = Shell::new(super::common::split_list(&args.master), owner);
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut failed = 0usize;
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("> ");
            let _ = std::io::stdout().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin")?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if matches!(line, "exit" | "quit") {
            break;
        }
        if let Err(e) = rt.block_on(execute(&shell, line)) {
            failed += 1;
            eprintln!("error: {line}: {e:#}");
        }
    }
    rt.block_on(shell.unlock());
    if failed > 0 {
        bail!("{failed} command(s) failed");
    }
    Ok(())
}

async fn execute(shell: &Shell, line: &str) -> anyhow::Result<()> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, rest)) = words.split_first() else {
        return Ok(());
    };
    let flags = Flags::parse(rest)?;
    match cmd {
        "lock" => {
            flags.check_known(&[])?;
            shell.lock().await?;
            say("locked: other shells and the master's maintenance wait until unlock");
            Ok(())
        }
        "unlock" => {
            flags.check_known(&[])?;
            shell.unlock().await;
            Ok(())
        }
        "help" => {
            say(format!("commands: {}", COMMANDS.join(" ")));
            Ok(())
        }
        "cluster.status" => {
            flags.check_known(&[])?;
            topo::cluster_status(shell).await
        }
        "volume.list" => {
            flags.check_known(&[])?;
            topo::volume_list(shell).await
        }
        "volume.vacuum" => {
            flags.check_known(&["garbageThreshold"])?;
            shell.locked(topo::volume_vacuum(shell, &flags)).await
        }
        "ec.encode" => {
            flags.check_known(&[
                "volumeId",
                "collection",
                "fullPercent",
                "quietFor",
                "force",
                "parallelCopy",
                "maxParallelization",
                "rebalance",
                "diskType",
                "dataShards",
                "parityShards",
            ])?;
            shell.locked(ec::encode(shell, &flags)).await
        }
        "ec.rebuild" => {
            flags.check_known(&["volumeId", "collection", "force", "maxParallelization"])?;
            shell.locked(ec::rebuild(shell, &flags)).await
        }
        "ec.decode" => {
            flags.check_known(&["volumeId", "collection"])?;
            shell.locked(ec::decode(shell, &flags)).await
        }
        "ec.balance" => {
            flags.check_known(&[
                "volumeId",
                "collection",
                "force",
                "maxParallelization",
                "dataCenter",
                "shardReplicaPlacement",
            ])?;
            shell.locked(ec::balance(shell, &flags)).await
        }
        "ec.vacuum" => {
            flags.check_known(&["volumeId", "collection", "garbageThreshold"])?;
            shell.locked(ec_vacuum::vacuum(shell, &flags)).await
        }
        other => bail!("unknown command {other:?} (try help)"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_in_every_style() {
        let f = Flags::parse(&["-volumeId=3", "--collection", "pics", "-force"]).unwrap();
        assert_eq!(f.get("volumeId"), Some("3"));
        assert_eq!(f.get("collection"), Some("pics"));
        assert_eq!(f.get("force"), Some("true"));
        assert_eq!(f.num::<u32>("volumeId").unwrap(), Some(3));
        assert!(f.num::<u32>("collection").is_err());
        assert!(Flags::parse(&["stray"]).is_err());
        assert!(f.check_known(&["volumeId"]).is_err());
    }

    #[test]
    fn maintenance_scripts() {
        let lines = parse_script(
            "ec.encode -collection=c -fullPercent=95 -quietFor=1h; ec.rebuild\n# note\n",
        )
        .unwrap();
        assert_eq!(
            lines,
            [
                "ec.encode -collection=c -fullPercent=95 -quietFor=1h",
                "ec.rebuild"
            ]
        );
        assert!(parse_script("ec.encodee -collection=c").is_err());
        assert!(parse_script("ec.encode stray").is_err());
        assert!(parse_script("").unwrap().is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(topo::parse_duration("1h").unwrap(), 3600);
        assert_eq!(topo::parse_duration("90s").unwrap(), 90);
        assert_eq!(topo::parse_duration("2m").unwrap(), 120);
        assert_eq!(topo::parse_duration("0").unwrap(), 0);
        assert!(topo::parse_duration("x").is_err());
    }
}
