//! Opens a volume written by SeaweedFS 4.48 (`tests/fixtures/seaweedfs-4.48`, made by
//! `make-seaweedfs-fixture.sh`) with the kelp `Store` and reads every file back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;

use kelp_proto::FileId;
use kelp_volume::{DiskLocation, Store, StoreOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixture_copy() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seaweedfs-4.48");
    let dir = tempfile::tempdir().unwrap();
    for ext in ["dat", "idx", "vif"] {
        std::fs::copy(
            src.join(format!("1.{ext}")),
            dir.path().join(format!("1.{ext}")),
        )
        .unwrap();
    }
    dir
}

fn manifest() -> Value {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seaweedfs-4.48/manifest.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn every_seaweedfs_file_reads_back() {
    let dir = fixture_copy();
    let before = std::fs::read(dir.path().join("1.dat")).unwrap();
    let store = Store::open(
        vec![DiskLocation::new(dir.path(), 1)],
        StoreOptions::default(),
    )
    .unwrap();
    assert!(store.load_errors().is_empty(), "{:?}", store.load_errors());
    let v = store.volume(kelp_proto::VolumeId(1)).unwrap();
    assert!(!v.recovery_report().changed(), "{:?}", v.recovery_report());
    assert_eq!(v.offset_width(), kelp_volume::OffsetWidth::Five);

    let m = manifest();
    let files = m["files"].as_array().unwrap();
    assert!(files.len() >= 20);
    let mut checked = 0;
    for f in files {
        let fid: FileId = f["fid"].as_str().unwrap().parse().unwrap();
        let what = f["file"].as_str().unwrap();
        let res = v.open_needle(fid.key, fid.cookie);
        if f["deleted"].as_bool().unwrap() {
            let err = res.unwrap_err();
            assert!(err.is_not_found(), "{what}: {err}");
            continue;
        }
        let mut h = res.unwrap_or_else(|e| panic!("{what}: {e}"));
        h.verify_crc().unwrap();
        assert_eq!(h.etag(), f["etag"].as_str().unwrap(), "{what}");
        let stored = h.read_all().unwrap();
        let content = if h.is_gzip() {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&stored[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            stored.to_vec()
        };
        assert_eq!(content.len() as u64, f["len"].as_u64().unwrap(), "{what}");
        assert_eq!(
            hex(&Sha256::digest(&content)),
            f["sha256"].as_str().unwrap(),
            "{what}"
        );
        let meta = h.meta();
        let name = f["name"].as_str().unwrap();
        // An empty needle has Size 0: weed stores no name or mime for it.
        if !content.is_empty() {
            assert_eq!(meta.name.as_deref(), Some(name.as_bytes()), "{what}");
        }
        let mime = f["mime"].as_str().unwrap();
        if !content.is_empty() && !mime.is_empty() {
            assert_eq!(meta.mime.as_deref(), Some(mime.as_bytes()), "{what}");
        }
        if content.is_empty() {
            assert_eq!(meta.size, 0);
        } else {
            assert!(meta.last_modified.is_some(), "{what}");
        }
        match what {
            "pairs.txt" => {
                let pairs: Value = serde_json::from_slice(meta.pairs.as_deref().unwrap()).unwrap();
                assert_eq!(pairs["Color"], "blue");
            }
            "ttl.txt" => assert_eq!(meta.ttl, Some("200y".parse().unwrap())),
            "page.html" => assert!(h.is_gzip(), "weed gzips html"),
            _ => {}
        }
        checked += 1;
    }
    assert_eq!(checked, files.len() - 1);
    // Opening changed nothing on disk.
    assert_eq!(std::fs::read(dir.path().join("1.dat")).unwrap(), before);
}

#[test]
fn seaweedfs_needles_reencode_byte_for_byte() {
    // Every needle weed wrote decodes and re-encodes to the same bytes (padding included).
    let dir = fixture_copy();
    let dat = std::fs::read(dir.path().join("1.dat")).unwrap();
    let mut pos = 8;
    let mut n = 0;
    while pos < dat.len() {
        let needle = kelp_volume::Needle::decode(&dat[pos..], kelp_volume::Version::V3).unwrap();
        let mut again = needle.clone();
        again.checksum = if needle.data.is_empty() {
            needle.checksum
        } else {
            kelp_volume::needle::crc(&needle.data)
        };
        let bytes = again.encode(kelp_volume::Version::V3).unwrap();
        assert_eq!(
            &dat[pos..pos + bytes.len()],
            &bytes[..],
            "needle {} at {pos}",
            needle.key
        );
        pos += bytes.len();
        n += 1;
    }
    assert!(n > 20);
}

#[test]
fn kelp_can_keep_writing_a_seaweedfs_volume() {
    let dir = fixture_copy();
    let m = manifest();
    let first: FileId = m["files"][0]["fid"].as_str().unwrap().parse().unwrap();
    let store = Store::open(
        vec![DiskLocation::new(dir.path(), 1)],
        StoreOptions::default(),
    )
    .unwrap();
    let v = store.volume(kelp_proto::VolumeId(1)).unwrap();
    let key = kelp_proto::NeedleKey(v.max_file_key() + 1);
    let cookie = kelp_proto::Cookie(0x1234_5678);
    v.write(
        kelp_volume::Needle::new(key, cookie, &b"written by kelp"[..]),
        true,
    )
    .unwrap();
    // hello.txt: its Size field is 43 (12 data bytes, name, mime, last-modified).
    assert_eq!(v.delete(first.key, first.cookie).unwrap(), 43);
    v.vacuum().unwrap();
    drop((v, store));
    let store = Store::open(
        vec![DiskLocation::new(dir.path(), 1)],
        StoreOptions::default(),
    )
    .unwrap();
    let v = store.volume(kelp_proto::VolumeId(1)).unwrap();
    assert_eq!(&v.read(key, cookie).unwrap().data[..], b"written by kelp");
    assert!(v.read(first.key, first.cookie).unwrap_err().is_not_found());
    assert_eq!(v.compaction_revision(), 1);
}
