//! kelp's cluster maintenance commands as a library: what `kelp shell` runs line by line
//! (SeaweedFS-style flags, `ec.encode -volumeId=3`) and what the master's maintenance loop
//! runs on a timer. Each command prints progress lines and a summary (to stdout, or to the
//! log inside a server). Only `kelp-proto` is used to talk to the cluster.
//!
//! Layout: [`Shell`] (this file) holds the clients; `command` parses and dispatches
//! command lines; `flags` parses their flags; `lock` is the cluster admin lock; `topo`
//! reads the topology and has the simple commands; `ec` has the EC commands (one file
//! each); `replicas` repairs replicas (`volume.fix.replication`, `volume.check.disk`);
//! `volumes` has the whole-volume and collection commands; `balance` spreads volumes
//! over the servers (`volume.balance`); `fsck` compares what a filer references (read
//! by `refs`) with the volumes' needles (`volume.fsck`); [`maintenance`] is the
//! master's loop.

mod balance;
mod command;
mod ec;
mod error;
mod flags;
mod fsck;
mod lock;
pub mod maintenance;
mod meta;
mod progress;
mod raft;
mod refs;
mod replicas;
mod topo;
mod volumes;

use kelp_proto::security::Authorize;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use kelp_proto::client::{MasterClient, VolumeClient, base_url, http_client};

pub use command::{COMMANDS, parse_script, run_logged};
pub use error::{Chain, ShellError};
pub use flags::parse_duration;
pub use maintenance::Maintenance;

/// A shell session: the clients every command uses, and the cluster lock when held.
pub struct Shell {
    pub(crate) master: MasterClient,
    pub(crate) volumes: VolumeClient,
    pub(crate) http: reqwest::Client,
    /// Names this session as a holder of the cluster lock.
    owner: String,
    /// The renewal task while the session holds the lock.
    lease: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Shell {
    /// A session talking to `masters` (host:port each); `owner` names it to other
    /// holders of the cluster lock.
    pub fn new(masters: Vec<String>, owner: String) -> Shell {
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
    ) -> Result<T, ShellError> {
        let (url, r) = self.master_answer(path).await?;
        r.json()
            .await
            .map_err(|source| ShellError::Decode { url, source })
    }

    /// GETs `path` from the first master that answers with success; the body is not
    /// read (calls answered with no content).
    pub(crate) async fn master_call(&self, path: &str) -> Result<(), ShellError> {
        self.master_answer(path).await.map(|_| ())
    }

    async fn master_answer(&self, path: &str) -> Result<(String, reqwest::Response), ShellError> {
        self.master_send(path, None).await
    }

    /// Sends `path` (a POST with `post`'s query and timeout, else a GET) to the masters
    /// in turn; the first success, or the first `400` (a refusal with its reason), ends
    /// the search.
    pub(crate) async fn master_send(
        &self,
        path: &str,
        post: Option<(&[(&str, String)], std::time::Duration)>,
    ) -> Result<(String, reqwest::Response), ShellError> {
        let mut last = None;
        for m in self.master.masters() {
            let url = format!("{}{path}", base_url(m));
            let req = match post {
                Some((query, timeout)) => self.http.post(&url).query(query).timeout(timeout),
                None => self.http.get(&url),
            };
            match req.admin().send().await {
                Ok(r) if r.status().is_success() => return Ok((url, r)),
                Ok(r) if post.is_some() && r.status() == reqwest::StatusCode::BAD_REQUEST => {
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    return Err(ShellError::Failed(
                        body["error"].as_str().unwrap_or("refused").to_string(),
                    ));
                }
                Ok(r) => {
                    last = Some(ShellError::Answered {
                        url,
                        status: r.status(),
                    })
                }
                Err(e) => {
                    last = Some(ShellError::Unreachable {
                        url,
                        message: e.to_string(),
                    })
                }
            }
        }
        Err(last.unwrap_or(ShellError::NoMaster))
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
    let msg = msg.to_string();
    if progress::above_bar(&msg) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{msg}");
    let _ = out.flush();
}
