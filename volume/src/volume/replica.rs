//! What whole-volume copies and needle-by-needle replica repair need of a `Volume`: a
//! consistent size snapshot, its files for streaming, its key lists, raw records out and
//! in, and deletes that skip the cookie check.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use kelp_proto::NeedleKey;

use super::{Volume, WriteOutcome, lock, read, write};
use crate::error::{IoContext, Result, VolumeError};
use crate::handle::NeedleHandle;
use crate::idx::{IdxEntry, entries};
use crate::needle::{
    CHECKSUM_SIZE, HEADER_SIZE, MAX_SIZE_FIELD, NEEDLE_ALIGN, Needle, TIMESTAMP_SIZE, Version,
    actual_size, parse_header,
};

/// `.idx` entries read per positioned read when scanning the index.
const IDX_SCAN_ENTRIES: usize = 4096;

/// The keys of a volume: live ones with their `Size` field, and deleted ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeedleKeys {
    /// `(key, Size)` of every live needle, by key.
    pub live: Vec<(u64, u32)>,
    /// Keys whose latest `.idx` entry is a deletion (none of them live), by key.
    pub deleted: Vec<u64>,
    /// When asked for: the append time of each needle of `live`, in the same order
    /// (unix seconds; see [`Volume::needle_keys`]).
    pub times: Vec<u64>,
}

impl Volume {
    /// `(idx bytes, dat bytes)` for a copy: every `.idx` entry within the first `idx`
    /// bytes points at a record that ends at or below `dat`. Appends are positioned
    /// writes straight into the files (nothing is buffered in this process), made under
    /// the writer lock, `.dat` first and `.idx` second; the sizes are read under that
    /// lock, the `.idx` first and the `.dat` second, so no append is half done.
    pub fn copy_sizes(&self) -> Result<(u64, u64)> {
        self.check_open()?;
        let w = lock(&self.writer);
        let idx = w.idx_end;
        let dat = w.dat_end;
        Ok((idx, dat))
    }

    /// The `.dat` or `.idx` as this volume has it open (a vacuum commit swaps both), or
    /// the `.vif` from disk, with its current length; `None` when there is no such file.
    pub fn file_for_copy(&self, ext: &str) -> Result<Option<(Arc<File>, u64)>> {
        self.check_open()?;
        let file = match ext {
            ".dat" => read(&self.state).dat.clone(),
            ".idx" => read(&self.state).idx.clone(),
            ".vif" => {
                let path = self.path_with(".vif");
                match File::open(&path) {
                    Ok(f) => Arc::new(f),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e).ctx(|| format!("opening {}", path.display())),
                }
            }
            _ => return Ok(None),
        };
        let len = file
            .metadata()
            .ctx(|| format!("stat of {}", self.path_with(ext).display()))?
            .len();
        Ok(Some((file, len)))
    }

    /// Every live key with its `Size`, and every key whose latest `.idx` entry is a
    /// deletion: the needle map's live entries plus a scan of the `.idx` for deletions,
    /// both as of the same moment. Memory: the live list plus the deleted keys.
    ///
    /// With `times`, also when each live needle was appended (unix seconds): its
    /// record's append time (version 3), else its last-modified time, 0 when neither is
    /// known or the record does not parse. One small read per needle (a whole small
    /// record for version 1 and 2 volumes).
    pub fn needle_keys(&self, times: bool) -> Result<NeedleKeys> {
        self.check_open()?;
        let (live, idx, idx_len, dat, dat_len) = {
            let w = lock(&self.writer);
            let s = read(&self.state);
            let live = s.map.live_entries();
            (live, s.idx.clone(), w.idx_end, s.dat.clone(), w.dat_end)
        };
        let times = if times {
            live.iter()
                .map(|e| self.append_secs(&dat, dat_len, e))
                .collect::<Result<Vec<u64>>>()?
        } else {
            Vec::new()
        };
        let es = self.width.entry_size();
        let mut deleted = BTreeSet::new();
        let mut buf = vec![0u8; es * IDX_SCAN_ENTRIES];
        let mut pos = 0u64;
        let whole = idx_len - idx_len % es as u64;
        while pos < whole {
            let n = (buf.len() as u64).min(whole - pos) as usize;
            idx.read_exact_at(&mut buf[..n], pos)
                .ctx(|| format!("reading {}", self.path_with(".idx").display()))?;
            deleted.extend(
                entries(&buf[..n], self.width)
                    .filter(|e| !e.is_put())
                    .map(|e| e.key.0),
            );
            pos += n as u64;
        }
        let live: Vec<(u64, u32)> = live.iter().map(|e| (e.key.0, e.size)).collect();
        let deleted = deleted
            .into_iter()
            .filter(|k| live.binary_search_by_key(k, |(key, _)| *key).is_err())
            .collect();
        Ok(NeedleKeys {
            live,
            deleted,
            times,
        })
    }

    /// When the live needle `e` of `dat` (`dat_len` bytes as of the snapshot) was
    /// appended, in unix seconds: see [`Self::needle_keys`].
    fn append_secs(&self, dat: &Arc<File>, dat_len: u64, e: &IdxEntry) -> Result<u64> {
        let at = e.offset * NEEDLE_ALIGN;
        if self.version == Version::V3 {
            let pos = at + (HEADER_SIZE + CHECKSUM_SIZE) as u64 + u64::from(e.size);
            if pos + TIMESTAMP_SIZE as u64 <= dat_len {
                let mut ts = [0u8; TIMESTAMP_SIZE];
                dat.read_exact_at(&mut ts, pos)
                    .ctx(|| format!("reading {} at offset {pos}", self.dat_path.display()))?;
                let ns = u64::from_be_bytes(ts);
                if ns > 0 {
                    return Ok(ns / 1_000_000_000);
                }
            }
        }
        Ok(self
            .record_at(dat, dat_len, at)
            .map(|h| {
                let m = h.meta();
                m.last_modified
                    .filter(|t| *t > 0)
                    .unwrap_or(m.append_at_ns / 1_000_000_000)
            })
            .unwrap_or(0))
    }

    /// The record at byte `at` of `dat` (`dat_len` bytes long), opened and checked.
    fn record_at(&self, dat: &Arc<File>, dat_len: u64, at: u64) -> Result<NeedleHandle> {
        NeedleHandle::open_at(
            dat.clone(),
            self.dat_path.clone(),
            dat_len,
            at,
            self.version,
        )
    }

    /// Where the record of live needle `key` lies: the `.dat` it is in, its byte offset
    /// and its length on disk (header, body, checksum, timestamp, padding). The header
    /// is checked against the map (and a small needle's CRC) before it is handed out.
    pub fn raw_record(&self, key: NeedleKey) -> Result<(Arc<File>, u64, u64)> {
        self.check_open()?;
        let (v, dat, dat_len) = self.lookup(key).ok_or(VolumeError::NotFound { key })?;
        if v.deleted {
            return Err(VolumeError::Deleted { key });
        }
        let at = v.offset * NEEDLE_ALIGN;
        let h = self.record_at(&dat, dat_len, at)?;
        let m = h.meta();
        if m.key != key || m.size != v.size {
            return Err(VolumeError::corrupt(
                "needle",
                format!(
                    "index says key {key} size {} but the record holds key {} size {}",
                    v.size, m.key, m.size
                ),
            )
            .at(&self.dat_path, at));
        }
        let (offset, len) = h.record_span();
        Ok((dat, offset, len))
    }

    /// Appends a raw record from another replica of this volume, exactly as it was
    /// stored there (cookie, flags, name, mime, TTL, last-modified and append time
    /// kept), with its `.idx` entry. Replica repair only: the volume's read-only flag and
    /// soft size limit do not apply, and nothing is replicated. A record that does not
    /// parse in this volume's version or whose CRC fails is `InvalidNeedle`; a key live
    /// here already is `NeedleExists`.
    pub fn append_raw(&self, record: &[u8]) -> Result<WriteOutcome> {
        self.check_open()?;
        let invalid = |e: VolumeError| VolumeError::InvalidNeedle(format!("raw record: {e}"));
        let header = parse_header(record).map_err(invalid)?;
        if header.size > MAX_SIZE_FIELD {
            return Err(VolumeError::InvalidNeedle(format!(
                "raw record: implausible Size {}",
                header.size
            )));
        }
        let len = actual_size(header.size, self.version);
        if record.len() as u64 != len {
            return Err(VolumeError::InvalidNeedle(format!(
                "raw record is {} bytes, its Size {} makes {len} in version {}",
                record.len(),
                header.size,
                self.version.as_u8()
            )));
        }
        // Checks the layout and the data's CRC (plain or legacy masked).
        let n = Needle::decode(record, self.version).map_err(invalid)?;
        let key = header.key;
        let end = {
            let mut w = lock(&self.writer);
            self.check_open()?;
            if self.lookup(key).is_some_and(|(v, _, _)| !v.deleted) {
                return Err(VolumeError::NeedleExists { key });
            }
            self.check_room(&w, len, u64::MAX)?;
            let at = w.dat_end;
            let entry = IdxEntry {
                key,
                offset: at / NEEDLE_ALIGN,
                size: header.size,
            };
            self.append(&mut w, record, entry)?;
            w.last_append_ns = w.last_append_ns.max(n.append_at_ns);
            write(&self.state).map.put(key, entry.offset, header.size);
            w.dat_end
        };
        if self.fsync_always {
            self.sync_to(end)?;
        }
        Ok(WriteOutcome {
            offset: end - len,
            size: header.size,
            checksum: n.checksum,
            unchanged: false,
        })
    }

    /// Deletes `key` on this volume only, whatever its cookie and even when read-only
    /// (replica repair): a tombstone as a normal delete writes. `false` when the key was
    /// not live.
    pub fn delete_local(&self, key: NeedleKey) -> Result<bool> {
        match self.delete_checked(key, None, true) {
            Ok(_) => Ok(true),
            Err(VolumeError::NotFound { .. } | VolumeError::Deleted { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::VolumeOptions;
    use kelp_proto::{Cookie, ReplicaPlacement, Ttl, VolumeId};

    fn volume(dir: &std::path::Path) -> Volume {
        Volume::create(
            dir,
            "",
            VolumeId(1),
            ReplicaPlacement::default(),
            Ttl::EMPTY,
            &VolumeOptions::default(),
        )
        .unwrap()
    }

    fn raw(v: &Volume, key: u64) -> Vec<u8> {
        let (f, at, len) = v.raw_record(NeedleKey(key)).unwrap();
        let mut b = vec![0u8; len as usize];
        f.read_exact_at(&mut b, at).unwrap();
        b
    }

    #[test]
    fn raw_records_move_between_replicas_unchanged() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (volume(da.path()), volume(db.path()));
        let mut n = Needle::new(NeedleKey(7), Cookie(0xdead_beef), vec![5u8; 100_000]);
        n.name = Some(b"x.bin".to_vec());
        n.last_modified = Some(1_700_000_000);
        a.write(n.clone(), false).unwrap();
        b.set_read_only(true).unwrap();
        let rec = raw(&a, 7);
        let out = b.append_raw(&rec).unwrap();
        assert_eq!(out.offset, 8, "right after the superblock");
        assert!(!out.unchanged);
        assert_eq!(raw(&b, 7), rec, "stored byte for byte");
        let back = b.read(NeedleKey(7), Cookie(0xdead_beef)).unwrap();
        assert_eq!(back.data, n.data);
        assert_eq!(back.name, n.name);
        assert!(matches!(
            b.append_raw(&rec),
            Err(VolumeError::NeedleExists { .. })
        ));
        // A flipped data byte or a cut record is refused, nothing appended.
        let size = b.dat_size();
        let mut bad = rec.clone();
        bad[100] ^= 1;
        assert!(matches!(
            b.append_raw(&bad),
            Err(VolumeError::InvalidNeedle(_))
        ));
        assert!(matches!(
            b.append_raw(&rec[..rec.len() - 8]),
            Err(VolumeError::InvalidNeedle(_))
        ));
        assert!(matches!(
            b.append_raw(&rec[..10]),
            Err(VolumeError::InvalidNeedle(_))
        ));
        assert_eq!(b.dat_size(), size);
        // Survives a reopen.
        drop(b);
        let b = Volume::open(db.path(), "", VolumeId(1), &VolumeOptions::default()).unwrap();
        assert_eq!(raw(&b, 7), rec);
    }

    #[test]
    fn local_deletes_and_key_lists() {
        let d = tempfile::tempdir().unwrap();
        let v = volume(d.path());
        for k in [3u64, 1, 2, 9] {
            v.write(
                Needle::new(NeedleKey(k), Cookie(k as u32), vec![1u8; k as usize]),
                false,
            )
            .unwrap();
        }
        v.set_read_only(true).unwrap();
        assert!(v.delete_local(NeedleKey(2)).unwrap());
        assert!(!v.delete_local(NeedleKey(2)).unwrap());
        assert!(!v.delete_local(NeedleKey(42)).unwrap());
        assert!(matches!(
            v.raw_record(NeedleKey(2)),
            Err(VolumeError::Deleted { .. })
        ));
        v.set_read_only(false).unwrap();
        v.delete(NeedleKey(9), Cookie(9)).unwrap();
        // Deleted, then written again: live.
        v.write(Needle::new(NeedleKey(9), Cookie(9), vec![2u8; 3]), false)
            .unwrap();
        let keys = v.needle_keys(false).unwrap();
        assert_eq!(
            keys.live,
            vec![(1, v.raw_size(1)), (3, v.raw_size(3)), (9, v.raw_size(9))]
        );
        assert_eq!(keys.deleted, vec![2]);
        assert!(keys.times.is_empty());
        // Each live needle's append time, read from its record.
        let timed = v.needle_keys(true).unwrap();
        assert_eq!((timed.live, timed.deleted), (keys.live, keys.deleted));
        let now = crate::volume::now_secs();
        assert_eq!(timed.times.len(), 3);
        assert!(
            timed.times.iter().all(|t| now.abs_diff(*t) < 60),
            "{:?} vs {now}",
            timed.times
        );
        let (idx, dat) = v.copy_sizes().unwrap();
        assert_eq!(dat, v.dat_size());
        assert_eq!(idx % 17, 0);
        assert_eq!(idx / 17, 7);
    }

    impl Volume {
        fn raw_size(&self, key: u64) -> u32 {
            read(&self.state).map.get_live(NeedleKey(key)).unwrap().size
        }
    }
}
