//! The bodies of the fuzz targets: each hands arbitrary bytes to one family of parsers and
//! discards what they return. The only property checked is that they come back (no panic,
//! no hang, bounded memory). The cargo-fuzz targets in `fuzz_targets/` call these, and
//! `tests/fuzz_corpora.rs` includes this file to replay the corpora as ordinary tests, so it
//! uses only crates the root `kelp` package depends on.

use bytes::Bytes;
use kelp_filer::path;
use kelp_proto::name;
use kelp_proto::volume_api::ShardIds;
use kelp_proto::{FileId, ReplicaPlacement, Ttl, VolumeId, id::parse_key_cookie};
use kelp_volume::idx::{self, OffsetWidth};
use kelp_volume::needle::{self, Needle, Version};
use kelp_volume::needle_map::NeedleMap;
use kelp_volume::superblock::SuperBlock;
use kelp_volume::vif::VolumeInfo;

/// What a target does with one input.
pub type Body = fn(&[u8]);

/// Every target: its name (also its corpus directory, `fuzz/corpus/<name>/`) and body.
pub const TARGETS: &[(&str, Body)] = &[
    ("needle", needle),
    ("index", index),
    ("ids", ids),
    ("filer_path", filer_path),
    ("aws_chunked", aws_chunked),
    ("s3_xml", s3_xml),
];

/// A `.dat` record in every needle version, and its 16-byte header alone.
pub fn needle(data: &[u8]) {
    for v in [Version::V1, Version::V2, Version::V3] {
        let _ = Needle::decode(data, v);
    }
    let _ = needle::parse_header(data);
}

/// An `.idx` image (entry by entry, and loaded into the needle map), an `.ecx` image, in
/// both offset widths; the `.dat` superblock; the `.vif` JSON (on the input as UTF-8).
pub fn index(data: &[u8]) {
    for width in [OffsetWidth::Four, OffsetWidth::Five] {
        for e in idx::entries(data, width) {
            let _ = e.is_put();
        }
        let _ = NeedleMap::load(data, width);
        let _ = kelp_volume::ec::parse_ecx(data.to_vec(), width);
    }
    let _ = SuperBlock::parse(data);
    let _ = VolumeInfo::parse(&String::from_utf8_lossy(data));
}

/// The strings of the HTTP APIs: file ids, volume ids, key+cookie, TTLs, replica
/// placements, EC shard id lists and collection names (on the input as UTF-8).
pub fn ids(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();
    if let Ok(fid) = s.parse::<FileId>() {
        let _ = fid.to_string();
    }
    let _ = s.parse::<VolumeId>();
    let _ = parse_key_cookie(s);
    if let Ok(ttl) = s.parse::<Ttl>() {
        let _ = (ttl.to_string(), ttl.to_bytes());
    }
    if let Ok(rp) = s.parse::<ReplicaPlacement>() {
        let _ = (rp.to_string(), rp.to_byte());
    }
    if let Ok(shards) = s.parse::<ShardIds>() {
        let _ = shards.validate(32);
    }
    let _ = name::check_collection(s);
    let _ = name::check_named_collection(s);
}

/// Filer paths (on the input as UTF-8), and the helpers that take normalized ones apart.
pub fn filer_path(data: &[u8]) {
    let p = String::from_utf8_lossy(data);
    let _ = path::is_normalized(&p);
    if let Ok(n) = path::normalize(&p) {
        let _ = (
            path::parent(&n),
            path::name(&n),
            path::is_within(&n, "/buckets"),
        );
    }
}

/// An `aws-chunked` body: the first byte says into how many-byte pieces the rest arrives
/// (0: all at once), as the network may split it anywhere.
pub fn aws_chunked(data: &[u8]) {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let pieces = if cut == 0 {
        vec![Bytes::copy_from_slice(body)]
    } else {
        body.chunks(usize::from(cut))
            .map(Bytes::copy_from_slice)
            .collect()
    };
    let _ = kelp_s3::decode_aws_chunked(pieces);
}

/// The XML request bodies the S3 gateway accepts, each parsed as s3s parses a request body
/// (the element, then nothing but the end of input).
pub fn s3_xml(data: &[u8]) {
    use s3s::dto::{
        CompletedMultipartUpload, Delete, ObjectLockConfiguration, ObjectLockLegalHold,
        ObjectLockRetention, Tagging, VersioningConfiguration,
    };
    xml::<CompletedMultipartUpload>(data);
    xml::<Delete>(data);
    xml::<Tagging>(data);
    xml::<VersioningConfiguration>(data);
    xml::<ObjectLockConfiguration>(data);
    xml::<ObjectLockRetention>(data);
    xml::<ObjectLockLegalHold>(data);
}

fn xml<T: for<'x> s3s::xml::Deserialize<'x>>(data: &[u8]) {
    let mut d = s3s::xml::Deserializer::new(data);
    if T::deserialize(&mut d).is_ok() {
        let _ = d.expect_eof();
    }
}
