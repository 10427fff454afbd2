//! Cluster-wide leases kept in the filer store's key-value space, so that work which
//! must run once per namespace (the chunk collector) runs on one filer at a time even
//! when several filers share a store. A lease is claimed and renewed with a
//! compare-and-set ([`Mutation::ExpectKv`]), so of two filers racing for it one wins.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::{FilerStore, Mutation};

/// One named lease as seen by one holder.
pub struct Lease {
    store: Arc<dyn FilerStore>,
    key: Vec<u8>,
    holder: String,
    ttl: Duration,
    /// Until when (unix ms) this holder last wrote that it holds the lease.
    held_until: std::sync::Mutex<u64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A stored lease value: `holder \n expiry (unix ms)`.
pub(crate) fn parse(v: &[u8]) -> Option<(&str, u64)> {
    let text = std::str::from_utf8(v).ok()?;
    let (holder, until) = text.split_once('\n')?;
    Some((holder, until.parse().ok()?))
}

impl Lease {
    /// The lease `name` (stored under the key `lease/<name>`), claimed as `holder` for
    /// `ttl` at a time.
    pub fn new(store: Arc<dyn FilerStore>, name: &str, holder: String, ttl: Duration) -> Lease {
        Lease {
            store,
            key: format!("lease/{name}").into_bytes(),
            holder,
            ttl,
            held_until: std::sync::Mutex::new(0),
        }
    }

    /// A holder name unique to this process and moment.
    pub fn unique_holder(what: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{what}-{}-{nanos:x}", std::process::id())
    }

    /// Whether this holder wrote, and has not outlived, its claim.
    pub fn held(&self) -> bool {
        *self.held_until.lock().unwrap_or_else(|p| p.into_inner()) > now_ms()
    }

    /// Claims or renews the lease; true while this holder has it. Writes only when the
    /// lease is free, expired, or this holder's own with less than half its time left.
    pub async fn acquire(&self) -> bool {
        let now = now_ms();
        let ttl = self.ttl.as_millis() as u64;
        {
            let until = *self.held_until.lock().unwrap_or_else(|p| p.into_inner());
            if until > now.saturating_add(ttl / 2) {
                return true;
            }
        }
        let current = match self.store.kv_get(&self.key).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "reading a lease failed");
                return false;
            }
        };
        if let Some((holder, until)) = current.as_deref().and_then(parse)
            && holder != self.holder
            && until > now
        {
            return false;
        }
        let until = now.saturating_add(ttl);
        let value = format!("{}\n{until}", self.holder).into_bytes();
        let claimed = self
            .store
            .apply(vec![
                Mutation::ExpectKv {
                    key: self.key.clone(),
                    value: current,
                },
                Mutation::KvPut(self.key.clone(), value),
            ])
            .await
            .is_ok();
        if claimed {
            *self.held_until.lock().unwrap_or_else(|p| p.into_inner()) = until;
        }
        claimed
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::RedbStore;

    #[tokio::test]
    async fn one_holder_at_a_time_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn FilerStore> = Arc::new(RedbStore::open(dir.path()).unwrap());
        let hour = Duration::from_secs(3600);
        let a = Lease::new(store.clone(), "gc", "a".into(), hour);
        let b = Lease::new(store.clone(), "gc", "b".into(), hour);
        assert!(a.acquire().await);
        assert!(!b.acquire().await, "a holds it");
        assert!(a.acquire().await, "the holder keeps it");
        // A lease of no duration is expired as soon as it is written: anyone may take it.
        let c1 = Lease::new(store.clone(), "other", "c1".into(), Duration::ZERO);
        let c2 = Lease::new(store.clone(), "other", "c2".into(), Duration::ZERO);
        assert!(c1.acquire().await);
        assert!(c2.acquire().await);
        assert!(!b.acquire().await, "leases are separate by name");
        // A damaged value counts as free.
        store
            .apply(vec![Mutation::KvPut(
                b"lease/gc".to_vec(),
                b"\xff".to_vec(),
            )])
            .await
            .unwrap();
        assert!(b.acquire().await);
    }
}
