//! The filer's entry model: [`Entry`] (a file or directory at a path), its [`Attributes`]
//! and its [`FileChunk`]s, plus [`visible_intervals`], which resolves overlapping chunks
//! into the byte ranges a reader actually sees (newest chunk wins).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;

use crate::path;

/// Default permission bits of a new file (`rw-rw----`).
pub const DEFAULT_FILE_MODE: u32 = 0o660;
/// Default permission bits of a new directory (`rwxrwx---`).
pub const DEFAULT_DIR_MODE: u32 = 0o770;

/// One piece of a file's content, stored as one needle on the volume servers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChunk {
    /// The file id of the needle, e.g. `3,01637037d6`.
    pub fid: String,
    /// Where the chunk's first byte sits in the file.
    pub offset: u64,
    /// How many bytes the chunk holds.
    pub size: u64,
    /// When the chunk was written (unix nanoseconds): a newer chunk hides older ones
    /// where they overlap.
    pub modified_ts_ns: i64,
    /// Hex MD5 of the chunk's bytes; may be empty.
    pub etag: String,
    /// The needle holds a manifest (a list of further chunks), not file data.
    pub is_manifest: bool,
}

/// File metadata, in the spirit of SeaweedFS's `FuseAttributes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// Unix permission bits, e.g. `0o660`; directories `0o770`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Last modification, unix seconds.
    pub mtime: i64,
    /// Creation, unix seconds.
    pub crtime: i64,
    pub mime: String,
    /// Time to live in seconds after `crtime`; 0 means forever.
    pub ttl_sec: u32,
    pub file_size: u64,
    /// MD5 of the whole content: 16 bytes, or empty when unknown.
    pub md5: Vec<u8>,
    pub symlink_target: String,
}

/// A file or directory of the namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The normalized full path (see [`crate::path::normalize`]).
    pub path: String,
    pub is_directory: bool,
    pub attr: Attributes,
    /// The content, as chunks on volume servers (possibly overlapping: see
    /// [`visible_intervals`]).
    pub chunks: Vec<FileChunk>,
    /// Extended attributes (`Seaweed-*` headers, S3 metadata, tags).
    pub extended: BTreeMap<String, Vec<u8>>,
    /// Inline content for small files (instead of chunks).
    pub content: Vec<u8>,
}

impl Entry {
    /// A new directory at `path`, created at `now` (unix seconds).
    pub fn new_dir(path: impl Into<String>, now: i64) -> Entry {
        Entry::new(path.into(), true, DEFAULT_DIR_MODE, now)
    }

    /// A new empty file at `path`, created at `now` (unix seconds).
    pub fn new_file(path: impl Into<String>, now: i64) -> Entry {
        Entry::new(path.into(), false, DEFAULT_FILE_MODE, now)
    }

    fn new(path: String, is_directory: bool, mode: u32, now: i64) -> Entry {
        Entry {
            path,
            is_directory,
            attr: Attributes {
                mode,
                mtime: now,
                crtime: now,
                ..Attributes::default()
            },
            ..Entry::default()
        }
    }

    /// The entry's name: the last component of its path (`""` for the root).
    pub fn name(&self) -> &str {
        path::name(&self.path)
    }

    /// The directory holding the entry (`None` for the root).
    pub fn parent(&self) -> Option<&str> {
        path::parent(&self.path)
    }

    /// Unix seconds before which the entry may not be removed or replaced.
    pub fn retained_until(&self) -> Option<i64> {
        let v = self.extended.get(RETAIN_UNTIL_KEY)?;
        std::str::from_utf8(v).ok()?.parse().ok()
    }

    /// A legal hold is on: the entry may not be removed or replaced until it is lifted.
    pub fn legal_hold(&self) -> bool {
        self.extended
            .get(LEGAL_HOLD_KEY)
            .is_some_and(|v| v.as_slice() == b"ON")
    }

    /// Locked at `now_secs`: removing or replacing the entry is refused.
    pub fn is_locked(&self, now_secs: i64) -> bool {
        self.legal_hold() || self.retained_until().is_some_and(|t| t > now_secs)
    }

    /// True once the entry's TTL has run out at `now_secs` (unix seconds); a locked
    /// entry never expires.
    pub fn is_expired(&self, now_secs: i64) -> bool {
        !self.is_locked(now_secs)
            && self.attr.ttl_sec > 0
            && self
                .attr
                .crtime
                .saturating_add(i64::from(self.attr.ttl_sec))
                < now_secs
    }

    /// The fids of all chunks, in chunk order (a fid listed twice is yielded twice).
    pub fn chunk_fids(&self) -> impl Iterator<Item = &str> + '_ {
        self.chunks.iter().map(|c| c.fid.as_str())
    }
}

/// Whether an extended attribute describes the entry's bytes as another API wrote them
/// (the S3 gateway's `X-Kelp-S3-*`: ETag, part sizes, checksums, version id), so that
/// an overwrite through the filer, which keeps the other attributes, drops it.
pub fn describes_content(key: &str) -> bool {
    key.starts_with("X-Kelp-S3-")
}

/// Extended attribute: the entry's chunks are sealed (see `cipher`) with a key the
/// filer does not hold; the value names the scheme (the S3 gateway's SSE kinds). The
/// filer's own API refuses to serve or append to such an entry.
pub const SEALED_KEY: &str = "X-Kelp-S3-Sse";

/// Refuses an entry whose chunks are sealed: the filer cannot serve or extend it.
pub fn check_unsealed(e: &Entry) -> Result<(), crate::FilerError> {
    match e.extended.get(SEALED_KEY) {
        None => Ok(()),
        Some(kind) => Err(crate::FilerError::Conflict(format!(
            "{} is encrypted by the S3 gateway ({}): read it through S3 with its key",
            e.path,
            String::from_utf8_lossy(kind)
        ))),
    }
}

/// Extended attribute: unix seconds (decimal) before which an entry may not be removed
/// or replaced by any filer operation (write-once retention; S3 object lock sets it).
pub const RETAIN_UNTIL_KEY: &str = "X-Kelp-Retain-Until";

/// Extended attribute: while `ON`, the entry may not be removed or replaced (S3 legal
/// hold).
pub const LEGAL_HOLD_KEY: &str = "X-Kelp-Legal-Hold";

/// A byte range `[start, stop)` of a file served by one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// First byte of the range, as a file offset.
    pub start: u64,
    /// One past the last byte, as a file offset.
    pub stop: u64,
    /// The chunk serving the range.
    pub fid: String,
    /// Where `start` sits inside that chunk's data (`start - chunk.offset`).
    pub chunk_offset: u64,
    /// The whole chunk's size.
    pub chunk_size: u64,
    /// The chunk's `modified_ts_ns`.
    pub modified_ts_ns: i64,
}

/// The file's content as a reader sees it: overlapping chunks resolved newest-wins (by
/// `modified_ts_ns`; on a tie the chunk later in the list wins), sorted by `start`, never
/// overlapping. Bytes no chunk covers (holes) have no interval and read as zeros. Empty
/// chunks are ignored. Manifest chunks must be resolved into their data chunks first.
///
/// Runs in O(n log n): chunks are visited newest first, and each only fills the gaps
/// that newer chunks left, which a map of the covered ranges finds.
pub fn visible_intervals(chunks: &[FileChunk]) -> Vec<Interval> {
    let mut order: Vec<usize> = (0..chunks.len()).filter(|&i| chunks[i].size > 0).collect();
    // Newest first; on equal timestamps the later chunk in the list first.
    order.sort_by(|&a, &b| (chunks[b].modified_ts_ns, b).cmp(&(chunks[a].modified_ts_ns, a)));
    // Disjoint, non-adjacent covered ranges: start -> stop.
    let mut covered: BTreeMap<u64, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for i in order {
        let c = &chunks[i];
        let (start, stop) = (c.offset, c.offset.saturating_add(c.size));
        let mut emit = |s: u64, e: u64| {
            out.push(Interval {
                start: s,
                stop: e,
                fid: c.fid.clone(),
                chunk_offset: s - c.offset,
                chunk_size: c.size,
                modified_ts_ns: c.modified_ts_ns,
            });
        };
        // Covered ranges touching [start, stop]: the one starting at or before `start`
        // (if it reaches it), then every one starting inside.
        let mut touching: Vec<(u64, u64)> = Vec::new();
        if let Some((&s, &e)) = covered.range(..=start).next_back()
            && e >= start
        {
            touching.push((s, e));
        }
        touching.extend(
            covered
                .range((
                    std::ops::Bound::Excluded(start),
                    std::ops::Bound::Included(stop),
                ))
                .map(|(&s, &e)| (s, e)),
        );
        let mut cursor = start;
        for &(s, e) in &touching {
            if s > cursor {
                emit(cursor, s.min(stop));
            }
            cursor = cursor.max(e);
        }
        if cursor < stop {
            emit(cursor, stop);
        }
        // Merge [start, stop) with everything it touches.
        let mut merged = (start, stop);
        for &(s, e) in &touching {
            covered.remove(&s);
            merged = (merged.0.min(s), merged.1.max(e));
        }
        covered.insert(merged.0, merged.1);
    }
    out.sort_by_key(|iv| iv.start);
    out
}

/// The file size the chunks describe: the end of the furthest chunk (0 for none).
#[cfg(test)]
impl FileChunk {
    /// A data chunk for tests: `size` bytes at `offset`, written at `ts`.
    pub(crate) fn sample(fid: &str, offset: u64, size: u64, ts: i64) -> FileChunk {
        FileChunk {
            fid: fid.into(),
            offset,
            size,
            modified_ts_ns: ts,
            ..FileChunk::default()
        }
    }
}

pub fn total_size(chunks: &[FileChunk]) -> u64 {
    chunks
        .iter()
        .map(|c| c.offset.saturating_add(c.size))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(fid: &str, offset: u64, size: u64, ts: i64) -> FileChunk {
        FileChunk::sample(fid, offset, size, ts)
    }

    /// (start, stop, fid, chunk_offset) of each interval.
    fn vis(chunks: &[FileChunk]) -> Vec<(u64, u64, String, u64)> {
        visible_intervals(chunks)
            .into_iter()
            .map(|iv| (iv.start, iv.stop, iv.fid, iv.chunk_offset))
            .collect()
    }

    fn v(items: &[(u64, u64, &str, u64)]) -> Vec<(u64, u64, String, u64)> {
        items
            .iter()
            .map(|&(s, e, f, o)| (s, e, f.to_string(), o))
            .collect()
    }

    /// Byte-by-byte reference: which chunk (index) serves each offset.
    fn reference(chunks: &[FileChunk], len: u64) -> Vec<Option<(String, u64)>> {
        (0..len)
            .map(|b| {
                let mut best: Option<(i64, usize)> = None;
                for (i, c) in chunks.iter().enumerate() {
                    if c.offset <= b
                        && b < c.offset + c.size
                        && best.is_none_or(|k| (c.modified_ts_ns, i) > k)
                    {
                        best = Some((c.modified_ts_ns, i));
                    }
                }
                best.map(|(_, i)| (chunks[i].fid.clone(), b - chunks[i].offset))
            })
            .collect()
    }

    fn check_against_reference(chunks: &[FileChunk]) {
        let len = total_size(chunks) + 2;
        let want = reference(chunks, len);
        let ivs = visible_intervals(chunks);
        let mut got = vec![None; len as usize];
        let mut last_stop = 0;
        for iv in &ivs {
            assert!(iv.start < iv.stop, "empty interval {iv:?}");
            assert!(
                iv.start >= last_stop,
                "overlap or disorder at {iv:?} in {ivs:?}"
            );
            last_stop = iv.stop;
            for b in iv.start..iv.stop {
                got[b as usize] = Some((iv.fid.clone(), iv.chunk_offset + (b - iv.start)));
            }
        }
        assert_eq!(got, want, "chunks {chunks:?} gave {ivs:?}");
    }

    #[test]
    fn single_and_appends() {
        assert!(visible_intervals(&[]).is_empty());
        assert_eq!(vis(&[ch("a", 0, 10, 1)]), v(&[(0, 10, "a", 0)]));
        let appended = [ch("a", 0, 10, 1), ch("b", 10, 5, 2), ch("c", 15, 7, 3)];
        assert_eq!(
            vis(&appended),
            v(&[(0, 10, "a", 0), (10, 15, "b", 0), (15, 22, "c", 0)])
        );
        assert_eq!(total_size(&appended), 22);
        let iv = &visible_intervals(&appended)[1];
        assert_eq!((iv.chunk_size, iv.modified_ts_ns), (5, 2));
    }

    #[test]
    fn newer_overwrites_middle() {
        let chunks = [ch("old", 0, 100, 1), ch("new", 40, 20, 2)];
        assert_eq!(
            vis(&chunks),
            v(&[(0, 40, "old", 0), (40, 60, "new", 0), (60, 100, "old", 60)])
        );
        check_against_reference(&chunks);
    }

    #[test]
    fn older_listed_later_does_not_win() {
        // List order does not matter when timestamps differ.
        let chunks = [ch("new", 40, 20, 2), ch("old", 0, 100, 1)];
        assert_eq!(
            vis(&chunks),
            v(&[(0, 40, "old", 0), (40, 60, "new", 0), (60, 100, "old", 60)])
        );
    }

    #[test]
    fn ties_go_to_the_later_chunk() {
        let chunks = [ch("first", 0, 10, 5), ch("second", 5, 10, 5)];
        assert_eq!(vis(&chunks), v(&[(0, 5, "first", 0), (5, 15, "second", 0)]));
        let same = [ch("x", 0, 10, 5), ch("y", 0, 10, 5)];
        assert_eq!(vis(&same), v(&[(0, 10, "y", 0)]));
    }

    #[test]
    fn full_overwrite_hides_old() {
        let chunks = [ch("a", 0, 10, 1), ch("b", 10, 10, 2), ch("c", 0, 20, 3)];
        assert_eq!(vis(&chunks), v(&[(0, 20, "c", 0)]));
    }

    #[test]
    fn older_fills_gaps_between_newer() {
        let chunks = [ch("base", 0, 30, 1), ch("n1", 5, 5, 3), ch("n2", 20, 5, 2)];
        assert_eq!(
            vis(&chunks),
            v(&[
                (0, 5, "base", 0),
                (5, 10, "n1", 0),
                (10, 20, "base", 10),
                (20, 25, "n2", 0),
                (25, 30, "base", 25),
            ])
        );
        check_against_reference(&chunks);
    }

    #[test]
    fn holes_and_empty_chunks() {
        let chunks = [ch("a", 0, 4, 1), ch("z", 6, 0, 9), ch("b", 10, 4, 1)];
        assert_eq!(vis(&chunks), v(&[(0, 4, "a", 0), (10, 14, "b", 0)]));
        assert_eq!(total_size(&chunks), 14);
        assert_eq!(total_size(&[ch("z", 7, 0, 1)]), 7);
    }

    #[test]
    fn partial_overlaps_on_both_sides() {
        let chunks = [ch("a", 0, 10, 2), ch("b", 8, 10, 1), ch("c", 15, 10, 3)];
        assert_eq!(
            vis(&chunks),
            v(&[(0, 10, "a", 0), (10, 15, "b", 2), (15, 25, "c", 0)])
        );
        check_against_reference(&chunks);
    }

    #[test]
    fn adjacent_covered_ranges_merge_correctly() {
        // Newest two are adjacent; the oldest spans both and beyond.
        let chunks = [ch("old", 0, 30, 1), ch("l", 10, 5, 3), ch("r", 15, 5, 2)];
        assert_eq!(
            vis(&chunks),
            v(&[
                (0, 10, "old", 0),
                (10, 15, "l", 0),
                (15, 20, "r", 0),
                (20, 30, "old", 20)
            ])
        );
    }

    #[test]
    fn matches_byte_reference_on_pseudo_random_layouts() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for round in 0..300 {
            let n = 1 + next(12);
            let chunks: Vec<FileChunk> = (0..n)
                .map(|i| ch(&format!("r{round}c{i}"), next(60), next(25), next(6) as i64))
                .collect();
            check_against_reference(&chunks);
        }
    }

    #[test]
    fn many_appends_stay_fast() {
        let chunks: Vec<FileChunk> = (0..20_000)
            .map(|i| ch(&format!("f{i}"), i * 10, 10, i as i64))
            .collect();
        let ivs = visible_intervals(&chunks);
        assert_eq!(ivs.len(), 20_000);
        assert_eq!(ivs[19_999].stop, 200_000);
    }

    #[test]
    fn entry_helpers() {
        let d = Entry::new_dir("/a/b", 100);
        assert!(d.is_directory);
        assert_eq!(d.attr.mode, 0o770);
        assert_eq!((d.attr.mtime, d.attr.crtime), (100, 100));
        assert_eq!(d.name(), "b");
        assert_eq!(d.parent(), Some("/a"));
        let mut f = Entry::new_file("/x", 100);
        assert!(!f.is_directory);
        assert_eq!(f.attr.mode, 0o660);
        assert_eq!(f.parent(), Some("/"));
        assert!(!f.is_expired(i64::MAX));
        f.attr.ttl_sec = 60;
        assert!(!f.is_expired(160));
        assert!(f.is_expired(161));
        // A locked entry never expires: retention until a time, or a legal hold.
        f.extended.insert(RETAIN_UNTIL_KEY.into(), b"500".to_vec());
        assert!(f.is_locked(499) && !f.is_expired(499));
        assert!(!f.is_locked(500) && f.is_expired(500));
        f.extended.insert(LEGAL_HOLD_KEY.into(), b"ON".to_vec());
        assert!(f.is_locked(10_000) && !f.is_expired(10_000));
        f.extended.insert(LEGAL_HOLD_KEY.into(), b"OFF".to_vec());
        assert!(!f.is_locked(10_000));
        f.chunks = vec![
            ch("1,01", 0, 1, 1),
            ch("2,02", 1, 1, 1),
            ch("1,01", 2, 1, 1),
        ];
        assert_eq!(f.chunk_fids().collect::<Vec<_>>(), ["1,01", "2,02", "1,01"]);
        assert_eq!(Entry::new_dir("/", 0).name(), "");
        assert_eq!(Entry::new_dir("/", 0).parent(), None);
    }
}
