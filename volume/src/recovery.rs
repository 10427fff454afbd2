//! Crash recovery on open: reconcile the `.dat` tail with the `.idx`, cut torn writes.
//!
//! 1. A partial entry at the end of the `.idx` is cut off.
//! 2. Walking back from the last `.idx` entry, each entry's needle is checked (inside the
//!    file, header key and size match, CRC good); trailing entries that fail are dropped.
//! 3. The `.dat` is scanned forward from the end of the last good indexed needle: complete,
//!    valid needles are indexed (Size 0 = deletion); the first torn or invalid record and
//!    everything after it is cut from the `.dat`, so it is never served.
//!
//! Also here: the probe that tells 4-byte from 5-byte `.idx` files.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{IoContext, Result};
use crate::handle::NeedleHandle;
use crate::idx::{IdxEntry, OffsetWidth, TOMBSTONE_SIZE, encode_all, entries};
use crate::needle::{HEADER_SIZE, NEEDLE_ALIGN, NeedleHeader, Version};
use crate::superblock::SUPERBLOCK_SIZE;

#[cfg(test)]
mod tests;

/// What recovery changed; all zero for a cleanly closed volume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes of a partial entry cut from the end of the `.idx`.
    pub idx_tail_bytes_cut: u64,
    /// Trailing `.idx` entries whose needle was missing or invalid.
    pub idx_entries_dropped: u64,
    /// Needles found in the `.dat` past the last `.idx` entry and indexed.
    pub needles_reindexed: u64,
    /// Bytes of torn or invalid data cut from the end of the `.dat`.
    pub dat_bytes_cut: u64,
}

impl RecoveryReport {
    pub fn changed(&self) -> bool {
        *self != RecoveryReport::default()
    }
}

pub(crate) struct Recovered {
    /// The repaired `.idx` image (whole entries only), as now on disk.
    pub idx: Vec<u8>,
    pub dat_len: u64,
    /// AppendAtNs of the last needle in the `.dat` (0 if none).
    pub last_append_ns: u64,
    pub report: RecoveryReport,
}

pub(crate) struct Files<'a> {
    pub dat: &'a Arc<File>,
    pub dat_path: &'a Arc<Path>,
    pub idx: &'a File,
    pub idx_path: &'a Path,
}

/// Checks the entry's needle: inside the file, header matches, CRC good. Returns the
/// needle's end offset and AppendAtNs.
fn verify_entry(f: &Files<'_>, dat_len: u64, e: &IdxEntry, version: Version) -> Option<(u64, u64)> {
    let at = e.byte_offset();
    let mut h =
        NeedleHandle::open_at(f.dat.clone(), f.dat_path.clone(), dat_len, at, version).ok()?;
    let m = h.meta();
    if m.key != e.key || (e.is_put() && m.size != e.size) {
        return None;
    }
    h.verify_crc().ok()?;
    let (start, len) = h.record_span();
    Some((start + len, h.meta().append_at_ns))
}

pub(crate) fn recover(
    f: &Files<'_>,
    mut idx: Vec<u8>,
    width: OffsetWidth,
    version: Version,
) -> Result<Recovered> {
    let mut report = RecoveryReport::default();
    let es = width.entry_size();
    let partial = idx.len() % es;
    if partial != 0 {
        report.idx_tail_bytes_cut = partial as u64;
        idx.truncate(idx.len() - partial);
    }
    let dat_len = f
        .dat
        .metadata()
        .ctx(|| format!("stat of {}", f.dat_path.display()))?
        .len();

    // Walk back to the last entry whose needle checks out.
    let list: Vec<IdxEntry> = entries(&idx, width).collect();
    let mut keep = list.len();
    let mut scan_start = SUPERBLOCK_SIZE as u64;
    let mut last_append_ns = 0;
    for i in (0..list.len()).rev() {
        let e = &list[i];
        if e.offset == 0 {
            continue; // a delete without a position: nothing to check
        }
        match verify_entry(f, dat_len, e, version) {
            Some((end, ts)) => {
                scan_start = end;
                last_append_ns = ts;
                break;
            }
            None => keep = i,
        }
    }
    report.idx_entries_dropped = (list.len() - keep) as u64;
    idx.truncate(keep * es);

    // Scan forward for complete needles the index does not know yet.
    let mut found = Vec::new();
    let mut pos = scan_start.next_multiple_of(NEEDLE_ALIGN);
    while pos + HEADER_SIZE as u64 <= dat_len {
        let Ok(mut h) =
            NeedleHandle::open_at(f.dat.clone(), f.dat_path.clone(), dat_len, pos, version)
        else {
            break;
        };
        if h.verify_crc().is_err() {
            break;
        }
        let m = h.meta();
        let size = if m.size == 0 { TOMBSTONE_SIZE } else { m.size };
        found.push(IdxEntry {
            key: m.key,
            offset: pos / NEEDLE_ALIGN,
            size,
        });
        last_append_ns = m.append_at_ns;
        pos += h.record_span().1;
    }
    if pos < dat_len {
        report.dat_bytes_cut = dat_len - pos;
        tracing::warn!(
            dat = %f.dat_path.display(),
            offset = pos,
            bytes = dat_len - pos,
            "cutting a torn or invalid tail from the volume data file"
        );
        f.dat
            .set_len(pos)
            .ctx(|| format!("truncating {} to {pos}", f.dat_path.display()))?;
    }
    report.needles_reindexed = found.len() as u64;
    if report.idx_tail_bytes_cut > 0 || report.idx_entries_dropped > 0 || !found.is_empty() {
        tracing::warn!(
            idx = %f.idx_path.display(),
            dropped = report.idx_entries_dropped,
            reindexed = found.len(),
            "repairing the volume index tail"
        );
        f.idx
            .set_len(idx.len() as u64)
            .ctx(|| format!("truncating {}", f.idx_path.display()))?;
        let extra = encode_all(&found, width);
        f.idx
            .write_all_at(&extra, idx.len() as u64)
            .ctx(|| format!("writing {}", f.idx_path.display()))?;
        idx.extend_from_slice(&extra);
    }
    if report.changed() {
        f.dat
            .sync_all()
            .ctx(|| format!("fsync of {}", f.dat_path.display()))?;
        f.idx
            .sync_all()
            .ctx(|| format!("fsync of {}", f.idx_path.display()))?;
    }
    Ok(Recovered {
        idx,
        dat_len: pos.max(SUPERBLOCK_SIZE as u64).min(dat_len),
        last_append_ns,
        report,
    })
}

/// Does the `.idx` image make sense read with `width`? Looks at the first few entries
/// that point at a needle: each must land inside the `.dat` on a header with the same
/// key and (for puts) the same size. `true` when there is nothing to check.
pub(crate) fn width_fits(dat: &File, dat_len: u64, idx: &[u8], width: OffsetWidth) -> bool {
    let mut checked = 0;
    for e in entries(idx, width) {
        if checked == 3 {
            break;
        }
        if e.offset == 0 {
            continue;
        }
        checked += 1;
        let at = e.byte_offset();
        if at < SUPERBLOCK_SIZE as u64 || at + HEADER_SIZE as u64 > dat_len {
            return false;
        }
        let mut hb = [0u8; HEADER_SIZE];
        if dat.read_exact_at(&mut hb, at).is_err() {
            return false;
        }
        let h = NeedleHeader::parse(&hb);
        if h.key != e.key || (e.is_put() && h.size != e.size) {
            return false;
        }
    }
    true
}
