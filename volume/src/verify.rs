//! Checking a volume's files before they are ever loaded (a copy received from another
//! server): the `.dat` starts with a valid superblock and every `.idx` entry points at a
//! whole record of its key inside the `.dat`, whose header parses and whose CRC holds.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{IoContext, Result, VolumeError};
use crate::handle::NeedleHandle;
use crate::idx::{IdxEntry, OffsetWidth, entries};
use crate::needle::Version;
use crate::superblock::{SUPERBLOCK_SIZE, SuperBlock};

/// `.idx` entries read per positioned read.
const IDX_BATCH: usize = 4096;

/// What [`verify_volume_files`] checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// `.idx` entries in all.
    pub entries: u64,
    /// Entries of live needles: record read and CRC-checked.
    pub needles_checked: u64,
    /// Deletion entries whose record (the tombstone) was checked.
    pub tombstones_checked: u64,
    pub dat_bytes: u64,
    pub idx_bytes: u64,
}

/// Checks `dat` and `idx` (entries `width` wide) as described in the module doc, reading
/// the `.idx` in batches and large needles in 1 MiB pieces (bounded memory). The first
/// problem found is the error, naming the entry.
pub fn verify_volume_files(dat: &Path, idx: &Path, width: OffsetWidth) -> Result<VerifyReport> {
    let dat_file = Arc::new(File::open(dat).ctx(|| format!("opening {}", dat.display()))?);
    let dat_len = dat_file
        .metadata()
        .ctx(|| format!("stat of {}", dat.display()))?
        .len();
    let mut sb = [0u8; SUPERBLOCK_SIZE];
    if dat_len < SUPERBLOCK_SIZE as u64 {
        return Err(VolumeError::corrupt(
            dat.display().to_string(),
            format!("{dat_len} bytes: no complete superblock"),
        ));
    }
    dat_file
        .read_exact_at(&mut sb, 0)
        .ctx(|| format!("reading {}", dat.display()))?;
    let version = SuperBlock::parse(&sb).map_err(|e| e.at(dat, 0))?.version;

    let idx_file = File::open(idx).ctx(|| format!("opening {}", idx.display()))?;
    let idx_len = idx_file
        .metadata()
        .ctx(|| format!("stat of {}", idx.display()))?
        .len();
    let es = width.entry_size();
    if idx_len % es as u64 != 0 {
        return Err(VolumeError::corrupt(
            idx.display().to_string(),
            format!(
                "{idx_len} bytes is not a whole number of {es}-byte entries ({}-byte offsets)",
                width.bytes()
            ),
        ));
    }
    let dat_path: Arc<Path> = Arc::from(dat);
    let mut report = VerifyReport {
        dat_bytes: dat_len,
        idx_bytes: idx_len,
        ..VerifyReport::default()
    };
    let mut buf = vec![0u8; es * IDX_BATCH];
    let mut pos = 0u64;
    while pos < idx_len {
        let n = (buf.len() as u64).min(idx_len - pos) as usize;
        idx_file
            .read_exact_at(&mut buf[..n], pos)
            .ctx(|| format!("reading {}", idx.display()))?;
        for e in entries(&buf[..n], width) {
            check_entry(&dat_file, &dat_path, dat_len, &e, version)
                .map_err(|reason| {
                    VolumeError::corrupt(
                        format!("entry {} of {}", report.entries, idx.display()),
                        format!("key {} at offset {}: {reason}", e.key, e.byte_offset()),
                    )
                })
                .map(|checked| match checked {
                    Checked::Needle => report.needles_checked += 1,
                    Checked::Tombstone => report.tombstones_checked += 1,
                    Checked::Nothing => {}
                })?;
            report.entries += 1;
        }
        pos += n as u64;
    }
    Ok(report)
}

enum Checked {
    Needle,
    Tombstone,
    /// A deletion without a position.
    Nothing,
}

fn check_entry(
    dat: &Arc<File>,
    dat_path: &Arc<Path>,
    dat_len: u64,
    e: &IdxEntry,
    version: Version,
) -> std::result::Result<Checked, String> {
    if e.offset == 0 {
        // Offset 0 (the superblock) records a deletion in the `.idx` format.
        return Ok(Checked::Nothing);
    }
    let at = e.byte_offset();
    let mut h = NeedleHandle::open_at(dat.clone(), dat_path.clone(), dat_len, at, version)
        .map_err(|err| err.to_string())?;
    let m = h.meta();
    if m.key != e.key {
        return Err(format!("the record holds key {}", m.key));
    }
    if !e.is_put() {
        return Ok(Checked::Tombstone);
    }
    if m.size != e.size {
        return Err(format!(
            "the record's Size is {}, the entry says {}",
            m.size, e.size
        ));
    }
    h.verify_crc().map_err(|err| err.to_string())?;
    Ok(Checked::Needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Needle;
    use crate::idx::{TOMBSTONE_SIZE, encode_all};
    use crate::volume::{Volume, VolumeOptions};
    use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl, VolumeId};
    use std::path::PathBuf;

    /// A volume with small and large needles, an overwrite and a delete; its two paths.
    fn sample(dir: &Path) -> (PathBuf, PathBuf) {
        let v = Volume::create(
            dir,
            "c",
            VolumeId(4),
            ReplicaPlacement::default(),
            Ttl::EMPTY,
            &VolumeOptions::default(),
        )
        .unwrap();
        for k in 1..=20u64 {
            let len = if k == 10 { 3 << 20 } else { k as usize * 100 };
            v.write(
                Needle::new(NeedleKey(k), Cookie(k as u32), vec![k as u8; len]),
                false,
            )
            .unwrap();
        }
        v.write(Needle::new(NeedleKey(3), Cookie(3), vec![9u8; 7]), false)
            .unwrap();
        v.delete(NeedleKey(5), Cookie(5)).unwrap();
        v.sync().unwrap();
        (dir.join("c_4.dat"), dir.join("c_4.idx"))
    }

    fn flip(path: &Path, at: u64) {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut b = [0u8];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
    }

    #[test]
    fn a_good_volume_passes() {
        let d = tempfile::tempdir().unwrap();
        let (dat, idx) = sample(d.path());
        let r = verify_volume_files(&dat, &idx, OffsetWidth::Five).unwrap();
        assert_eq!(r.entries, 22);
        assert_eq!(r.needles_checked, 21);
        assert_eq!(r.tombstones_checked, 1);
        // Read as 4-byte entries the same file is not whole entries.
        assert!(verify_volume_files(&dat, &idx, OffsetWidth::Four).is_err());
    }

    #[test]
    fn truncated_or_corrupt_dats_fail() {
        let d = tempfile::tempdir().unwrap();
        let (dat, idx) = sample(d.path());
        let len = std::fs::metadata(&dat).unwrap().len();
        // Cut the last record (the tombstone) short.
        let f = std::fs::OpenOptions::new().write(true).open(&dat).unwrap();
        f.set_len(len - 9).unwrap();
        let e = verify_volume_files(&dat, &idx, OffsetWidth::Five).unwrap_err();
        assert!(e.to_string().contains("entry 21"), "{e}");
        f.set_len(len).unwrap();
        verify_volume_files(&dat, &idx, OffsetWidth::Five).unwrap();
        // A flipped byte in the large needle's data: its CRC fails.
        let large_at = entries(&std::fs::read(&idx).unwrap(), OffsetWidth::Five)
            .find(|e| e.key.0 == 10)
            .unwrap()
            .byte_offset();
        flip(&dat, large_at + 20 + (2 << 20));
        let e = verify_volume_files(&dat, &idx, OffsetWidth::Five).unwrap_err();
        assert!(e.to_string().contains("CRC"), "{e}");
        flip(&dat, large_at + 20 + (2 << 20));
        // A bad superblock.
        flip(&dat, 0);
        assert!(verify_volume_files(&dat, &idx, OffsetWidth::Five).is_err());
        flip(&dat, 0);
        // Cut to nothing but part of a superblock.
        f.set_len(5).unwrap();
        assert!(verify_volume_files(&dat, &idx, OffsetWidth::Five).is_err());
    }

    #[test]
    fn entries_that_point_wrong_fail() {
        let d = tempfile::tempdir().unwrap();
        let (dat, idx) = sample(d.path());
        let good = std::fs::read(&idx).unwrap();
        let mut list: Vec<IdxEntry> = entries(&good, OffsetWidth::Five).collect();
        let check = |list: &[IdxEntry]| {
            std::fs::write(&idx, encode_all(list, OffsetWidth::Five)).unwrap();
            verify_volume_files(&dat, &idx, OffsetWidth::Five)
        };
        // Another key's record.
        let other = list[1].offset;
        list[0].offset = other;
        assert!(check(&list).unwrap_err().to_string().contains("holds key"));
        list[0] = entries(&good, OffsetWidth::Five).next().unwrap();
        // Past the end of the .dat.
        list[2].offset = 1 << 30;
        assert!(check(&list).is_err());
        list[2] = entries(&good, OffsetWidth::Five).nth(2).unwrap();
        // A wrong size.
        list[3].size += 1;
        assert!(check(&list).is_err());
        list[3].size -= 1;
        // A deletion without a position is fine.
        list.push(IdxEntry {
            key: NeedleKey(99),
            offset: 0,
            size: TOMBSTONE_SIZE,
        });
        assert_eq!(check(&list).unwrap().entries, 23);
    }
}
