//! EC vacuum: copy the live needles (`.ecx` minus `.ecj`) into a fresh compact `.dat`
//! stream, encode it into a new shard set and swap the whole set in crash-safely.
//!
//! The new files are written as `<name>.vac` and fsynced; then the commit marker
//! `<base>.ecvac` is written, every `.vac` renamed over its file and the marker removed.
//! On open, a marker means "finish the renames"; `.vac` files without one are discarded.
//! So a crash leaves the old set or the new one, whole.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result, VolumeError};
use crate::fsutil::{remove_if_exists, sync_dir, write_atomic};
use crate::idx::{IdxEntry, encode_all};
use crate::needle::{Needle, actual_size};
use crate::superblock::{SUPERBLOCK_SIZE, SuperBlock};
use crate::volume::now_ns;

use super::MAX_SHARDS;
use super::encode::StripeEncoder;
use super::info::EcInfo;
use super::layout::{ec_path, shard_path, with_suffix};
use super::volume::{EcVolume, LocalOnly};

const MARKER: &str = ".ecvac";
const VAC: &str = ".vac";

/// What an EC vacuum kept and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EcVacuumReport {
    pub needles_kept: u64,
    /// Needles left out because the `.ecj` deleted them.
    pub deleted_dropped: u64,
    /// Needles left out because their data failed its CRC.
    pub corrupt_dropped: u64,
    pub dat_bytes_before: u64,
    pub dat_bytes_after: u64,
    /// Data bytes per shard before and after.
    pub shard_bytes_before: u64,
    pub shard_bytes_after: u64,
}

/// Where a test may stop a vacuum, as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// New files durable, no marker yet.
    BeforeMarker,
    /// Marker written and this many files renamed.
    #[cfg_attr(not(test), allow(dead_code))]
    AfterRenames(usize),
}

/// Every file of a shard set that a vacuum replaces.
fn set_files(dir: &Path, base: &str, shards: usize) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = (0..shards)
        .map(|i| shard_path(dir, base, i as u8))
        .collect();
    v.extend([".ecx", ".ecj", ".vif"].map(|e| ec_path(dir, base, e)));
    v
}

/// Finishes a committed EC vacuum or throws away an unfinished one.
pub(crate) fn recover_on_open(dir: &Path, base: &str) -> Result<()> {
    let marker = ec_path(dir, base, MARKER);
    let files = set_files(dir, base, MAX_SHARDS);
    if marker.exists() {
        tracing::warn!(volume = base, "finishing an interrupted ec vacuum");
        rename_staged(dir, &marker, &files)?;
    } else {
        let mut any = false;
        for f in &files {
            any |= remove_if_exists(&with_suffix(f, VAC))?;
        }
        if any {
            tracing::warn!(volume = base, "discarding an unfinished ec vacuum");
            sync_dir(dir)?;
        }
    }
    Ok(())
}

/// Renames every staged file present over its file, then removes the commit marker.
fn rename_staged(dir: &Path, marker: &Path, files: &[PathBuf]) -> Result<()> {
    for f in files {
        let v = with_suffix(f, VAC);
        if v.exists() {
            std::fs::rename(&v, f)
                .ctx(|| format!("renaming {} to {}", v.display(), f.display()))?;
        }
    }
    sync_dir(dir)?;
    remove_if_exists(marker)?;
    sync_dir(dir)
}

/// Where a replacement of the EC file `path` is written (and fsynced) before
/// [`commit_staged`] swaps it in; without the commit, the next open throws it away.
pub fn staged_path(path: &Path) -> PathBuf {
    with_suffix(path, VAC)
}

/// Swaps every staged file of `<dir>/<base>` in at once, crash-safely (the same commit
/// marker as an EC vacuum: a crash midway is finished by the next open).
pub fn commit_staged(dir: &Path, base: &str) -> Result<()> {
    sync_dir(dir)?;
    let marker = ec_path(dir, base, MARKER);
    write_atomic(&marker, b"commit\n")?;
    rename_staged(dir, &marker, &set_files(dir, base, MAX_SHARDS))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .ctx(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .ctx(|| format!("writing {}", path.display()))
}

/// Reclaims the space of deleted needles of `<dir>/<base>`: the shards shrink to the live
/// data. Needs any `data_shards` shards locally and writes all of them. The volume must
/// not be in use meanwhile (reopen it afterwards).
pub fn ec_vacuum(dir: &Path, base: &str) -> Result<EcVacuumReport> {
    ec_vacuum_until(dir, base, None)
}

pub(crate) fn ec_vacuum_until(
    dir: &Path,
    base: &str,
    stop: Option<Stop>,
) -> Result<EcVacuumReport> {
    let v = EcVolume::open(dir, base)?;
    let info = v.info().clone();
    let old = v.geometry();
    let mut live: Vec<IdxEntry> = v.index().iter().filter(IdxEntry::is_put).collect();
    let before = live.len();
    live.retain(|e| !v.is_deleted(e.key));
    live.sort_unstable_by_key(|e| e.offset);
    let mut report = EcVacuumReport {
        deleted_dropped: (before - live.len()) as u64,
        dat_bytes_before: old.dat_size,
        shard_bytes_before: old.shard_len(),
        ..EcVacuumReport::default()
    };

    let sb = v.read_range(0, SUPERBLOCK_SIZE as u64, &LocalOnly)?;
    let mut sb = SuperBlock::parse(&sb)?;
    sb.compaction_revision = sb.compaction_revision.wrapping_add(1);
    let files = set_files(dir, base, old.total_shards());
    let vacs: Vec<PathBuf> = files.iter().map(|f| with_suffix(f, VAC)).collect();
    let mut enc = StripeEncoder::create(
        &vacs[..old.total_shards()],
        old.config,
        sb.compaction_revision,
    )?;
    enc.write(&sb.to_bytes())?;
    let mut pos = SUPERBLOCK_SIZE as u64;
    let mut index = Vec::with_capacity(live.len());
    for e in &live {
        let len = actual_size(e.size, info.version);
        let bytes = v.read_range(e.byte_offset(), len, &LocalOnly)?;
        match Needle::decode(&bytes, info.version) {
            Ok(n) if n.key == e.key => {}
            Ok(_) | Err(VolumeError::CrcMismatch { .. }) => {
                tracing::warn!(volume = base, key = %e.key, "ec vacuum drops a corrupt needle");
                report.corrupt_dropped += 1;
                continue;
            }
            Err(err) => return Err(err),
        }
        enc.write(&bytes)?;
        index.push(IdxEntry {
            key: e.key,
            offset: pos / crate::needle::NEEDLE_ALIGN,
            size: e.size,
        });
        pos += len;
    }
    let geo = enc.finish()?;
    index.sort_unstable_by_key(|e| e.key);
    report.needles_kept = index.len() as u64;
    report.dat_bytes_after = geo.dat_size;
    report.shard_bytes_after = geo.shard_len();

    let n = old.total_shards();
    write_synced(&vacs[n], &encode_all(&index, info.offset_width))?;
    write_synced(&vacs[n + 1], &[])?;
    let (_, mut vi) = EcInfo::load(&files[n + 2])?;
    let new_info = EcInfo {
        dat_size: geo.dat_size,
        compaction_revision: sb.compaction_revision,
        encode_ts_ns: now_ns(),
        ..info
    };
    new_info.apply_to(&mut vi);
    let mut text = vi.to_json();
    text.push('\n');
    write_synced(&vacs[n + 2], text.as_bytes())?;
    sync_dir(dir)?;
    drop(v);
    if stop == Some(Stop::BeforeMarker) {
        return Ok(report);
    }

    let marker = ec_path(dir, base, MARKER);
    write_atomic(&marker, b"commit\n")?;
    if let Some(Stop::AfterRenames(n)) = stop {
        for (vac, f) in vacs.iter().zip(&files).take(n) {
            std::fs::rename(vac, f)
                .ctx(|| format!("renaming {} to {}", vac.display(), f.display()))?;
        }
        return Ok(report);
    }
    rename_staged(dir, &marker, &files)?;
    Ok(report)
}

#[cfg(test)]
mod tests;
