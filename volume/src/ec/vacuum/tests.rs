//! Crash points of the EC vacuum commit: each leaves the old or the new shard set whole.

use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl, VolumeId};

use super::*;
use crate::ec::{EcConfig, LocalOnly, encode_volume_with};
use crate::volume::{Volume, VolumeOptions};

const CFG: EcConfig = EcConfig {
    data_shards: 4,
    parity_shards: 2,
    block_size: 4096,
    chunk_size: 1024,
};

fn data(k: u64) -> Vec<u8> {
    (0..(k as usize * 37) % 3000 + 1)
        .map(|i| (i as u64 * 31 + k) as u8)
        .collect()
}

/// A 200-needle EC volume with keys 1..=50 deleted after encoding.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let v = Volume::create(
        dir.path(),
        "",
        VolumeId(3),
        ReplicaPlacement::default(),
        Ttl::EMPTY,
        &VolumeOptions::default(),
    )
    .unwrap();
    for k in 1..=200u64 {
        v.write(Needle::new(NeedleKey(k), Cookie(9), data(k)), false)
            .unwrap();
    }
    v.sync().unwrap();
    drop(v);
    encode_volume_with(dir.path(), "3", &CFG).unwrap();
    let ec = EcVolume::open(dir.path(), "3").unwrap();
    for k in 1..=50u64 {
        ec.delete(NeedleKey(k)).unwrap();
    }
    dir
}

fn check(dir: &Path, expect_deleted_in_index: bool) {
    let ec = EcVolume::open(dir, "3").unwrap();
    assert_eq!(ec.local_shards().len(), 6);
    assert_eq!(
        ec.needle_count(),
        if expect_deleted_in_index { 200 } else { 150 }
    );
    for k in 1..=200u64 {
        let r = ec.read_needle(NeedleKey(k), Cookie(9), &LocalOnly);
        if k <= 50 {
            assert!(r.unwrap_err().is_not_found(), "key {k}");
        } else {
            assert_eq!(r.unwrap().data, data(k), "key {k}");
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".vac") || n.ends_with(".ecvac"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn crash_before_the_marker_keeps_the_old_set() {
    let dir = setup();
    ec_vacuum_until(dir.path(), "3", Some(Stop::BeforeMarker)).unwrap();
    check(dir.path(), true);
}

#[test]
fn crash_during_the_renames_rolls_forward() {
    for renamed in [0, 3, 8] {
        let dir = setup();
        let r = ec_vacuum_until(dir.path(), "3", Some(Stop::AfterRenames(renamed))).unwrap();
        assert!(r.dat_bytes_after < r.dat_bytes_before);
        check(dir.path(), false);
    }
}

#[test]
fn full_vacuum_shrinks() {
    let dir = setup();
    let r = ec_vacuum(dir.path(), "3").unwrap();
    assert_eq!((r.needles_kept, r.deleted_dropped), (150, 50));
    assert!(r.shard_bytes_after <= r.shard_bytes_before);
    check(dir.path(), false);
    let info = EcVolume::open(dir.path(), "3").unwrap().info().clone();
    assert_eq!(info.compaction_revision, 1);
}
