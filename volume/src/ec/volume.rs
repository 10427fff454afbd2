//! `EcVolume`: an erasure-coded volume opened from a directory that may hold only some
//! shards. Reads map a needle to shard ranges, read them locally or through a
//! [`ShardSource`], and rebuild just the missing chunks with Reed-Solomon when a shard is
//! missing or a chunk fails its CRC. Deletes go to the `.ecj`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use kelp_proto::{Cookie, NeedleKey};

use crate::error::{Result, VolumeError};
use crate::handle::{NeedleHandle, RecordSource};
use crate::needle::{Needle, actual_size, parse_header};
use crate::volume::{is_expired, lock, now_secs, read, write};

use super::codec::Codec;
use super::index::{Journal, SortedIndex};
use super::info::EcInfo;
use super::layout::{Geometry, ec_path, shard_path};
use super::shard::{Footer, ShardFile};

/// Where shards this server does not hold come from (the volume server reads them from
/// other servers over HTTP). Implementations return verified bytes, exactly `len` of them
/// (the remote side checks its chunks with [`EcVolume::shard_read`]). An `Err` or a
/// wrong length is logged and treated like `Ok(None)`: the range is reconstructed.
pub trait ShardSource {
    /// `Ok(None)`: that shard is unavailable (the range is then reconstructed).
    fn read(&self, shard: u8, offset: u64, len: usize) -> Result<Option<Vec<u8>>>;
}

/// An EC volume's needle records as a [`RecordSource`]: ranges of the original `.dat`,
/// read from local shards or through `shards`, rebuilt where missing.
struct EcRecords {
    ev: Arc<EcVolume>,
    shards: Arc<dyn ShardSource + Send + Sync>,
}

impl std::fmt::Debug for EcRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcRecords").field("ev", &self.ev).finish()
    }
}

impl RecordSource for EcRecords {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> Result<()> {
        let got = self.ev.read_range(at, buf.len() as u64, &*self.shards)?;
        if got.len() != buf.len() {
            return Err(VolumeError::EcInvalid(format!(
                "ec volume {}: read {} of {} bytes at {at}",
                self.ev.base,
                got.len(),
                buf.len()
            )));
        }
        buf.copy_from_slice(&got);
        Ok(())
    }
}

/// A [`ShardSource`] with no remote shards: only local ones are used.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalOnly;

impl ShardSource for LocalOnly {
    fn read(&self, _shard: u8, _offset: u64, _len: usize) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

/// An erasure-coded volume. Share it as `Arc<EcVolume>`; every method takes `&self`.
pub struct EcVolume {
    dir: PathBuf,
    base: String,
    info: EcInfo,
    geo: Geometry,
    ecx: SortedIndex,
    deleted: RwLock<HashSet<u64>>,
    journal: Mutex<Journal>,
    shards: Vec<Option<ShardFile>>,
    codecs: Mutex<Vec<Codec>>,
}

impl std::fmt::Debug for EcVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcVolume")
            .field("dir", &self.dir)
            .field("base", &self.base)
            .field("geometry", &self.geo)
            .field("local_shards", &self.local_shards())
            .finish_non_exhaustive()
    }
}

impl EcVolume {
    /// Opens `<dir>/<base>` from its `.vif`, `.ecx`, `.ecj` and whichever shard files are
    /// present. A shard whose trailer is damaged or belongs to another encoding is left
    /// out (as if missing). Finishes or discards an interrupted EC vacuum first.
    pub fn open(dir: &Path, base: &str) -> Result<EcVolume> {
        super::vacuum::recover_on_open(dir, base)?;
        let (info, _) = EcInfo::load(&ec_path(dir, base, ".vif"))?;
        let geo = info.geometry();
        let ecx = SortedIndex::load(&ec_path(dir, base, ".ecx"), info.offset_width)?;
        let (journal, deleted) = Journal::open(&ec_path(dir, base, ".ecj"))?;
        let shards = (0..geo.total_shards())
            .map(|i| {
                let p = shard_path(dir, base, i as u8);
                if !p.exists() {
                    return None;
                }
                let want = Footer {
                    shard: i as u8,
                    geometry: geo,
                    revision: info.compaction_revision,
                };
                ShardFile::open(&p, &want)
                    .inspect_err(|e| tracing::warn!(shard = %p.display(), error = %e, "ignoring an unusable ec shard"))
                    .ok()
            })
            .collect();
        Ok(EcVolume {
            dir: dir.to_path_buf(),
            base: base.to_string(),
            info,
            geo,
            ecx,
            deleted: RwLock::new(deleted),
            journal: Mutex::new(journal),
            shards,
            codecs: Mutex::new(Vec::new()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn info(&self) -> &EcInfo {
        &self.info
    }

    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// Ids of the shards opened from this directory (trailer checked).
    pub fn local_shards(&self) -> Vec<u8> {
        (0..self.shards.len())
            .filter(|&i| self.shards[i].is_some())
            .map(|i| i as u8)
            .collect()
    }

    /// Needles in the `.ecx` (deleted ones included).
    pub fn needle_count(&self) -> usize {
        self.ecx.len()
    }

    /// Keys in the `.ecj`.
    pub fn deleted_count(&self) -> usize {
        read(&self.deleted).len()
    }

    pub(crate) fn index(&self) -> &SortedIndex {
        &self.ecx
    }

    pub(crate) fn is_deleted(&self, key: NeedleKey) -> bool {
        read(&self.deleted).contains(&key.0)
    }

    pub(crate) fn local(&self, shard: usize) -> Option<&ShardFile> {
        self.shards.get(shard).and_then(Option::as_ref)
    }

    /// Byte offset in the original `.dat` and `Size` field of a live needle.
    pub fn locate(&self, key: NeedleKey) -> Option<(u64, u32)> {
        if self.is_deleted(key) {
            return None;
        }
        self.ecx
            .get(key)
            .filter(|e| e.is_put())
            .map(|e| (e.byte_offset(), e.size))
    }

    /// Reads a live needle: checks cookie, CRC and TTL.
    pub fn read_needle(
        &self,
        key: NeedleKey,
        cookie: Cookie,
        src: &dyn ShardSource,
    ) -> Result<Needle> {
        if self.is_deleted(key) {
            return Err(VolumeError::Deleted { key });
        }
        let (off, size) = self.locate(key).ok_or(VolumeError::NotFound { key })?;
        let bytes = self.read_range(off, actual_size(size, self.info.version), src)?;
        let at = |e: VolumeError| e.at(Path::new(&format!("ec volume {}", self.base)), off);
        let h = parse_header(&bytes).map_err(at)?;
        if h.key != key || h.size != size {
            return Err(at(VolumeError::corrupt(
                "needle",
                format!(
                    "the .ecx says key {key} size {size} but the record holds key {} size {}",
                    h.key, h.size
                ),
            )));
        }
        if h.cookie != cookie {
            return Err(VolumeError::CookieMismatch { key });
        }
        let n = Needle::decode(&bytes, self.info.version).map_err(at)?;
        if is_expired(&n.meta(), self.info.ttl, now_secs()) {
            return Err(VolumeError::Expired { key });
        }
        Ok(n)
    }

    /// Opens a live needle for streaming, as `Volume::open_needle` does for a `.dat`
    /// (cookie and TTL checked; a small needle is read and CRC-checked at once, a large
    /// one reads its data range by range through `shards` when it is sent).
    pub fn open_needle(
        self: &Arc<Self>,
        key: NeedleKey,
        cookie: Cookie,
        shards: Arc<dyn ShardSource + Send + Sync>,
    ) -> Result<NeedleHandle> {
        if self.is_deleted(key) {
            return Err(VolumeError::Deleted { key });
        }
        let (off, size) = self.locate(key).ok_or(VolumeError::NotFound { key })?;
        let name: Arc<Path> = Arc::from(Path::new(&format!("ec volume {}", self.base)));
        let src = Arc::new(EcRecords {
            ev: self.clone(),
            shards,
        });
        let h =
            NeedleHandle::open_from(src, name.clone(), self.geo.dat_size, off, self.info.version)?;
        let m = h.meta();
        if m.key != key || m.size != size {
            return Err(VolumeError::corrupt(
                "needle",
                format!(
                    "the .ecx says key {key} size {size} but the record holds key {} size {}",
                    m.key, m.size
                ),
            )
            .at(&name, off));
        }
        if m.cookie != cookie {
            return Err(VolumeError::CookieMismatch { key });
        }
        if is_expired(m, self.info.ttl, now_secs()) {
            return Err(VolumeError::Expired { key });
        }
        Ok(h)
    }

    /// Reads `[off, off + len)` of the original `.dat`, reconstructing what is missing.
    pub fn read_range(&self, off: u64, len: u64, src: &dyn ShardSource) -> Result<Vec<u8>> {
        if off + len > self.geo.dat_size {
            return Err(VolumeError::EcInvalid(format!(
                "range {off}+{len} is past the end of the encoded .dat ({} bytes)",
                self.geo.dat_size
            )));
        }
        let mut out = Vec::with_capacity(len as usize);
        for p in self.geo.pieces(off, len) {
            if p.len == 0 {
                continue;
            }
            let at = self.geo.shard_offset(&p);
            if let Some(b) = self.fetch(p.shard as usize, at, p.len as usize, src) {
                out.extend_from_slice(&b);
                continue;
            }
            let (a, b) = self.geo.chunk_align(p.in_block, p.in_block + p.len);
            let mut skip = vec![false; self.geo.total_shards()];
            skip[p.shard as usize] = true;
            let got = self.gather(p.stripe, a, b, &[p.shard as usize], src, &skip)?;
            let s = (p.in_block - a) as usize;
            out.extend_from_slice(&got[0][s..s + p.len as usize]);
        }
        Ok(out)
    }

    /// A verified range of a local shard, for serving it to another server.
    pub fn shard_read(&self, shard: u8, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.local(shard as usize)
            .ok_or_else(|| VolumeError::EcShardUnavailable {
                base: self.base.clone(),
                shard,
            })?
            .read_verified(offset, len)
    }

    /// Marks a needle deleted: appends its key to the `.ecj` (fsynced) and hides it at
    /// once. Returns the needle's `Size` field.
    pub fn delete(&self, key: NeedleKey) -> Result<u32> {
        let e = self
            .ecx
            .get(key)
            .filter(|e| e.is_put())
            .ok_or(VolumeError::NotFound { key })?;
        let mut j = lock(&self.journal);
        if self.is_deleted(key) {
            return Err(VolumeError::Deleted { key });
        }
        j.append(key)?;
        write(&self.deleted).insert(key.0);
        Ok(e.size)
    }

    /// Applies deletions another holder journaled (a delete made while this server was
    /// down): every key not yet deleted here that the index holds is deleted as by
    /// [`EcVolume::delete`]. Returns how many were new.
    pub fn merge_deletions(&self, keys: &[u64]) -> Result<usize> {
        let mut j = lock(&self.journal);
        // Keys this index holds live and not yet deleted here (others belong to another
        // encoding, or are known already); journaled together, one fsync.
        let mut fresh: Vec<NeedleKey> = keys
            .iter()
            .map(|&k| NeedleKey(k))
            .filter(|&k| self.ecx.get(k).is_some_and(|e| e.is_put()) && !self.is_deleted(k))
            .collect();
        fresh.sort_unstable_by_key(|k| k.0);
        fresh.dedup();
        j.append_all(&fresh)?;
        let mut d = write(&self.deleted);
        d.extend(fresh.iter().map(|k| k.0));
        Ok(fresh.len())
    }

    /// One shard range, verified, from the local file or else the source; `None` when
    /// neither has it (errors are logged and count as unavailable).
    fn fetch(&self, shard: usize, off: u64, len: usize, src: &dyn ShardSource) -> Option<Vec<u8>> {
        if let Some(f) = self.local(shard) {
            match f.read_verified(off, len) {
                Ok(b) => return Some(b),
                Err(e) => {
                    tracing::warn!(volume = %self.base, shard, error = %e, "local ec shard read failed")
                }
            }
        }
        match src.read(shard as u8, off, len) {
            Ok(Some(b)) if b.len() == len => Some(b),
            Ok(Some(b)) => {
                tracing::warn!(volume = %self.base, shard, got = b.len(), len, "remote shard read returned a wrong length");
                None
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(volume = %self.base, shard, error = %e, "remote shard read failed");
                None
            }
        }
    }

    /// Runs `f` with a pooled codec, preferring one whose decoder already has `len`.
    fn with_codec<R>(&self, len: usize, f: impl FnOnce(&mut Codec) -> R) -> R {
        let c = self.geo.config;
        let pooled = {
            let mut pool = lock(&self.codecs);
            match pool.iter().position(|c| c.decode_len() == Some(len)) {
                Some(i) => Some(pool.swap_remove(i)),
                None if pool.len() >= 4 => pool.pop(),
                None => None,
            }
        };
        let mut codec =
            pooled.unwrap_or_else(|| Codec::new(c.data_shards as usize, c.parity_shards as usize));
        let r = f(&mut codec);
        lock(&self.codecs).push(codec);
        r
    }

    /// Bytes `[a, b)` (chunk-aligned, inside a block) of stripe `stripe` of the shards in
    /// `want`: read directly where possible, else rebuilt from any `data_shards` others
    /// (parity by re-encoding the data). Shards marked in `skip` are never read.
    pub(crate) fn gather(
        &self,
        stripe: u64,
        a: u64,
        b: u64,
        want: &[usize],
        src: &dyn ShardSource,
        skip: &[bool],
    ) -> Result<Vec<Vec<u8>>> {
        let total = self.geo.total_shards();
        let d = self.geo.data_shards();
        let (off, len) = (stripe * self.geo.block() + a, (b - a) as usize);
        let mut got: Vec<Option<Vec<u8>>> = vec![None; total];
        let mut tried = skip.to_vec();
        for &w in want {
            if !tried[w] {
                got[w] = self.fetch(w, off, len, src);
                tried[w] = true;
            }
        }
        if want.iter().any(|&w| got[w].is_none()) {
            let mut have = got.iter().filter(|g| g.is_some()).count();
            for i in 0..total {
                if have >= d {
                    break;
                }
                if !tried[i] {
                    tried[i] = true;
                    got[i] = self.fetch(i, off, len, src);
                    have += usize::from(got[i].is_some());
                }
            }
            if have < d {
                return Err(VolumeError::EcUnrecoverable {
                    base: self.base.clone(),
                    stripe,
                    available: have,
                    needed: d,
                });
            }
            let need_parity = want.iter().any(|&w| w >= d && got[w].is_none());
            let missing_data: Vec<usize> = (0..d)
                .filter(|&i| got[i].is_none() && (need_parity || want.contains(&i)))
                .collect();
            self.with_codec(len, |codec| -> Result<()> {
                let restored = {
                    let pairs: Vec<(usize, &[u8])> = got
                        .iter()
                        .enumerate()
                        .filter_map(|(i, g)| g.as_deref().map(|s| (i, s)))
                        .collect();
                    codec.reconstruct(&pairs, &missing_data)?
                };
                for (i, r) in missing_data.iter().zip(restored) {
                    got[*i] = Some(r);
                }
                if need_parity {
                    let data: Vec<&[u8]> = got[..d]
                        .iter()
                        .map(|g| g.as_deref().unwrap_or(&[]))
                        .collect();
                    let mut parity = vec![Vec::new(); total - d];
                    codec.encode(&data, &mut parity)?;
                    for (k, p) in parity.into_iter().enumerate() {
                        if got[d + k].is_none() {
                            got[d + k] = Some(p);
                        }
                    }
                }
                Ok(())
            })?;
        }
        want.iter()
            .map(|&w| {
                got[w].take().ok_or_else(|| {
                    VolumeError::EcInvalid(format!("shard {w} of stripe {stripe} was not rebuilt"))
                })
            })
            .collect()
    }
}
