//! Large records written and read around the page cache: the block-aligned middle of a
//! big record goes between the disk and a pooled buffer directly (`O_DIRECT`), its two
//! unaligned ends through the page cache as before.
//!
//! Why: a buffered append copies every byte into page-cache pages that the kernel has
//! to allocate for each new offset of the file. On a virtual machine whose free
//! memory goes back to the host (free page reporting), touching such a page often costs
//! a fault in the host as well, and that cost, paid on the writer's CPU, was larger than
//! the MD5 of the same bytes (`docs/performance.md`). A direct write skips the copy and
//! the new pages: the device reads the staging buffer, which stays resident in the pool.
//!
//! Whole-record reads of such records go the same way: the middle, never cached, is read
//! into a pooled buffer without a copy out of the page cache, and the ends come from
//! the cache, where a record just written keeps them. The kernel keeps the two paths
//! coherent (a direct transfer writes back and drops cached pages in its range); they
//! never touch the same page at once here, since the ends are whole pages apart from
//! the middle. The price: a large record is not cached for the next read, which is
//! what `-directIO=false` is for (hot large objects on a slow disk). Durability is
//! unchanged: a direct write has reached the device when it returns, and `fdatasync`
//! flushes the device's cache for both kinds.
//!
//! Direct writes are used only where the file system states its alignment (`statx`
//! `STATX_DIOALIGN`, Linux 6.1+); anywhere else, or if the kernel refuses one, every
//! byte goes through the page cache.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use rustix::fs::{AtFlags, OFlags, StatxFlags};

use crate::fsutil::write_all_vectored_at;

/// Records smaller than this go wholly through the page cache.
pub(crate) const DIRECT_MIN: usize = 1 << 20;
/// The direct part is copied into the staging buffer and written this much at a time
/// (a multiple of any alignment accepted below).
const WINDOW: usize = 4 << 20;
/// Offsets, lengths and buffer addresses of direct writes are multiples of at least
/// this (a page: fewer partial pages to write through the cache than with 512).
const MIN_ALIGN: usize = 4096;
/// A file system asking for a larger alignment than this is written through the cache.
const MAX_ALIGN: usize = 64 << 10;

/// A volume's `.dat` opened a second time, with `O_DIRECT`, and the alignment the file
/// system asks of direct transfers (a power of two, at least a page).
#[derive(Debug)]
pub(crate) struct Direct {
    file: File,
    align: usize,
}

impl Direct {
    /// Opens `path` for direct reads and writes, if `wanted` (the volume's `direct_io`
    /// option) and its file system supports them.
    pub(crate) fn open(path: &Path, wanted: bool) -> Option<Arc<Direct>> {
        if !wanted {
            return None;
        }
        match probe(path) {
            Ok(Some((file, align))) => Some(Arc::new(Direct { file, align })),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "no direct I/O");
                None
            }
        }
    }

    /// The bounds, as offsets from `at`, of the aligned middle of the `len` bytes at
    /// `at`, if they are many enough to go directly.
    fn middle(&self, len: usize, at: u64) -> Option<(usize, usize)> {
        let align = self.align as u64;
        let end = at + len as u64;
        let (a, b) = (at.next_multiple_of(align), end / align * align);
        if len < DIRECT_MIN || b <= a {
            return None;
        }
        Some(((a - at) as usize, (b - at) as usize))
    }

    /// Reads the `len` bytes at `at` of `dat` (the same file): the aligned middle
    /// directly, the ends through the page cache (where a record just written keeps
    /// them). `None` when the bytes are too few to go directly, or the kernel refused.
    pub(crate) fn read(&self, dat: &File, len: usize, at: u64) -> std::io::Result<Option<Bytes>> {
        let Some((from, to)) = self.middle(len, at) else {
            return Ok(None);
        };
        // Room for the shift that aligns the middle (within the pool's slack, so the
        // buffer of a chunk the filer received serves reading it back). Every byte of
        // `shift..shift + len` is read into; the others are never looked at.
        let mut buf = kelp_proto::buffers::take_filled(len + self.align);
        let shift = buf.as_ptr().wrapping_add(from).align_offset(self.align);
        if shift >= self.align {
            kelp_proto::buffers::give(buf);
            return Ok(None);
        }
        buf.truncate(shift + len);
        let res = dat
            .read_exact_at(&mut buf[shift..shift + from], at)
            .and_then(|()| {
                self.file
                    .read_exact_at(&mut buf[shift + from..shift + to], at + from as u64)
            })
            .and_then(|()| dat.read_exact_at(&mut buf[shift + to..], at + to as u64));
        match res {
            Ok(()) => Ok(Some(
                kelp_proto::buffers::share(buf).slice(shift..shift + len),
            )),
            Err(e) => {
                kelp_proto::buffers::give(buf);
                if refused(&e) {
                    tracing::debug!(error = %e, "the kernel refused a direct read");
                    return Ok(None);
                }
                Err(e)
            }
        }
    }

    /// Writes the record made of `parts` at byte `at` of `dat` (the same file as
    /// `direct`): its aligned middle directly when the record is large and `direct` is
    /// there, everything else through `dat`. If the kernel refuses a direct write,
    /// `direct` is dropped (this volume's writes go through the cache from then on).
    /// Returns how many bytes went directly.
    pub(crate) fn write_record(
        direct: &mut Option<Arc<Direct>>,
        dat: &File,
        parts: &[&[u8]],
        at: u64,
    ) -> std::io::Result<u64> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let Some((d, (from, to))) = direct
            .as_ref()
            .and_then(|d| Some((d.clone(), d.middle(len, at)?)))
        else {
            write_all_vectored_at(dat, parts, at)?;
            return Ok(0);
        };
        write_all_vectored_at(dat, &range(parts, 0, from), at)?;
        let sent = match write_direct(&d.file, d.align, parts, from, to, at) {
            Ok(()) => (to - from) as u64,
            Err(e) if refused(&e) => {
                tracing::warn!(error = %e,
                    "the kernel refused a direct write; writing this volume through the page cache");
                *direct = None;
                write_all_vectored_at(dat, &range(parts, from, to), at + from as u64)?;
                0
            }
            Err(e) => return Err(e),
        };
        write_all_vectored_at(dat, &range(parts, to, len), at + to as u64)?;
        Ok(sent)
    }
}

/// Whether `e` is the kernel refusing a direct transfer (rather than failing it).
fn refused(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
}

/// `path` opened with `O_DIRECT` and the alignment its direct writes need, or `None`
/// where the file system does not say (or asks for more than [`MAX_ALIGN`]).
fn probe(path: &Path) -> std::io::Result<Option<(File, usize)>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(OFlags::DIRECT.bits() as i32)
        .open(path)?;
    let st = rustix::fs::statx(&file, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN)?;
    if !StatxFlags::from_bits_retain(st.stx_mask).contains(StatxFlags::DIOALIGN) {
        return Ok(None);
    }
    let (mem, off) = (
        st.stx_dio_mem_align as usize,
        st.stx_dio_offset_align as usize,
    );
    if mem == 0 || off == 0 {
        return Ok(None);
    }
    let align = MIN_ALIGN.max(mem).max(off);
    if !align.is_power_of_two() || align > MAX_ALIGN {
        return Ok(None);
    }
    Ok(Some((file, align)))
}

/// Writes bytes `from..to` of the record at `at` (`at + from` and `at + to` are
/// multiples of `align`) with direct writes, through a staging buffer whose data starts
/// at an address that is a multiple of `align`.
fn write_direct(
    file: &File,
    align: usize,
    parts: &[&[u8]],
    from: usize,
    to: usize,
    at: u64,
) -> std::io::Result<()> {
    let mut stage = kelp_proto::buffers::take(WINDOW + align);
    // Bytes to skip to an aligned address: at most `align - 1`, so a window always fits
    // in the capacity and the buffer never moves.
    let pad = stage.as_ptr().align_offset(align);
    let mut pos = from;
    let res = loop {
        if pos >= to {
            break Ok(());
        }
        let n = (to - pos).min(WINDOW);
        stage.clear();
        stage.resize(pad, 0);
        for p in range(parts, pos, pos + n) {
            stage.extend_from_slice(p);
        }
        debug_assert!(stage.len() <= stage.capacity());
        if let Err(e) = write_all_vectored_at(file, &[&stage[pad..]], at + pos as u64) {
            break Err(e);
        }
        pos += n;
    };
    kelp_proto::buffers::give(stage);
    res
}

/// Bytes `from..to` of the concatenation of `parts`, as slices of them.
fn range<'a>(parts: &[&'a [u8]], from: usize, to: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for p in parts {
        let end = start + p.len();
        if end > from && start < to {
            let lo = from.saturating_sub(start);
            let hi = (to - start).min(p.len());
            if lo < hi {
                out.push(&p[lo..hi]);
            }
        }
        start = end;
        if start >= to {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn range_cuts_across_parts() {
        let parts: [&[u8]; 4] = [b"abc", b"", b"defg", b"hi"];
        let join = |v: Vec<&[u8]>| v.concat();
        assert_eq!(join(range(&parts, 0, 9)), b"abcdefghi");
        assert_eq!(join(range(&parts, 2, 8)), b"cdefgh");
        assert_eq!(join(range(&parts, 3, 7)), b"defg");
        assert!(range(&parts, 4, 4).is_empty());
        assert_eq!(join(range(&parts, 8, 9)), b"i");
    }

    fn new_file(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap()
    }

    /// Records of many sizes at unaligned offsets, each sharing a page with the one
    /// before it: the file must read back byte for byte, and each record too through
    /// [`Direct::read`], with the middles of the large ones written and read directly
    /// where the file system allows.
    #[test]
    fn records_read_back_whole_around_direct_transfers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.dat");
        let dat = new_file(&path);
        let mut expect = pattern(1000, 7);
        dat.write_all_at(&expect, 0).unwrap();
        let mut direct = Direct::open(&path, true);
        let available = direct.is_some();
        let mut sent_direct = 0;
        let mut records = Vec::new();
        let sizes = [
            (40, 3 << 20, 13),
            (16, 100, 8),
            (24, DIRECT_MIN, 0),
            (0, 9 << 20, 0),
            (17, 4096 * 3, 5),
        ];
        for (i, (head, data, tail)) in sizes.into_iter().enumerate() {
            let (h, d, t) = (
                pattern(head, i as u8),
                pattern(data, 100 + i as u8),
                pattern(tail, 200 + i as u8),
            );
            let at = expect.len() as u64;
            sent_direct += Direct::write_record(&mut direct, &dat, &[&h, &d, &t], at).unwrap();
            records.push((at, h.len() + d.len() + t.len()));
            expect.extend_from_slice(&h);
            expect.extend_from_slice(&d);
            expect.extend_from_slice(&t);
        }
        // A record starting and ending on a page boundary: no buffered ends at all.
        let pad = expect.len().next_multiple_of(4096) - expect.len();
        let filler = pattern(pad, 1);
        Direct::write_record(&mut direct, &dat, &[&filler], expect.len() as u64).unwrap();
        expect.extend_from_slice(&filler);
        let whole = pattern(2 << 20, 2);
        records.push((expect.len() as u64, whole.len()));
        sent_direct +=
            Direct::write_record(&mut direct, &dat, &[&whole], expect.len() as u64).unwrap();
        expect.extend_from_slice(&whole);

        let mut got = vec![0u8; expect.len()];
        dat.read_exact_at(&mut got, 0).unwrap();
        assert!(got == expect, "the file differs from what was written");
        assert_eq!(dat.metadata().unwrap().len(), expect.len() as u64);
        assert_eq!(
            available,
            sent_direct > 0,
            "direct writes used where available"
        );
        let Some(d) = direct else { return };
        // Small records never go direct; the aligned large one wholly does.
        assert!(sent_direct >= (2 << 20) as u64);
        for (at, len) in records {
            let want = &expect[at as usize..at as usize + len];
            match d.read(&dat, len, at).unwrap() {
                Some(b) => assert!(&b[..] == want, "record at {at} read back wrong"),
                None => assert!(
                    len < DIRECT_MIN,
                    "a large record at {at} was not read directly"
                ),
            }
        }
        // A read running past the end of the file is an error, not short data.
        let end = expect.len() as u64;
        assert!(d.read(&dat, 3 << 20, end - (2 << 20)).is_err());
    }

    #[test]
    fn without_direct_io_everything_is_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.dat");
        let dat = new_file(&path);
        let d = pattern(3 << 20, 9);
        let mut off = None;
        assert_eq!(
            Direct::write_record(&mut off, &dat, &[b"hd", &d], 5).unwrap(),
            0
        );
        let mut got = vec![0u8; 5 + 2 + d.len()];
        dat.read_exact_at(&mut got, 0).unwrap();
        assert_eq!(&got[..7], b"\0\0\0\0\0hd");
        assert!(got[7..] == d[..]);
    }
}
