//! The kelp filer: the namespace (path -> entry whose content is a list of chunks on
//! volume servers), the stores that keep it, and the filer's REST and data paths.

mod batch;
pub mod chunks;
pub mod cipher;
pub mod entry;
pub mod error;
pub mod events;
pub mod filer;
pub mod gc;
pub mod http;
pub mod lease;
mod lock;
pub mod manifest;
pub mod path;
pub mod pending;
pub mod read;
pub mod store;
mod write;

pub use error::FilerError;
pub use filer::{Filer, FilerConfig, LateExtended, Precondition, WriteOptions};
