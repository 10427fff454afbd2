//! Erasure coding of sealed volumes: Reed-Solomon shards (default 10 data + 4 parity).
//!
//! The `.dat` is cut into stripes of `data_shards` blocks; block `j` of stripe `i` goes to
//! shard `j` at offset `i * block_size`, parity shards hold the Reed-Solomon parity of each
//! stripe (computed with `reed-solomon-simd`). Every shard file ends with a table of
//! CRC32-C checksums, one per `chunk_size` bytes, so a corrupt chunk is detected and treated
//! as missing, never served. The format is described in `docs/formats/ec.md`.
//!
//! Submodules, bottom up: [`layout`] (geometry and file names), `info` (the EC `.vif`),
//! `codec` (the RS coder), `shard` (shard files and their checksum trailer), `index`
//! (`.ecx` and `.ecj`), `encode` ([`encode_volume`]), `volume` ([`EcVolume`]: reads with
//! on-the-fly reconstruction, deletes), `rebuild` ([`rebuild_missing`]), `decode`
//! ([`decode_to_volume`]) and `vacuum` ([`ec_vacuum`]). All I/O is blocking std I/O.
//! On top, [`store`] holds the EC volumes of a server ([`store::EcStore`]) and runs the
//! operations its admin API asks for.

mod codec;
mod decode;
mod encode;
mod index;
mod info;
pub mod layout;
mod rebuild;
mod shard;
pub mod store;
mod vacuum;
mod volume;

pub use decode::{DecodeReport, decode_to_volume, remove_ec_files};
pub use encode::{EcReport, encode_volume, encode_volume_with};
pub use info::EcInfo;
pub use layout::{EcConfig, Geometry};
pub use rebuild::rebuild_missing;
pub use vacuum::{EcVacuumReport, commit_staged, ec_vacuum, staged_path};
pub use volume::{EcVolume, LocalOnly, ShardSource};

/// Checks an `.ecx` image as opening an EC volume does (whole entries, keys strictly
/// increasing), looks every key up again and returns the entries. Only the fuzz targets
/// and their corpus replay call this: the index itself stays private.
#[doc(hidden)]
pub fn parse_ecx(
    bytes: Vec<u8>,
    width: crate::idx::OffsetWidth,
) -> crate::error::Result<Vec<crate::idx::IdxEntry>> {
    let ix = index::SortedIndex::from_bytes(bytes, width, ".ecx")?;
    let entries: Vec<_> = ix.iter().collect();
    for e in &entries {
        ix.get(e.key);
    }
    Ok(entries)
}

/// Default number of data shards.
pub const DEFAULT_DATA_SHARDS: u8 = 10;
/// Default number of parity shards.
pub const DEFAULT_PARITY_SHARDS: u8 = 4;
/// Default stripe block: chosen from `benches/ec.rs` (see `docs/formats/ec.md`).
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
/// Default checksum granularity inside a shard (also the unit of partial reconstruction).
pub const DEFAULT_CHUNK_SIZE: u32 = 4 << 10;
/// At most this many shards (data + parity) per volume.
pub const MAX_SHARDS: usize = 32;
/// Version of the layout described in `docs/formats/ec.md`, recorded in the `.vif`.
pub const LAYOUT_VERSION: u32 = 1;
