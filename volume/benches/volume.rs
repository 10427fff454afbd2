//! Benchmarks of the storage engine: needle append (1 KiB, 1 MiB) and read (also 8 MiB),
//! needle-map load.
//!
//! Run with `cargo bench -p kelp-volume`. Kept short (10 samples, ≤ 3 s each) so a full
//! run takes well under a minute; CI only compiles them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl, VolumeId};
use kelp_volume::idx::{IdxEntry, OffsetWidth, encode_all};
use kelp_volume::needle_map::NeedleMap;
use kelp_volume::{Needle, Volume, VolumeOptions};

const SIZES: [(&str, usize); 2] = [("1KiB", 1024), ("1MiB", 1 << 20)];

fn new_volume(dir: &std::path::Path) -> Volume {
    Volume::create(
        dir,
        "",
        VolumeId(1),
        ReplicaPlacement::default(),
        Ttl::EMPTY,
        &VolumeOptions::default(),
    )
    .expect("create volume")
}

fn payload(len: usize) -> bytes::Bytes {
    (0..len)
        .map(|i| (i * 7 + 3) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    // 8 MiB: the filer's default chunk; from 1 MiB the aligned middle is written directly
    // (`direct.rs`) where the file system allows, so these measure the disk's speed.
    for (name, len) in SIZES.into_iter().chain([("8MiB", 8 << 20)]) {
        let data = payload(len);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("tempdir");
                let v = new_volume(dir.path());
                let start = Instant::now();
                for k in 0..iters {
                    let n = Needle::new(NeedleKey(k + 1), Cookie(7), data.clone());
                    black_box(v.write(n, false).expect("write"));
                }
                start.elapsed()
            });
        });
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    // 8 MiB: the filer's default chunk, read whole in one positioned read.
    for (name, len) in SIZES.into_iter().chain([("8MiB", 8 << 20)]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = new_volume(dir.path());
        let count = if len > (1 << 20) {
            8
        } else if len > 4096 {
            64
        } else {
            10_000
        };
        for k in 0..count {
            v.write(
                Needle::new(NeedleKey(k + 1), Cookie(7), payload(len)),
                false,
            )
            .expect("write");
        }
        g.throughput(Throughput::Bytes(len as u64));
        let mut k = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                k = k % count + 1;
                let mut h = v.open_needle(NeedleKey(k), Cookie(7)).expect("open");
                black_box(h.read_all().expect("read"))
            });
        });
    }
    g.finish();
}

fn map_load(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let entries: Vec<IdxEntry> = (1..=N)
        .map(|k| IdxEntry {
            key: NeedleKey(k),
            offset: k * 130,
            size: 1000,
        })
        .collect();
    let idx = encode_all(&entries, OffsetWidth::Five);
    let m = NeedleMap::load(&idx, OffsetWidth::Five);
    eprintln!(
        "needle map: {N} needles in {} heap bytes = {:.2} bytes/needle",
        m.heap_bytes(),
        m.heap_bytes() as f64 / N as f64
    );
    let mut g = c.benchmark_group("needle_map");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(N));
    g.bench_function("load_1M_idx_entries", |b| {
        b.iter(|| black_box(NeedleMap::load(black_box(&idx), OffsetWidth::Five)))
    });
    g.finish();
}

criterion_group!(benches, append, read, map_load);
criterion_main!(benches);
