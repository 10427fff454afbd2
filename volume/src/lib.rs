//! The kelp volume role: SeaweedFS-compatible volumes on disk and the store that holds them.
//!
//! Layers, bottom up: [`needle`] (the record format), [`superblock`], [`idx`] and [`vif`]
//! (the other files of a volume), [`needle_map`] (the in-memory index), [`volume`] (append,
//! read, delete, fsync), [`recovery`] (repair on open), [`vacuum`] (compaction),
//! [`verify`] (checking a received copy) and [`store`] (all volumes of a server). The
//! formats are described in `docs/formats/volume.md`. None of those knows about HTTP: the
//! API lives in [`http`].

mod direct;
pub mod ec;
pub mod error;
mod fsutil;
pub mod handle;
pub mod http;
pub mod idx;
pub mod local;
pub mod needle;
pub mod needle_map;
pub mod recovery;
pub mod store;
pub mod superblock;
pub mod vacuum;
pub mod verify;
pub mod vif;
pub mod volume;

pub use error::{Result, VolumeError};
pub use handle::NeedleHandle;
pub use idx::OffsetWidth;
pub use needle::{Needle, NeedleMeta, Version};
pub use recovery::RecoveryReport;
pub use store::{DiskLocation, Store, StoreOptions};
pub use vacuum::CompactReport;
pub use volume::{ReadOptions, Volume, VolumeOptions, WriteOutcome};
