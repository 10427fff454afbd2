//! The one place where filer errors become HTTP answers (`{"error": "..."}` JSON).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::FilerError;

impl IntoResponse for FilerError {
    fn into_response(self) -> Response {
        let status = match &self {
            FilerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            FilerError::NotFound(_) => StatusCode::NOT_FOUND,
            FilerError::Conflict(_) => StatusCode::CONFLICT,
            FilerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            FilerError::NoSpace(_) => StatusCode::INSUFFICIENT_STORAGE,
            FilerError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            FilerError::Locked(_) => StatusCode::FORBIDDEN,
            FilerError::Gone(_) => StatusCode::GONE,
            FilerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(%status, error = %self, "filer request failed");
        }
        (
            status,
            axum::Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}
