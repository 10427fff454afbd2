//! The cluster admin lock as a shell session holds it: `lock` takes it for the session
//! (renewed in the background until `unlock` or exit), and each command that moves or
//! rewrites data takes it for its own length when the session holds none. Two shells,
//! or a shell and the master's maintenance round, never run such commands at once.

use kelp_proto::security::Authorize;
use std::future::Future;
use std::time::Duration;

use kelp_proto::client::base_url;

use crate::Shell;
use crate::error::ShellError;

/// The lease asked for; renewed every third of it.
const LEASE: Duration = Duration::from_secs(30);

/// Takes or renews the lock for `owner` on the first master that answers (followers
/// forward to the leader); a holder other than `owner` is an error naming it.
async fn post_lock(
    http: &reqwest::Client,
    masters: &[String],
    owner: &str,
    action: &str,
) -> Result<(), ShellError> {
    let mut last = None;
    for m in masters {
        let url = format!("{}/cluster/{action}", base_url(m));
        let r = http
            .post(&url)
            .admin()
            .query(&[
                ("owner", owner),
                ("leaseSeconds", &LEASE.as_secs().to_string()),
            ])
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                return Err(ShellError::Locked(
                    body["error"]
                        .as_str()
                        .unwrap_or("the cluster is locked by someone else")
                        .to_string(),
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

impl Shell {
    pub(crate) fn holds_lock(&self) -> bool {
        self.lease.lock().is_ok_and(|l| l.is_some())
    }

    /// `lock`: takes the lock for this session and keeps renewing it.
    pub(crate) async fn lock(&self) -> Result<(), ShellError> {
        if self.holds_lock() {
            return Ok(());
        }
        let masters = self.master.masters().to_vec();
        post_lock(&self.http, &masters, &self.owner, "lock").await?;
        let (http, owner) = (self.http.clone(), self.owner.clone());
        let renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                if let Err(e) = post_lock(&http, &masters, &owner, "lock").await {
                    tracing::warn!(error = %e, "renewing the cluster lock failed");
                }
            }
        });
        if let Ok(mut l) = self.lease.lock() {
            *l = Some(renew);
        }
        Ok(())
    }

    /// `unlock`: stops renewing and frees the lock (a no-op when not held).
    pub async fn unlock(&self) {
        let Some(renew) = self.lease.lock().ok().and_then(|mut l| l.take()) else {
            return;
        };
        renew.abort();
        let masters = self.master.masters().to_vec();
        if let Err(e) = post_lock(&self.http, &masters, &self.owner, "unlock").await {
            tracing::warn!(error = %e, "freeing the cluster lock failed; it expires by itself");
        }
    }

    /// Runs `f` under the lock: the session's if it holds it, else one taken for `f`.
    pub(crate) async fn locked<T>(
        &self,
        f: impl Future<Output = Result<T, ShellError>>,
    ) -> Result<T, ShellError> {
        if self.holds_lock() {
            return f.await;
        }
        self.lock().await?;
        let r = f.await;
        self.unlock().await;
        r
    }
}
