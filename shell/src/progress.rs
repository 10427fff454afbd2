//! Progress of the long shell commands (`ec.encode`, `ec.rebuild`, `ec.decode`,
//! `ec.balance`, `volume.vacuum`, `fs.meta.load`): a bar (indicatif) on stderr when it
//! is a terminal. Elsewhere (a pipe, a log, the master's maintenance scripts) nothing
//! is added: the commands print a plain line per step anyway, and `say` prints above
//! the bar while one is shown.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use indicatif::{ProgressBar, ProgressStyle};

/// The bar being shown, so that lines print above it.
static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn current() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    CURRENT.lock().unwrap_or_else(|p| p.into_inner())
}

/// A command's progress through `total` steps; the bar goes when this is dropped.
pub(crate) struct Progress(Option<ProgressBar>);

impl Progress {
    pub(crate) fn new(what: &str, total: usize) -> Progress {
        let to_log = crate::TO_LOG.load(Ordering::Relaxed);
        if to_log || total == 0 || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let style = ProgressStyle::with_template("{prefix} [{bar:32}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::new(total as u64)
            .with_style(style)
            .with_prefix(what.to_string());
        *current() = Some(bar.clone());
        Progress(Some(bar))
    }

    /// A spinner with the time taken, for one long call whose steps are not seen.
    pub(crate) fn spinner(what: &str) -> Progress {
        Self::styled(what, "{prefix} {spinner} {elapsed}", None)
    }

    /// A byte count, for a transfer of unknown length.
    pub(crate) fn bytes(what: &str) -> Progress {
        Self::styled(what, "{prefix} {bytes} {bytes_per_sec} {elapsed}", None)
    }

    fn styled(what: &str, template: &str, total: Option<u64>) -> Progress {
        let to_log = crate::TO_LOG.load(Ordering::Relaxed);
        if to_log || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        }
        .with_style(style)
        .with_prefix(what.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        *current() = Some(bar.clone());
        Progress(Some(bar))
    }

    /// `done` steps are finished.
    pub(crate) fn at(&self, done: usize) {
        if let Some(b) = &self.0 {
            b.set_position(done as u64);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            b.finish_and_clear();
            *current() = None;
        }
    }
}

/// Prints `line` above the bar being shown; false when there is none.
pub(crate) fn above_bar(line: &str) -> bool {
    match current().as_ref() {
        Some(b) => {
            b.println(line);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn without_a_terminal_there_is_no_bar() {
        // Test runs have no terminal on stderr.
        let p = super::Progress::new("x", 3);
        p.at(1);
        assert!(p.0.is_none() || std::io::IsTerminal::is_terminal(&std::io::stderr()));
        drop(p);
        assert!(!super::above_bar("line") || std::io::IsTerminal::is_terminal(&std::io::stderr()));
    }
}
