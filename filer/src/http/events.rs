//! The change log over the REST API: `GET /?op=meta.events&since=N` answers the events
//! after position N (waiting up to `wait` seconds for one), `GET /?op=meta.head` where
//! the log starts and ends. Format: `docs/filer.md`, "Following changes".

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Target;
use crate::error::FilerError;
use crate::events;
use crate::filer::Filer;

/// Events per answer when the client names no `limit`, and the most it may name.
const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;
/// The longest `wait` a client may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How often a waiting request looks at the log again (other filers write to it too).
const POLL: Duration = Duration::from_millis(100);

fn number<T: std::str::FromStr>(t: &Target, k: &str, default: T) -> Result<T, FilerError> {
    match t.query.get(k) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| FilerError::BadRequest(format!("{k}={v:?} is not a number"))),
    }
}

/// `GET /?op=meta.events&since=N[&limit=N][&wait=SECONDS][&pathPrefix=/dir/]`.
pub(super) async fn events(filer: &Arc<Filer>, t: Target) -> Result<Response, FilerError> {
    let mut since: u64 = number(&t, "since", 0)?;
    let limit = number(&t, "limit", DEFAULT_LIMIT)?.clamp(1, MAX_LIMIT);
    let wait: f64 = number(&t, "wait", 0.0)?;
    if !wait.is_finite() || wait < 0.0 {
        return Err(FilerError::BadRequest(format!(
            "wait={wait} must be a number of seconds >= 0"
        )));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(wait).min(MAX_WAIT);
    let prefix = t.query.get("pathPrefix").cloned().unwrap_or_default();
    loop {
        let page = filer.store.log_read(since, limit).await?;
        let read_any = page.next > since;
        since = page.next;
        let found = events::filter(page.events, &prefix);
        let now = Instant::now();
        if !found.is_empty() || now >= deadline {
            let mut out = Vec::with_capacity(found.len());
            for ev in &found {
                out.push(events::to_json(ev)?);
            }
            return Ok(axum::Json(json!({ "next": since, "events": out })).into_response());
        }
        if !read_any {
            tokio::time::sleep(POLL.min(deadline - now)).await;
        }
    }
}

/// `GET /?op=meta.head`: `{"trimmed": N, "head": M}`; reading from `head` misses
/// nothing that commits later.
pub(super) async fn head(filer: &Arc<Filer>) -> Result<Response, FilerError> {
    let b = filer.store.log_bounds().await?;
    Ok(axum::Json(json!({ "trimmed": b.trimmed, "head": b.head })).into_response())
}
