//! Locked entries (retention and legal hold, see [`Entry::is_locked`]): the filer's
//! namespace operations refuse to remove or replace them, so no path (REST DELETE, an
//! overwrite, a rename over one, a recursive delete of a directory holding one, TTL
//! expiry) loses locked data. Their chunks are referenced, so the collector keeps them.
//! Callers that compose raw batches ([`Filer::apply_with_parents`]) check for themselves.

use crate::entry::Entry;
use crate::error::FilerError;
use crate::filer::{Filer, now_secs};
use crate::store::ListOptions;

/// Refuses to remove or replace `e` while it is locked.
pub(crate) fn check_unlocked(e: &Entry) -> Result<(), FilerError> {
    if e.is_locked(now_secs()) {
        return Err(FilerError::Locked(format!(
            "{} is locked (retention or legal hold): it cannot be removed or replaced",
            e.path
        )));
    }
    Ok(())
}

impl Filer {
    /// Refuses when `e`, or for a directory any entry below it, is locked.
    pub(crate) async fn check_tree_unlocked(&self, e: &Entry) -> Result<(), FilerError> {
        check_unlocked(e)?;
        if !e.is_directory {
            return Ok(());
        }
        let mut dirs = vec![e.path.clone()];
        while let Some(dir) = dirs.pop() {
            let mut after: Option<String> = None;
            loop {
                let opts = ListOptions {
                    start_after: after.clone(),
                    limit: 1000,
                    ..ListOptions::default()
                };
                let page = self.store.list(&dir, &opts).await?;
                for child in &page {
                    check_unlocked(child)?;
                    if child.is_directory {
                        dirs.push(child.path.clone());
                    }
                }
                if page.len() < 1000 {
                    break;
                }
                after = page.last().map(|c| c.name().to_string());
            }
        }
        Ok(())
    }
}
