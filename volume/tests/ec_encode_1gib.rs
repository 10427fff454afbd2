//! End-to-end encode of a 1 GiB volume, printing MB/s. Ignored by default (it writes
//! ~2.5 GB); run with `cargo test --release -p kelp-volume --test ec_encode_1gib -- --ignored --nocapture`.

use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl, VolumeId};
use kelp_volume::ec::{self, EcVolume, LocalOnly};
use kelp_volume::{Needle, Volume, VolumeOptions};

#[test]
#[ignore = "writes ~2.5 GB; a throughput check, run by hand in release mode"]
fn encode_one_gib_volume() {
    let dir = tempfile::tempdir().unwrap();
    let v = Volume::create(
        dir.path(),
        "",
        VolumeId(1),
        ReplicaPlacement::default(),
        Ttl::EMPTY,
        &VolumeOptions::default(),
    )
    .unwrap();
    let data: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for k in 1..=1024u64 {
        v.write(Needle::new(NeedleKey(k), Cookie(1), data.clone()), false)
            .unwrap();
    }
    v.sync().unwrap();
    drop(v);
    for (block, chunk) in [
        (1u32 << 20, 4u32 << 10),
        (256 << 10, 4 << 10),
        (64 << 10, 4 << 10),
    ] {
        let cfg = ec::EcConfig {
            block_size: block,
            chunk_size: chunk,
            ..ec::EcConfig::default()
        };
        let r = ec::encode_volume_with(dir.path(), "1", &cfg).unwrap();
        println!(
            "block {:>7} B: encoded {} MB in {:.2} s = {:.0} MB/s ({} shards of {} MB)",
            block,
            r.dat_bytes / 1_000_000,
            r.seconds,
            r.mb_per_sec,
            r.shards,
            r.shard_bytes / 1_000_000
        );
    }
    let ec = EcVolume::open(dir.path(), "1").unwrap();
    assert!(
        ec.read_needle(NeedleKey(512), Cookie(1), &LocalOnly)
            .unwrap()
            .data
            == data
    );
}
