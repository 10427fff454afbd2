//! Receiving a whole volume from another server: a reserved slot, the files staged as
//! `<base>.<ext>.copying`, verification before anything is loaded, and the crash-safe
//! install (fsync, rename with the `.dat` last, directory fsync, mount).
//!
//! Start-up finds volumes by their `.dat`, so until the staged `.dat` is renamed nothing
//! of a copy can be loaded; [`remove_leftovers`] deletes what a crash left staged.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kelp_proto::VolumeId;

use super::Store;
use crate::error::{IoContext, Result, VolumeError};
use crate::fsutil::{remove_if_exists, sync_dir};
use crate::idx::OffsetWidth;
use crate::verify::{VerifyReport, verify_volume_files};
use crate::vif::VolumeInfo;
use crate::volume::{Volume, base_name, lock};

/// Suffix of the files of a volume copy in progress.
pub const COPYING_SUFFIX: &str = ".copying";

/// The files of a volume, in the order they are installed (the `.dat` last).
const EXTS: [&str; 3] = [".vif", ".idx", ".dat"];

/// Deletes the `*.copying` files in `dir`: a copy interrupted by a crash or a stop.
pub(super) fn remove_leftovers(dir: &Path) -> Result<()> {
    let mut removed = 0usize;
    for entry in fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
        let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.ends_with(COPYING_SUFFIX)) {
            let path = entry.path();
            tracing::warn!(path = %path.display(), "removing a file left by an interrupted volume copy");
            remove_if_exists(&path)?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(())
}

/// A volume being copied in: its slot is reserved (no other copy, allocation or mount of
/// the id meanwhile) until [`IncomingVolume::install`] or drop; dropping it without an
/// install removes every staged file.
#[derive(Debug)]
pub struct IncomingVolume {
    store: Arc<Store>,
    vid: VolumeId,
    collection: String,
    location: usize,
    dir: PathBuf,
    base: String,
    installed: bool,
}

/// One staged file being received.
pub type StagedFile = crate::fsutil::ReceivedFile;

impl Store {
    /// Reserves a slot for copying volume `vid` of `collection` in: refused with
    /// `VolumeExists` if the volume is loaded, being copied, or has a `.dat` or `.ecx` in
    /// any data directory; `NoFreeSlot` when no directory has room.
    pub fn begin_copy(self: &Arc<Self>, vid: VolumeId, collection: &str) -> Result<IncomingVolume> {
        kelp_proto::name::check_collection(collection)?;
        let base = base_name(collection, vid);
        let _admin = lock(&self.admin);
        if self.holds(vid) {
            return Err(VolumeError::VolumeExists(vid));
        }
        let on_disk = self.locations.iter().any(|l| {
            [".dat", ".ecx"]
                .iter()
                .any(|ext| l.dir.join(format!("{base}{ext}")).exists())
        });
        if on_disk {
            return Err(VolumeError::VolumeExists(vid));
        }
        let location = self.roomiest_location()?;
        lock(&self.copying).insert(vid.0, location);
        Ok(IncomingVolume {
            store: self.clone(),
            vid,
            collection: collection.to_string(),
            location,
            dir: self.locations[location].dir.clone(),
            base,
            installed: false,
        })
    }
}

impl IncomingVolume {
    pub fn volume(&self) -> VolumeId {
        self.vid
    }

    /// The data directory the volume goes to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<base><ext>.copying`.
    pub fn staged_path(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}{ext}{COPYING_SUFFIX}", self.base))
    }

    fn final_path(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}{ext}", self.base))
    }

    /// Creates (or empties) the staged `ext` file (`.vif`, `.idx` or `.dat`).
    pub async fn receive(&self, ext: &str) -> Result<StagedFile> {
        if !EXTS.contains(&ext) {
            return Err(VolumeError::InvalidNeedle(format!(
                "a volume copy has no {ext} file"
            )));
        }
        StagedFile::create(self.staged_path(ext)).await
    }

    /// Checks the staged files: the `.idx` and `.dat` hold exactly `idx` and `dat` bytes,
    /// the `.vif` (if staged) parses, and [`verify_volume_files`] passes with the offset
    /// width the `.vif` names (else the store's).
    pub fn verify(&self, idx: u64, dat: u64) -> Result<VerifyReport> {
        for (ext, want) in [(".idx", idx), (".dat", dat)] {
            let path = self.staged_path(ext);
            let got = fs::metadata(&path)
                .ctx(|| format!("stat of {}", path.display()))?
                .len();
            if got != want {
                return Err(VolumeError::corrupt(
                    path.display().to_string(),
                    format!("{got} bytes received, {want} expected"),
                ));
            }
        }
        let vif_path = self.staged_path(".vif");
        let width = match VolumeInfo::load(&vif_path)?.map(|v| v.bytes_offset) {
            None | Some(0) => self.store.options.volume.offset_width,
            Some(n) => OffsetWidth::from_bytes(n).ok_or_else(|| {
                VolumeError::corrupt(
                    vif_path.display().to_string(),
                    format!("bytesOffset is {n}, expected 4 or 5"),
                )
            })?,
        };
        verify_volume_files(&self.staged_path(".dat"), &self.staged_path(".idx"), width)
    }

    /// Verifies ([`Self::verify`]), fsyncs the staged files, renames them into place (the
    /// `.dat` last), fsyncs the directory and mounts the volume. On failure nothing of
    /// the copy is left on disk.
    pub fn install(mut self, idx: u64, dat: u64) -> Result<(Arc<Volume>, VerifyReport)> {
        let report = self.verify(idx, dat)?;
        let staged: Vec<&str> = EXTS
            .into_iter()
            .filter(|ext| self.staged_path(ext).exists())
            .collect();
        for ext in &staged {
            let path = self.staged_path(ext);
            File::open(&path)
                .and_then(|f| f.sync_all())
                .ctx(|| format!("fsync of {}", path.display()))?;
        }
        let store = self.store.clone();
        let _admin = lock(&store.admin);
        let renamed = self.rename_into_place(&staged);
        let mounted =
            renamed.and_then(|()| store.mount_locked(self.location, &self.collection, self.vid));
        match mounted {
            Ok(v) => {
                self.installed = true;
                lock(&store.copying).remove(&self.vid.0);
                Ok((v, report))
            }
            Err(e) => {
                // The volume was not here before: what was renamed is ours to remove.
                for ext in [".dat", ".idx", ".vif", ".note"] {
                    let _ = remove_if_exists(&self.final_path(ext));
                }
                let _ = sync_dir(&self.dir);
                Err(e)
            }
        }
    }

    fn rename_into_place(&self, staged: &[&str]) -> Result<()> {
        // Files of an earlier volume of this name would be read with the copy: a stale
        // `.vif` when the source sent none, an unfinished vacuum, a note.
        for ext in [".vif", ".cpd", ".cpx", ".cpc", ".note"] {
            if !staged.contains(&ext) {
                remove_if_exists(&self.final_path(ext))?;
            }
        }
        for ext in staged {
            let (from, to) = (self.staged_path(ext), self.final_path(ext));
            fs::rename(&from, &to)
                .ctx(|| format!("renaming {} to {}", from.display(), to.display()))?;
        }
        sync_dir(&self.dir)
    }
}

impl Drop for IncomingVolume {
    fn drop(&mut self) {
        if self.installed {
            return;
        }
        let mut removed = false;
        for ext in EXTS {
            removed |= remove_if_exists(&self.staged_path(ext)).unwrap_or(false);
        }
        if removed {
            let _ = sync_dir(&self.dir);
        }
        lock(&self.store.copying).remove(&self.vid.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Needle;
    use crate::store::{DiskLocation, StoreOptions};
    use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl};

    fn store(dir: &Path, max: usize) -> Arc<Store> {
        Arc::new(Store::open(vec![DiskLocation::new(dir, max)], StoreOptions::default()).unwrap())
    }

    /// Writes a whole volume `c_<vid>` elsewhere and stages its files for `incoming`.
    fn stage(incoming: &IncomingVolume) -> (u64, u64) {
        let src = tempfile::tempdir().unwrap();
        let src = src.path();
        let v = Volume::create(
            src,
            "c",
            incoming.volume(),
            ReplicaPlacement::default(),
            Ttl::EMPTY,
            &Default::default(),
        )
        .unwrap();
        for k in 1..=3u64 {
            v.write(
                Needle::new(NeedleKey(k), Cookie(7), vec![k as u8; 5000]),
                false,
            )
            .unwrap();
        }
        let (idx, dat) = v.copy_sizes().unwrap();
        for ext in EXTS {
            let from = src.join(format!("c_{}{ext}", incoming.volume()));
            fs::copy(from, incoming.staged_path(ext)).unwrap();
        }
        (idx, dat)
    }

    #[test]
    fn a_copy_holds_its_slot_until_installed_or_dropped() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path(), 1);
        let incoming = s.begin_copy(VolumeId(5), "c").unwrap();
        assert_eq!(s.free_slots(), 0);
        assert!(matches!(
            s.begin_copy(VolumeId(5), "c"),
            Err(VolumeError::VolumeExists(_))
        ));
        assert!(matches!(
            s.allocate_volume(VolumeId(5), "c", ReplicaPlacement::default(), Ttl::EMPTY),
            Err(VolumeError::VolumeExists(_))
        ));
        assert!(matches!(
            s.allocate_volume(VolumeId(6), "", ReplicaPlacement::default(), Ttl::EMPTY),
            Err(VolumeError::NoFreeSlot)
        ));
        stage(&incoming);
        drop(incoming);
        assert_eq!(s.free_slots(), 1);
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            0,
            "staged files removed"
        );
        assert!(s.volume(VolumeId(5)).is_none());

        let incoming = s.begin_copy(VolumeId(5), "c").unwrap();
        let (idx, dat) = stage(&incoming);
        let (v, report) = incoming.install(idx, dat).unwrap();
        assert_eq!(report.needles_checked, 3);
        assert_eq!(v.stats().live_count(), 3);
        assert!(s.volume(VolumeId(5)).is_some());
        assert_eq!(s.free_slots(), 0);
        let mut names: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["c_5.dat", "c_5.idx", "c_5.vif"]);
        assert!(matches!(
            s.begin_copy(VolumeId(5), "c"),
            Err(VolumeError::VolumeExists(_))
        ));
    }

    #[test]
    fn a_copy_that_fails_verification_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path(), 2);
        let incoming = s.begin_copy(VolumeId(9), "c").unwrap();
        let (idx, dat) = stage(&incoming);
        // One byte short of what the source announced.
        assert!(incoming.install(idx, dat + 1).is_err());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
        // The last needle's data damaged.
        let incoming = s.begin_copy(VolumeId(9), "c").unwrap();
        let (idx, dat) = stage(&incoming);
        let path = incoming.staged_path(".dat");
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len() - 100;
        bytes[at] ^= 1;
        fs::write(&path, bytes).unwrap();
        let e = incoming.install(idx, dat).unwrap_err();
        assert!(e.to_string().contains("CRC"), "{e}");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
        assert!(s.volume(VolumeId(9)).is_none());
        assert_eq!(s.free_slots(), 2);
    }
}
