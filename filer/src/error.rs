//! `FilerError`: every way a filer operation fails (mapped to HTTP in `http::error`).

use kelp_proto::client::ClientError;

use crate::path::PathError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FilerError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    #[error("no space for new data: {0}")]
    NoSpace(String),
    /// The entry (or one below it) is under retention or a legal hold.
    #[error("{0}")]
    Locked(String),
    /// What was asked for existed once and is gone for good (a trimmed change log).
    #[error("{0}")]
    Gone(String),
    /// A conditional write or delete found the entry other than its caller required.
    #[error("{0}")]
    PreconditionFailed(String),
}

impl FilerError {
    /// A failed `/dir/assign`: 406 means no room for this placement.
    pub fn from_assign(e: ClientError) -> FilerError {
        match e.status() {
            Some(406) => FilerError::NoSpace(e.to_string()),
            Some(400) => FilerError::BadRequest(e.to_string()),
            _ => FilerError::Unavailable(format!("assigning a file id: {e}")),
        }
    }
}

impl From<PathError> for FilerError {
    fn from(e: PathError) -> FilerError {
        FilerError::BadRequest(e.to_string())
    }
}

impl From<StoreError> for FilerError {
    fn from(e: StoreError) -> FilerError {
        match e {
            StoreError::NotFound(p) => FilerError::NotFound(p),
            StoreError::NotEmpty(p) => {
                FilerError::Conflict(format!("fail to delete non-empty folder: {p}"))
            }
            StoreError::AlreadyExists(p) => FilerError::Conflict(format!("{p} already exists")),
            StoreError::Changed(p) => {
                FilerError::PreconditionFailed(format!("{p} was changed by another request"))
            }
            StoreError::Trimmed { .. } => FilerError::Gone(e.to_string()),
            StoreError::Invalid(_) | StoreError::Corrupt(_) | StoreError::Backend(_) => {
                FilerError::Internal(e.to_string())
            }
        }
    }
}
