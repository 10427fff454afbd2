//! Following a filer's change log over HTTP (`GET /?op=meta.events`): `kelp
//! filer.meta.tail`, which prints it, and `kelp filer.backup`, which replays it into a
//! second store a filer can be rebuilt from.

use std::sync::Arc;

use anyhow::{Context, bail};
use kelp_filer::store::{FilerStore, ListOptions, LogEvent, Mutation};
use kelp_proto::client::base_url;
use kelp_proto::security::Authorize;
use serde_json::Value;

use super::common;

/// How long one events request waits on the filer for something new.
const WAIT_SECS: u64 = 30;

/// A filer's change log, read from `since` on.
struct Follower {
    http: reqwest::Client,
    base: String,
    prefix: String,
}

/// One answer of the filer: its events (raw and decoded) and where to read on.
struct Page {
    events: Vec<(Value, LogEvent)>,
    next: u64,
}

impl Follower {
    fn new(filer: &str, prefix: &str) -> Follower {
        Follower {
            http: kelp_proto::client::http_client(),
            base: base_url(filer),
            prefix: prefix.to_string(),
        }
    }

    async fn get(&self, query: &[(&str, String)], timeout_secs: u64) -> anyhow::Result<Value> {
        let url = format!("{}/", self.base);
        let resp = self
            .http
            .get(&url)
            .filer(false)
            .query(query)
            .timeout(std::time::Duration::from_secs(timeout_secs + 30))
            .send()
            .await
            .with_context(|| format!("cannot reach the filer at {url}"))?;
        let status = resp.status();
        let body = resp.text().await.context("reading the filer's answer")?;
        if !status.is_success() {
            let msg = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(body);
            bail!("the filer answered {status}: {msg}");
        }
        serde_json::from_str(&body).context("the filer's answer is not JSON")
    }

    /// The last settled position of the log.
    async fn head(&self) -> anyhow::Result<u64> {
        let v = self.get(&[("op", "meta.head".into())], 0).await?;
        v["head"].as_u64().context("meta.head answered no head")
    }

    async fn next(&self, since: u64, wait: u64) -> anyhow::Result<Page> {
        let mut q = vec![
            ("op", "meta.events".to_string()),
            ("since", since.to_string()),
            ("wait", wait.to_string()),
        ];
        if !self.prefix.is_empty() {
            q.push(("pathPrefix", self.prefix.clone()));
        }
        let v = self.get(&q, wait).await?;
        let next = v["next"].as_u64().context("meta.events answered no next")?;
        let mut events = Vec::new();
        if let Value::Array(list) = &v["events"] {
            for raw in list {
                let ev = kelp_filer::events::from_json(raw.clone()).map_err(anyhow::Error::msg)?;
                events.push((raw.clone(), ev));
            }
        }
        Ok(Page { events, next })
    }
}

/// Flags of `kelp filer.meta.tail`.
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// The filer to follow (host:port).
    #[arg(long, default_value = "127.0.0.1:8888")]
    pub filer: String,
    /// Only changes of paths starting with this.
    #[arg(long = "pathPrefix", default_value = "/")]
    pub path_prefix: String,
    /// Start after this log position (0: from the oldest event kept); default: now.
    #[arg(long)]
    pub since: Option<u64>,
    /// Stop once caught up, instead of waiting for more.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub once: bool,
    /// Output: text (one line per change) or json (one event per line, as the filer
    /// sends it).
    #[arg(long = "o", default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
    /// The cluster's security file (for read tokens and TLS).
    #[arg(long = "security", value_name = "FILE")]
    pub security: Option<std::path::PathBuf>,
}

/// One line per change: position, time, what changed.
fn describe(ev: &LogEvent) -> Vec<String> {
    let when = kelp_filer::events::rfc3339_ns(ev.ts_ns);
    ev.changes
        .iter()
        .map(|c| {
            let what = match c {
                Mutation::Put(e) if e.is_directory => format!("mkdir {}", e.path),
                Mutation::Put(e) => format!(
                    "put {} ({} bytes, {} chunks)",
                    e.path,
                    e.attr.file_size,
                    e.chunks.len()
                ),
                Mutation::Delete(p) => format!("delete {p}"),
                Mutation::DeleteTree(p) => format!("delete -r {p}"),
                Mutation::Rename { from, to } => format!("rename {from} -> {to}"),
                Mutation::KvPut(k, _) => format!("kv.put {}", String::from_utf8_lossy(k)),
                Mutation::KvDelete(k) => format!("kv.delete {}", String::from_utf8_lossy(k)),
                other => format!("{other:?}"),
            };
            format!("{} {when} {what}", ev.seq)
        })
        .collect()
}

pub fn run_tail(args: TailArgs) -> anyhow::Result<()> {
    common::install_client_security(args.security.as_deref())?;
    let rt = common::runtime()?;
    rt.block_on(async {
        let f = Follower::new(&args.filer, &args.path_prefix);
        let mut since = match args.since {
            Some(s) => s,
            None => f.head().await?,
        };
        let wait = if args.once { 0 } else { WAIT_SECS };
        loop {
            let page = tokio::select! {
                p = f.next(since, wait) => p?,
                _ = common::shutdown_signal() => return Ok(()),
            };
            for (raw, ev) in &page.events {
                if args.output == "json" {
                    println!("{raw}");
                } else {
                    for line in describe(ev) {
                        println!("{line}");
                    }
                }
            }
            let idle = page.events.is_empty() && page.next == since;
            since = page.next;
            if args.once && idle {
                return Ok(());
            }
        }
    })
}

/// Flags of `kelp filer.backup`.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// The filer to follow (host:port).
    #[arg(long, default_value = "127.0.0.1:8888")]
    pub filer: String,
    /// The store to keep the copy in: redb:DIR or postgres:URL (postgres: alone reads
    /// KELP_POSTGRES_URL). A filer started on it (-dir=DIR, or -store=postgres) serves
    /// the namespace as it was at the last change copied.
    #[arg(long)]
    pub to: String,
    /// Schema of a postgres: target.
    #[arg(long = "to.schema", default_value = "kelp")]
    pub to_schema: String,
    /// Stop once caught up, instead of following on.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub once: bool,
    /// The cluster's security file (for read tokens and TLS).
    #[arg(long = "security", value_name = "FILE")]
    pub security: Option<std::path::PathBuf>,
}

/// Where in the followed filer's log a backup store is (a key of its key-value space,
/// written in the same batch as each change it copies).
const CURSOR_KEY: &[u8] = b"backup/position";

async fn cursor(to: &dyn FilerStore) -> anyhow::Result<Option<u64>> {
    match to.kv_get(CURSOR_KEY).await? {
        None => Ok(None),
        Some(v) => {
            let s = String::from_utf8_lossy(&v).to_string();
            s.parse()
                .map(Some)
                .with_context(|| format!("the backup's position {s:?} is damaged"))
        }
    }
}

fn set_cursor(seq: u64) -> Mutation {
    Mutation::KvPut(CURSOR_KEY.to_vec(), seq.to_string().into_bytes())
}

/// Seeds an empty store with the filer's whole namespace; returns the log position the
/// copy starts from (taken before the export, so later changes are all replayed).
async fn seed(f: &Follower, to: &dyn FilerStore) -> anyhow::Result<u64> {
    if !to.list("/", &ListOptions::first(1)).await?.is_empty() {
        bail!(
            "-to holds entries but no backup position: back up into an empty store \
             (or continue a backup made by kelp filer.backup)"
        );
    }
    let head = f.head().await?;
    let url = format!("{}/", f.base);
    let resp = f
        .http
        .get(&url)
        .filer(false)
        .query(&[("op", "meta.export")])
        .send()
        .await
        .with_context(|| format!("cannot reach the filer at {url}"))?;
    if !resp.status().is_success() {
        bail!("the filer answered {} to the export", resp.status());
    }
    let export = resp.bytes().await.context("reading the export")?;
    let (entries, keys) = kelp_filer::http::load_export(to, &export)
        .await
        .map_err(|e| anyhow::anyhow!("loading the export: {e}"))?;
    to.apply(vec![set_cursor(head)]).await?;
    eprintln!("copied {entries} entries and {keys} keys; following from position {head}");
    Ok(head)
}

pub fn run_backup(args: BackupArgs) -> anyhow::Result<()> {
    common::install_client_security(args.security.as_deref())?;
    let rt = common::runtime()?;
    rt.block_on(async {
        let (to, _lock): (Arc<dyn FilerStore>, _) =
            super::copy_meta::open(&args.to, &args.to_schema)
                .await
                .context("-to")?;
        let f = Follower::new(&args.filer, "");
        let mut since = match cursor(to.as_ref()).await? {
            Some(s) => s,
            None => seed(&f, to.as_ref()).await?,
        };
        let wait = if args.once { 0 } else { WAIT_SECS };
        let mut copied = 0u64;
        loop {
            let page = tokio::select! {
                p = f.next(since, wait) => p.map_err(|e| {
                    e.context(format!("following the filer's log from position {since}"))
                })?,
                _ = common::shutdown_signal() => break,
            };
            for (_, ev) in &page.events {
                kelp_filer::events::replay(to.as_ref(), &ev.changes, vec![set_cursor(ev.seq)])
                    .await
                    .with_context(|| format!("copying change {}", ev.seq))?;
                copied += 1;
            }
            if page.next != since && page.events.last().is_none_or(|(_, e)| e.seq != page.next) {
                to.apply(vec![set_cursor(page.next)]).await?;
            }
            let idle = page.events.is_empty() && page.next == since;
            since = page.next;
            if args.once && idle {
                break;
            }
        }
        eprintln!("copied {copied} changes; the backup is at position {since}");
        Ok(())
    })
}
