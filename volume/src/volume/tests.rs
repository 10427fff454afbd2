//! Tests of volume appends, reads, deletes, limits, fsync and offset widths.

use std::sync::Arc;

use bytes::Bytes;
use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl, VolumeId};

use super::*;
use crate::idx::{IdxEntry, TOMBSTONE_SIZE, entries};

pub(crate) fn create(dir: &Path, opts: &VolumeOptions) -> Volume {
    Volume::create(
        dir,
        "",
        VolumeId(1),
        ReplicaPlacement::default(),
        Ttl::EMPTY,
        opts,
    )
    .unwrap()
}

pub(crate) fn reopen(dir: &Path, opts: &VolumeOptions) -> Volume {
    Volume::open(dir, "", VolumeId(1), opts).unwrap()
}

pub(crate) fn needle(key: u64, cookie: u32, data: &[u8]) -> Needle {
    let mut n = Needle::new(NeedleKey(key), Cookie(cookie), Bytes::copy_from_slice(data));
    n.name = Some(format!("file{key}.bin").into_bytes());
    n.mime = Some(b"application/octet-stream".to_vec());
    n.last_modified = Some(now_secs());
    n
}

pub(crate) fn data_for(key: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u64 * 31 + key * 7) as u8).collect()
}

fn idx_entries(v: &Volume) -> Vec<IdxEntry> {
    let bytes = std::fs::read(v.path_with(".idx")).unwrap();
    entries(&bytes, v.offset_width()).collect()
}

#[test]
fn write_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    assert_eq!(v.dat_size(), 8);
    let n = needle(1, 0xabc, b"hello world\n");
    let out = v.write(n.clone(), false).unwrap();
    assert!(!out.unchanged);
    assert_eq!(out.offset, 8);
    assert_eq!(out.etag(), "f0ff7292");
    let back = v.read(NeedleKey(1), Cookie(0xabc)).unwrap();
    assert_eq!(back.data, n.data);
    assert_eq!(back.name, n.name);
    assert_eq!(back.mime, n.mime);
    assert_eq!(back.last_modified, n.last_modified);
    assert!(back.append_at_ns > 0);
    assert_eq!(v.stats().file_count, 1);
    assert_eq!(v.max_file_key(), 1);
    let e = idx_entries(&v);
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].offset, e[0].size), (1, out.size));
    assert!(matches!(
        v.read(NeedleKey(2), Cookie(0xabc)),
        Err(VolumeError::NotFound { .. })
    ));
}

#[test]
fn large_needles_stream_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    let data = data_for(5, 3 << 20);
    v.write(needle(5, 9, &data), false).unwrap();
    let mut h = v.open_needle(NeedleKey(5), Cookie(9)).unwrap();
    assert!(!h.crc_verified());
    assert_eq!(h.data_len(), data.len() as u64);
    assert_eq!(h.meta().name.as_deref(), Some(&b"file5.bin"[..]));
    h.verify_crc().unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 100_000];
    let mut pos = 0;
    loop {
        let n = h.read_data_at(pos, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        pos += n as u64;
    }
    assert_eq!(got, data);
    assert_eq!(h.etag(), crate::needle::etag(crc(&data)));
}

#[test]
fn large_needle_with_a_flipped_byte_fails_its_crc() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    let out = v.write(needle(5, 9, &data_for(5, 200_000)), false).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(v.dat_path())
        .unwrap();
    f.write_all_at(&[0xee], out.offset + 20 + 150_000).unwrap();
    let mut h = v.open_needle(NeedleKey(5), Cookie(9)).unwrap();
    assert!(matches!(
        h.verify_crc(),
        Err(VolumeError::CrcMismatch { .. })
    ));
    assert!(v.read(NeedleKey(5), Cookie(9)).is_err());
}

/// Large needles go around the page cache (where the file system allows) and small ones
/// through it, in the same file: every needle reads back whole, CRC-checked, after a
/// reopen and after a vacuum, and a byte changed through the page cache in the middle
/// of a large needle is seen by the next read, not hidden by the direct path.
#[test]
fn large_needles_around_the_page_cache_read_back_everywhere() {
    for direct_io in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let opts = VolumeOptions {
            direct_io,
            ..VolumeOptions::default()
        };
        let v = create(dir.path(), &opts);
        let sizes = [(3 << 20) + 5, 100, 2 << 20, (8 << 20) + 77, 10, 1 << 20];
        for (i, len) in sizes.iter().enumerate() {
            let k = i as u64 + 1;
            v.write(needle(k, 7, &data_for(k, *len)), false).unwrap();
        }
        v.delete(NeedleKey(2), Cookie(7)).unwrap();
        let check = |v: &Volume, when: &str| {
            for (i, len) in sizes.iter().enumerate() {
                let k = i as u64 + 1;
                let got = v.read(NeedleKey(k), Cookie(7));
                if k == 2 {
                    assert!(got.is_err(), "{when}: the deleted needle is served");
                    continue;
                }
                let got = got.unwrap_or_else(|e| panic!("{when}: needle {k}: {e}"));
                assert!(
                    got.data[..] == data_for(k, *len)[..],
                    "{when}: needle {k} differs"
                );
            }
        };
        check(&v, "after writing");
        drop(v);
        let v = reopen(dir.path(), &opts);
        check(&v, "after reopening");
        v.vacuum().unwrap();
        check(&v, "after a vacuum");
        v.write(needle(9, 7, &data_for(9, 5 << 20)), false).unwrap();
        check(&v, "after a write into the vacuumed volume");
        let h = v.open_needle(NeedleKey(9), Cookie(7)).unwrap();
        let (record, _) = h.record_span();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(v.dat_path())
            .unwrap();
        let mut byte = [0u8];
        f.read_exact_at(&mut byte, record + (3 << 20)).unwrap();
        f.write_all_at(&[!byte[0]], record + (3 << 20)).unwrap();
        assert!(
            matches!(
                v.read(NeedleKey(9), Cookie(7)),
                Err(VolumeError::CrcMismatch { .. })
            ),
            "direct_io={direct_io}: a changed byte went unnoticed"
        );
    }
}

#[test]
fn cookies_are_checked_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    v.write(needle(1, 111, b"abc"), false).unwrap();
    assert!(matches!(
        v.read(NeedleKey(1), Cookie(222)),
        Err(VolumeError::CookieMismatch { .. })
    ));
    assert!(matches!(
        v.write(needle(1, 222, b"other"), false),
        Err(VolumeError::CookieMismatch { .. })
    ));
    assert!(matches!(
        v.delete(NeedleKey(1), Cookie(222)),
        Err(VolumeError::CookieMismatch { .. })
    ));
    assert_eq!(v.read(NeedleKey(1), Cookie(111)).unwrap().data, &b"abc"[..]);
}

#[test]
fn identical_rewrite_is_unchanged_and_a_new_body_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    let first = v.write(needle(1, 7, b"same bytes"), false).unwrap();
    let size = v.dat_size();
    let again = v.write(needle(1, 7, b"same bytes"), false).unwrap();
    assert!(again.unchanged);
    assert_eq!(again.offset, first.offset);
    assert_eq!(v.dat_size(), size);
    let newer = v.write(needle(1, 7, b"new bytes!"), false).unwrap();
    assert!(!newer.unchanged);
    assert_eq!(
        v.read(NeedleKey(1), Cookie(7)).unwrap().data,
        &b"new bytes!"[..]
    );
    let s = v.stats();
    assert_eq!((s.file_count, s.delete_count, s.live_count()), (2, 1, 1));
    assert!(v.garbage_ratio() > 0.4);
}

#[test]
fn delete_appends_a_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    let out = v.write(needle(3, 5, b"to be deleted"), false).unwrap();
    let before = v.dat_size();
    assert_eq!(v.delete(NeedleKey(3), Cookie(5)).unwrap(), out.size);
    assert_eq!(v.dat_size(), before + 32);
    assert!(matches!(
        v.read(NeedleKey(3), Cookie(5)),
        Err(VolumeError::Deleted { .. })
    ));
    assert!(matches!(
        v.delete(NeedleKey(3), Cookie(5)),
        Err(VolumeError::Deleted { .. })
    ));
    assert!(matches!(
        v.delete(NeedleKey(4), Cookie(5)),
        Err(VolumeError::NotFound { .. })
    ));
    let e = idx_entries(&v);
    assert_eq!(e[1].size, TOMBSTONE_SIZE);
    assert_eq!(e[1].byte_offset(), before);
    let t = std::fs::read(v.dat_path()).unwrap();
    let t = &t[before as usize..];
    assert_eq!(&t[12..16], &[0, 0, 0, 0]);
    assert_eq!(&t[16..20], &out.checksum.to_be_bytes());
    // readDeleted still finds the bytes until a vacuum.
    let opts = ReadOptions {
        allow_deleted: true,
        ..ReadOptions::default()
    };
    let h = v.open_needle_with(NeedleKey(3), Cookie(5), opts).unwrap();
    assert_eq!(h.data_len(), 13);
    // Survives a reopen.
    drop(v);
    let v = reopen(dir.path(), &VolumeOptions::default());
    assert!(matches!(
        v.read(NeedleKey(3), Cookie(5)),
        Err(VolumeError::Deleted { .. })
    ));
    assert!(!v.recovery_report().changed());
}

#[test]
fn ttl_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    let mut n = needle(1, 1, b"short lived");
    n.ttl = Some("1m".parse().unwrap());
    n.last_modified = Some(now_secs() - 120);
    v.write(n, false).unwrap();
    assert!(matches!(
        v.read(NeedleKey(1), Cookie(1)),
        Err(VolumeError::Expired { .. })
    ));
    let mut n = needle(2, 1, b"fresh");
    n.ttl = Some("1m".parse().unwrap());
    v.write(n, false).unwrap();
    v.read(NeedleKey(2), Cookie(1)).unwrap();
    let opts = ReadOptions {
        ignore_ttl: true,
        ..ReadOptions::default()
    };
    v.open_needle_with(NeedleKey(1), Cookie(1), opts).unwrap();

    // A TTL volume stamps its TTL on needles that have none.
    let dir2 = tempfile::tempdir().unwrap();
    let tv = Volume::create(
        dir2.path(),
        "logs",
        VolumeId(4),
        ReplicaPlacement::default(),
        "1h".parse().unwrap(),
        &VolumeOptions::default(),
    )
    .unwrap();
    assert!(dir2.path().join("logs_4.dat").exists());
    let mut n = needle(1, 1, b"old");
    n.last_modified = Some(now_secs() - 7200);
    tv.write(n, false).unwrap();
    tv.write(needle(2, 1, b"new"), false).unwrap();
    assert!(matches!(
        tv.read(NeedleKey(1), Cookie(1)),
        Err(VolumeError::Expired { .. })
    ));
    assert_eq!(
        tv.read(NeedleKey(2), Cookie(1)).unwrap().ttl,
        Some("1h".parse().unwrap())
    );
}

#[test]
fn read_only_is_enforced_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    v.write(needle(1, 1, b"x"), false).unwrap();
    v.set_read_only(true).unwrap();
    assert!(matches!(
        v.write(needle(2, 1, b"y"), false),
        Err(VolumeError::ReadOnly(_))
    ));
    assert!(matches!(
        v.delete(NeedleKey(1), Cookie(1)),
        Err(VolumeError::ReadOnly(_))
    ));
    v.read(NeedleKey(1), Cookie(1)).unwrap();
    drop(v);
    let v = reopen(dir.path(), &VolumeOptions::default());
    assert!(v.is_read_only());
    assert!(v.info().read_only);
    v.set_read_only(false).unwrap();
    v.write(needle(2, 1, b"y"), false).unwrap();
}

#[test]
fn size_limit_gives_volume_full() {
    let dir = tempfile::tempdir().unwrap();
    let opts = VolumeOptions {
        size_limit: Some(4096),
        ..VolumeOptions::default()
    };
    let v = create(dir.path(), &opts);
    let mut written = 0;
    let err = loop {
        match v.write(needle(written + 1, 1, &[1u8; 500]), false) {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, VolumeError::VolumeFull { .. }), "{err}");
    assert!(written >= 6);
    assert!(v.dat_size() <= 4096);
    // Deletes still work on a full volume.
    v.delete(NeedleKey(1), Cookie(1)).unwrap();
}

#[test]
fn reopen_keeps_everything_and_append_times_stay_monotonic() {
    let dir = tempfile::tempdir().unwrap();
    let opts = VolumeOptions::default();
    let v = create(dir.path(), &opts);
    let mut last = 0;
    for k in 1..=50u64 {
        v.write(needle(k, k as u32, &data_for(k, k as usize * 10)), false)
            .unwrap();
        let ts = v.read(NeedleKey(k), Cookie(k as u32)).unwrap().append_at_ns;
        assert!(ts > last);
        last = ts;
    }
    let info = v.info();
    drop(v);
    let v = reopen(dir.path(), &opts);
    assert!(!v.recovery_report().changed());
    assert_eq!(v.info().file_count, info.file_count);
    assert_eq!(v.dat_size(), info.size);
    for k in 1..=50u64 {
        let n = v.read(NeedleKey(k), Cookie(k as u32)).unwrap();
        assert_eq!(n.data, data_for(k, k as usize * 10));
    }
    assert_eq!(v.writer.lock().unwrap().last_append_ns, last);
    v.write(needle(51, 1, b"after"), false).unwrap();
    assert!(v.read(NeedleKey(51), Cookie(1)).unwrap().append_at_ns > last);
}

#[test]
fn group_commit_fsyncs_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let v = Arc::new(create(dir.path(), &VolumeOptions::default()));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let v = v.clone();
            std::thread::spawn(move || {
                for i in 0..25u64 {
                    let k = t * 1000 + i + 1;
                    let out = v.write(needle(k, 3, &data_for(k, 700)), true).unwrap();
                    assert!(v.synced_upto() > out.offset);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(v.synced_upto(), v.dat_size());
    assert_eq!(v.stats().live_count(), 200);
}

#[test]
fn readers_and_writers_run_together() {
    let dir = tempfile::tempdir().unwrap();
    let v = Arc::new(create(dir.path(), &VolumeOptions::default()));
    for k in 1..=100u64 {
        v.write(needle(k, 1, &data_for(k, 2000)), false).unwrap();
    }
    let writer = {
        let v = v.clone();
        std::thread::spawn(move || {
            for k in 101..=400u64 {
                v.write(needle(k, 1, &data_for(k, 2000)), false).unwrap();
                if k % 3 == 0 {
                    v.delete(NeedleKey(k - 100), Cookie(1)).ok();
                }
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let v = v.clone();
            std::thread::spawn(move || {
                for round in 0..5u64 {
                    for k in 1..=100u64 {
                        match v.read(NeedleKey(k), Cookie(1)) {
                            Ok(n) => assert_eq!(n.data, data_for(k, 2000), "round {round}"),
                            Err(VolumeError::Deleted { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn four_byte_volumes_open_as_their_vif_says() {
    let dir = tempfile::tempdir().unwrap();
    let four = VolumeOptions {
        offset_width: OffsetWidth::Four,
        ..VolumeOptions::default()
    };
    let v = create(dir.path(), &four);
    for k in 1..=5 {
        v.write(needle(k, 2, b"four byte offsets"), false).unwrap();
    }
    assert_eq!(
        std::fs::metadata(v.path_with(".idx")).unwrap().len(),
        5 * 16
    );
    drop(v);
    // The default (5-byte) store reads it as the .vif says.
    let v = reopen(dir.path(), &VolumeOptions::default());
    assert_eq!(v.offset_width(), OffsetWidth::Four);
    assert_eq!(v.size_limit(), 32 << 30);
    v.read(NeedleKey(5), Cookie(2)).unwrap();
    drop(v);
    // A store that insists on its own width refuses it.
    let strict = VolumeOptions {
        allow_other_offset_width: false,
        ..VolumeOptions::default()
    };
    let err = Volume::open(dir.path(), "", VolumeId(1), &strict).unwrap_err();
    assert!(
        matches!(err, VolumeError::OffsetWidthMismatch { .. }),
        "{err}"
    );
    // Without a .vif the .idx itself gives the width away.
    std::fs::remove_file(dir.path().join("1.vif")).unwrap();
    let err = Volume::open(dir.path(), "", VolumeId(1), &VolumeOptions::default()).unwrap_err();
    assert!(
        matches!(err, VolumeError::OffsetWidthMismatch { found: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("bytesOffset 4"), "{err}");
    // And a .vif that lies is caught the same way.
    crate::vif::VolumeInfo {
        bytes_offset: 5,
        ..Default::default()
    }
    .save(&dir.path().join("1.vif"))
    .unwrap();
    let err = Volume::open(dir.path(), "", VolumeId(1), &VolumeOptions::default()).unwrap_err();
    assert!(
        matches!(err, VolumeError::OffsetWidthMismatch { .. }),
        "{err}"
    );
}

#[test]
fn empty_needles_are_live() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    let out = v.write(needle(1, 1, b""), false).unwrap();
    assert_eq!(out.size, 0);
    let n = v.read(NeedleKey(1), Cookie(1)).unwrap();
    assert!(n.data.is_empty());
    assert_eq!(n.etag(), "00000000");
}

#[test]
fn closed_volumes_refuse_work() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    v.write(needle(1, 1, b"x"), false).unwrap();
    v.close();
    assert!(matches!(
        v.read(NeedleKey(1), Cookie(1)),
        Err(VolumeError::Closed(_))
    ));
    assert!(matches!(
        v.write(needle(2, 1, b"x"), false),
        Err(VolumeError::Closed(_))
    ));
}
