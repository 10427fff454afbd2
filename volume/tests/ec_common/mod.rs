//! Shared fixture of the EC integration tests: a real volume of ~3000 needles, 1 B to 5 MiB.

// Fixture helpers run outside #[test] functions, where clippy.toml's test allowance does
// not reach: a broken fixture must panic loudly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl, VolumeId};
use kelp_volume::ec::{self, EcConfig, EcVolume, ShardSource};
use kelp_volume::{Needle, Volume, VolumeOptions};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

pub const BASE: &str = "pics_7";
pub const COUNT: u64 = 3000;
/// Small blocks so the ~100 MB test volume spans many stripes.
pub const CFG: EcConfig = EcConfig {
    data_shards: 10,
    parity_shards: 4,
    block_size: 256 << 10,
    chunk_size: 16 << 10,
};

pub fn cookie(k: u64) -> Cookie {
    Cookie((k as u32).wrapping_mul(2_654_435_761))
}

/// The data of needle `k`: every 300th is 5 MiB, every 37th 64-512 KiB, the rest 1 B-16 KiB.
pub fn data(k: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(k);
    let len = if k.is_multiple_of(300) {
        5 << 20
    } else if k.is_multiple_of(37) {
        rng.random_range(64 << 10..512 << 10)
    } else if k.is_multiple_of(11) {
        1
    } else {
        rng.random_range(1..16 << 10)
    };
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

pub fn needle(k: u64) -> Needle {
    let mut n = Needle::new(NeedleKey(k), cookie(k), data(k));
    if k.is_multiple_of(3) {
        n.name = Some(format!("file-{k}.bin").into_bytes());
        n.mime = Some(b"application/octet-stream".to_vec());
        n.last_modified = Some(1_700_000_000 + k);
    }
    n
}

pub fn open_volume(dir: &Path) -> Volume {
    Volume::open(dir, "pics", VolumeId(7), &VolumeOptions::default()).expect("open volume")
}

/// Writes needles 1..=COUNT into a new volume `pics_7` in `dir`, then deletes `deleted`.
pub fn build_volume(dir: &Path, deleted: &[u64]) {
    let v = Volume::create(
        dir,
        "pics",
        VolumeId(7),
        ReplicaPlacement::default(),
        Ttl::EMPTY,
        &VolumeOptions::default(),
    )
    .expect("create");
    for k in 1..=COUNT {
        v.write(needle(k), false).expect("write");
    }
    for &k in deleted {
        v.delete(NeedleKey(k), cookie(k)).expect("delete");
    }
    v.sync().expect("sync");
}

/// Builds and encodes; returns the temp dir.
pub fn encoded(deleted: &[u64]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    build_volume(dir.path(), deleted);
    let r = ec::encode_volume_with(dir.path(), BASE, &CFG).expect("encode");
    assert_eq!(r.shards, 14);
    dir
}

pub fn shard(dir: &Path, i: u8) -> PathBuf {
    dir.join(format!("{BASE}.ec{i:02}"))
}

pub fn remove_shards(dir: &Path, ids: &[u8]) {
    for &i in ids {
        std::fs::remove_file(shard(dir, i)).expect("remove shard");
    }
}

/// Checks every needle of 1..=COUNT: `gone` ones are 404s, the others read back exactly.
pub fn check_all(v: &EcVolume, src: &dyn ShardSource, gone: &[u64]) {
    for k in 1..=COUNT {
        let r = v.read_needle(NeedleKey(k), cookie(k), src);
        if gone.contains(&k) {
            let e = r.expect_err("deleted needle must not read");
            assert!(e.is_not_found(), "key {k}: {e}");
            continue;
        }
        let n = r.unwrap_or_else(|e| panic!("key {k}: {e}"));
        let want = needle(k);
        assert!(n.data == want.data, "key {k}: data differs");
        assert_eq!(n.name, want.name, "key {k}");
        assert_eq!(n.mime, want.mime, "key {k}");
    }
}

/// Flips one byte of a file.
pub fn flip(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).expect("read");
    f.write_all_at(&[b[0] ^ 0x5a], at).expect("write");
}
