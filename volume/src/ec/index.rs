//! `.ecx` (the live needle index sorted by key, `.idx` entry encoding, binary-searched) and
//! `.ecj` (the append-only deletion journal: 8-byte big-endian needle keys).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use kelp_proto::NeedleKey;

use crate::error::{IoContext, Result, VolumeError};
use crate::idx::{IdxEntry, OffsetWidth};
use crate::needle::be_u64;

/// The `.ecx` image in memory: `width.entry_size()` bytes per entry, keys increasing.
#[derive(Debug)]
pub(crate) struct SortedIndex {
    bytes: Vec<u8>,
    width: OffsetWidth,
}

impl SortedIndex {
    /// Reads and checks an `.ecx`: whole entries only, keys strictly increasing.
    pub fn load(path: &Path, width: OffsetWidth) -> Result<SortedIndex> {
        let bytes = std::fs::read(path).ctx(|| format!("reading {}", path.display()))?;
        SortedIndex::from_bytes(bytes, width, &path.display().to_string())
    }

    /// The checks of [`SortedIndex::load`] on an image already read; `what` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, width: OffsetWidth, what: &str) -> Result<SortedIndex> {
        let es = width.entry_size();
        if !bytes.len().is_multiple_of(es) {
            return Err(VolumeError::corrupt(
                what,
                format!(
                    "{} bytes is not a whole number of {es}-byte entries",
                    bytes.len()
                ),
            ));
        }
        let ix = SortedIndex { bytes, width };
        let mut prev: Option<u64> = None;
        for i in 0..ix.len() {
            let k = ix.key_at(i);
            if prev.is_some_and(|p| p >= k) {
                return Err(VolumeError::corrupt(
                    what,
                    format!("entry {i} (key {k:x}) is out of key order"),
                ));
            }
            prev = Some(k);
        }
        Ok(ix)
    }

    pub fn len(&self) -> usize {
        self.bytes.len() / self.width.entry_size()
    }

    fn key_at(&self, i: usize) -> u64 {
        let es = self.width.entry_size();
        be_u64(&self.bytes[i * es..i * es + 8])
    }

    pub fn entry(&self, i: usize) -> IdxEntry {
        let es = self.width.entry_size();
        IdxEntry::decode(&self.bytes[i * es..(i + 1) * es], self.width)
    }

    /// Binary search by key.
    pub fn get(&self, key: NeedleKey) -> Option<IdxEntry> {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key_at(mid).cmp(&key.0) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.entry(mid)),
            }
        }
        None
    }

    pub fn iter(&self) -> impl Iterator<Item = IdxEntry> + '_ {
        (0..self.len()).map(|i| self.entry(i))
    }
}

/// The `.ecj` file, open for appends.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    end: u64,
}

impl Journal {
    /// Opens (creating if missing) the journal and returns the keys it holds; a torn
    /// partial key at the end is cut off.
    pub fn open(path: &Path) -> Result<(Journal, HashSet<u64>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx(|| format!("opening {}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .ctx(|| format!("reading {}", path.display()))?;
        let whole = bytes.len() / 8 * 8;
        if whole != bytes.len() {
            tracing::warn!(journal = %path.display(), "cutting a torn entry from the EC deletion journal");
            file.set_len(whole as u64)
                .and_then(|()| file.sync_all())
                .ctx(|| format!("truncating {}", path.display()))?;
        }
        let keys = bytes[..whole].chunks_exact(8).map(be_u64).collect();
        let j = Journal {
            file,
            path: path.to_path_buf(),
            end: whole as u64,
        };
        Ok((j, keys))
    }

    /// Appends `key` and fsyncs: the delete is durable when this returns.
    pub fn append(&mut self, key: NeedleKey) -> Result<()> {
        self.append_all(&[key])
    }

    /// Appends `keys` with one write and one fsync (a batch of caught-up deletes).
    pub fn append_all(&mut self, keys: &[NeedleKey]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = keys.iter().flat_map(|k| k.0.to_be_bytes()).collect();
        self.file
            .write_all_at(&bytes, self.end)
            .and_then(|()| self.file.sync_data())
            .ctx(|| format!("appending to {}", self.path.display()))?;
        self.end += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::encode_all;

    #[test]
    fn binary_search_and_order_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1.ecx");
        let list: Vec<IdxEntry> = (1..=100u64)
            .map(|k| IdxEntry {
                key: NeedleKey(k * 3),
                offset: k,
                size: k as u32,
            })
            .collect();
        std::fs::write(&p, encode_all(&list, OffsetWidth::Five)).unwrap();
        let ix = SortedIndex::load(&p, OffsetWidth::Five).unwrap();
        assert_eq!(ix.len(), 100);
        for e in &list {
            assert_eq!(ix.get(e.key), Some(*e));
        }
        assert_eq!(ix.get(NeedleKey(4)), None);
        assert_eq!(ix.get(NeedleKey(0)), None);
        assert_eq!(ix.get(NeedleKey(1000)), None);
        let mut rev = list.clone();
        rev.swap(3, 4);
        std::fs::write(&p, encode_all(&rev, OffsetWidth::Five)).unwrap();
        assert!(SortedIndex::load(&p, OffsetWidth::Five).is_err());
    }

    #[test]
    fn journal_appends_and_cuts_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1.ecj");
        let (mut j, _) = Journal::open(&p).unwrap();
        j.append(NeedleKey(5)).unwrap();
        j.append(NeedleKey(9)).unwrap();
        drop(j);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&p, &bytes).unwrap();
        let (mut j, keys) = Journal::open(&p).unwrap();
        assert!(keys.contains(&5) && keys.contains(&9));
        assert_eq!(keys.len(), 2);
        j.append(NeedleKey(7)).unwrap();
        assert_eq!(std::fs::read(&p).unwrap().len(), 24);
    }
}
