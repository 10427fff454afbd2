//! Store tests: allocation across directories, naming, reload, delete, read-only, infos.

use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl, VolumeId};

use super::*;
use crate::volume::tests::needle;

fn store(dirs: &[&Path], max: usize) -> Store {
    Store::open(
        dirs.iter().map(|d| DiskLocation::new(*d, max)).collect(),
        StoreOptions::default(),
    )
    .unwrap()
}

#[test]
fn file_names() {
    assert_eq!(
        parse_volume_file_name("7.dat"),
        Some((String::new(), VolumeId(7)))
    );
    assert_eq!(
        parse_volume_file_name("pics_12.dat"),
        Some(("pics".to_string(), VolumeId(12)))
    );
    assert_eq!(
        parse_volume_file_name("a_b_3.dat"),
        Some(("a_b".to_string(), VolumeId(3)))
    );
    assert_eq!(parse_volume_file_name("7.idx"), None);
    assert_eq!(parse_volume_file_name("x.dat"), None);
    assert_eq!(parse_volume_file_name("pics_.dat"), None);
}

#[test]
fn allocate_write_reload_delete() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let s = store(&[a.path(), b.path()], 2);
    assert_eq!(s.max_volume_count(), 4);
    let placement: ReplicaPlacement = "001".parse().unwrap();
    let v1 = s
        .allocate_volume(VolumeId(1), "", placement, Ttl::EMPTY)
        .unwrap();
    let v2 = s
        .allocate_volume(VolumeId(2), "pics", ReplicaPlacement::default(), Ttl::EMPTY)
        .unwrap();
    // Spread over the directories with the most room.
    assert_ne!(v1.dir(), v2.dir());
    assert!(matches!(
        s.allocate_volume(VolumeId(2), "", placement, Ttl::EMPTY),
        Err(VolumeError::VolumeExists(_))
    ));
    v1.write(needle(10, 1, b"ten"), false).unwrap();
    v2.write(needle(77, 1, b"seventy-seven"), false).unwrap();
    assert_eq!(s.max_file_key(), 77);
    let infos = s.volume_infos();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].id, 1);
    assert_eq!(infos[0].replica_placement, 1);
    assert_eq!(infos[0].size, v1.dat_size());
    assert_eq!(infos[0].file_count, 1);
    assert_eq!(infos[1].collection, "pics");
    assert_eq!(infos[1].version, 3);
    s.mark_readonly(VolumeId(2), true).unwrap();
    drop((v1, v2, s));

    let s = store(&[a.path(), b.path()], 2);
    assert!(s.load_errors().is_empty());
    assert_eq!(s.volumes().len(), 2);
    let v2 = s.volume(VolumeId(2)).unwrap();
    assert_eq!(v2.collection(), "pics");
    assert!(v2.is_read_only());
    assert_eq!(
        &v2.read(NeedleKey(77), Cookie(1)).unwrap().data[..],
        b"seventy-seven"
    );
    assert_eq!(s.volume(VolumeId(1)).unwrap().placement(), placement);
    s.delete_volume(VolumeId(2)).unwrap();
    assert!(s.volume(VolumeId(2)).is_none());
    assert!(matches!(
        v2.read(NeedleKey(77), Cookie(1)),
        Err(VolumeError::Closed(_))
    ));
    let left: Vec<_> = std::fs::read_dir(v2.dir()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(matches!(
        s.delete_volume(VolumeId(2)),
        Err(VolumeError::VolumeNotFound(_))
    ));
}

#[test]
fn slots_run_out() {
    let a = tempfile::tempdir().unwrap();
    let s = store(&[a.path()], 1);
    s.allocate_volume(VolumeId(1), "c", ReplicaPlacement::default(), Ttl::EMPTY)
        .unwrap();
    assert_eq!(s.free_slots(), 0);
    assert!(matches!(
        s.allocate_volume(VolumeId(2), "", ReplicaPlacement::default(), Ttl::EMPTY),
        Err(VolumeError::NoFreeSlot)
    ));
    // The default collection cannot be deleted by naming none.
    assert!(matches!(
        s.delete_collection(""),
        Err(VolumeError::BadName(_))
    ));
    s.delete_collection("c").unwrap();
    assert_eq!(s.free_slots(), 1);
}

#[test]
fn zero_max_derives_from_free_space() {
    let a = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        volume_size_limit: 1 << 20,
        ..StoreOptions::default()
    };
    let s = Store::open(vec![DiskLocation::new(a.path(), 0)], opts).unwrap();
    assert!(s.max_volume_count() > 0);
    assert_eq!(s.disk_statuses().len(), 1);
    assert!(s.disk_statuses()[0].all > 0);
    s.allocate_volume(VolumeId(9), "c", ReplicaPlacement::default(), Ttl::EMPTY)
        .unwrap();
}

#[test]
fn zero_max_reserves_room_for_the_volumes_it_already_has() {
    let a = tempfile::tempdir().unwrap();
    // A limit of a third of the free space: three volumes fit, a fourth does not, however
    // empty the first three still are.
    let free = free_and_total(a.path()).unwrap().0;
    let opts = StoreOptions {
        volume_size_limit: free / 3 - (1 << 20),
        ..StoreOptions::default()
    };
    let s = Store::open(vec![DiskLocation::new(a.path(), 0)], opts).unwrap();
    let mut made = 0;
    for vid in 1..=10 {
        match s.allocate_volume(VolumeId(vid), "c", ReplicaPlacement::default(), Ttl::EMPTY) {
            Ok(_) => made += 1,
            Err(VolumeError::NoFreeSlot) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // Other processes write to the same file system meanwhile: allow one either way.
    assert!((2..=4).contains(&made), "{made} volumes");
    assert_eq!(s.free_slots(), 0);
}

#[test]
fn a_broken_volume_does_not_stop_the_store() {
    let a = tempfile::tempdir().unwrap();
    std::fs::write(a.path().join("5.dat"), b"xx").unwrap();
    let s = store(&[a.path()], 3);
    s.allocate_volume(VolumeId(1), "", ReplicaPlacement::default(), Ttl::EMPTY)
        .unwrap();
    drop(s);
    let s = store(&[a.path()], 3);
    assert_eq!(s.load_errors().len(), 1);
    assert!(s.load_errors()[0].1.contains("superblock"));
    assert!(s.volume(VolumeId(1)).is_some());
}
