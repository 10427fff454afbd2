//! Polling with a deadline: the one way tests wait for something to become true.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// Polls `ok` until it returns true; panics naming `what` once `within` has passed.
/// Returns how long it took.
pub fn wait_until(what: &str, within: Duration, ok: impl FnMut() -> bool) -> Duration {
    poll_until(within, ok)
        .unwrap_or_else(|| panic!("timed out after {within:?} waiting for {what}"))
}

/// Polls `ok` until it returns true (`Some(time it took)`) or `within` has passed (`None`),
/// for callers that say themselves what went wrong.
pub fn poll_until(within: Duration, mut ok: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if ok() {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] for async tests: awaits `ok()` until it yields true, sleeping on the
/// tokio timer in between (so the runtime's other tasks keep running). For a plain
/// condition pass `|| std::future::ready(cond)`.
pub async fn wait_until_async<F, Fut>(what: &str, within: Duration, mut ok: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if ok().await {
            return start.elapsed();
        }
        if start.elapsed() > within {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}
