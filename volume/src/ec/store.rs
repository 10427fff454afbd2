//! The EC volumes a volume server holds ([`EcStore`]): finding them on disk, opening,
//! encoding, receiving copied files ([`EcHome`], [`IncomingFile`]), removing shards,
//! rebuilding, decoding and vacuuming. Blocking std I/O except [`IncomingFile`] (tokio);
//! nothing here knows about HTTP or about other servers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use kelp_proto::VolumeId;
use kelp_proto::master_api::EcShardInfo;
use kelp_proto::volume_api::{EcShardFile, EcVolumeStatus};

use super::{
    DecodeReport, EcReport, EcVacuumReport, EcVolume, MAX_SHARDS, commit_staged, decode_to_volume,
    ec_vacuum, encode_volume, layout, rebuild_missing, remove_ec_files, staged_path,
};
use crate::error::{IoContext, Result, VolumeError};
use crate::fsutil::sync_dir;
use crate::store::{Store, parse_volume_file_name};
use crate::volume::{Volume, base_name};

/// The EC volumes of this server (any number of their shards), by volume id.
pub struct EcStore {
    store: Arc<Store>,
    volumes: RwLock<BTreeMap<u32, Arc<EcVolume>>>,
    /// Serializes the admin operations that change shard files.
    admin: tokio::sync::Mutex<()>,
}

fn rlock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn wlock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// `(collection, vid)` of a base name `<collection>_<vid>` or `<vid>`.
fn parse_base(base: &str) -> Option<(String, VolumeId)> {
    parse_volume_file_name(&format!("{base}.dat"))
}

/// Every `(dir, base)` with an `.ecx` in the store's directories.
fn scan(store: &Store) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for loc in store.locations() {
        let Ok(rd) = std::fs::read_dir(&loc.dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            if let Some(base) = name.to_str().and_then(|n| n.strip_suffix(".ecx"))
                && parse_base(base).is_some()
            {
                out.push((loc.dir.clone(), base.to_string()));
            }
        }
    }
    out
}

/// What a server reports of one EC volume it holds: geometry, shard files and sizes,
/// needle counts (`rebuilt` and `seconds` are left for the caller).
pub fn status_of(vid: u32, v: &EcVolume) -> EcVolumeStatus {
    let config = v.info().config;
    EcVolumeStatus {
        id: vid,
        collection: layout::collection_of(v.base()).to_string(),
        data_shards: config.data_shards,
        parity_shards: config.parity_shards,
        shards: v
            .local_shards()
            .into_iter()
            .map(|id| EcShardFile {
                id,
                size: std::fs::metadata(layout::shard_path(v.dir(), v.base(), id))
                    .map(|m| m.len())
                    .unwrap_or(0),
            })
            .collect(),
        needles: v.needle_count() as u64,
        deleted: v.deleted_count() as u64,
        rebuilt: Vec::new(),
        seconds: 0.0,
    }
}

/// Removes the files of `shards` that exist.
fn remove_shard_files(dir: &Path, base: &str, shards: &[u8]) -> Result<()> {
    for s in shards {
        let p = layout::shard_path(dir, base, *s);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(VolumeError::EcInvalid(format!("{}: {e}", p.display())));
            }
        }
    }
    Ok(())
}

/// Removes shard files; when no shard is left, every EC file (and the `.vif` unless a
/// `.dat` still uses it). Returns the volume reopened, or `None` when all is gone.
fn remove_shards(dir: &Path, base: &str, shards: &[u8]) -> Result<Option<EcVolume>> {
    remove_shard_files(dir, base, shards)?;
    let left = (0..MAX_SHARDS).any(|i| layout::shard_path(dir, base, i as u8).exists());
    if left {
        sync_dir(dir)?;
        return EcVolume::open(dir, base).map(Some);
    }
    remove_ec_files(dir, base)?;
    if !layout::ec_path(dir, base, ".dat").exists() {
        let vif = layout::ec_path(dir, base, ".vif");
        if vif.exists() {
            std::fs::remove_file(&vif)
                .map_err(|e| VolumeError::EcInvalid(format!("{}: {e}", vif.display())))?;
        }
    }
    sync_dir(dir)?;
    Ok(None)
}

/// Where the files of one EC volume live (or will live) on this server.
#[derive(Debug, Clone)]
pub struct EcHome {
    dir: PathBuf,
    base: String,
}

impl EcHome {
    /// The home of a loaded EC volume.
    pub fn of(v: &EcVolume) -> EcHome {
        EcHome {
            dir: v.dir().to_path_buf(),
            base: v.base().to_string(),
        }
    }

    /// `<collection>_<vid>` or `<vid>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn path(&self, ext: &str) -> PathBuf {
        layout::ec_path(&self.dir, &self.base, ext)
    }

    /// Where a received `ext` file goes: its place, or beside it staged for a swap.
    fn dest(&self, ext: &str, staged: bool) -> PathBuf {
        let p = self.path(ext);
        if staged { staged_path(&p) } else { p }
    }

    /// The extensions a copy of `shards` must fetch: the shards, plus `.ecx`, `.ecj` and
    /// `.vif` when this server has no index yet or when the copy replaces everything.
    pub fn files_to_fetch(&self, shards: &[u8], replace: bool) -> Vec<String> {
        let mut exts: Vec<String> = Vec::new();
        if replace || !self.path(".ecx").exists() {
            exts.extend([".ecx", ".ecj", ".vif"].map(String::from));
        }
        exts.extend(shards.iter().map(|s| format!(".ec{s:02}")));
        exts
    }

    /// Starts receiving the `ext` file (staged when the copy replaces everything).
    pub async fn receive(&self, ext: &str, staged: bool) -> Result<IncomingFile> {
        let dest = self.dest(ext, staged);
        let tmp = layout::with_suffix(&dest, ".tmp");
        let file = crate::fsutil::ReceivedFile::create(tmp).await?;
        Ok(IncomingFile { file, dest })
    }

    /// Drops files received staged by a copy that failed before its commit (they would
    /// otherwise only be dropped at the next open).
    pub async fn discard_staged(&self, exts: &[String]) {
        for ext in exts {
            let _ = tokio::fs::remove_file(self.dest(ext, true)).await;
        }
    }

    /// Makes the received files durable. With `replace`, swaps the staged files in at once
    /// ([`commit_staged`]) and removes the local shards not in `shards`.
    pub fn commit_received(&self, shards: &[u8], replace: bool) -> Result<()> {
        if replace {
            let stale: Vec<u8> = (0..MAX_SHARDS as u8)
                .filter(|s| !shards.contains(s))
                .collect();
            commit_staged(&self.dir, &self.base)?;
            remove_shard_files(&self.dir, &self.base, &stale)?;
        }
        sync_dir(&self.dir)
    }
}

/// One EC file being received from another server: written to a temp file, then
/// fsynced and renamed into place by [`IncomingFile::finish`].
pub struct IncomingFile {
    file: crate::fsutil::ReceivedFile,
    dest: PathBuf,
}

impl IncomingFile {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.file.write(chunk).await
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.file.len()
    }

    pub fn is_empty(&self) -> bool {
        self.file.is_empty()
    }

    /// Gives up: the temp file is removed.
    pub async fn abort(self) {
        let tmp = self.file.path().to_path_buf();
        drop(self.file);
        let _ = tokio::fs::remove_file(&tmp).await;
    }

    /// Fsyncs and renames the file into place; returns its length.
    pub async fn finish(self) -> Result<u64> {
        let (tmp, len) = self.file.finish().await?;
        let dest = self.dest;
        tokio::fs::rename(&tmp, &dest)
            .await
            .ctx(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
        Ok(len)
    }
}

impl EcStore {
    /// Opens every EC volume (an `.ecx` present) in the store's directories.
    pub fn load(store: Arc<Store>) -> EcStore {
        let mut volumes = BTreeMap::new();
        for (dir, base) in scan(&store) {
            let Some((_, vid)) = parse_base(&base) else {
                continue;
            };
            match EcVolume::open(&dir, &base) {
                Ok(v) => {
                    volumes.insert(vid.0, Arc::new(v));
                }
                Err(e) => {
                    tracing::error!(dir = %dir.display(), base, error = %e, "cannot load ec volume")
                }
            }
        }
        EcStore {
            store,
            volumes: RwLock::new(volumes),
            admin: tokio::sync::Mutex::new(()),
        }
    }

    pub fn get(&self, vid: u32) -> Option<Arc<EcVolume>> {
        rlock(&self.volumes).get(&vid).cloned()
    }

    pub fn len(&self) -> usize {
        rlock(&self.volumes).len()
    }

    pub fn is_empty(&self) -> bool {
        rlock(&self.volumes).is_empty()
    }

    /// Every EC volume held here, by id.
    pub fn all(&self) -> Vec<(u32, Arc<EcVolume>)> {
        rlock(&self.volumes)
            .iter()
            .map(|(id, v)| (*id, v.clone()))
            .collect()
    }

    /// What heartbeats report.
    pub fn shard_infos(&self) -> Vec<EcShardInfo> {
        rlock(&self.volumes)
            .iter()
            .map(|(id, v)| EcShardInfo {
                id: *id,
                collection: layout::collection_of(v.base()).to_string(),
                shards: v.local_shards(),
            })
            .collect()
    }

    /// Held while an admin operation changes shard files: one at a time.
    pub async fn lock_admin(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.admin.lock().await
    }

    fn insert(&self, vid: u32, v: EcVolume) -> Arc<EcVolume> {
        let v = Arc::new(v);
        wlock(&self.volumes).insert(vid, v.clone());
        v
    }

    /// Stops serving EC volume `vid` (its files stay).
    pub fn unmount(&self, vid: u32) -> Option<Arc<EcVolume>> {
        wlock(&self.volumes).remove(&vid)
    }

    /// Marks `vol` read-only, encodes it into `data + parity` shards next to it and mounts
    /// the EC volume; the `.dat` stays until the volume is deleted.
    pub fn encode(
        &self,
        vol: &Volume,
        data_shards: u8,
        parity_shards: u8,
    ) -> Result<(Arc<EcVolume>, EcReport)> {
        let vid = vol.id();
        vol.set_read_only(true)?;
        vol.sync()?;
        let base = base_name(vol.collection(), vid);
        let report = encode_volume(
            vol.dir(),
            &base,
            data_shards,
            parity_shards,
            super::DEFAULT_BLOCK_SIZE,
        )?;
        let v = EcVolume::open(vol.dir(), &base)?;
        Ok((self.insert(vid.0, v), report))
    }

    /// Where EC volume `vid` lives or would live here: its loaded directory, else the
    /// directory of a normal volume with that id, else of EC files found on disk, else
    /// the first data directory.
    pub fn home(&self, vid: VolumeId, collection: &str) -> Result<EcHome> {
        kelp_proto::name::check_collection(collection)?;
        if let Some(v) = self.get(vid.0) {
            return Ok(EcHome::of(&v));
        }
        let base = base_name(collection, vid);
        if let Some(v) = self.store.volume(vid) {
            return Ok(EcHome {
                dir: v.dir().to_path_buf(),
                base,
            });
        }
        if let Some((dir, base)) = scan(&self.store)
            .into_iter()
            .find(|(_, b)| parse_base(b).is_some_and(|(_, v)| v == vid))
        {
            return Ok(EcHome { dir, base });
        }
        let dir = self
            .store
            .locations()
            .first()
            .map(|l| l.dir.clone())
            .ok_or(VolumeError::NoDataDirectory)?;
        Ok(EcHome { dir, base })
    }

    /// Opens the EC volume at `home` and serves it as `vid` (replacing any loaded one).
    pub fn open(&self, vid: VolumeId, home: &EcHome) -> Result<Arc<EcVolume>> {
        let v = EcVolume::open(&home.dir, &home.base)?;
        Ok(self.insert(vid.0, v))
    }

    /// (Re)opens EC volume `vid` from the files on disk.
    pub fn mount(&self, vid: VolumeId) -> Result<Arc<EcVolume>> {
        let home = self.home(vid, "")?;
        if !home.path(".ecx").exists() {
            return Err(VolumeError::EcNotHere(vid));
        }
        self.open(vid, &home)
    }

    /// Opens one EC file of `v` for streaming (`ext` already checked to be an EC
    /// extension): the file and its length.
    pub fn open_file(v: &EcVolume, ext: &str) -> Result<(tokio::fs::File, u64)> {
        let path = layout::ec_path(v.dir(), v.base(), ext);
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(source) => return Err(VolumeError::EcFileMissing { path, source }),
        };
        let len = f.metadata().ctx(|| path.display().to_string())?.len();
        Ok((tokio::fs::File::from_std(f), len))
    }

    /// Removes every EC volume of `collection` held here, files and all; returns their
    /// ids.
    pub fn delete_collection(&self, collection: &str) -> Result<Vec<u32>> {
        kelp_proto::name::check_named_collection(collection)?;
        let doomed: Vec<Arc<EcVolume>> = rlock(&self.volumes)
            .values()
            .filter(|v| layout::collection_of(v.base()) == collection)
            .cloned()
            .collect();
        let mut removed = Vec::new();
        for v in doomed {
            let Some((_, vid)) = parse_base(v.base()) else {
                continue;
            };
            self.unmount(vid.0);
            let all: Vec<u8> = (0..MAX_SHARDS as u8).collect();
            remove_shards(v.dir(), v.base(), &all)?;
            tracing::info!(
                volume = vid.0,
                collection,
                "ec volume deleted with its collection"
            );
            removed.push(vid.0);
        }
        Ok(removed)
    }

    /// Removes `shards` of the EC volume `vid` at `home` (every EC file when none is
    /// left); the volume reopened, or `None` when it is gone from this server.
    pub fn delete_shards(
        &self,
        vid: VolumeId,
        home: &EcHome,
        shards: &[u8],
    ) -> Result<Option<Arc<EcVolume>>> {
        self.unmount(vid.0);
        Ok(remove_shards(&home.dir, &home.base, shards)?.map(|v| self.insert(vid.0, v)))
    }

    /// Regenerates every missing shard at `home`, then keeps the shards in `had` plus
    /// `asked` (all regenerated ones if `asked` is empty) and removes the others. Returns
    /// the volume reopened (`None` if nothing is left) and the regenerated shards kept.
    pub fn rebuild(
        &self,
        vid: VolumeId,
        home: &EcHome,
        had: &[u8],
        asked: &[u8],
    ) -> Result<(Option<Arc<EcVolume>>, Vec<u8>)> {
        let rebuilt = rebuild_missing(&home.dir, &home.base)?;
        let keep = |s: &u8| {
            had.contains(s) || (asked.is_empty() && rebuilt.contains(s)) || asked.contains(s)
        };
        let drop_ids: Vec<u8> = (0..MAX_SHARDS as u8).filter(|s| !keep(s)).collect();
        let kept_rebuilt: Vec<u8> = rebuilt.iter().copied().filter(|s| keep(s)).collect();
        let v = match remove_shards(&home.dir, &home.base, &drop_ids)? {
            Some(v) => Some(self.insert(vid.0, v)),
            None => {
                self.unmount(vid.0);
                None
            }
        };
        Ok((v, kept_rebuilt))
    }

    /// Decodes the EC volume at `home` (its data shards all local) into a normal volume,
    /// mounts that, and removes the EC files.
    pub fn decode(&self, vid: VolumeId, home: &EcHome) -> Result<DecodeReport> {
        let collection = layout::collection_of(&home.base).to_string();
        let report = decode_to_volume(&home.dir, &home.base)?;
        self.store.mount_volume(&home.dir, &collection, vid)?;
        self.unmount(vid.0);
        remove_ec_files(&home.dir, &home.base)?;
        Ok(report)
    }

    /// Rewrites every shard at `home` without the needles its `.ecj` deletes (crash-safe
    /// swap) and reopens the volume.
    pub fn vacuum(&self, vid: VolumeId, home: &EcHome) -> Result<(EcVacuumReport, Arc<EcVolume>)> {
        let report = ec_vacuum(&home.dir, &home.base)?;
        Ok((report, self.open(vid, home)?))
    }
}
