//! Recent rounds of the master's maintenance scripts, kept in this process: the loop
//! (`kelp_shell::maintenance`) records each round here, and the master's status page
//! and metrics read them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// One round of the scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// When it started (unix seconds).
    pub started: i64,
    pub took: Duration,
    /// Command lines run, and how many of them failed.
    pub commands: usize,
    pub failed: usize,
}

/// Rounds kept for the page.
const KEEP: usize = 20;

#[derive(Default)]
struct Log {
    recent: VecDeque<Round>,
    rounds: u64,
    failed_rounds: u64,
}

static LOG: Mutex<Option<Log>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut Log) -> T) -> T {
    let mut g = LOG.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(Log::default))
}

/// Records a finished round.
pub fn record(round: Round) {
    with(|l| {
        l.rounds += 1;
        if round.failed > 0 {
            l.failed_rounds += 1;
        }
        if l.recent.len() == KEEP {
            l.recent.pop_front();
        }
        l.recent.push_back(round);
    });
}

/// The last rounds, newest first.
pub fn recent() -> Vec<Round> {
    with(|l| l.recent.iter().rev().cloned().collect())
}

/// Rounds run since start, and how many had a failed command.
pub fn totals() -> (u64, u64) {
    with(|l| (l.rounds, l.failed_rounds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_rounds_newest_first() {
        let (before, _) = totals();
        for i in 0..25 {
            record(Round {
                started: i,
                took: Duration::from_millis(5),
                commands: 2,
                failed: usize::from(i == 24),
            });
        }
        let r = recent();
        assert!(r.len() <= KEEP);
        assert_eq!(r[0].started, 24);
        assert!(totals().0 >= before + 25);
        assert!(totals().1 >= 1);
    }
}
