//! `VolumeError`: every way a volume, needle or store operation can fail.

use std::io;
use std::path::{Path, PathBuf};

use kelp_proto::{NeedleKey, VolumeId};

/// Errors of the storage engine. The HTTP layer maps them to status codes in one place:
/// `NotFound`/`Deleted`/`Expired`/`CookieMismatch` on reads are 404s, `CookieMismatch` on
/// writes and deletes and `InvalidNeedle` are 400s, the rest are 500s.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("needle {key} not found")]
    NotFound { key: NeedleKey },

    #[error("needle {key}: cookie does not match")]
    CookieMismatch { key: NeedleKey },

    /// A raw needle sent to repair a replica names a key that is live here already.
    #[error("needle {key} is already stored here")]
    NeedleExists { key: NeedleKey },

    #[error("needle {key} was deleted")]
    Deleted { key: NeedleKey },

    #[error("needle {key} has expired (ttl)")]
    Expired { key: NeedleKey },

    #[error("volume {0} is read only")]
    ReadOnly(VolumeId),

    #[error(
        "volume {volume} is full: {size} bytes written, a write of {needed} more would pass the limit of {limit}"
    )]
    VolumeFull {
        volume: VolumeId,
        size: u64,
        needed: u64,
        limit: u64,
    },

    #[error("needle {key}: CRC mismatch (stored {stored:08x}, data has {computed:08x})")]
    CrcMismatch {
        key: NeedleKey,
        stored: u32,
        computed: u32,
    },

    #[error("corrupt {what}: {reason}")]
    Corrupt { what: String, reason: String },

    #[error(
        "{path}: the volume uses {found}-byte offsets but {expected}-byte offsets were expected ({why})"
    )]
    OffsetWidthMismatch {
        path: PathBuf,
        expected: u8,
        found: u8,
        why: String,
    },

    #[error("invalid needle: {0}")]
    InvalidNeedle(String),

    /// A name that would become part of a file name is not allowed (a collection with
    /// `/`, `..`, ...).
    #[error(transparent)]
    BadName(#[from] kelp_proto::name::NameError),

    #[error("volume {0} not found")]
    VolumeNotFound(VolumeId),

    #[error("volume {0} already exists")]
    VolumeExists(VolumeId),

    #[error("volume {0} was closed or deleted")]
    Closed(VolumeId),

    #[error("no free volume slot in any data directory")]
    NoFreeSlot,

    #[error("volume {volume}: {reason}")]
    Vacuum { volume: VolumeId, reason: String },

    #[error("erasure coding: {0}")]
    EcInvalid(String),

    #[error("no ec files of volume {0} here")]
    EcNotHere(VolumeId),

    #[error("{}: {source}", path.display())]
    EcFileMissing {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("this server has no data directory")]
    NoDataDirectory,

    #[error("ec shard {shard} of {base} is not available here")]
    EcShardUnavailable { base: String, shard: u8 },

    #[error(
        "ec volume {base}: stripe {stripe} cannot be reconstructed: {available} healthy shards, {needed} needed"
    )]
    EcUnrecoverable {
        base: String,
        stripe: u64,
        available: usize,
        needed: usize,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = VolumeError> = std::result::Result<T, E>;

impl VolumeError {
    pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        VolumeError::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Re-labels a `Corrupt` error with where it was found (file and offset).
    pub(crate) fn at(self, path: &Path, offset: u64) -> Self {
        match self {
            VolumeError::Corrupt { what, reason } => VolumeError::Corrupt {
                what: format!("{what} at offset {offset} of {}", path.display()),
                reason,
            },
            other => other,
        }
    }

    /// True for errors that mean "no such live needle" (the HTTP layer's 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            VolumeError::NotFound { .. }
                | VolumeError::Deleted { .. }
                | VolumeError::Expired { .. }
        )
    }
}

/// Adds a sentence of context to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> IoContext<T> for std::result::Result<T, io::Error> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| VolumeError::Io {
            context: context().into(),
            source,
        })
    }
}
