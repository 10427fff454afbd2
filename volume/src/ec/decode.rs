//! Decoding: turn the shards back into a normal `.dat`/`.idx`/`.vif` that `Volume::open`
//! opens. Deletions from the `.ecj` are folded in as tombstones appended to the `.dat`
//! (exactly what `Volume::delete` writes), so every live needle keeps its bytes and offset.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::error::{IoContext, Result};
use crate::fsutil::{remove_if_exists, sync_dir};
use crate::handle::NeedleHandle;
use crate::idx::{IdxEntry, TOMBSTONE_SIZE, encode_all};
use crate::needle::{CHECKSUM_SIZE, HEADER_SIZE, NEEDLE_ALIGN, Needle, NeedleHeader, be_u32};
use crate::needle_map::NeedleMap;
use crate::superblock::SUPERBLOCK_SIZE;
use crate::volume::now_ns;

use super::MAX_SHARDS;
use super::layout::{ec_path, shard_path, with_suffix};
use super::volume::{EcVolume, LocalOnly};

/// What a decode wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeReport {
    /// Bytes of the new `.dat` (tombstones included).
    pub dat_bytes: u64,
    pub live_needles: u64,
    /// Needles deleted in the `.ecj`, now tombstoned in the `.dat`.
    pub tombstones: u64,
    pub seconds: f64,
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

/// Walks the records of a `.dat` image and returns the `.idx` entries they imply (Size 0 =
/// delete), stopping at the first invalid record, plus the last AppendAtNs seen.
fn walk(dat: &Arc<File>, path: &Arc<Path>, len: u64, v: &EcVolume) -> (Vec<IdxEntry>, u64) {
    let (mut out, mut last_ns) = (Vec::new(), 0);
    let mut pos = SUPERBLOCK_SIZE as u64;
    while pos + HEADER_SIZE as u64 <= len {
        let Ok(h) = NeedleHandle::open_at(dat.clone(), path.clone(), len, pos, v.info().version)
        else {
            break;
        };
        let m = h.meta();
        let size = if m.size == 0 { TOMBSTONE_SIZE } else { m.size };
        out.push(IdxEntry {
            key: m.key,
            offset: pos / NEEDLE_ALIGN,
            size,
        });
        last_ns = last_ns.max(m.append_at_ns);
        pos += h.record_span().1;
    }
    (out, last_ns)
}

/// Rebuilds `<dir>/<base>.dat`, `.idx` and `.vif` from the shards (any `data_shards` of
/// them). The `.dat` is byte-identical to the encoded one, followed by a tombstone per
/// `.ecj` deletion; the `.idx` replays every record of the `.dat` (or, if that disagrees
/// with the `.ecx`, the `.ecx` entries in offset order), then the tombstones. Existing
/// `.dat`/`.idx` files are replaced; the EC files are left for [`remove_ec_files`].
pub fn decode_to_volume(dir: &Path, base: &str) -> Result<DecodeReport> {
    let start = Instant::now();
    let v = EcVolume::open(dir, base)?;
    let geo = v.geometry();
    let version = v.info().version;
    let dat_path = ec_path(dir, base, ".dat");
    let tmp_path: Arc<Path> = Arc::from(with_suffix(&dat_path, ".ecd").as_path());
    let mut f = create(&tmp_path)?;
    let all_data: Vec<usize> = (0..geo.data_shards()).collect();
    let none = vec![false; geo.total_shards()];
    let mut pos = 0u64;
    for s in 0..geo.stripes() {
        for b in v.gather(s, 0, geo.block(), &all_data, &LocalOnly, &none)? {
            let n = geo.block().min(geo.dat_size - pos) as usize;
            f.write_all(&b[..n])
                .ctx(|| format!("writing {}", tmp_path.display()))?;
            pos += n as u64;
        }
    }
    let dat = Arc::new(f);
    let (mut entries, mut last_ns) = walk(&dat, &tmp_path, pos, &v);
    let mut map = NeedleMap::new();
    for e in &entries {
        map.apply(e);
    }
    let live: Vec<IdxEntry> = v.index().iter().filter(IdxEntry::is_put).collect();
    let agrees = map.live_entries() == live;
    if !agrees {
        tracing::warn!(
            volume = base,
            "the .dat records disagree with the .ecx; indexing from the .ecx"
        );
        entries = live.clone();
        entries.sort_unstable_by_key(|e| e.offset);
    }
    let mut deleted: Vec<IdxEntry> = live.into_iter().filter(|e| v.is_deleted(e.key)).collect();
    deleted.sort_unstable_by_key(|e| e.key);
    let read = |buf: &mut [u8], at: u64| {
        dat.read_exact_at(buf, at)
            .ctx(|| format!("reading {} at {at}", tmp_path.display()))
    };
    for e in &deleted {
        let mut hb = [0u8; HEADER_SIZE];
        read(&mut hb, e.byte_offset())?;
        let h = NeedleHeader::parse(&hb);
        let mut cb = [0u8; CHECKSUM_SIZE];
        read(
            &mut cb,
            e.byte_offset() + HEADER_SIZE as u64 + h.size as u64,
        )?;
        let mut t = Needle::tombstone(e.key, h.cookie, be_u32(&cb));
        last_ns = now_ns().max(last_ns + 1);
        t.append_at_ns = last_ns;
        let bytes = t.encode(version)?;
        dat.write_all_at(&bytes, pos)
            .ctx(|| format!("writing {}", tmp_path.display()))?;
        entries.push(IdxEntry {
            key: e.key,
            offset: pos / NEEDLE_ALIGN,
            size: TOMBSTONE_SIZE,
        });
        pos += bytes.len() as u64;
    }
    dat.sync_all()
        .ctx(|| format!("fsync of {}", tmp_path.display()))?;
    let idx_path = ec_path(dir, base, ".idx");
    let idx_tmp = with_suffix(&idx_path, ".ecd");
    let mut idx = create(&idx_tmp)?;
    idx.write_all(&encode_all(&entries, v.info().offset_width))
        .and_then(|()| idx.sync_all())
        .ctx(|| format!("writing {}", idx_tmp.display()))?;
    std::fs::rename(&*tmp_path, &dat_path)
        .ctx(|| format!("renaming {} to {}", tmp_path.display(), dat_path.display()))?;
    std::fs::rename(&idx_tmp, &idx_path)
        .ctx(|| format!("renaming {} to {}", idx_tmp.display(), idx_path.display()))?;
    let vif_path = ec_path(dir, base, ".vif");
    let (_, mut vi) = super::info::EcInfo::load(&vif_path)?;
    vi.ec_shard_config = serde_json::Value::Null;
    vi.read_only = false;
    vi.dat_file_size = 0;
    vi.save(&vif_path)?;
    sync_dir(dir)?;
    Ok(DecodeReport {
        dat_bytes: pos,
        live_needles: (v.index().len() - deleted.len()) as u64,
        tombstones: deleted.len() as u64,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Removes the EC files of `<dir>/<base>` (shards, `.ecx`, `.ecj` and leftovers), not the
/// `.vif`. Returns how many files were removed.
pub fn remove_ec_files(dir: &Path, base: &str) -> Result<usize> {
    let mut n = 0;
    let mut paths = vec![ec_path(dir, base, ".ecx"), ec_path(dir, base, ".ecj")];
    paths.extend((0..MAX_SHARDS).map(|i| shard_path(dir, base, i as u8)));
    for p in paths {
        for q in [with_suffix(&p, ".tmp"), with_suffix(&p, ".vac"), p] {
            n += usize::from(remove_if_exists(&q)?);
        }
    }
    remove_if_exists(&ec_path(dir, base, ".ecvac"))?;
    sync_dir(dir)?;
    Ok(n)
}
