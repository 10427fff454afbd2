//! The in-memory needle map: key -> (offset, size) for one volume, about 17 bytes a needle.
//!
//! Keys arrive mostly in increasing order (the master hands them out from a counter), so
//! the bulk lives in sorted parallel vectors (`u64` key, 4+1-byte offset, `u32` size) that
//! are binary-searched; out-of-order keys go to a small `BTreeMap` that is merged into the
//! vectors once it grows past 1/32 of them. Deleted keys stay with a flag bit on the size.

use std::collections::BTreeMap;

use kelp_proto::NeedleKey;

use crate::idx::{IdxEntry, OffsetWidth, entries};

/// Set on a size in the map when the key was deleted (sizes are at most `i32::MAX`).
const DELETED_BIT: u32 = 0x8000_0000;
/// Rough heap cost of one overflow entry (key, value and B-tree node overhead).
const OVERFLOW_ENTRY_BYTES: usize = 48;

/// Where a needle is and how large its `Size` field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedleValue {
    /// In 8-byte units.
    pub offset: u64,
    pub size: u32,
    /// The key was deleted; `offset`/`size` still point at the deleted needle.
    pub deleted: bool,
}

/// Counters over the map's history (SeaweedFS's needle-map metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapStats {
    /// Puts, overwrites included.
    pub file_count: u64,
    /// Overwrites plus deletes of live keys.
    pub delete_count: u64,
    /// Sum of the sizes of overwritten and deleted needles.
    pub deleted_bytes: u64,
    /// Sum of the sizes of all puts.
    pub content_size: u64,
    pub max_file_key: u64,
}

impl MapStats {
    /// Live needles.
    pub fn live_count(&self) -> u64 {
        self.file_count.saturating_sub(self.delete_count)
    }
}

#[derive(Debug, Default)]
pub struct NeedleMap {
    keys: Vec<u64>,
    off_lo: Vec<u32>,
    off_hi: Vec<u8>,
    sizes: Vec<u32>,
    overflow: BTreeMap<u64, (u64, u32)>,
    stats: MapStats,
}

fn unpack(offset: u64, raw: u32) -> NeedleValue {
    NeedleValue {
        offset,
        size: raw & !DELETED_BIT,
        deleted: raw & DELETED_BIT != 0,
    }
}

impl NeedleMap {
    pub fn new() -> NeedleMap {
        NeedleMap::default()
    }

    /// Builds the map from an `.idx` image (a partial last entry is ignored) and trims
    /// spare capacity.
    pub fn load(idx: &[u8], width: OffsetWidth) -> NeedleMap {
        let mut m = NeedleMap::new();
        let n = idx.len() / width.entry_size();
        m.keys.reserve_exact(n);
        m.off_lo.reserve_exact(n);
        m.off_hi.reserve_exact(n);
        m.sizes.reserve_exact(n);
        for e in entries(idx, width) {
            m.apply(&e);
        }
        m.shrink();
        m
    }

    /// Applies one `.idx` entry (put or delete).
    pub fn apply(&mut self, e: &IdxEntry) {
        if e.is_put() {
            self.put(e.key, e.offset, e.size);
        } else {
            self.delete(e.key);
        }
    }

    pub fn stats(&self) -> MapStats {
        self.stats
    }

    /// Number of keys held, deleted ones included.
    pub fn len(&self) -> usize {
        self.keys.len() + self.overflow.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn find(&self, key: u64) -> Result<usize, usize> {
        self.keys.binary_search(&key)
    }

    fn offset_at(&self, i: usize) -> u64 {
        self.off_lo[i] as u64 | (self.off_hi[i] as u64) << 32
    }

    fn raw(&self, key: u64) -> Option<(u64, u32)> {
        match self.find(key) {
            Ok(i) => Some((self.offset_at(i), self.sizes[i])),
            Err(_) if self.overflow.is_empty() => None,
            Err(_) => self.overflow.get(&key).copied(),
        }
    }

    /// The entry for `key`, deleted or not.
    pub fn get(&self, key: NeedleKey) -> Option<NeedleValue> {
        self.raw(key.0).map(|(o, s)| unpack(o, s))
    }

    /// The entry for `key` if it is live.
    pub fn get_live(&self, key: NeedleKey) -> Option<NeedleValue> {
        self.get(key).filter(|v| !v.deleted)
    }

    fn push(&mut self, key: u64, offset: u64, raw: u32) {
        self.keys.push(key);
        self.off_lo.push(offset as u32);
        self.off_hi.push((offset >> 32) as u8);
        self.sizes.push(raw);
    }

    /// Stores `raw` for `key`; returns the previous `(offset, raw)`.
    fn set_raw(&mut self, key: u64, offset: u64, raw: u32) -> Option<(u64, u32)> {
        // Fast path: keys mostly arrive in increasing order.
        let beyond = self.keys.last().is_none_or(|&last| key > last);
        if beyond && (self.overflow.is_empty() || !self.overflow.contains_key(&key)) {
            self.push(key, offset, raw);
            return None;
        }
        match self.find(key) {
            Ok(i) => {
                let old = (self.offset_at(i), self.sizes[i]);
                self.off_lo[i] = offset as u32;
                self.off_hi[i] = (offset >> 32) as u8;
                self.sizes[i] = raw;
                Some(old)
            }
            Err(_) => {
                let old = self.overflow.insert(key, (offset, raw));
                if self.overflow.len() > 1024.max(self.keys.len() / 32) {
                    self.merge_overflow();
                }
                old
            }
        }
    }

    /// Records a live needle; returns the previous entry.
    pub fn put(&mut self, key: NeedleKey, offset: u64, size: u32) -> Option<NeedleValue> {
        let old = self
            .set_raw(key.0, offset, size & !DELETED_BIT)
            .map(|(o, s)| unpack(o, s));
        if let Some(o) = old.filter(|o| !o.deleted) {
            self.stats.delete_count += 1;
            self.stats.deleted_bytes += o.size as u64;
        }
        self.stats.file_count += 1;
        self.stats.content_size += size as u64;
        self.stats.max_file_key = self.stats.max_file_key.max(key.0);
        old
    }

    /// Marks `key` deleted; returns its size if it was live.
    pub fn delete(&mut self, key: NeedleKey) -> Option<u32> {
        self.stats.max_file_key = self.stats.max_file_key.max(key.0);
        let old = self.get_live(key)?;
        self.stats.delete_count += 1;
        self.stats.deleted_bytes += old.size as u64;
        self.set_raw(key.0, old.offset, old.size | DELETED_BIT);
        Some(old.size)
    }

    /// Moves the overflow entries into the sorted vectors.
    pub fn merge_overflow(&mut self) {
        if self.overflow.is_empty() {
            return;
        }
        let n = self.keys.len() + self.overflow.len();
        let mut keys = Vec::with_capacity(n);
        let mut lo = Vec::with_capacity(n);
        let mut hi = Vec::with_capacity(n);
        let mut sizes = Vec::with_capacity(n);
        let mut push = |k: u64, off: u64, s: u32| {
            keys.push(k);
            lo.push(off as u32);
            hi.push((off >> 32) as u8);
            sizes.push(s);
        };
        let mut extra = std::mem::take(&mut self.overflow).into_iter().peekable();
        for i in 0..self.keys.len() {
            let k = self.keys[i];
            while let Some((ek, (eo, es))) = extra.next_if(|(ek, _)| *ek < k) {
                push(ek, eo, es);
            }
            push(k, self.offset_at(i), self.sizes[i]);
        }
        for (ek, (eo, es)) in extra {
            push(ek, eo, es);
        }
        self.keys = keys;
        self.off_lo = lo;
        self.off_hi = hi;
        self.sizes = sizes;
    }

    /// Merges the overflow and releases spare vector capacity.
    pub fn shrink(&mut self) {
        self.merge_overflow();
        self.keys.shrink_to_fit();
        self.off_lo.shrink_to_fit();
        self.off_hi.shrink_to_fit();
        self.sizes.shrink_to_fit();
    }

    /// Heap bytes held (vector capacities plus an estimate for the overflow tree).
    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8
            + self.off_lo.capacity() * 4
            + self.off_hi.capacity()
            + self.sizes.capacity() * 4
            + self.overflow.len() * OVERFLOW_ENTRY_BYTES
    }

    /// Live entries as `.idx` entries, in key order.
    pub fn live_entries(&self) -> Vec<IdxEntry> {
        let mut out = Vec::with_capacity(self.stats.live_count() as usize);
        let mut extra = self.overflow.iter().peekable();
        let mut emit = |k: u64, off: u64, raw: u32| {
            if raw & DELETED_BIT == 0 {
                out.push(IdxEntry {
                    key: NeedleKey(k),
                    offset: off,
                    size: raw,
                });
            }
        };
        for i in 0..self.keys.len() {
            let k = self.keys[i];
            while let Some((ek, (eo, es))) = extra.next_if(|(ek, _)| **ek < k) {
                emit(*ek, *eo, *es);
            }
            emit(k, self.offset_at(i), self.sizes[i]);
        }
        for (ek, (eo, es)) in extra {
            emit(*ek, *eo, *es);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::{TOMBSTONE_SIZE, encode_all};
    use rand::seq::SliceRandom;
    use std::collections::HashMap;

    fn k(n: u64) -> NeedleKey {
        NeedleKey(n)
    }

    #[test]
    fn put_get_delete_and_stats() {
        let mut m = NeedleMap::new();
        assert!(m.put(k(5), 1, 100).is_none());
        assert!(m.put(k(3), 20, 30).is_none()); // out of order
        m.put(k(5), 40, 50); // overwrite
        assert_eq!(
            m.get(k(5)),
            Some(NeedleValue {
                offset: 40,
                size: 50,
                deleted: false
            })
        );
        assert_eq!(m.delete(k(3)), Some(30));
        assert_eq!(m.delete(k(3)), None);
        assert_eq!(m.delete(k(99)), None);
        assert!(m.get(k(3)).unwrap().deleted);
        assert!(m.get_live(k(3)).is_none());
        let s = m.stats();
        assert_eq!(s.file_count, 3);
        assert_eq!(s.delete_count, 2);
        assert_eq!(s.deleted_bytes, 130);
        assert_eq!(s.content_size, 180);
        assert_eq!(s.live_count(), 1);
        assert_eq!(s.max_file_key, 99);
        // A put after a delete revives the key.
        m.put(k(3), 60, 0);
        assert_eq!(m.get_live(k(3)).unwrap().size, 0);
        let live: Vec<u64> = m.live_entries().iter().map(|e| e.key.0).collect();
        assert_eq!(live, [3, 5]);
    }

    #[test]
    fn matches_a_hashmap_under_random_order() {
        let mut keys: Vec<u64> = (1..20_000).collect();
        keys.shuffle(&mut rand::rng());
        let mut m = NeedleMap::new();
        let mut h = HashMap::new();
        for (i, &key) in keys.iter().enumerate() {
            m.put(k(key), i as u64 + (1 << 33), i as u32);
            h.insert(key, (i as u64 + (1 << 33), i as u32));
            if i % 7 == 0 {
                let d = keys[i / 2];
                m.delete(k(d));
                h.remove(&d);
            }
        }
        for key in 0..20_001u64 {
            let got = m.get_live(k(key)).map(|v| (v.offset, v.size));
            assert_eq!(got, h.get(&key).copied(), "key {key}");
        }
        m.shrink();
        assert!(m.overflow.is_empty());
        assert!(m.keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(m.live_entries().len(), h.len());
        assert_eq!(m.stats().live_count() as usize, h.len());
    }

    #[test]
    fn load_from_idx_bytes() {
        let es = [
            IdxEntry {
                key: k(1),
                offset: 1,
                size: 10,
            },
            IdxEntry {
                key: k(2),
                offset: 5,
                size: 0,
            },
            IdxEntry {
                key: k(1),
                offset: 9,
                size: TOMBSTONE_SIZE,
            },
            IdxEntry {
                key: k(7),
                offset: 0,
                size: 3,
            },
        ];
        let m = NeedleMap::load(&encode_all(&es, OffsetWidth::Five), OffsetWidth::Five);
        assert!(m.get(k(1)).unwrap().deleted);
        assert_eq!(m.get_live(k(2)).unwrap().size, 0);
        assert!(m.get_live(k(7)).is_none());
        assert_eq!(m.stats().max_file_key, 7);
    }

    #[test]
    fn million_needles_fit_in_twenty_bytes_each() {
        let n = 1_000_000u64;
        let es: Vec<IdxEntry> = (1..=n)
            .map(|i| IdxEntry {
                key: k(i),
                offset: i * 3,
                size: 1000,
            })
            .collect();
        let m = NeedleMap::load(&encode_all(&es, OffsetWidth::Five), OffsetWidth::Five);
        let per = m.heap_bytes() as f64 / n as f64;
        println!("needle map: {per:.2} bytes/needle for {n} needles");
        assert!(per <= 20.0, "{per} bytes per needle");
        assert_eq!(m.get_live(k(n)).unwrap().offset, n * 3);
    }
}
