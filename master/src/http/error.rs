//! The one place where master errors become HTTP answers (`{"error": "..."}` JSON).

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::master::MasterError;

impl IntoResponse for MasterError {
    fn into_response(self) -> Response {
        let status = match &self {
            MasterError::BadRequest(_) => StatusCode::BAD_REQUEST,
            MasterError::Placement(_) => StatusCode::NOT_ACCEPTABLE,
            MasterError::NotFound(_) => StatusCode::NOT_FOUND,
            MasterError::Locked(_) => StatusCode::CONFLICT,
            MasterError::NotLeader(_) | MasterError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            MasterError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &self {
            MasterError::NotLeader(_) => "no raft leader is elected yet; retry shortly".to_string(),
            other => other.to_string(),
        };
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(%status, error = %message, "master request failed");
        }
        let mut resp =
            (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// A 400 for a query string that does not parse (unknown or malformed parameters).
pub fn bad_query(e: axum::extract::rejection::QueryRejection) -> MasterError {
    MasterError::BadRequest(e.body_text())
}

/// `axum::extract::Query` whose rejection is a [`MasterError::BadRequest`], so a bad
/// query string gets the same `{"error": "..."}` answer as every other error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = MasterError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, MasterError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(bad_query)
    }
}
