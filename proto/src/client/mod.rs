//! Typed HTTP clients: how roles (and tools) talk to masters and volume servers.

mod ec;
mod local;
mod master;
mod volume;

pub use local::LocalVolumes;
pub use master::MasterClient;
pub use volume::{UploadOptions, VolumeClient};

use std::time::Duration;

/// Why a call to another server failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("{url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("cannot reach {url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url} sent a body we cannot read: {message}")]
    Decode { url: String, message: String },
    #[error("no master answered (tried {0})")]
    NoMaster(String),
}

impl ClientError {
    /// The HTTP status the server answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when waiting may help: the server was unreachable or said it is not ready
    /// (502, 503, 504), as during a leader election.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Status { status, .. } => matches!(*status, 502..=504),
            ClientError::Transport { .. } | ClientError::NoMaster(_) => true,
            ClientError::Decode { .. } => false,
        }
    }

    /// True when another server (or a retry) may succeed: transport errors and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Status { status, .. } => *status >= 500,
            ClientError::Transport { .. } | ClientError::NoMaster(_) => true,
            ClientError::Decode { .. } => false,
        }
    }
}

/// How long a pooled connection may sit idle on the client side: well under the
/// servers' default idle timeout (`server::DEFAULT_IDLE_TIMEOUT_SECS`), so a client
/// never sends a request on a connection the server is just closing.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One pooled HTTP client with the timeouts every role uses; with `[https]` in the
/// security file it trusts the cluster's CA and presents the cluster certificate.
pub fn http_client() -> reqwest::Client {
    let b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true);
    match with_cluster_tls(b).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; using defaults");
            reqwest::Client::new()
        }
    }
}

/// `b`, trusting the cluster's CA and presenting its client certificate when the
/// security file sets up TLS.
pub fn with_cluster_tls(b: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    match &crate::security::current().https {
        Some(h) => b.use_preconfigured_tls((*h.client()).clone()),
        None => b,
    }
}

/// The scheme kelp's servers speak: `https` when the security file sets up TLS.
pub fn scheme() -> &'static str {
    if crate::security::current().https.is_some() {
        "https"
    } else {
        "http"
    }
}

/// [`scheme`]`://` + address, unless it already has a scheme.
pub fn base_url(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("{}://{}", scheme(), addr.trim_end_matches('/'))
    }
}

/// Reads a JSON answer, or turns a non-2xx answer into `ClientError::Status`
/// with the server's `{"error"}` message when it sent one.
pub(crate) async fn json_reply<T: serde::de::DeserializeOwned>(
    url: &str,
    resp: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, ClientError> {
    let resp = check(url, resp).await?;
    let bytes = resp.bytes().await.map_err(|e| ClientError::Transport {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
        url: url.to_string(),
        message: format!(
            "{e}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ),
    })
}

/// Passes a 2xx answer through; turns anything else into a `ClientError`.
pub(crate) async fn check(
    url: &str,
    resp: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, ClientError> {
    let resp = resp.map_err(|e| ClientError::Transport {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    let status = resp.status();
    if status.is_success() || status.is_redirection() {
        return Ok(resp);
    }
    let body = resp.bytes().await.unwrap_or_default();
    let message = serde_json::from_slice::<crate::master_api::ErrorBody>(&body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(300)]).to_string());
    Err(ClientError::Status {
        url: url.to_string(),
        status: status.as_u16(),
        message,
    })
}
