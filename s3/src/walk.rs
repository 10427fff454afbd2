//! [`Walker`]: a bucket's keys in S3 order (bytewise) from the filer's per-directory
//! listings. A directory `d` holds keys `d/...`, which sort by `d/`, not by `d`: `a-c`
//! comes before `a/b` ('-' < '/') and `a0` after it. Each directory is listed in name
//! order and its subdirectories are held back until every name that sorts before
//! `name/` has gone by. The caller decides per directory whether to descend into it
//! (recursive listing) or to roll it up (a common prefix).

use std::collections::VecDeque;
use std::sync::Arc;

use kelp_filer::Filer;
use kelp_filer::entry::Entry;
use kelp_filer::store::ListOptions;

use crate::error::GatewayResult;
use crate::keys::{UPLOADS_DIR, VERSIONS_DIR};
use crate::meta::DIR_MARKER_KEY;

/// Keys must sort after `key` (or equal it when `inclusive`), bytewise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub key: Vec<u8>,
    pub inclusive: bool,
}

impl Bound {
    pub fn after(key: &str) -> Bound {
        Bound {
            key: key.as_bytes().to_vec(),
            inclusive: false,
        }
    }

    /// Past every key that starts with `prefix` (0xFF never occurs in UTF-8).
    pub fn past_prefix(prefix: &str) -> Bound {
        let mut key = prefix.as_bytes().to_vec();
        key.push(0xFF);
        Bound {
            key,
            inclusive: false,
        }
    }

    pub fn passes(&self, key: &[u8]) -> bool {
        key > self.key.as_slice() || (self.inclusive && key == self.key.as_slice())
    }
}

/// One step of the walk.
#[derive(Debug, Clone)]
pub enum Item {
    /// An object: a file, or a directory marker (`key` ends in `/`).
    Object { key: String, entry: Entry },
    /// A directory whose keys all start with `key` (which ends in `/`).
    Dir { key: String, entry: Entry },
}

struct Frame {
    dir: String,
    /// Key prefix of this directory's children (`""` at the bucket's top, else `.../`).
    key_prefix: String,
    /// Only children whose name starts with this.
    name_prefix: Option<String>,
    bound: Option<Bound>,
    /// Emit this directory's own marker object first (checked on the first step).
    marker: MarkerState,
    /// Where the next listing page starts: `(name, inclusive)`.
    cursor: Option<(String, bool)>,
    page: VecDeque<Entry>,
    exhausted: bool,
    /// Directories seen but not yet due, sorted by `name/`.
    pending: Vec<(String, Entry)>,
}

enum MarkerState {
    Lookup,
    Known(Box<Entry>),
    None,
}

/// Walks one bucket (see the module docs).
pub struct Walker {
    filer: Arc<Filer>,
    /// The bucket directory whose reserved children (`.uploads`, `.versions`) are
    /// never listed.
    bucket_dir: String,
    page_size: usize,
    stack: Vec<Frame>,
}

/// The listing start inside a directory for keys passing `b`: names before it cannot
/// hold such keys. A name `m` shorter than the bound's component `c` still can, when it
/// is a directory and `c` continues after `m` with a byte below `/`.
fn start_name(rest: &[u8]) -> Option<String> {
    let comp = match rest.iter().position(|&b| b == b'/') {
        Some(i) => &rest[..i],
        None => rest,
    };
    let cut = (1..comp.len())
        .find(|&i| comp[i] < b'/')
        .unwrap_or(comp.len());
    let comp = &comp[..cut];
    // A lower bound only: drop anything that is not UTF-8 (the 0xFF of `past_prefix`).
    let valid = match std::str::from_utf8(comp) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&comp[..e.valid_up_to()]).unwrap_or(""),
    };
    (!valid.is_empty()).then(|| valid.to_string())
}

impl Frame {
    fn new(
        dir: String,
        key_prefix: String,
        name_prefix: Option<String>,
        bound: Option<Bound>,
        marker: MarkerState,
    ) -> Frame {
        // A bound past every key of this directory leaves nothing to walk.
        let beyond = bound.as_ref().is_some_and(|b| {
            !b.key.starts_with(key_prefix.as_bytes()) && b.key.as_slice() > key_prefix.as_bytes()
        });
        let bound = bound.filter(|b| b.key.starts_with(key_prefix.as_bytes()));
        let cursor = bound
            .as_ref()
            .and_then(|b| start_name(&b.key[key_prefix.len()..]))
            .map(|n| (n, true));
        Frame {
            dir,
            key_prefix,
            name_prefix,
            bound,
            marker: if beyond { MarkerState::None } else { marker },
            cursor,
            page: VecDeque::new(),
            exhausted: beyond,
            pending: Vec::new(),
        }
    }

    fn passes(&self, key: &str) -> bool {
        self.bound.as_ref().is_none_or(|b| b.passes(key.as_bytes()))
    }

    /// A directory key passes if some key below it can.
    fn dir_passes(&self, key: &str) -> bool {
        self.bound
            .as_ref()
            .is_none_or(|b| b.key.starts_with(key.as_bytes()) || b.passes(key.as_bytes()))
    }
}

impl Walker {
    /// Walks the directory `dir` whose children have keys `key_prefix + name`, only names
    /// starting with `name_prefix`, only keys passing `bound`. The reserved directories
    /// of `bucket_dir` (`.uploads`, `.versions`) are never listed. With `marker` the
    /// directory's own marker object (key `key_prefix`) comes first.
    pub fn new(
        filer: Arc<Filer>,
        bucket_dir: String,
        dir: String,
        key_prefix: String,
        name_prefix: Option<String>,
        bound: Option<Bound>,
        marker: bool,
    ) -> Walker {
        let m = if marker && !key_prefix.is_empty() {
            MarkerState::Lookup
        } else {
            MarkerState::None
        };
        Walker {
            filer,
            bucket_dir,
            page_size: 1000,
            stack: vec![Frame::new(dir, key_prefix, name_prefix, bound, m)],
        }
    }

    /// Uses listing pages of `n` entries.
    pub fn page_size(mut self, n: usize) -> Walker {
        self.page_size = n.max(2);
        self
    }

    /// Descends into a directory the last [`Item::Dir`] named.
    pub fn enter(&mut self, key: String, entry: Entry) {
        let bound = self.stack.last().and_then(|f| f.bound.clone());
        let dir = entry.path.clone();
        let marker = if entry.extended.contains_key(DIR_MARKER_KEY) {
            MarkerState::Known(Box::new(entry))
        } else {
            MarkerState::None
        };
        self.stack.push(Frame::new(dir, key, None, bound, marker));
    }

    /// The next item in key order, or `None` at the end.
    pub async fn next(&mut self) -> GatewayResult<Option<Item>> {
        loop {
            let Some(f) = self.stack.last_mut() else {
                return Ok(None);
            };
            match std::mem::replace(&mut f.marker, MarkerState::None) {
                MarkerState::None => {}
                MarkerState::Lookup => {
                    if let Some(e) = self.filer.find(&f.dir).await?
                        && e.is_directory
                        && e.extended.contains_key(DIR_MARKER_KEY)
                        && f.passes(&f.key_prefix)
                    {
                        return Ok(Some(Item::Object {
                            key: f.key_prefix.clone(),
                            entry: e,
                        }));
                    }
                }
                MarkerState::Known(e) => {
                    if f.passes(&f.key_prefix) {
                        return Ok(Some(Item::Object {
                            key: f.key_prefix.clone(),
                            entry: *e,
                        }));
                    }
                }
            }
            if f.page.is_empty() && !f.exhausted {
                let (start_after, inclusive) = match f.cursor.clone() {
                    Some((n, inc)) => (Some(n), inc),
                    None => (None, false),
                };
                let opts = ListOptions {
                    start_after,
                    inclusive,
                    limit: self.page_size,
                    prefix: f.name_prefix.clone(),
                };
                let page = self.filer.list(&f.dir, &opts).await?;
                f.exhausted = page.len() < self.page_size;
                if let Some(last) = page.last() {
                    f.cursor = Some((last.name().to_string(), false));
                }
                let bucket_dir = self.bucket_dir.as_str();
                f.page
                    .extend(page.into_iter().filter(|e| !is_reserved(e, bucket_dir)));
                continue;
            }
            let due_dir = match (f.page.front(), f.pending.first()) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(e), Some((sk, _))) => {
                    let k = if e.is_directory {
                        format!("{}/", e.name())
                    } else {
                        e.name().to_string()
                    };
                    sk.as_str() < k.as_str()
                }
            };
            if due_dir {
                let (sk, e) = f.pending.remove(0);
                let key = format!("{}{sk}", f.key_prefix);
                if f.dir_passes(&key) {
                    return Ok(Some(Item::Dir { key, entry: e }));
                }
                continue;
            }
            match f.page.pop_front() {
                Some(e) if e.is_directory => {
                    let sk = format!("{}/", e.name());
                    let at = f.pending.partition_point(|(k, _)| k.as_str() < sk.as_str());
                    f.pending.insert(at, (sk, e));
                }
                Some(e) => {
                    let key = format!("{}{}", f.key_prefix, e.name());
                    if f.passes(&key) {
                        return Ok(Some(Item::Object { key, entry: e }));
                    }
                }
                None => {
                    self.stack.pop();
                }
            }
        }
    }
}

/// A bucket's `.uploads` or `.versions` directory.
fn is_reserved(e: &Entry, bucket_dir: &str) -> bool {
    e.is_directory
        && e.parent() == Some(bucket_dir)
        && matches!(e.name(), UPLOADS_DIR | VERSIONS_DIR)
}

/// True if the directory `dir` (key prefix `key`) holds at least one object; the
/// reserved directories of `bucket_dir` do not count.
pub async fn has_objects(
    filer: &Arc<Filer>,
    bucket_dir: &str,
    dir: &Entry,
    key: &str,
) -> GatewayResult<bool> {
    if dir.extended.contains_key(DIR_MARKER_KEY) {
        return Ok(true);
    }
    let mut w = Walker::new(
        filer.clone(),
        bucket_dir.to_string(),
        dir.path.clone(),
        key.to_string(),
        None,
        None,
        false,
    )
    .page_size(64);
    while let Some(item) = w.next().await? {
        match item {
            Item::Object { .. } => return Ok(true),
            Item::Dir { key, entry } => w.enter(key, entry),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_names() {
        assert_eq!(start_name(b"abc"), Some("abc".into()));
        assert_eq!(start_name(b"abc/def"), Some("abc".into()));
        // "a" (a directory) holds keys "a/..." > "a-c": start at "a".
        assert_eq!(start_name(b"a-c"), Some("a".into()));
        assert_eq!(start_name(b"ab-c/x"), Some("ab".into()));
        assert_eq!(start_name(b"abc\xff"), Some("abc".into()));
        assert_eq!(start_name(b""), None);
        assert_eq!(start_name(b"/x"), None);
    }

    #[test]
    fn bounds() {
        let b = Bound::after("a/b");
        assert!(b.passes(b"a/c"));
        assert!(!b.passes(b"a/b"));
        let p = Bound::past_prefix("a/");
        assert!(!p.passes(b"a/zzz\xef\xbf\xbd"));
        assert!(p.passes(b"a0"));
        assert!(!p.passes(b"a-"));
    }
}
