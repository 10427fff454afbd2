//! [`Walk`]: every entry below a directory, page by page (depth first, each page one
//! ranged listing), for whole-namespace copies and exports.

use super::{FilerStore, ListOptions, StoreError};
use crate::entry::Entry;
use crate::path;

/// Entries per page.
pub const PAGE: usize = 1000;

/// A walk over the descendants of one directory (not the directory itself).
pub struct Walk<'a> {
    store: &'a dyn FilerStore,
    /// Directories still to list, and where each listing stands.
    pending: Vec<(String, Option<String>)>,
}

impl<'a> Walk<'a> {
    pub fn new(store: &'a dyn FilerStore, dir: &str) -> Walk<'a> {
        Walk {
            store,
            pending: vec![(dir.to_string(), None)],
        }
    }

    /// The next page of entries; `None` when the walk is done. A directory's entry
    /// comes before its children.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Entry>>, StoreError> {
        while let Some((dir, after)) = self.pending.pop() {
            let opts = ListOptions {
                start_after: after,
                limit: PAGE,
                ..ListOptions::default()
            };
            let page = self.store.list(&dir, &opts).await?;
            if page.len() == PAGE
                && let Some(last) = page.last()
            {
                let resume = path::name(&last.path).to_string();
                self.pending.push((dir, Some(resume)));
            }
            for e in page.iter().filter(|e| e.is_directory) {
                self.pending.push((e.path.clone(), None));
            }
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
        Ok(None)
    }
}
