//! EC reads: any 4 of 14 shards may be missing or corrupt and every needle still reads
//! back byte-exact; corrupt chunks are detected, never served; remote shards are used.

mod ec_common;

use std::sync::atomic::{AtomicUsize, Ordering};

use ec_common::*;
use kelp_proto::{Cookie, NeedleKey};
use kelp_volume::VolumeError;
use kelp_volume::ec::{EcVolume, LocalOnly, ShardSource};

#[test]
fn any_four_missing_shards_still_read_everything() {
    let dir = encoded(&[]);
    let side = tempfile::tempdir().unwrap();
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    assert_eq!(v.local_shards().len(), 14);
    assert_eq!(v.needle_count() as u64, COUNT);
    check_all(&v, &LocalOnly, &[]);
    for combo in [
        [0u8, 1, 2, 3],
        [10, 11, 12, 13],
        [0, 5, 11, 13],
        [6, 7, 8, 9],
        [1, 4, 9, 12],
    ] {
        for &i in &combo {
            std::fs::rename(shard(dir.path(), i), side.path().join(i.to_string())).unwrap();
        }
        let v = EcVolume::open(dir.path(), BASE).unwrap();
        assert_eq!(v.local_shards().len(), 10, "{combo:?}");
        check_all(&v, &LocalOnly, &[]);
        for &i in &combo {
            std::fs::rename(side.path().join(i.to_string()), shard(dir.path(), i)).unwrap();
        }
    }
}

#[test]
fn five_missing_shards_fail_cleanly() {
    let dir = encoded(&[]);
    remove_shards(dir.path(), &[0, 1, 2, 3, 4]);
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    let mut failed = 0;
    for k in 1..=COUNT {
        match v.read_needle(NeedleKey(k), cookie(k), &LocalOnly) {
            Ok(n) => assert!(n.data == data(k)),
            Err(VolumeError::EcUnrecoverable { needed, .. }) => {
                assert_eq!(needed, 10);
                failed += 1;
            }
            Err(e) => panic!("key {k}: {e}"),
        }
    }
    assert!(failed > 0 && failed < COUNT as usize, "{failed}");
}

#[test]
fn corrupt_chunks_are_detected_and_reads_stay_correct() {
    let dir = encoded(&[]);
    let len = std::fs::metadata(shard(dir.path(), 2)).unwrap().len();
    // Damage shard 2 in several chunks, shard 12 (parity) in one, and lose 2 more.
    for at in [100, 70_000, 1 << 20, len / 3] {
        flip(&shard(dir.path(), 2), at);
    }
    flip(&shard(dir.path(), 12), 5000);
    remove_shards(dir.path(), &[7, 13]);
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    assert_eq!(v.local_shards().len(), 12);
    let e = v.shard_read(2, 100, 10).unwrap_err();
    assert!(matches!(e, VolumeError::Corrupt { .. }), "{e}");
    assert!(v.shard_read(2, 16 << 10, 100).is_ok(), "healthy chunk");
    assert!(matches!(
        v.shard_read(7, 0, 10),
        Err(VolumeError::EcShardUnavailable { shard: 7, .. })
    ));
    check_all(&v, &LocalOnly, &[]);
}

#[test]
fn a_damaged_trailer_makes_the_shard_count_as_missing() {
    let dir = encoded(&[]);
    let p = shard(dir.path(), 4);
    let len = std::fs::metadata(&p).unwrap().len();
    flip(&p, len - 3);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(shard(dir.path(), 9))
        .unwrap();
    f.set_len(len - 100).unwrap();
    let v = EcVolume::open(dir.path(), BASE).unwrap();
    assert_eq!(
        v.local_shards(),
        vec![0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13]
    );
    check_all(&v, &LocalOnly, &[]);
}

/// Serves shards from another EcVolume (as a remote server would) and counts the calls.
struct Remote {
    v: EcVolume,
    calls: AtomicUsize,
}

impl ShardSource for Remote {
    fn read(&self, shard: u8, offset: u64, len: usize) -> kelp_volume::Result<Option<Vec<u8>>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match self.v.shard_read(shard, offset, len) {
            Ok(b) => Ok(Some(b)),
            Err(VolumeError::EcShardUnavailable { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[test]
fn remote_shards_are_read_through_the_source() {
    let dir = encoded(&[]);
    let remote_dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), remote_dir.path().join(f.file_name())).unwrap();
    }
    // Locally only shards 5..14 remain; the remote has 0..3 (shard 4 is gone everywhere).
    remove_shards(dir.path(), &[0, 1, 2, 3, 4]);
    remove_shards(remote_dir.path(), &[4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    let local = EcVolume::open(dir.path(), BASE).unwrap();
    let remote = Remote {
        v: EcVolume::open(remote_dir.path(), BASE).unwrap(),
        calls: AtomicUsize::new(0),
    };
    check_all(&local, &remote, &[]);
    assert!(remote.calls.load(Ordering::Relaxed) > 0);
    // A wrong cookie is a 404-class error, not data.
    let e = local
        .read_needle(NeedleKey(5), Cookie(cookie(5).0 ^ 1), &remote)
        .unwrap_err();
    assert!(matches!(e, VolumeError::CookieMismatch { .. }), "{e}");
}
