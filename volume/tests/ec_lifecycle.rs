//! EC lifecycle: deletes before and after encoding, rebuilding lost shards byte for byte,
//! decoding back to a normal volume, and EC vacuum.

mod ec_common;

use ec_common::*;
use kelp_proto::NeedleKey;
use kelp_volume::VolumeError;
use kelp_volume::ec::{self, EcVolume, LocalOnly};

/// Deleted with the volume API before encoding.
const BEFORE: [u64; 5] = [2, 300, 301, 999, 2400];
/// Deleted through the EC volume after encoding.
const AFTER: [u64; 5] = [3, 600, 1200, 1777, 3000];

fn gone() -> Vec<u64> {
    BEFORE.iter().chain(&AFTER).copied().collect()
}

#[test]
fn deletes_before_and_after_encoding() {
    let dir = encoded(&BEFORE);
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    assert_eq!(v.needle_count() as u64, COUNT - BEFORE.len() as u64);
    for k in BEFORE {
        assert!(v.locate(NeedleKey(k)).is_none());
        assert!(matches!(
            v.delete(NeedleKey(k)),
            Err(VolumeError::NotFound { .. })
        ));
    }
    for k in AFTER {
        assert!(v.locate(NeedleKey(k)).is_some());
        assert_eq!(
            v.delete(NeedleKey(k)).unwrap(),
            needle(k).size_field(kelp_volume::Version::V3).unwrap()
        );
        assert!(v.locate(NeedleKey(k)).is_none(), "honoured at once");
        assert!(matches!(
            v.delete(NeedleKey(k)),
            Err(VolumeError::Deleted { .. })
        ));
    }
    check_all(&v, &LocalOnly, &gone());
    drop(v);
    remove_shards(dir.path(), &[1, 3, 10, 12]);
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    assert_eq!(v.deleted_count(), AFTER.len());
    check_all(&v, &LocalOnly, &gone());
}

/// Deletions caught up from another holder's journal: only live keys of this index,
/// each once, journaled for good (they survive a reopen).
#[test]
fn merged_deletions_are_journaled_once() {
    let dir = encoded(&BEFORE);
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    v.delete(NeedleKey(AFTER[0])).unwrap();
    // A peer's journal: one key known here already, the others new, one twice, plus
    // keys this index does not hold (deleted before encoding, or never written).
    let peer = [
        AFTER[0], AFTER[1], AFTER[2], AFTER[2], AFTER[3], AFTER[4], BEFORE[0], 999_999,
    ];
    assert_eq!(v.merge_deletions(&peer).unwrap(), AFTER.len() - 1);
    assert_eq!(
        v.merge_deletions(&peer).unwrap(),
        0,
        "a second merge adds nothing"
    );
    check_all(&v, &LocalOnly, &gone());
    drop(v);
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    assert_eq!(v.deleted_count(), AFTER.len());
    check_all(&v, &LocalOnly, &gone());
}

#[test]
fn rebuild_restores_lost_and_corrupt_shards_byte_identical() {
    let dir = encoded(&[]);
    let originals: Vec<Vec<u8>> = (0..14)
        .map(|i| std::fs::read(shard(dir.path(), i)).unwrap())
        .collect();
    assert!(ec::rebuild_missing(dir.path(), BASE).unwrap().is_empty());
    // Lose two data and one parity shard, and damage one chunk of another data shard.
    remove_shards(dir.path(), &[0, 6, 11]);
    flip(&shard(dir.path(), 9), 123_456);
    assert_eq!(
        ec::rebuild_missing(dir.path(), BASE).unwrap(),
        vec![0, 6, 9, 11]
    );
    for i in 0..14u8 {
        let now = std::fs::read(shard(dir.path(), i)).unwrap();
        assert!(
            now == originals[i as usize],
            "shard {i} differs after rebuild"
        );
    }
    // All parity lost: re-encoded from the data.
    remove_shards(dir.path(), &[10, 11, 12, 13]);
    assert_eq!(
        ec::rebuild_missing(dir.path(), BASE).unwrap(),
        vec![10, 11, 12, 13]
    );
    for i in 10..14u8 {
        assert!(std::fs::read(shard(dir.path(), i)).unwrap() == originals[i as usize]);
    }
    // Five lost: refused, nothing written.
    remove_shards(dir.path(), &[0, 1, 2, 3, 4]);
    assert!(matches!(
        ec::rebuild_missing(dir.path(), BASE),
        Err(VolumeError::EcUnrecoverable {
            available: 9,
            needed: 10,
            ..
        })
    ));
    assert!(!shard(dir.path(), 0).exists());
}

#[test]
fn decode_gives_back_a_byte_exact_volume() {
    let dir = encoded(&BEFORE);
    let dat = dir.path().join(format!("{BASE}.dat"));
    let idx = dir.path().join(format!("{BASE}.idx"));
    let original_dat = std::fs::read(&dat).unwrap();
    let original_idx = std::fs::read(&idx).unwrap();
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    for k in AFTER {
        v.delete(NeedleKey(k)).unwrap();
    }
    drop(v);
    std::fs::remove_file(&dat).unwrap();
    std::fs::remove_file(&idx).unwrap();
    remove_shards(dir.path(), &[2, 5, 8, 13]);

    let r = ec::decode_to_volume(dir.path(), BASE).unwrap();
    assert_eq!(r.tombstones, AFTER.len() as u64);
    assert_eq!(r.live_needles, COUNT - gone().len() as u64);
    let new_dat = std::fs::read(&dat).unwrap();
    let new_idx = std::fs::read(&idx).unwrap();
    assert!(
        new_dat[..original_dat.len()] == original_dat[..],
        "the .dat prefix is byte-exact"
    );
    assert_eq!(
        new_dat.len() - original_dat.len(),
        32 * AFTER.len(),
        "one tombstone each"
    );
    assert!(
        new_idx[..original_idx.len()] == original_idx[..],
        "the .idx replays the same records"
    );
    assert_eq!(ec::remove_ec_files(dir.path(), BASE).unwrap(), 12);

    let vol = open_volume(dir.path());
    assert!(
        !vol.recovery_report().changed(),
        "{:?}",
        vol.recovery_report()
    );
    assert!(!vol.is_read_only());
    for k in 1..=COUNT {
        let r = vol.read(NeedleKey(k), cookie(k));
        if gone().contains(&k) {
            assert!(r.unwrap_err().is_not_found(), "key {k}");
        } else {
            assert!(r.unwrap().data == data(k), "key {k}");
        }
    }
}

#[test]
fn ec_vacuum_shrinks_the_shards_and_keeps_live_data() {
    // Delete most of the big needles (before and after encoding) so there is space to win.
    let before: Vec<u64> = (1..=COUNT).filter(|k| k.is_multiple_of(600)).collect();
    let after: Vec<u64> = (1..=COUNT)
        .filter(|k| k.is_multiple_of(300) && !k.is_multiple_of(600) || k.is_multiple_of(74))
        .collect();
    let dir = encoded(&before);
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    for &k in &after {
        v.delete(NeedleKey(k)).unwrap();
    }
    let old = v.geometry();
    drop(v);
    let old_len = std::fs::metadata(shard(dir.path(), 0)).unwrap().len();
    let r = ec::ec_vacuum(dir.path(), BASE).unwrap();
    assert_eq!(r.deleted_dropped, after.len() as u64);
    assert_eq!(
        r.needles_kept,
        COUNT - before.len() as u64 - after.len() as u64
    );
    assert!(r.dat_bytes_after < old.dat_size / 2, "{r:?}");
    assert!(std::fs::metadata(shard(dir.path(), 0)).unwrap().len() < old_len / 2);

    let gone: Vec<u64> = before.iter().chain(&after).copied().collect();
    remove_shards(dir.path(), &[0, 4, 10, 13]);
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    assert_eq!(v.deleted_count(), 0);
    assert_eq!(v.info().compaction_revision, 1);
    check_all(&v, &LocalOnly, &gone);
    drop(v);
    // The vacuumed set rebuilds and decodes like any other.
    assert_eq!(
        ec::rebuild_missing(dir.path(), BASE).unwrap(),
        vec![0, 4, 10, 13]
    );
    ec::decode_to_volume(dir.path(), BASE).unwrap();
    let vol = open_volume(dir.path());
    assert_eq!(vol.compaction_revision(), 1);
    assert_eq!(vol.stats().live_count(), r.needles_kept);
}
