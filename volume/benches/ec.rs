//! Erasure-coding benchmarks: raw Reed-Solomon encode and 4-shard reconstruct speed per
//! block size, end-to-end volume encode, and 4 KiB needle reads per second with 0 and 4
//! missing shards. Run with `cargo bench -p kelp-volume --bench ec`; short measurement
//! times keep a full run around two minutes. The figures chose `DEFAULT_BLOCK_SIZE` and
//! `DEFAULT_CHUNK_SIZE` (see `docs/formats/ec.md`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl, VolumeId};
use kelp_volume::ec::{self, EcConfig, EcVolume, LocalOnly};
use kelp_volume::{Needle, Volume, VolumeOptions};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

const D: usize = 10;
const P: usize = 4;
const BLOCKS: [(&str, usize); 5] = [
    ("1KiB", 1 << 10),
    ("4KiB", 4 << 10),
    ("64KiB", 64 << 10),
    ("256KiB", 256 << 10),
    ("1MiB", 1 << 20),
];

fn shards(len: usize) -> Vec<Vec<u8>> {
    (0..D)
        .map(|i| (0..len).map(|j| (i * 31 + j * 7 + j / 253) as u8).collect())
        .collect()
}

fn short<'a>(c: &'a mut Criterion, name: &str) -> criterion::BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g
}

/// Parity of one stripe (10 blocks in, 4 out); throughput counts the 10 data blocks.
fn rs_encode(c: &mut Criterion) {
    let mut g = short(c, "rs_encode_10+4");
    for (name, len) in BLOCKS {
        let data = shards(len);
        let mut enc = ReedSolomonEncoder::new(D, P, len).unwrap();
        g.throughput(Throughput::Bytes((D * len) as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                for s in &data {
                    enc.add_original_shard(s).unwrap();
                }
                let r = enc.encode().unwrap();
                black_box(r.recovery(0).map(|x| x[0]));
            });
        });
    }
    g.finish();
}

/// Restoring 4 lost data blocks from the 6 others and the 4 parity blocks.
fn rs_reconstruct(c: &mut Criterion) {
    let mut g = short(c, "rs_reconstruct_4_missing");
    for (name, len) in BLOCKS {
        let data = shards(len);
        let parity: Vec<Vec<u8>> = reed_solomon_simd::encode(D, P, &data).unwrap();
        let mut dec = ReedSolomonDecoder::new(D, P, len).unwrap();
        g.throughput(Throughput::Bytes((D * len) as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                for (i, s) in data.iter().enumerate().skip(4) {
                    dec.add_original_shard(i, s).unwrap();
                }
                for (i, s) in parity.iter().enumerate() {
                    dec.add_recovery_shard(i, s).unwrap();
                }
                let r = dec.decode().unwrap();
                black_box(r.restored_original(0).map(|x| x[0]));
            });
        });
    }
    g.finish();
}

fn build_volume(dir: &std::path::Path, count: u64, len: usize) {
    let v = Volume::create(
        dir,
        "",
        VolumeId(1),
        ReplicaPlacement::default(),
        Ttl::EMPTY,
        &VolumeOptions::default(),
    )
    .unwrap();
    for k in 1..=count {
        let data: Vec<u8> = (0..len).map(|i| (i as u64 * 13 + k) as u8).collect();
        v.write(Needle::new(NeedleKey(k), Cookie(k as u32), data), false)
            .unwrap();
    }
    v.sync().unwrap();
}

/// Whole-volume encode (read `.dat`, code, write and fsync 14 shards) of 256 MiB.
fn encode_volume(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    build_volume(dir.path(), 256, 1 << 20);
    let size = std::fs::metadata(dir.path().join("1.dat")).unwrap().len();
    let mut g = short(c, "encode_volume_256MiB");
    g.throughput(Throughput::Bytes(size));
    for (name, block) in [
        ("64KiB", 64 << 10),
        ("256KiB", 256 << 10),
        ("1MiB", 1 << 20),
    ] {
        let cfg = EcConfig {
            block_size: block,
            ..EcConfig::default()
        };
        g.bench_function(name, |b| {
            b.iter(|| black_box(ec::encode_volume_with(dir.path(), "1", &cfg).unwrap()));
        });
    }
    g.finish();
}

/// 4 KiB needle reads per second: all shards, 4 data shards missing (all keys), and only
/// the keys that live in the missing shards (every read reconstructs).
fn needle_reads(c: &mut Criterion) {
    const COUNT: u64 = 20_000;
    let src = tempfile::tempdir().unwrap();
    build_volume(src.path(), COUNT, 4096);
    let mut g = short(c, "read_4KiB");
    g.throughput(Throughput::Elements(1));
    let configs = [
        ("b1MiB_c16KiB", 1 << 20, 16 << 10),
        ("b1MiB_c4KiB", 1 << 20, 4 << 10),
        ("b1MiB_c64KiB", 1 << 20, 64 << 10),
        ("b256KiB_c16KiB", 256 << 10, 16 << 10),
    ];
    for (name, block, chunk) in configs {
        let dir = tempfile::tempdir().unwrap();
        for f in ["1.dat", "1.idx", "1.vif"] {
            std::fs::copy(src.path().join(f), dir.path().join(f)).unwrap();
        }
        let cfg = EcConfig {
            block_size: block,
            chunk_size: chunk,
            ..EcConfig::default()
        };
        ec::encode_volume_with(dir.path(), "1", &cfg).unwrap();
        let v = EcVolume::open(dir.path(), "1").unwrap();
        let mut k = 0u64;
        g.bench_function(BenchmarkId::new("healthy", name), |b| {
            b.iter(|| {
                k = k * 7919 % COUNT + 1;
                black_box(
                    v.read_needle(NeedleKey(k), Cookie(k as u32), &LocalOnly)
                        .unwrap(),
                );
            });
        });
        for i in 0..4u8 {
            std::fs::remove_file(dir.path().join(format!("1.ec{i:02}"))).unwrap();
        }
        let v = EcVolume::open(dir.path(), "1").unwrap();
        g.bench_function(BenchmarkId::new("4_missing", name), |b| {
            b.iter(|| {
                k = k * 7919 % COUNT + 1;
                black_box(
                    v.read_needle(NeedleKey(k), Cookie(k as u32), &LocalOnly)
                        .unwrap(),
                );
            });
        });
        let geo = v.geometry();
        let degraded: Vec<u64> = (1..=COUNT)
            .filter(|&k| {
                let (off, _) = v.locate(NeedleKey(k)).unwrap();
                geo.locate(off).0 < 4
            })
            .collect();
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("degraded_only", name), |b| {
            b.iter(|| {
                i = (i + 7919) % degraded.len();
                let k = degraded[i];
                black_box(
                    v.read_needle(NeedleKey(k), Cookie(k as u32), &LocalOnly)
                        .unwrap(),
                );
            });
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    rs_encode,
    rs_reconstruct,
    encode_volume,
    needle_reads
);
criterion_main!(benches);
