//! Vacuum tests: garbage reclaimed, writes during compaction kept, crashes at every commit step.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kelp_proto::{Cookie, NeedleKey};

use super::CommitStep;
use crate::volume::tests::{create, data_for, needle, reopen};
use crate::volume::{Volume, VolumeOptions, now_secs};

type Live = BTreeMap<u64, Vec<u8>>;

/// 60 needles; every 3rd deleted, every 5th overwritten. Returns the live set.
fn populate(v: &Volume) -> Live {
    let mut live = Live::new();
    for k in 1..=60u64 {
        let d = data_for(k, 200 + k as usize * 50);
        v.write(needle(k, 1, &d), false).unwrap();
        live.insert(k, d);
    }
    for k in (3..=60u64).step_by(3) {
        v.delete(NeedleKey(k), Cookie(1)).unwrap();
        live.remove(&k);
    }
    for k in (5..=60u64).step_by(5) {
        if live.contains_key(&k) {
            let d = data_for(k + 1000, 333);
            v.write(needle(k, 1, &d), false).unwrap();
            live.insert(k, d);
        }
    }
    live
}

/// Writes, deletes and overwrites as they would arrive during a compaction.
fn churn(v: &Volume, live: &mut Live) {
    for k in 100..=120u64 {
        let d = data_for(k, 1000);
        v.write(needle(k, 1, &d), false).unwrap();
        live.insert(k, d);
    }
    for k in [1u64, 2, 4, 100] {
        v.delete(NeedleKey(k), Cookie(1)).unwrap();
        live.remove(&k);
    }
    let d = data_for(7777, 4000);
    v.write(needle(7, 1, &d), false).unwrap();
    live.insert(7, d);
}

fn check(v: &Volume, live: &Live) {
    for k in (1..=130u64).chain([500]) {
        let r = v.read(NeedleKey(k), Cookie(1));
        match live.get(&k) {
            Some(d) => assert_eq!(&r.unwrap().data[..], &d[..], "key {k}"),
            None => assert!(r.unwrap_err().is_not_found(), "key {k} should be gone"),
        }
    }
    assert_eq!(v.stats().live_count(), live.len() as u64);
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".cpd") || n.ends_with(".cpx") || n.ends_with(".cpc"))
        .collect()
}

#[test]
fn vacuum_reclaims_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    let mut live = populate(&v);
    let before = v.dat_size();
    assert!(v.garbage_ratio() > 0.3, "{}", v.garbage_ratio());
    let report = v.vacuum().unwrap();
    assert_eq!(report.needles_kept, live.len() as u64);
    assert_eq!(report.bytes_before, before);
    assert!(v.dat_size() < before);
    assert_eq!(report.bytes_after, v.dat_size());
    assert_eq!(v.compaction_revision(), 1);
    assert_eq!(v.garbage_ratio(), 0.0);
    check(&v, &live);
    let sb = std::fs::read(v.dat_path()).unwrap();
    assert_eq!(&sb[..8], &[3, 0, 0, 0, 0, 1, 0, 0]);
    v.write(needle(500, 1, b"after vacuum"), false).unwrap();
    live.insert(500, b"after vacuum".to_vec());
    drop(v);
    let v = reopen(dir.path(), &VolumeOptions::default());
    assert!(!v.recovery_report().changed());
    check(&v, &live);
    assert_eq!(v.compaction_revision(), 1);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn writes_during_compaction_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    let mut live = populate(&v);
    v.compact().unwrap();
    churn(&v, &mut live);
    check(&v, &live);
    v.commit_compaction().unwrap();
    check(&v, &live);
    drop(v);
    let v = reopen(dir.path(), &VolumeOptions::default());
    assert!(!v.recovery_report().changed(), "{:?}", v.recovery_report());
    check(&v, &live);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn a_crash_at_any_commit_step_leaves_a_whole_volume() {
    for step in [
        CommitStep::Replayed,
        CommitStep::Marked,
        CommitStep::DatRenamed,
        CommitStep::IdxRenamed,
        CommitStep::Unmarked,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let v = create(dir.path(), &VolumeOptions::default());
        let mut live = populate(&v);
        v.compact().unwrap();
        churn(&v, &mut live);
        v.commit_until(Some(step)).unwrap();
        drop(v); // the "crash"
        let v = reopen(dir.path(), &VolumeOptions::default());
        let expect_revision = if step >= CommitStep::Marked { 1 } else { 0 };
        assert_eq!(v.compaction_revision(), expect_revision, "{step:?}");
        assert!(leftovers(dir.path()).is_empty(), "{step:?}");
        assert!(!v.recovery_report().changed(), "{step:?}");
        check(&v, &live);
    }
}

#[test]
fn a_crash_during_compaction_keeps_the_old_volume() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    let live = populate(&v);
    v.compact().unwrap();
    assert_eq!(leftovers(dir.path()).len(), 2);
    drop(v);
    let v = reopen(dir.path(), &VolumeOptions::default());
    assert!(leftovers(dir.path()).is_empty());
    assert_eq!(v.compaction_revision(), 0);
    check(&v, &live);
}

#[test]
fn expired_needles_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    for k in 1..=10u64 {
        let mut n = needle(k, 1, b"ttl data");
        n.ttl = Some("1m".parse().unwrap());
        if k % 2 == 0 {
            n.last_modified = Some(now_secs() - 3600);
        }
        v.write(n, false).unwrap();
    }
    let report = v.vacuum().unwrap();
    assert_eq!(report.expired_dropped, 5);
    assert_eq!(report.needles_kept, 5);
    assert_eq!(v.stats().live_count(), 5);
}

#[test]
fn misuse_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = create(dir.path(), &VolumeOptions::default());
    assert!(v.commit_compaction().is_err());
    v.compact().unwrap();
    assert!(v.compact().is_err());
    v.cleanup_compaction().unwrap();
    assert!(leftovers(dir.path()).is_empty());
    assert!(v.commit_compaction().is_err());
}

#[test]
fn reads_and_writes_carry_on_during_vacuums() {
    let dir = tempfile::tempdir().unwrap();
    let v = Arc::new(create(dir.path(), &VolumeOptions::default()));
    let live = populate(&v);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (v, live, stop) = (v.clone(), live.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (k, d) in &live {
                    assert_eq!(&v.read(NeedleKey(*k), Cookie(1)).unwrap().data[..], &d[..]);
                }
            }
        })
    };
    let writer = {
        let v = v.clone();
        std::thread::spawn(move || {
            for k in 1000..1300u64 {
                v.write(needle(k, 1, &data_for(k, 500)), true).unwrap();
            }
        })
    };
    for _ in 0..3 {
        v.vacuum().unwrap();
    }
    writer.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().unwrap();
    assert_eq!(v.compaction_revision(), 3);
    for k in 1000..1300u64 {
        assert_eq!(
            &v.read(NeedleKey(k), Cookie(1)).unwrap().data[..],
            &data_for(k, 500)[..]
        );
    }
}
