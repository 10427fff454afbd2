//! The types every kelp role shares: ids, placement, TTL and the JSON bodies of the HTTP APIs.
//!
//! Every format here is pinned to SeaweedFS's (see `docs/formats/`), so that
//! its clients and ours speak the same strings and JSON keys.

pub mod buffers;
pub mod civil;
pub mod client;
pub mod html;
pub mod id;
pub mod master_api;
pub mod meta_export;
pub mod metrics;
pub mod mime;
pub mod name;
pub mod placement;
mod query;
pub mod runs;
pub mod security;
pub mod server;
pub mod ttl;
pub mod volume_api;

pub use id::{Cookie, FileId, FileIdError, NeedleKey, VolumeId};
pub use placement::{PlacementParseError, ReplicaPlacement};
pub use ttl::{Ttl, TtlError, TtlUnit};

/// The version string every role reports in its status JSON.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
