//! The one place where storage errors become HTTP answers (`{"error": "..."}` JSON).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::VolumeError;

/// An HTTP error answer: a status and a sentence.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.message, "request failed");
        }
        let body = serde_json::json!({ "error": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> ApiError {
        use VolumeError::*;
        let status = match &e {
            NotFound { .. }
            | Deleted { .. }
            | Expired { .. }
            | VolumeNotFound(_)
            | EcShardUnavailable { .. } => StatusCode::NOT_FOUND,
            CookieMismatch { .. } => StatusCode::NOT_FOUND,
            InvalidNeedle(_) => StatusCode::BAD_REQUEST,
            VolumeFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
            VolumeExists(_) => StatusCode::CONFLICT,
            NoFreeSlot => StatusCode::INSUFFICIENT_STORAGE,
            ReadOnly(_) | Closed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl ApiError {
    /// Maps a storage error of a write: a cookie mismatch there is the client's mistake
    /// (overwriting someone else's needle), not a missing needle.
    pub fn from_write(e: VolumeError) -> ApiError {
        match e {
            VolumeError::CookieMismatch { .. } => {
                ApiError::bad_request(format!("{e}: mismatching cookie"))
            }
            other => other.into(),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(format!("storage task failed: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
