//! The cluster admin lock: one holder at a time for the commands that move or rewrite
//! data (`kelp shell`'s `lock`, its EC and vacuum commands, the master's maintenance
//! rounds). A lease with a time limit, renewed by its holder, kept in the leader's memory:
//! a failover or a holder that dies frees it after at most one lease.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest lease one call may take.
pub const MAX_LEASE: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct AdminLock {
    held: Mutex<Option<(String, Instant)>>,
}

/// Who holds the lock, and for how much longer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldByOther {
    pub owner: String,
    pub left: Duration,
}

impl AdminLock {
    /// Takes (or renews, for the same owner) the lock for `lease`; `Err` names the
    /// current holder.
    pub fn acquire(&self, owner: &str, lease: Duration) -> Result<(), HeldByOther> {
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some((who, until)) = h.as_ref()
            && who != owner
            && *until > now
        {
            return Err(HeldByOther {
                owner: who.clone(),
                left: *until - now,
            });
        }
        *h = Some((owner.to_string(), now + lease.min(MAX_LEASE)));
        Ok(())
    }

    /// Who holds the lock now, and for how much longer.
    pub fn holder(&self) -> Option<HeldByOther> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.as_ref()
            .filter(|(_, until)| *until > Instant::now())
            .map(|(owner, until)| HeldByOther {
                owner: owner.clone(),
                left: until.saturating_duration_since(Instant::now()),
            })
    }

    /// Frees the lock if `owner` holds it; true when it did.
    pub fn release(&self, owner: &str) -> bool {
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if h.as_ref().is_some_and(|(who, _)| who == owner) {
            *h = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_until_release_or_expiry() {
        let l = AdminLock::default();
        l.acquire("a", Duration::from_secs(30)).unwrap();
        l.acquire("a", Duration::from_secs(30)).unwrap();
        let e = l.acquire("b", Duration::from_secs(30)).unwrap_err();
        assert_eq!(e.owner, "a");
        assert!(!l.release("b"));
        assert!(l.release("a"));
        l.acquire("b", Duration::ZERO).unwrap();
        // A lease of zero is over at once: anyone may take the lock.
        l.acquire("c", Duration::from_secs(30)).unwrap();
    }
}
