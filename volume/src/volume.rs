//! `Volume`: one `.dat`/`.idx`/`.vif` triple: appends, positioned reads, deletes, group-commit fsync.
//!
//! Concurrency: appends and deletes serialize on a per-volume writer mutex; the needle map
//! sits behind an `RwLock` that readers hold only for a lookup (never across I/O), after
//! which they read with `pread` on their own reference to the `.dat`. A writer that asks
//! for fsync joins a group commit: one `fsync` covers every write made before it started.

mod open;
mod replica;
#[cfg(test)]
pub(crate) mod tests;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use kelp_proto::master_api::VolumeInformation;
use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl, VolumeId};

use crate::direct::Direct;
use crate::error::{IoContext, Result, VolumeError};
use crate::handle::{CRC_CHUNK, NeedleHandle};
use crate::idx::{IdxEntry, OffsetWidth, TOMBSTONE_SIZE};
use crate::needle::{
    CHECKSUM_SIZE, HEADER_SIZE, NEEDLE_ALIGN, Needle, NeedleHeader, NeedleMeta, Version,
    actual_size, be_u32, crc,
};
use crate::needle_map::{MapStats, NeedleMap, NeedleValue};
use crate::recovery::RecoveryReport;
use crate::vacuum::Compaction;
use crate::vif::VolumeInfo;

/// How a volume is opened or created.
#[derive(Debug, Clone)]
pub struct VolumeOptions {
    /// Offset width of new volumes, and of existing ones whose `.vif` does not say.
    pub offset_width: OffsetWidth,
    /// Open a volume whose `.vif` names the other width (reading it with that width).
    /// When false such a volume is refused with [`VolumeError::OffsetWidthMismatch`].
    pub allow_other_offset_width: bool,
    /// Appends that would take the `.dat` past this many bytes fail with `VolumeFull`
    /// (capped at what the offset width can address).
    pub size_limit: Option<u64>,
    /// fsync every write and delete (group-committed), whatever the caller asks.
    pub fsync_always: bool,
    /// Write and read the aligned middle of large records around the page cache
    /// (`O_DIRECT`), where the file system supports it: see `direct.rs`.
    pub direct_io: bool,
}

impl Default for VolumeOptions {
    fn default() -> Self {
        VolumeOptions {
            offset_width: OffsetWidth::Five,
            allow_other_offset_width: true,
            size_limit: None,
            fsync_always: false,
            direct_io: true,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Byte offset of the needle in the `.dat` (of the existing one if unchanged).
    pub offset: u64,
    /// The needle's `Size` field.
    pub size: u32,
    /// CRC32-C of the data (the ETag).
    pub checksum: u32,
    /// The same cookie and bytes were already stored: nothing was written (HTTP 204).
    pub unchanged: bool,
}

impl WriteOutcome {
    pub fn etag(&self) -> String {
        crate::needle::etag(self.checksum)
    }
}

/// Read options beyond the common case.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Serve a deleted needle while its bytes are still in the `.dat` (`?readDeleted=true`).
    pub allow_deleted: bool,
    /// Serve expired TTL needles too.
    pub ignore_ttl: bool,
}

pub(crate) struct State {
    pub map: NeedleMap,
    pub dat: Arc<File>,
    pub idx: Arc<File>,
    /// `dat` opened for direct I/O, where available.
    pub direct: Option<Arc<Direct>>,
    pub revision: u16,
}

/// A `.dat` and its direct-I/O handle, as a read finds them.
struct DatFiles {
    dat: Arc<File>,
    direct: Option<Arc<Direct>>,
}

pub(crate) struct Writer {
    pub dat: Arc<File>,
    pub idx: Arc<File>,
    pub dat_end: u64,
    pub idx_end: u64,
    pub last_append_ns: u64,
    /// `dat` opened for direct writes of large records, where available.
    pub direct: Option<Arc<Direct>>,
}

/// One volume. Share it as `Arc<Volume>`; every method takes `&self`.
pub struct Volume {
    id: VolumeId,
    collection: String,
    dir: PathBuf,
    /// `<dir>/<collection>_<id>` without extension.
    base: PathBuf,
    dat_path: Arc<Path>,
    width: OffsetWidth,
    version: Version,
    placement: ReplicaPlacement,
    ttl: Ttl,
    size_limit: u64,
    fsync_always: bool,
    direct_io: bool,
    pub(crate) state: RwLock<State>,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) sync_lock: Mutex<()>,
    /// End of the `.dat` as written (mirrors `Writer::dat_end` for lock-free reads).
    pub(crate) written_upto: AtomicU64,
    /// Everything below this `.dat` offset (and its `.idx` entries) is on stable storage.
    pub(crate) synced_upto: AtomicU64,
    read_only: AtomicBool,
    closed: AtomicBool,
    last_modified: AtomicU64,
    vif: Mutex<VolumeInfo>,
    pub(crate) compaction: Mutex<Option<Compaction>>,
    recovery: RecoveryReport,
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("id", &self.id)
            .field("collection", &self.collection)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

pub(crate) fn now_secs() -> u64 {
    now_ns() / 1_000_000_000
}

/// `<collection>_<id>` or `<id>`.
pub fn base_name(collection: &str, id: VolumeId) -> String {
    if collection.is_empty() {
        id.0.to_string()
    } else {
        format!("{collection}_{}", id.0)
    }
}

/// True if a needle with this metadata has outlived its TTL (its own, else the volume's),
/// counted from its last-modified time (else its append time).
pub fn is_expired(meta: &NeedleMeta, volume_ttl: Ttl, now_secs: u64) -> bool {
    let ttl = match meta.ttl.filter(|t| !t.is_empty()) {
        Some(t) => t,
        None if !volume_ttl.is_empty() => volume_ttl,
        None => return false,
    };
    let since = meta
        .last_modified
        .filter(|&t| t > 0)
        .unwrap_or(meta.append_at_ns / 1_000_000_000);
    since > 0 && since + ttl.seconds() < now_secs
}

impl Volume {
    pub fn id(&self) -> VolumeId {
        self.id
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn path_with(&self, ext: &str) -> PathBuf {
        let mut s = self.base.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    }

    pub fn dat_path(&self) -> &Path {
        &self.dat_path
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn offset_width(&self) -> OffsetWidth {
        self.width
    }

    pub fn placement(&self) -> ReplicaPlacement {
        self.placement
    }

    pub fn ttl(&self) -> Ttl {
        self.ttl
    }

    pub fn size_limit(&self) -> u64 {
        self.size_limit
    }

    pub fn compaction_revision(&self) -> u16 {
        read(&self.state).revision
    }

    /// What crash recovery repaired when this volume was opened.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.recovery
    }

    /// Bytes in the `.dat`.
    pub fn dat_size(&self) -> u64 {
        self.written_upto.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> MapStats {
        read(&self.state).map.stats()
    }

    pub fn max_file_key(&self) -> u64 {
        self.stats().max_file_key
    }

    /// Heap bytes of the needle map.
    pub fn map_heap_bytes(&self) -> usize {
        read(&self.state).map.heap_bytes()
    }

    /// Deleted (or overwritten) bytes over all bytes ever put: what vacuum looks at.
    pub fn garbage_ratio(&self) -> f64 {
        let s = self.stats();
        if s.content_size == 0 {
            return 0.0;
        }
        s.deleted_bytes as f64 / s.content_size as f64
    }

    /// Unix seconds of the last write or delete (the `.dat` mtime when opened).
    pub fn last_modified_secs(&self) -> u64 {
        self.last_modified.load(Ordering::Relaxed)
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    /// Marks the volume read-only (or writable again) and records it in the `.vif`.
    pub fn set_read_only(&self, read_only: bool) -> Result<()> {
        let _w = lock(&self.writer);
        let mut vif = lock(&self.vif);
        if vif.read_only != read_only {
            vif.read_only = read_only;
            vif.save(&self.path_with(".vif"))?;
        }
        self.read_only.store(read_only, Ordering::Release);
        Ok(())
    }

    /// The `.vif` contents as last loaded or written.
    pub fn volume_info(&self) -> VolumeInfo {
        lock(&self.vif).clone()
    }

    /// This volume as a heartbeat reports it (`size` = `.dat` bytes).
    pub fn info(&self) -> VolumeInformation {
        let (stats, revision) = {
            let s = read(&self.state);
            (s.map.stats(), s.revision)
        };
        VolumeInformation {
            id: self.id.0,
            size: self.dat_size(),
            collection: self.collection.clone(),
            file_count: stats.file_count,
            delete_count: stats.delete_count,
            deleted_byte_count: stats.deleted_bytes,
            read_only: self.is_read_only(),
            replica_placement: self.placement.to_byte() as u32,
            version: self.version.as_u8() as u32,
            ttl: self.ttl.to_u32(),
            compact_revision: revision as u32,
            modified_at_second: self.last_modified_secs() as i64,
            max_file_key: stats.max_file_key,
        }
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(VolumeError::Closed(self.id));
        }
        Ok(())
    }

    /// Refuses further reads and writes (used when the volume is deleted).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// The map entry, the `.dat` it points into and that file's length, read together
    /// under the state lock (a vacuum swaps all three at once).
    fn lookup(&self, key: NeedleKey) -> Option<(NeedleValue, Arc<File>, u64)> {
        let s = read(&self.state);
        let len = self.written_upto.load(Ordering::Acquire);
        s.map.get(key).map(|v| (v, s.dat.clone(), len))
    }

    /// [`Self::lookup`] plus the `.dat`'s direct-I/O handle, for reads.
    fn lookup_for_read(&self, key: NeedleKey) -> Option<(NeedleValue, DatFiles, u64)> {
        let s = read(&self.state);
        let len = self.written_upto.load(Ordering::Acquire);
        s.map.get(key).map(|v| {
            let files = DatFiles {
                dat: s.dat.clone(),
                direct: s.direct.clone(),
            };
            (v, files, len)
        })
    }

    fn read_exact(&self, dat: &File, buf: &mut [u8], at: u64) -> Result<()> {
        dat.read_exact_at(buf, at)
            .ctx(|| format!("reading {} at offset {at}", self.dat_path.display()))
    }

    /// Opens a live needle for streaming after checking cookie and TTL.
    pub fn open_needle(&self, key: NeedleKey, cookie: Cookie) -> Result<NeedleHandle> {
        self.open_needle_with(key, cookie, ReadOptions::default())
    }

    pub fn open_needle_with(
        &self,
        key: NeedleKey,
        cookie: Cookie,
        opts: ReadOptions,
    ) -> Result<NeedleHandle> {
        self.check_open()?;
        let (v, DatFiles { dat, direct }, dat_len) = self
            .lookup_for_read(key)
            .ok_or(VolumeError::NotFound { key })?;
        if v.deleted && !opts.allow_deleted {
            return Err(VolumeError::Deleted { key });
        }
        let at = v.offset * NEEDLE_ALIGN;
        let h = NeedleHandle::open_in(
            dat,
            direct,
            self.dat_path.clone(),
            dat_len,
            at,
            self.version,
        )?;
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
        if m.cookie != cookie {
            return Err(VolumeError::CookieMismatch { key });
        }
        if !opts.ignore_ttl && is_expired(m, self.ttl, now_secs()) {
            return Err(VolumeError::Expired { key });
        }
        Ok(h)
    }

    /// Reads a whole live needle (data CRC-checked). Prefer [`Self::open_needle`] for
    /// large needles.
    pub fn read(&self, key: NeedleKey, cookie: Cookie) -> Result<Needle> {
        self.open_needle(key, cookie)?.into_needle()
    }

    /// Reads the header and stored CRC of the record at `at`.
    fn read_header_and_crc(&self, dat: &File, at: u64) -> Result<(NeedleHeader, u32)> {
        let mut hb = [0u8; HEADER_SIZE];
        self.read_exact(dat, &mut hb, at)?;
        let h = NeedleHeader::parse(&hb);
        let mut cb = [0u8; CHECKSUM_SIZE];
        self.read_exact(dat, &mut cb, at + HEADER_SIZE as u64 + h.size as u64)?;
        Ok((h, be_u32(&cb)))
    }

    /// True if the stored needle at `at` has exactly `n`'s data (compared in chunks).
    fn same_data(&self, dat: &File, at: u64, n: &Needle) -> Result<bool> {
        let mut b = [0u8; 4];
        self.read_exact(dat, &mut b, at + HEADER_SIZE as u64)?;
        if be_u32(&b) as usize != n.data.len() {
            return Ok(false);
        }
        let start = at + HEADER_SIZE as u64 + 4;
        let mut buf = vec![0u8; CRC_CHUNK.min(n.data.len())];
        for (i, chunk) in n.data.chunks(CRC_CHUNK).enumerate() {
            let got = &mut buf[..chunk.len()];
            self.read_exact(dat, got, start + (i * CRC_CHUNK) as u64)?;
            if got != chunk {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn next_append_ns(w: &Writer) -> u64 {
        now_ns().max(w.last_append_ns + 1)
    }

    /// Appends a record and its `.idx` entry; on failure the `.dat` is cut back.
    fn append(&self, w: &mut Writer, bytes: &[u8], entry: IdxEntry) -> Result<()> {
        self.append_parts(w, &[bytes], entry)
    }

    /// [`Self::append`] of a record given in consecutive parts: one vectored write, or
    /// for a large record its aligned middle written around the page cache ([`crate::direct`]).
    fn append_parts(&self, w: &mut Writer, parts: &[&[u8]], entry: IdxEntry) -> Result<()> {
        let at = w.dat_end;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let res = Direct::write_record(&mut w.direct, &w.dat, parts, at)
            .ctx(|| format!("writing {} at offset {at}", self.dat_path.display()))
            .and_then(|_direct| {
                let e = entry.to_vec(self.width);
                w.idx
                    .write_all_at(&e, w.idx_end)
                    .ctx(|| format!("writing {}", self.path_with(".idx").display()))
            });
        if let Err(e) = res {
            if let Err(t) = w.dat.set_len(at) {
                tracing::error!(volume = self.id.0, error = %t, "cannot cut back a failed append");
            }
            return Err(e);
        }
        w.dat_end += len as u64;
        w.idx_end += self.width.entry_size() as u64;
        self.written_upto.store(w.dat_end, Ordering::Release);
        self.last_modified.store(now_secs(), Ordering::Relaxed);
        Ok(())
    }

    fn check_room(&self, w: &Writer, len: u64, limit: u64) -> Result<()> {
        let limit = limit.min(self.width.max_volume_size());
        if w.dat_end + len > limit {
            return Err(VolumeError::VolumeFull {
                volume: self.id,
                size: w.dat_end,
                needed: len,
                limit,
            });
        }
        Ok(())
    }

    /// Whether large records bypass the page cache ([`VolumeOptions::direct_io`]).
    pub(crate) fn direct_io(&self) -> bool {
        self.direct_io
    }

    /// Whether every write is fsynced before it is acknowledged.
    pub fn fsync_always(&self) -> bool {
        self.fsync_always
    }

    /// Appends a needle. The checksum is computed here; a needle without TTL gets the
    /// volume's. An existing key must carry the same cookie (else `CookieMismatch`); the
    /// same cookie and identical data report `unchanged` without writing. With `fsync`
    /// (or the `fsync_always` option) this returns once the write is on stable storage.
    pub fn write(&self, mut needle: Needle, fsync: bool) -> Result<WriteOutcome> {
        self.check_open()?;
        needle.checksum = crc(&needle.data);
        if needle.ttl.is_none() && !self.ttl.is_empty() {
            needle.ttl = Some(self.ttl);
        }
        let size = needle.size_field(self.version)?;
        let len = actual_size(size, self.version);
        let key = needle.key;
        let end = {
            let mut w = lock(&self.writer);
            self.check_open()?;
            if self.is_read_only() {
                return Err(VolumeError::ReadOnly(self.id));
            }
            if let Some((old, dat, _)) = self.lookup(key) {
                let at = old.offset * NEEDLE_ALIGN;
                let (h, old_crc) = self.read_header_and_crc(&dat, at)?;
                if h.key == key && h.cookie != needle.cookie {
                    return Err(VolumeError::CookieMismatch { key });
                }
                if !old.deleted
                    && self.ttl.is_empty()
                    && h.key == key
                    && h.size == size
                    && old_crc == needle.checksum
                    && self.same_data(&dat, at, &needle)?
                {
                    return Ok(WriteOutcome {
                        offset: at,
                        size,
                        checksum: needle.checksum,
                        unchanged: true,
                    });
                }
            }
            self.check_room(&w, len, self.size_limit)?;
            let at = w.dat_end;
            needle.append_at_ns = Self::next_append_ns(&w);
            let (head, tail) = needle.encode_around_data(self.version)?;
            let entry = IdxEntry {
                key,
                offset: at / NEEDLE_ALIGN,
                size,
            };
            self.append_parts(&mut w, &[&head, &needle.data, &tail], entry)?;
            w.last_append_ns = needle.append_at_ns;
            write(&self.state).map.put(key, entry.offset, size);
            w.dat_end
        };
        if fsync || self.fsync_always {
            self.sync_to(end)?;
        }
        Ok(WriteOutcome {
            offset: end - len,
            size,
            checksum: needle.checksum,
            unchanged: false,
        })
    }

    /// Deletes a live needle: appends a tombstone (carrying the old CRC) and an `.idx`
    /// entry of size `0xFFFFFFFF`. Returns the deleted needle's `Size` field.
    pub fn delete(&self, key: NeedleKey, cookie: Cookie) -> Result<u32> {
        self.delete_checked(key, Some(cookie), false)
    }

    /// [`Self::delete`], checking the cookie only when one is given and the read-only
    /// flag only unless `repair` (a replica repair may delete from a read-only volume).
    pub(crate) fn delete_checked(
        &self,
        key: NeedleKey,
        cookie: Option<Cookie>,
        repair: bool,
    ) -> Result<u32> {
        self.check_open()?;
        let end = {
            let mut w = lock(&self.writer);
            self.check_open()?;
            if !repair && self.is_read_only() && !lock(&self.vif).read_only_can_delete {
                return Err(VolumeError::ReadOnly(self.id));
            }
            let (old, dat, _) = self.lookup(key).ok_or(VolumeError::NotFound { key })?;
            if old.deleted {
                return Err(VolumeError::Deleted { key });
            }
            let at = old.offset * NEEDLE_ALIGN;
            let (h, old_crc) = self.read_header_and_crc(&dat, at)?;
            if h.key != key {
                return Err(VolumeError::corrupt(
                    "needle",
                    format!("index says key {key}, the record holds {}", h.key),
                )
                .at(&self.dat_path, at));
            }
            if cookie.is_some_and(|c| c != h.cookie) {
                return Err(VolumeError::CookieMismatch { key });
            }
            let mut t = Needle::tombstone(key, h.cookie, old_crc);
            t.append_at_ns = Self::next_append_ns(&w);
            let bytes = t.encode(self.version)?;
            self.check_room(&w, bytes.len() as u64, u64::MAX)?;
            let entry = IdxEntry {
                key,
                offset: w.dat_end / NEEDLE_ALIGN,
                size: TOMBSTONE_SIZE,
            };
            self.append(&mut w, &bytes, entry)?;
            w.last_append_ns = t.append_at_ns;
            write(&self.state).map.delete(key);
            (w.dat_end, old.size)
        };
        if self.fsync_always {
            self.sync_to(end.0)?;
        }
        Ok(end.1)
    }

    /// Group commit: returns once every byte below `end` is on stable storage. Only one
    /// fsync runs at a time; it covers all writes made before it started, so writers
    /// that queued behind it usually find their data already synced.
    pub(crate) fn sync_to(&self, end: u64) -> Result<()> {
        let _g = lock(&self.sync_lock);
        if self.synced_upto.load(Ordering::Acquire) >= end {
            return Ok(());
        }
        let target = self.written_upto.load(Ordering::Acquire);
        let (dat, idx) = {
            let s = read(&self.state);
            (s.dat.clone(), s.idx.clone())
        };
        dat.sync_data()
            .ctx(|| format!("fsync of {}", self.dat_path.display()))?;
        idx.sync_data()
            .ctx(|| format!("fsync of {}", self.path_with(".idx").display()))?;
        self.synced_upto.store(target, Ordering::Release);
        Ok(())
    }

    /// fsyncs everything written so far.
    pub fn sync(&self) -> Result<()> {
        self.sync_to(self.written_upto.load(Ordering::Acquire))
    }

    /// Bytes known to be on stable storage (for tests and metrics).
    pub fn synced_upto(&self) -> u64 {
        self.synced_upto.load(Ordering::Acquire)
    }
}
