//! `Store`: every volume of one volume server, across its data directories.
//!
//! Each directory has a maximum volume count (0 = as many as its free space holds at the
//! volume size limit). Opening a store loads every `<vid>.dat` and `<collection>_<vid>.dat`
//! found; a volume that fails to open is logged, skipped and listed in `load_errors`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use kelp_proto::master_api::VolumeInformation;
use kelp_proto::volume_api::DiskStatus;
use kelp_proto::{ReplicaPlacement, Ttl, VolumeId};

use crate::error::{IoContext, Result, VolumeError};
use crate::fsutil::{remove_if_exists, sync_dir};
use crate::volume::{Volume, VolumeOptions, base_name, lock, read, write};

mod copy;
#[cfg(test)]
mod tests;

pub use copy::{COPYING_SUFFIX, IncomingVolume, StagedFile};

/// One data directory and how many volumes it may hold (0 = derive from free space).
#[derive(Debug, Clone)]
pub struct DiskLocation {
    pub dir: PathBuf,
    pub max_volumes: usize,
}

impl DiskLocation {
    pub fn new(dir: impl Into<PathBuf>, max_volumes: usize) -> DiskLocation {
        DiskLocation {
            dir: dir.into(),
            max_volumes,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How volumes are created and opened (offset width, fsync policy, hard size limit).
    pub volume: VolumeOptions,
    /// The master's volume size limit: used to derive a directory's volume count when
    /// its maximum is 0. Default 30 GiB (SeaweedFS 4.48: 30720 MB).
    pub volume_size_limit: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            volume: VolumeOptions::default(),
            volume_size_limit: 30720 << 20,
        }
    }
}

#[derive(Debug)]
struct Slot {
    location: usize,
    volume: Arc<Volume>,
}

#[derive(Debug)]
pub struct Store {
    locations: Vec<DiskLocation>,
    options: StoreOptions,
    volumes: RwLock<BTreeMap<u32, Slot>>,
    /// Serializes allocation and deletion (slot accounting and file creation).
    admin: Mutex<()>,
    /// Volumes being copied in from another server: id -> location (a slot each).
    copying: Mutex<BTreeMap<u32, usize>>,
    load_errors: Vec<(PathBuf, String)>,
}

/// Splits a `.dat` file name into (collection, volume id).
pub fn parse_volume_file_name(name: &str) -> Option<(String, VolumeId)> {
    let base = name.strip_suffix(".dat")?;
    let (collection, vid) = match base.rsplit_once('_') {
        Some((c, v)) => (c, v),
        None => ("", base),
    };
    if vid.is_empty() || !vid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((collection.to_string(), VolumeId(vid.parse().ok()?)))
}

fn free_and_total(dir: &Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some((
        s.f_bavail.saturating_mul(s.f_frsize),
        s.f_blocks.saturating_mul(s.f_frsize),
    ))
}

impl Store {
    /// Opens (creating missing directories) and loads every volume found.
    pub fn open(locations: Vec<DiskLocation>, options: StoreOptions) -> Result<Store> {
        let mut volumes = BTreeMap::new();
        let mut load_errors = Vec::new();
        for (li, loc) in locations.iter().enumerate() {
            fs::create_dir_all(&loc.dir).ctx(|| format!("creating {}", loc.dir.display()))?;
            copy::remove_leftovers(&loc.dir)?;
            let mut found = Vec::new();
            for entry in fs::read_dir(&loc.dir).ctx(|| format!("listing {}", loc.dir.display()))? {
                let entry = entry.ctx(|| format!("listing {}", loc.dir.display()))?;
                if let Some(parsed) = entry.file_name().to_str().and_then(parse_volume_file_name) {
                    found.push(parsed);
                }
            }
            found.sort_by_key(|(_, vid)| *vid);
            for (collection, vid) in found {
                let path = loc.dir.join(format!("{}.dat", base_name(&collection, vid)));
                if volumes.contains_key(&vid.0) {
                    let msg = format!("volume {vid} is already loaded from another file");
                    tracing::error!(path = %path.display(), "{msg}");
                    load_errors.push((path, msg));
                    continue;
                }
                match Volume::open(&loc.dir, &collection, vid, &options.volume) {
                    Ok(v) => {
                        if v.recovery_report().changed() {
                            tracing::warn!(volume = vid.0, report = ?v.recovery_report(), "volume repaired on open");
                        }
                        volumes.insert(
                            vid.0,
                            Slot {
                                location: li,
                                volume: Arc::new(v),
                            },
                        );
                    }
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "cannot load volume");
                        load_errors.push((path, e.to_string()));
                    }
                }
            }
        }
        Ok(Store {
            locations,
            options,
            volumes: RwLock::new(volumes),
            admin: Mutex::new(()),
            copying: Mutex::new(BTreeMap::new()),
            load_errors,
        })
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    pub fn locations(&self) -> &[DiskLocation] {
        &self.locations
    }

    /// Volumes that could not be opened at startup, with the reason.
    pub fn load_errors(&self) -> &[(PathBuf, String)] {
        &self.load_errors
    }

    pub fn volume(&self, vid: VolumeId) -> Option<Arc<Volume>> {
        read(&self.volumes).get(&vid.0).map(|s| s.volume.clone())
    }

    /// All volumes, by id.
    pub fn volumes(&self) -> Vec<Arc<Volume>> {
        read(&self.volumes)
            .values()
            .map(|s| s.volume.clone())
            .collect()
    }

    /// Volumes in `location`, those being copied in included.
    fn count_in(&self, location: usize) -> usize {
        let copying = lock(&self.copying)
            .values()
            .filter(|l| **l == location)
            .count();
        read(&self.volumes)
            .values()
            .filter(|s| s.location == location)
            .count()
            + copying
    }

    /// True when volume `vid` is loaded or being copied in.
    fn holds(&self, vid: VolumeId) -> bool {
        read(&self.volumes).contains_key(&vid.0) || lock(&self.copying).contains_key(&vid.0)
    }

    /// The location with the most free slots (the first of equals).
    fn roomiest_location(&self) -> Result<usize> {
        (0..self.locations.len())
            .map(|i| (i, self.max_volumes_in(i).saturating_sub(self.count_in(i))))
            .filter(|&(_, free)| free > 0)
            .max_by_key(|&(i, free)| (free, usize::MAX - i))
            .map(|(i, _)| i)
            .ok_or(VolumeError::NoFreeSlot)
    }

    /// How many volumes `location` may hold now: its `-max`, or with `-max=0` the
    /// volumes it has plus as many more as its free space holds once they are full.
    pub fn max_volumes_in(&self, location: usize) -> usize {
        let Some(loc) = self.locations.get(location) else {
            return 0;
        };
        if loc.max_volumes > 0 {
            return loc.max_volumes;
        }
        let free = free_and_total(&loc.dir).map_or(0, |(f, _)| f);
        let per = self.options.volume_size_limit.max(1);
        // Volumes already here may still grow to the limit: that room is spoken for,
        // or every new (still small) volume would leave the free slots unchanged and
        // growth would never stop.
        let (count, promised) = read(&self.volumes)
            .values()
            .filter(|s| s.location == location)
            .fold((0usize, 0u64), |(n, room), s| {
                (n + 1, room + per.saturating_sub(s.volume.dat_size()))
            });
        count + (free.saturating_sub(promised) / per) as usize
    }

    /// The sum of every directory's maximum (what heartbeats report as max volume count).
    pub fn max_volume_count(&self) -> usize {
        (0..self.locations.len())
            .map(|i| self.max_volumes_in(i))
            .sum()
    }

    /// Free slots over all directories.
    pub fn free_slots(&self) -> usize {
        (0..self.locations.len())
            .map(|i| self.max_volumes_in(i).saturating_sub(self.count_in(i)))
            .sum()
    }

    /// Creates a volume in the directory with the most free slots.
    pub fn allocate_volume(
        &self,
        vid: VolumeId,
        collection: &str,
        placement: ReplicaPlacement,
        ttl: Ttl,
    ) -> Result<Arc<Volume>> {
        kelp_proto::name::check_collection(collection)?;
        let _admin = lock(&self.admin);
        if self.holds(vid) {
            return Err(VolumeError::VolumeExists(vid));
        }
        let best = self.roomiest_location()?;
        let v = Arc::new(Volume::create(
            &self.locations[best].dir,
            collection,
            vid,
            placement,
            ttl,
            &self.options.volume,
        )?);
        write(&self.volumes).insert(
            vid.0,
            Slot {
                location: best,
                volume: v.clone(),
            },
        );
        Ok(v)
    }

    /// Unloads a volume and deletes its files. Handles still open keep reading the
    /// unlinked files; new operations on the volume fail with `Closed`.
    pub fn delete_volume(&self, vid: VolumeId) -> Result<()> {
        let _admin = lock(&self.admin);
        let slot = write(&self.volumes)
            .remove(&vid.0)
            .ok_or(VolumeError::VolumeNotFound(vid))?;
        let v = slot.volume;
        v.close();
        let _ = v.cleanup_compaction();
        // An EC volume encoded from this one shares its `.vif`: keep it while an `.ecx` is there.
        let keep_vif = v.path_with(".ecx").exists();
        for ext in [".dat", ".idx", ".vif", ".note"] {
            if ext == ".vif" && keep_vif {
                continue;
            }
            remove_if_exists(&v.path_with(ext))?;
        }
        sync_dir(v.dir())
    }

    /// Opens the volume files `<dir>/<collection_><vid>.*` (one of this store's
    /// directories) and starts serving them, e.g. after an EC volume was decoded there.
    pub fn mount_volume(&self, dir: &Path, collection: &str, vid: VolumeId) -> Result<Arc<Volume>> {
        let _admin = lock(&self.admin);
        if self.holds(vid) {
            return Err(VolumeError::VolumeExists(vid));
        }
        let location = self
            .locations
            .iter()
            .position(|l| l.dir == dir)
            .ok_or(VolumeError::VolumeNotFound(vid))?;
        self.mount_locked(location, collection, vid)
    }

    /// Opens and registers a volume; the caller holds the admin lock.
    fn mount_locked(
        &self,
        location: usize,
        collection: &str,
        vid: VolumeId,
    ) -> Result<Arc<Volume>> {
        let dir = &self.locations[location].dir;
        let v = Arc::new(Volume::open(dir, collection, vid, &self.options.volume)?);
        write(&self.volumes).insert(
            vid.0,
            Slot {
                location,
                volume: v.clone(),
            },
        );
        Ok(v)
    }

    /// Deletes every volume of a collection.
    pub fn delete_collection(&self, collection: &str) -> Result<()> {
        kelp_proto::name::check_named_collection(collection)?;
        let ids: Vec<VolumeId> = self
            .volumes()
            .iter()
            .filter(|v| v.collection() == collection)
            .map(|v| v.id())
            .collect();
        for id in ids {
            self.delete_volume(id)?;
        }
        Ok(())
    }

    pub fn mark_readonly(&self, vid: VolumeId, read_only: bool) -> Result<()> {
        self.volume(vid)
            .ok_or(VolumeError::VolumeNotFound(vid))?
            .set_read_only(read_only)
    }

    /// Every volume as heartbeats report it.
    pub fn volume_infos(&self) -> Vec<VolumeInformation> {
        self.volumes().iter().map(|v| v.info()).collect()
    }

    /// The largest needle key on any volume (heartbeats carry it to the master).
    pub fn max_file_key(&self) -> u64 {
        self.volumes()
            .iter()
            .map(|v| v.max_file_key())
            .max()
            .unwrap_or(0)
    }

    /// Space per data directory, for `/status`.
    pub fn disk_statuses(&self) -> Vec<DiskStatus> {
        self.locations
            .iter()
            .map(|l| {
                let (free, all) = free_and_total(&l.dir).unwrap_or((0, 0));
                DiskStatus {
                    dir: l.dir.display().to_string(),
                    all,
                    used: all.saturating_sub(free),
                    free,
                }
            })
            .collect()
    }

    /// fsyncs every volume.
    pub fn sync_all(&self) -> Result<()> {
        for v in self.volumes() {
            v.sync()?;
        }
        Ok(())
    }
}
