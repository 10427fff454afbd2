//! The one place where errors become HTTP answers (`{"error": "..."}` JSON): every
//! [`ApiError`] variant, and every [`VolumeError`] variant inside it, is given its status
//! here, each listed by name so a new variant cannot silently become a 500.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::VolumeError;

/// Why a request failed, by meaning; [`ApiError::status`] says what the client sees.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The storage engine refused or failed (a read's view: a cookie mismatch is a 404).
    #[error(transparent)]
    Storage(#[from] VolumeError),
    /// A malformed request: parameters, body, file id, or a write the data forbids.
    #[error("{0}")]
    BadRequest(String),
    /// The volume, EC volume or file asked for is not on this server.
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with the server's state (e.g. decoding a volume held normally).
    #[error("{0}")]
    Conflict(String),
    /// An upload over the file size limit.
    #[error("upload is larger than the file size limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// A method needles do not support.
    #[error("method {0} is not supported on needles")]
    MethodNotAllowed(Method),
    /// Another server (master, replica, shard holder) failed or could not be reached.
    #[error("{0}")]
    Upstream(String),
    /// This server failed in a way the storage layer does not describe.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error: the only status mapping of the volume server.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Storage(e) => storage_status(e),
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Upstream(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Maps a storage error of a write: a cookie mismatch there is the client's mistake
    /// (overwriting someone else's needle), not a missing needle.
    pub fn from_write(e: VolumeError) -> ApiError {
        match e {
            VolumeError::CookieMismatch { .. } => {
                ApiError::BadRequest(format!("{e}: mismatching cookie"))
            }
            other => ApiError::Storage(other),
        }
    }
}

/// The status of a storage error as seen by a read.
fn storage_status(e: &VolumeError) -> StatusCode {
    use VolumeError::*;
    match e {
        NotFound { .. }
        | Deleted { .. }
        | Expired { .. }
        | CookieMismatch { .. }
        | VolumeNotFound(_)
        | EcShardUnavailable { .. }
        | EcNotHere(_)
        | EcFileMissing { .. } => StatusCode::NOT_FOUND,
        InvalidNeedle(_) | BadName(_) => StatusCode::BAD_REQUEST,
        VolumeExists(_) | NeedleExists { .. } => StatusCode::CONFLICT,
        VolumeFull { .. } | NoFreeSlot => StatusCode::INSUFFICIENT_STORAGE,
        ReadOnly(_)
        | Closed(_)
        | CrcMismatch { .. }
        | Corrupt { .. }
        | OffsetWidthMismatch { .. }
        | Vacuum { .. }
        | EcInvalid(_)
        | EcUnrecoverable { .. }
        | NoDataDirectory
        | Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        if status.is_server_error() {
            tracing::warn!(status = %status, error = %message, "request failed");
        }
        let body = serde_json::json!({ "error": message });
        (status, axum::Json(body)).into_response()
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::Internal(format!("storage task failed: {e}"))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> ApiError {
        ApiError::BadRequest(e.body_text())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `axum::extract::Query` whose rejection is an [`ApiError::BadRequest`], so a missing or
/// malformed parameter gets the same JSON 400 as every other error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(ApiQuery(Query::<T>::try_from_uri(&parts.uri)?.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kelp_proto::{NeedleKey, VolumeId};

    #[test]
    fn cookie_mismatch_is_404_on_reads_and_400_on_writes() {
        let e = || VolumeError::CookieMismatch { key: NeedleKey(1) };
        assert_eq!(ApiError::from(e()).status(), StatusCode::NOT_FOUND);
        assert_eq!(ApiError::from_write(e()).status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            ApiError::from_write(VolumeError::VolumeExists(VolumeId(1))).status(),
            StatusCode::CONFLICT
        );
    }
}
