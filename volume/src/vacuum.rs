//! Vacuum: compact a volume into `.cpd`/`.cpx` while writes go on, then commit crash-safely.
//!
//! Compact copies the live needles of a snapshot (expired TTL needles and needles with a
//! bad CRC are dropped) behind a superblock with compaction revision + 1. Commit, under the
//! writer lock, replays the `.idx` entries appended since the snapshot, fsyncs, writes the
//! `.cpc` marker, renames `.cpd`→`.dat` and `.cpx`→`.idx`, removes the marker and swaps the
//! files in. On open, a `.cpc` means "finish the renames"; `.cpd`/`.cpx` without it are
//! discarded. Every crash point thus leaves the old or the new volume whole.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::{IoContext, Result, VolumeError};
use crate::fsutil::{parent, remove_if_exists, sync_dir};
use crate::handle::NeedleHandle;
use crate::idx::{IdxEntry, entries};
use crate::needle::{NEEDLE_ALIGN, actual_size};
use crate::needle_map::NeedleMap;
use crate::superblock::{SUPERBLOCK_SIZE, SuperBlock};
use crate::volume::{Volume, is_expired, lock, now_secs, read, write};

#[cfg(test)]
mod tests;

const COPY_CHUNK: usize = 1 << 20;

/// A finished compaction waiting for its commit.
#[derive(Debug)]
pub(crate) struct Compaction {
    /// Length of the `.idx` when the snapshot was taken.
    idx_start: u64,
    /// Compaction revision of the volume at the snapshot.
    revision: u16,
    cpd_len: u64,
    cpx_len: u64,
}

/// What a compaction kept and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    pub needles_kept: u64,
    pub expired_dropped: u64,
    pub corrupt_dropped: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// The steps of a commit, for crash tests that stop after one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CommitStep {
    /// `.cpd`/`.cpx` caught up and fsynced; no marker yet.
    Replayed,
    /// `.cpc` written.
    Marked,
    /// `.cpd` renamed to `.dat`.
    DatRenamed,
    /// `.cpx` renamed to `.idx`.
    IdxRenamed,
    /// `.cpc` removed; the new files are swapped in after this.
    Unmarked,
}

fn ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// Run when a volume is opened: finish a committed vacuum (`.cpc` present) or throw away
/// an unfinished one.
pub(crate) fn recover_on_open(base: &Path) -> Result<()> {
    let (cpd, cpx, cpc) = (ext(base, ".cpd"), ext(base, ".cpx"), ext(base, ".cpc"));
    let dir = parent(base);
    if cpc.exists() {
        tracing::warn!(volume = %base.display(), "finishing an interrupted vacuum commit");
        for (from, to) in [(&cpd, ext(base, ".dat")), (&cpx, ext(base, ".idx"))] {
            if from.exists() {
                fs::rename(from, &to)
                    .ctx(|| format!("renaming {} to {}", from.display(), to.display()))?;
            }
        }
        sync_dir(dir)?;
        remove_if_exists(&cpc)?;
        sync_dir(dir)?;
    } else {
        let a = remove_if_exists(&cpd)?;
        let b = remove_if_exists(&cpx)?;
        if a || b {
            tracing::warn!(volume = %base.display(), "discarding an unfinished vacuum");
            sync_dir(dir)?;
        }
    }
    Ok(())
}

fn create(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .ctx(|| format!("creating {}", path.display()))
}

/// Copies `len` bytes at `from` in `src` to the end of `dst`.
fn copy_range(src: &File, from: u64, len: u64, dst: &mut impl Write, what: &Path) -> Result<()> {
    let mut buf = vec![0u8; COPY_CHUNK.min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let n = COPY_CHUNK.min((len - done) as usize);
        src.read_exact_at(&mut buf[..n], from + done)
            .ctx(|| format!("reading {} at {}", what.display(), from + done))?;
        dst.write_all(&buf[..n])
            .ctx(|| format!("writing the vacuum copy of {}", what.display()))?;
        done += n as u64;
    }
    Ok(())
}

impl Volume {
    fn vacuum_err(&self, reason: impl Into<String>) -> VolumeError {
        VolumeError::Vacuum {
            volume: self.id(),
            reason: reason.into(),
        }
    }

    /// Removes `.cpd`/`.cpx`/`.cpc` and forgets a pending compaction.
    pub fn cleanup_compaction(&self) -> Result<()> {
        *lock(&self.compaction) = None;
        for e in [".cpd", ".cpx", ".cpc"] {
            remove_if_exists(&self.path_with(e))?;
        }
        Ok(())
    }

    /// Compacts then commits; on failure the leftovers are removed.
    pub fn vacuum(&self) -> Result<CompactReport> {
        let report = self.compact()?;
        if let Err(e) = self.commit_compaction() {
            let _ = self.cleanup_compaction();
            return Err(e);
        }
        Ok(report)
    }

    /// Phase 1: writes the live needles of a snapshot to `.cpd`/`.cpx`. Writes, deletes
    /// and reads carry on meanwhile.
    pub fn compact(&self) -> Result<CompactReport> {
        self.check_open()?;
        let mut pending = lock(&self.compaction);
        if pending.is_some() {
            return Err(self.vacuum_err("a compaction is already waiting for its commit"));
        }
        let res = self.compact_inner();
        match res {
            Ok((c, report)) => {
                *pending = Some(c);
                Ok(report)
            }
            Err(e) => {
                let _ = remove_if_exists(&self.path_with(".cpd"));
                let _ = remove_if_exists(&self.path_with(".cpx"));
                Err(e)
            }
        }
    }

    fn compact_inner(&self) -> Result<(Compaction, CompactReport)> {
        let (idx_start, revision, dat, mut live) = {
            let w = lock(&self.writer);
            let s = read(&self.state);
            (w.idx_end, s.revision, s.dat.clone(), s.map.live_entries())
        };
        live.sort_unstable_by_key(|e| e.offset);
        let dat_len = self.dat_size();
        let version = self.version();
        let (cpd_path, cpx_path) = (self.path_with(".cpd"), self.path_with(".cpx"));
        let mut cpd = BufWriter::with_capacity(COPY_CHUNK, create(&cpd_path)?);
        let mut cpx = BufWriter::new(create(&cpx_path)?);
        let sb = SuperBlock {
            version,
            placement: self.placement(),
            ttl: self.ttl(),
            compaction_revision: revision.wrapping_add(1),
        };
        cpd.write_all(&sb.to_bytes())
            .ctx(|| format!("writing {}", cpd_path.display()))?;
        let mut report = CompactReport {
            bytes_before: dat_len,
            ..CompactReport::default()
        };
        let mut pos = SUPERBLOCK_SIZE as u64;
        let now = now_secs();
        let dat_path: Arc<Path> = Arc::from(self.dat_path());
        for e in &live {
            let at = e.byte_offset();
            let mut h = match NeedleHandle::open_at(
                dat.clone(),
                dat_path.clone(),
                dat_len,
                at,
                version,
            ) {
                Ok(h) => h,
                Err(VolumeError::Io { context, source }) => {
                    return Err(VolumeError::Io { context, source });
                }
                Err(err) => {
                    tracing::warn!(volume = self.id().0, key = %e.key, %err, "vacuum drops an unreadable needle");
                    report.corrupt_dropped += 1;
                    continue;
                }
            };
            if h.meta().key != e.key || h.meta().size != e.size {
                tracing::warn!(volume = self.id().0, key = %e.key, "vacuum drops a needle whose header disagrees with the index");
                report.corrupt_dropped += 1;
                continue;
            }
            match h.verify_crc() {
                Ok(()) => {}
                Err(VolumeError::Io { context, source }) => {
                    return Err(VolumeError::Io { context, source });
                }
                Err(err) => {
                    tracing::warn!(volume = self.id().0, key = %e.key, %err, "vacuum drops a corrupt needle");
                    report.corrupt_dropped += 1;
                    continue;
                }
            }
            if is_expired(h.meta(), self.ttl(), now) {
                report.expired_dropped += 1;
                continue;
            }
            let (start, len) = h.record_span();
            copy_range(&dat, start, len, &mut cpd, &cpd_path)?;
            let ne = IdxEntry {
                key: e.key,
                offset: pos / NEEDLE_ALIGN,
                size: e.size,
            };
            cpx.write_all(&ne.to_vec(self.offset_width()))
                .ctx(|| format!("writing {}", cpx_path.display()))?;
            pos += len;
            report.needles_kept += 1;
        }
        let cpd = cpd
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx(|| format!("writing {}", cpd_path.display()))?;
        let cpx = cpx
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx(|| format!("writing {}", cpx_path.display()))?;
        cpd.sync_all()
            .ctx(|| format!("fsync of {}", cpd_path.display()))?;
        cpx.sync_all()
            .ctx(|| format!("fsync of {}", cpx_path.display()))?;
        let cpx_len = live_len(&cpx, &cpx_path)?;
        report.bytes_after = pos;
        Ok((
            Compaction {
                idx_start,
                revision,
                cpd_len: pos,
                cpx_len,
            },
            report,
        ))
    }

    /// Phase 2: catches the copy up with writes made since [`Self::compact`] and swaps it in.
    pub fn commit_compaction(&self) -> Result<()> {
        self.commit_until(None)
    }

    /// The commit, stopping after `stop` to simulate a crash (the volume object must then
    /// be dropped and the volume reopened).
    pub(crate) fn commit_until(&self, stop: Option<CommitStep>) -> Result<()> {
        self.check_open()?;
        let c = lock(&self.compaction)
            .take()
            .ok_or_else(|| self.vacuum_err("no compaction to commit"))?;
        let mut w = lock(&self.writer);
        let revision = read(&self.state).revision;
        if revision != c.revision {
            return Err(self.vacuum_err(format!(
                "compaction revision moved from {} to {revision} during the compaction",
                c.revision
            )));
        }
        let width = self.offset_width();
        let es = width.entry_size() as u64;
        let (cpd_path, cpx_path, cpc_path) = (
            self.path_with(".cpd"),
            self.path_with(".cpx"),
            self.path_with(".cpc"),
        );
        let cpd = OpenOptions::new()
            .write(true)
            .open(&cpd_path)
            .ctx(|| format!("opening {}", cpd_path.display()))?;
        let cpx = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&cpx_path)
            .ctx(|| format!("opening {}", cpx_path.display()))?;

        // Replay what was appended since the snapshot.
        let mut diff = vec![0u8; (w.idx_end - c.idx_start) as usize];
        w.idx
            .read_exact_at(&mut diff, c.idx_start)
            .ctx(|| "reading the .idx entries appended during the vacuum")?;
        let (mut cpd_pos, mut cpx_pos) = (c.cpd_len, c.cpx_len);
        let mut cpd_buf = BufWriter::with_capacity(COPY_CHUNK, FileAt::new(&cpd, cpd_pos));
        for e in entries(&diff, width) {
            let mut ne = IdxEntry { offset: 0, ..e };
            if e.offset != 0 {
                let len = actual_size(if e.is_put() { e.size } else { 0 }, self.version());
                copy_range(&w.dat, e.byte_offset(), len, &mut cpd_buf, &cpd_path)?;
                ne.offset = cpd_pos / NEEDLE_ALIGN;
                cpd_pos += len;
            }
            cpx.write_all_at(&ne.to_vec(width), cpx_pos)
                .ctx(|| format!("writing {}", cpx_path.display()))?;
            cpx_pos += es;
        }
        cpd_buf
            .flush()
            .ctx(|| format!("writing {}", cpd_path.display()))?;
        drop(cpd_buf);
        cpd.sync_all()
            .ctx(|| format!("fsync of {}", cpd_path.display()))?;
        cpx.sync_all()
            .ctx(|| format!("fsync of {}", cpx_path.display()))?;
        let dir = self.dir().to_path_buf();
        let stopped = |step: CommitStep| stop == Some(step);
        if stopped(CommitStep::Replayed) {
            return Ok(());
        }

        let mut marker = create(&cpc_path)?;
        marker
            .write_all(b"commit\n")
            .and_then(|()| marker.sync_all())
            .ctx(|| format!("writing {}", cpc_path.display()))?;
        sync_dir(&dir)?;
        if stopped(CommitStep::Marked) {
            return Ok(());
        }
        let dat_path = self.path_with(".dat");
        fs::rename(&cpd_path, &dat_path).ctx(|| format!("renaming {}", cpd_path.display()))?;
        if stopped(CommitStep::DatRenamed) {
            return Ok(());
        }
        let idx_path = self.path_with(".idx");
        fs::rename(&cpx_path, &idx_path).ctx(|| format!("renaming {}", cpx_path.display()))?;
        sync_dir(&dir)?;
        if stopped(CommitStep::IdxRenamed) {
            return Ok(());
        }
        remove_if_exists(&cpc_path)?;
        sync_dir(&dir)?;
        if stopped(CommitStep::Unmarked) {
            return Ok(());
        }

        // Swap the new files in.
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .ctx(|| format!("opening {}", p.display()))
        };
        let dat = Arc::new(open(&dat_path)?);
        let mut idx_file = open(&idx_path)?;
        let mut idx_bytes = Vec::new();
        idx_file
            .read_to_end(&mut idx_bytes)
            .ctx(|| format!("reading {}", idx_path.display()))?;
        let map = NeedleMap::load(&idx_bytes, width);
        let idx = Arc::new(idx_file);
        let direct = crate::direct::Direct::open(&dat_path, self.direct_io());
        {
            let _sync = lock(&self.sync_lock);
            let mut s = write(&self.state);
            s.map = map;
            s.dat = dat.clone();
            s.idx = idx.clone();
            s.direct = direct.clone();
            s.revision = revision.wrapping_add(1);
            w.dat = dat;
            w.direct = direct;
            w.idx = idx;
            w.dat_end = cpd_pos;
            w.idx_end = cpx_pos;
            self.written_upto.store(cpd_pos, Ordering::Release);
            self.synced_upto.store(cpd_pos, Ordering::Release);
        }
        tracing::info!(volume = self.id().0, bytes = cpd_pos, "vacuum committed");
        Ok(())
    }
}

fn live_len(f: &File, path: &Path) -> Result<u64> {
    Ok(f.metadata()
        .ctx(|| format!("stat of {}", path.display()))?
        .len())
}

/// A `Write` that appends with positioned writes from a starting offset.
struct FileAt<'a> {
    file: &'a File,
    pos: u64,
}

impl<'a> FileAt<'a> {
    fn new(file: &'a File, pos: u64) -> Self {
        FileAt { file, pos }
    }
}

impl Write for FileAt<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all_at(buf, self.pos)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
