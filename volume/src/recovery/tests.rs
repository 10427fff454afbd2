//! Crash-recovery tests: torn and corrupt tails of `.dat` and `.idx`, reopened.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use kelp_proto::{Cookie, NeedleKey};
use rand::Rng;

use crate::error::VolumeError;
use crate::needle::Version;
use crate::volume::tests::{create, data_for, needle, reopen};
use crate::volume::{Volume, VolumeOptions};

const ES: u64 = 17;

struct Fixture {
    dir: tempfile::TempDir,
    /// (key, data, byte offset of the record)
    needles: Vec<(u64, Vec<u8>, u64)>,
}

impl Fixture {
    /// `n` needles; the last one is `last_len` bytes of data.
    fn new(n: u64, last_len: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let v = create(dir.path(), &VolumeOptions::default());
        let mut needles = Vec::new();
        for k in 1..=n {
            let len = if k == n {
                last_len
            } else {
                100 + k as usize * 37
            };
            let data = data_for(k, len);
            let out = v.write(needle(k, k as u32, &data), false).unwrap();
            needles.push((k, data, out.offset));
        }
        Fixture { dir, needles }
    }

    fn path(&self, ext: &str) -> PathBuf {
        self.dir.path().join(format!("1{ext}"))
    }

    fn len(&self, ext: &str) -> u64 {
        fs::metadata(self.path(ext)).unwrap().len()
    }

    fn truncate(&self, ext: &str, len: u64) {
        OpenOptions::new()
            .write(true)
            .open(self.path(ext))
            .unwrap()
            .set_len(len)
            .unwrap();
    }

    fn append(&self, ext: &str, bytes: &[u8]) {
        OpenOptions::new()
            .append(true)
            .open(self.path(ext))
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    fn open(&self) -> Volume {
        reopen(self.dir.path(), &VolumeOptions::default())
    }

    /// Every needle but the `missing` ones reads back intact; the missing ones are absent.
    fn check(&self, v: &Volume, missing: &[u64]) {
        for (k, data, _) in &self.needles {
            let r = v.read(NeedleKey(*k), Cookie(*k as u32));
            if missing.contains(k) {
                assert!(
                    matches!(r, Err(VolumeError::NotFound { .. })),
                    "key {k}: {r:?}"
                );
            } else {
                assert_eq!(&r.unwrap().data[..], &data[..], "key {k}");
            }
        }
    }

    /// After recovery the volume takes writes and reopens cleanly.
    fn still_usable(&self, v: Volume) {
        v.write(needle(1000, 1, b"after recovery"), false).unwrap();
        drop(v);
        let v = self.open();
        assert!(!v.recovery_report().changed(), "{:?}", v.recovery_report());
        assert_eq!(
            &v.read(NeedleKey(1000), Cookie(1)).unwrap().data[..],
            b"after recovery"
        );
    }
}

#[test]
fn half_a_needle_without_index_entry_is_cut() {
    let f = Fixture::new(10, 500);
    let dat_len = f.len(".dat");
    let torn = needle(99, 1, &data_for(99, 1000))
        .encode(Version::V3)
        .unwrap();
    f.append(".dat", &torn[..torn.len() / 2]);
    let v = f.open();
    let r = v.recovery_report();
    assert_eq!(r.dat_bytes_cut, torn.len() as u64 / 2);
    assert_eq!(r.needles_reindexed, 0);
    assert_eq!(f.len(".dat"), dat_len);
    f.check(&v, &[]);
    assert!(v.read(NeedleKey(99), Cookie(1)).is_err());
    f.still_usable(v);
}

#[test]
fn torn_last_needle_with_its_index_entry_is_dropped() {
    for last_len in [500, 200_000] {
        let f = Fixture::new(10, last_len);
        let last = f.needles[9].2;
        let dat_len = f.len(".dat");
        f.truncate(".dat", last + (dat_len - last) / 2);
        let v = f.open();
        let r = v.recovery_report();
        assert_eq!(r.idx_entries_dropped, 1, "{r:?}");
        assert_eq!(f.len(".dat"), last);
        assert_eq!(f.len(".idx"), 9 * ES);
        f.check(&v, &[10]);
        f.still_usable(v);
    }
}

#[test]
fn every_cut_inside_the_last_needle_recovers() {
    let f = Fixture::new(4, 300);
    let last = f.needles[3].2;
    let dat = fs::read(f.path(".dat")).unwrap();
    let idx = fs::read(f.path(".idx")).unwrap();
    for cut in last..dat.len() as u64 {
        for idx_has_last in [true, false] {
            let g = tempfile::tempdir().unwrap();
            fs::write(g.path().join("1.dat"), &dat[..cut as usize]).unwrap();
            let idx_len = if idx_has_last {
                idx.len()
            } else {
                idx.len() - ES as usize
            };
            fs::write(g.path().join("1.idx"), &idx[..idx_len]).unwrap();
            fs::copy(f.path(".vif"), g.path().join("1.vif")).unwrap();
            let v = reopen(g.path(), &VolumeOptions::default());
            assert_eq!(v.dat_size(), last, "cut at {cut}");
            for (k, data, _) in &f.needles[..3] {
                assert_eq!(
                    &v.read(NeedleKey(*k), Cookie(*k as u32)).unwrap().data[..],
                    &data[..]
                );
            }
            assert!(v.read(NeedleKey(4), Cookie(4)).is_err());
        }
    }
}

#[test]
fn partial_index_entry_is_cut() {
    let f = Fixture::new(10, 500);
    f.append(".idx", &[1, 2, 3, 4, 5, 6, 7]);
    let v = f.open();
    assert_eq!(v.recovery_report().idx_tail_bytes_cut, 7);
    assert_eq!(f.len(".idx"), 10 * ES);
    f.check(&v, &[]);
    f.still_usable(v);
}

#[test]
fn index_missing_its_last_entries_is_rebuilt_from_the_data() {
    let f = Fixture::new(10, 500);
    {
        let v = f.open();
        v.delete(NeedleKey(9), Cookie(9)).unwrap();
    }
    let idx = fs::read(f.path(".idx")).unwrap();
    assert_eq!(idx.len() as u64, 11 * ES);
    f.truncate(".idx", 7 * ES);
    let v = f.open();
    assert_eq!(v.recovery_report().needles_reindexed, 4);
    assert_eq!(
        fs::read(f.path(".idx")).unwrap(),
        idx,
        "rebuilt entries are identical"
    );
    assert!(matches!(
        v.read(NeedleKey(9), Cookie(9)),
        Err(VolumeError::Deleted { .. })
    ));
    let mut others = f.needles.clone();
    others.retain(|n| n.0 != 9);
    let g = Fixture {
        dir: tempfile::tempdir().unwrap(),
        needles: others,
    };
    g.check(&v, &[]);
    f.still_usable(v);
}

#[test]
fn lost_index_is_rebuilt() {
    let f = Fixture::new(10, 70_000);
    fs::remove_file(f.path(".idx")).unwrap();
    let v = f.open();
    assert_eq!(v.recovery_report().needles_reindexed, 10);
    f.check(&v, &[]);
    f.still_usable(v);
}

#[test]
fn random_garbage_after_the_data_is_cut() {
    let f = Fixture::new(10, 500);
    let dat_len = f.len(".dat");
    let mut rng = rand::rng();
    let garbage: Vec<u8> = (0..1000).map(|_| rng.random()).collect();
    f.append(".dat", &garbage);
    let v = f.open();
    assert_eq!(v.recovery_report().dat_bytes_cut, 1000);
    assert_eq!(f.len(".dat"), dat_len);
    f.check(&v, &[]);
    f.still_usable(v);
}

#[test]
fn garbage_that_looks_like_a_needle_is_cut() {
    let f = Fixture::new(3, 500);
    let dat_len = f.len(".dat");
    let mut fake = needle(50, 1, &data_for(50, 300))
        .encode(Version::V3)
        .unwrap();
    let mid = fake.len() / 2;
    fake[mid] ^= 0x55; // complete, plausible, but its CRC fails
    f.append(".dat", &fake);
    let v = f.open();
    assert_eq!(f.len(".dat"), dat_len);
    assert!(v.read(NeedleKey(50), Cookie(1)).is_err());
    f.check(&v, &[]);
    f.still_usable(v);
}

#[test]
fn corrupt_last_needle_is_never_served() {
    let f = Fixture::new(10, 500);
    let last = f.needles[9].2;
    let file = OpenOptions::new().write(true).open(f.path(".dat")).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[0xff, 0xfe], last + 100).unwrap();
    let v = f.open();
    assert_eq!(v.recovery_report().idx_entries_dropped, 1);
    f.check(&v, &[10]);
    f.still_usable(v);
}

#[test]
fn garbage_index_entry_is_dropped() {
    let f = Fixture::new(5, 500);
    let mut rng = rand::rng();
    let mut junk = [0u8; ES as usize];
    rng.fill(&mut junk[..]);
    f.append(".idx", &junk);
    let v = f.open();
    assert_eq!(v.recovery_report().idx_entries_dropped, 1);
    f.check(&v, &[]);
    f.still_usable(v);
}

#[test]
fn truncated_superblock_is_a_clear_error() {
    let f = Fixture::new(1, 10);
    f.truncate(".dat", 5);
    let err = Volume::open(
        f.dir.path(),
        "",
        kelp_proto::VolumeId(1),
        &VolumeOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, VolumeError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("superblock"), "{err}");
}
