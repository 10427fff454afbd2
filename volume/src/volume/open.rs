//! Creating and opening a volume: superblock, `.vif`, offset width, crash recovery, needle map.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::UNIX_EPOCH;

use kelp_proto::{ReplicaPlacement, Ttl, VolumeId};

use super::{State, Volume, VolumeOptions, Writer, base_name};
use crate::error::{IoContext, Result, VolumeError};
use crate::fsutil::sync_dir;
use crate::idx::OffsetWidth;
use crate::needle_map::NeedleMap;
use crate::recovery::{self, Files};
use crate::superblock::{SUPERBLOCK_SIZE, SuperBlock};
use crate::vacuum;
use crate::vif::VolumeInfo;

fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

fn open_rw(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))
}

impl Volume {
    /// Creates a new, empty volume in `dir` (superblock, empty `.idx`, `.vif`), then opens it.
    pub fn create(
        dir: &Path,
        collection: &str,
        id: VolumeId,
        placement: ReplicaPlacement,
        ttl: Ttl,
        opts: &VolumeOptions,
    ) -> Result<Volume> {
        let base = dir.join(base_name(collection, id));
        let dat_path = with_ext(&base, ".dat");
        if dat_path.exists() {
            return Err(VolumeError::VolumeExists(id));
        }
        fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        for stale in [".cpd", ".cpx", ".cpc", ".idx"] {
            crate::fsutil::remove_if_exists(&with_ext(&base, stale))?;
        }
        let dat = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&dat_path)
            .ctx(|| format!("creating {}", dat_path.display()))?;
        dat.write_all_at(&SuperBlock::new(placement, ttl).to_bytes(), 0)
            .and_then(|()| dat.sync_all())
            .ctx(|| format!("writing the superblock of {}", dat_path.display()))?;
        let idx_path = with_ext(&base, ".idx");
        open_rw(&idx_path, true)?
            .sync_all()
            .ctx(|| format!("fsync of {}", idx_path.display()))?;
        let vif = VolumeInfo {
            replication: placement.to_string(),
            bytes_offset: opts.offset_width.bytes() as u32,
            ..VolumeInfo::default()
        };
        vif.save(&with_ext(&base, ".vif"))?;
        sync_dir(dir)?;
        Volume::open(dir, collection, id, opts)
    }

    /// Opens an existing volume: finishes or discards an interrupted vacuum, checks the
    /// offset width, repairs the tail (see [`crate::recovery`]) and loads the needle map.
    pub fn open(
        dir: &Path,
        collection: &str,
        id: VolumeId,
        opts: &VolumeOptions,
    ) -> Result<Volume> {
        let base = dir.join(base_name(collection, id));
        let dat_path = with_ext(&base, ".dat");
        let idx_path = with_ext(&base, ".idx");
        let vif_path = with_ext(&base, ".vif");
        vacuum::recover_on_open(&base)?;
        if !dat_path.exists() {
            return Err(VolumeError::VolumeNotFound(id));
        }

        let vif = VolumeInfo::load(&vif_path)?;
        let vif_width = match vif.as_ref().map(|v| v.bytes_offset) {
            None | Some(0) => None,
            Some(n) => Some(OffsetWidth::from_bytes(n).ok_or_else(|| {
                VolumeError::corrupt(
                    vif_path.display().to_string(),
                    format!("bytesOffset is {n}, expected 4 or 5"),
                )
            })?),
        };
        if let Some(w) = vif_width
            && w != opts.offset_width
            && !opts.allow_other_offset_width
        {
            return Err(VolumeError::OffsetWidthMismatch {
                path: vif_path,
                expected: opts.offset_width.bytes(),
                found: w.bytes(),
                why: "the .vif records bytesOffset and this store only opens its own width".into(),
            });
        }
        let width = vif_width.unwrap_or(opts.offset_width);

        let dat = Arc::new(open_rw(&dat_path, false)?);
        let mut sb = [0u8; SUPERBLOCK_SIZE];
        dat.read_exact_at(&mut sb, 0).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                VolumeError::corrupt(dat_path.display().to_string(), "no complete superblock")
            } else {
                VolumeError::Io {
                    context: format!("reading {}", dat_path.display()),
                    source: e,
                }
            }
        })?;
        let sb = SuperBlock::parse(&sb).map_err(|e| e.at(&dat_path, 0))?;
        let mut idx_file = open_rw(&idx_path, true)?;
        let mut idx = Vec::new();
        idx_file
            .read_to_end(&mut idx)
            .ctx(|| format!("reading {}", idx_path.display()))?;
        let dat_meta = dat
            .metadata()
            .ctx(|| format!("stat of {}", dat_path.display()))?;

        if !recovery::width_fits(&dat, dat_meta.len(), &idx, width)
            && recovery::width_fits(&dat, dat_meta.len(), &idx, width.other())
        {
            let why = match vif_width {
                Some(_) => format!(
                    "the .vif says bytesOffset {} but the .idx entries only make sense as {}-byte offsets",
                    width.bytes(),
                    width.other().bytes()
                ),
                None => format!(
                    "there is no .vif and the .idx entries are {}-byte; write a .vif with bytesOffset {}",
                    width.other().bytes(),
                    width.other().bytes()
                ),
            };
            return Err(VolumeError::OffsetWidthMismatch {
                path: idx_path,
                expected: width.bytes(),
                found: width.other().bytes(),
                why,
            });
        }

        let dat_path: Arc<Path> = Arc::from(dat_path.as_path());
        let recovered = recovery::recover(
            &Files {
                dat: &dat,
                dat_path: &dat_path,
                idx: &idx_file,
                idx_path: &idx_path,
            },
            idx,
            width,
            sb.version,
        )?;
        let map = NeedleMap::load(&recovered.idx, width);

        let vif = match vif {
            Some(v) => v,
            None => {
                let v = VolumeInfo {
                    version: sb.version.as_u8() as u32,
                    replication: sb.placement.to_string(),
                    bytes_offset: width.bytes() as u32,
                    ..VolumeInfo::default()
                };
                v.save(&vif_path)?;
                v
            }
        };
        let mtime = dat_meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let idx_file = Arc::new(idx_file);
        let direct = crate::direct::Direct::open(&dat_path, opts.direct_io);
        let size_limit = opts
            .size_limit
            .unwrap_or(u64::MAX)
            .min(width.max_volume_size());
        Ok(Volume {
            id,
            collection: collection.to_string(),
            dir: dir.to_path_buf(),
            base,
            dat_path,
            width,
            version: sb.version,
            placement: sb.placement,
            ttl: sb.ttl,
            size_limit,
            fsync_always: opts.fsync_always,
            direct_io: opts.direct_io,
            state: RwLock::new(State {
                map,
                dat: dat.clone(),
                idx: idx_file.clone(),
                direct: direct.clone(),
                revision: sb.compaction_revision,
            }),
            writer: Mutex::new(Writer {
                dat,
                idx: idx_file,
                dat_end: recovered.dat_len,
                idx_end: recovered.idx.len() as u64,
                last_append_ns: recovered.last_append_ns,
                direct,
            }),
            sync_lock: Mutex::new(()),
            written_upto: AtomicU64::new(recovered.dat_len),
            synced_upto: AtomicU64::new(0),
            read_only: AtomicBool::new(vif.read_only),
            closed: AtomicBool::new(false),
            last_modified: AtomicU64::new(mtime),
            vif: Mutex::new(vif),
            compaction: Mutex::new(None),
            recovery: recovered.report,
        })
    }
}
