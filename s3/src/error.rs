//! [`GatewayError`]: every way an S3 operation fails, and the one place (its
//! `From<GatewayError> for S3Error`) that turns it into an S3 error code and HTTP status.

use http::StatusCode;
use kelp_filer::FilerError;
use s3s::{S3Error, S3ErrorCode};

/// Why an S3 request failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the bucket {0} does not exist")]
    NoSuchBucket(String),
    #[error("the key {0} does not exist")]
    NoSuchKey(String),
    #[error("the version {0} does not exist")]
    NoSuchVersion(String),
    /// The latest version of a key is a delete marker (GET/HEAD without a version id:
    /// 404), or the version asked for is one (405).
    #[error("{key} is a delete marker")]
    DeleteMarker {
        key: String,
        version_id: String,
        last_modified: i64,
        by_id: bool,
    },
    #[error("the bucket {0} has no CORS configuration")]
    NoSuchCorsConfiguration(String),
    #[error("the bucket {0} has no policy")]
    NoSuchBucketPolicy(String),
    #[error("{0}")]
    AclNotSupported(String),
    #[error("the bucket {0} belongs to another account")]
    BucketAlreadyExists(String),
    #[error("{0}")]
    MalformedPolicy(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    InvalidBucketState(String),
    #[error("{0}")]
    ConditionalRequestConflict(String),
    #[error("the upload {0} does not exist: it was completed, aborted or never created")]
    NoSuchUpload(String),
    #[error("{0}")]
    InvalidBucketName(String),
    #[error("you already own the bucket {0}")]
    BucketAlreadyOwnedByYou(String),
    #[error("the bucket {0} is not empty")]
    BucketNotEmpty(String),
    /// A key that cannot name a filer path (`..`, `//`, a leading `/`, `.uploads/`).
    #[error("{0}")]
    InvalidKey(String),
    #[error("{0}")]
    KeyTooLong(String),
    /// A Content-MD5 or `x-amz-checksum-*` that does not match the body.
    #[error("{0}: nothing was stored")]
    BadDigest(String),
    #[error("{0}")]
    InvalidDigest(String),
    #[error("the requested range is not satisfiable")]
    InvalidRange,
    #[error("{0}")]
    InvalidPartNumber(String),
    #[error("at least one of the preconditions you specified did not hold")]
    PreconditionFailed,
    #[error("not modified")]
    NotModified,
    #[error("{0}")]
    InvalidPart(String),
    #[error("the list of parts was not in ascending order of part number")]
    InvalidPartOrder,
    #[error("part {part} is {size} bytes; every part but the last must be at least 5 MiB")]
    EntityTooSmall { part: i32, size: u64 },
    #[error("{0}")]
    EntityTooLarge(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidTag(String),
    #[error("{0}")]
    MalformedXml(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    InvalidAccessKeyId(String),
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    #[error("{0}")]
    ContentSha256Mismatch(String),
    #[error("{0}")]
    IncompleteBody(String),
    /// The identities file cannot be used.
    #[error("{0}")]
    Config(String),
    /// A key and a directory (or a file and a key below it) collide in the filer.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotImplemented(String),
    /// SSE-KMS named a key the key service does not have.
    #[error("{0}")]
    KmsKeyNotFound(String),
    /// A bucket setting kelp never has (CORS, policy, lifecycle, ...): `code` is the
    /// S3 error for "not configured", answered with 404.
    #[error("{msg}")]
    NotConfigured { code: &'static str, msg: String },
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Filer(#[from] FilerError),
}

fn err(code: S3ErrorCode, msg: String) -> S3Error {
    S3Error::with_message(code, msg)
}

fn custom(code: &str, status: StatusCode, msg: String) -> S3Error {
    let Ok(code) = code.parse::<S3ErrorCode>();
    let mut e = S3Error::with_message(code, msg);
    e.set_status_code(status);
    e
}

/// `x-amz-delete-marker`, `x-amz-version-id` and `Last-Modified` of a delete marker.
fn delete_marker_headers(version_id: &str, last_modified: i64) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-amz-delete-marker",
        http::HeaderValue::from_static("true"),
    );
    if let Ok(v) = http::HeaderValue::from_str(version_id) {
        h.insert("x-amz-version-id", v);
    }
    let when = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(last_modified).unwrap_or(0));
    if let Ok(v) = http::HeaderValue::from_str(&httpdate::fmt_http_date(when)) {
        h.insert(http::header::LAST_MODIFIED, v);
    }
    h
}

impl From<GatewayError> for S3Error {
    fn from(e: GatewayError) -> S3Error {
        use GatewayError as G;
        use S3ErrorCode as C;
        let msg = e.to_string();
        match e {
            G::NoSuchBucket(_) => err(C::NoSuchBucket, msg),
            G::NoSuchKey(_) => err(C::NoSuchKey, msg),
            G::NoSuchUpload(_) => err(C::NoSuchUpload, msg),
            G::NoSuchCorsConfiguration(_) => err(C::NoSuchCORSConfiguration, msg),
            G::NoSuchBucketPolicy(_) => err(C::NoSuchBucketPolicy, msg),
            G::AclNotSupported(_) => err(C::AccessControlListNotSupported, msg),
            G::BucketAlreadyExists(_) => err(C::BucketAlreadyExists, msg),
            G::MalformedPolicy(_) => err(C::MalformedPolicy, msg),
            G::NoSuchVersion(_) => err(C::NoSuchVersion, msg),
            G::DeleteMarker {
                version_id,
                last_modified,
                by_id,
                ..
            } => {
                let mut e = if by_id {
                    err(C::MethodNotAllowed, msg)
                } else {
                    err(C::NoSuchKey, msg)
                };
                e.set_headers(delete_marker_headers(&version_id, last_modified));
                e
            }
            G::MethodNotAllowed(_) => err(C::MethodNotAllowed, msg),
            G::InvalidBucketState(_) => err(C::InvalidBucketState, msg),
            G::ConditionalRequestConflict(_) => {
                custom("ConditionalRequestConflict", StatusCode::CONFLICT, msg)
            }
            G::InvalidBucketName(_) => err(C::InvalidBucketName, msg),
            G::BucketAlreadyOwnedByYou(_) => err(C::BucketAlreadyOwnedByYou, msg),
            G::BucketNotEmpty(_) => err(C::BucketNotEmpty, msg),
            G::InvalidKey(_) => err(C::InvalidArgument, msg),
            G::KeyTooLong(_) => err(C::KeyTooLongError, msg),
            G::BadDigest(_) => err(C::BadDigest, msg),
            G::InvalidDigest(_) => err(C::InvalidDigest, msg),
            G::InvalidRange => err(C::InvalidRange, msg),
            G::InvalidPartNumber(_) => {
                custom("InvalidPartNumber", StatusCode::RANGE_NOT_SATISFIABLE, msg)
            }
            G::PreconditionFailed => err(C::PreconditionFailed, msg),
            G::NotModified => err(C::NotModified, msg),
            G::InvalidPart(_) => err(C::InvalidPart, msg),
            G::InvalidPartOrder => err(C::InvalidPartOrder, msg),
            G::EntityTooSmall { .. } => err(C::EntityTooSmall, msg),
            G::EntityTooLarge(_) => err(C::EntityTooLarge, msg),
            G::InvalidArgument(_) => err(C::InvalidArgument, msg),
            G::InvalidRequest(_) => err(C::InvalidRequest, msg),
            G::InvalidTag(_) => err(C::InvalidTag, msg),
            G::MalformedXml(_) => err(C::MalformedXML, msg),
            G::AccessDenied(_) => err(C::AccessDenied, msg),
            G::InvalidAccessKeyId(_) => err(C::InvalidAccessKeyId, msg),
            G::SignatureDoesNotMatch(_) => err(C::SignatureDoesNotMatch, msg),
            G::ContentSha256Mismatch(_) => {
                custom("XAmzContentSHA256Mismatch", StatusCode::BAD_REQUEST, msg)
            }
            G::IncompleteBody(_) => err(C::IncompleteBody, msg),
            G::Config(_) | G::Internal(_) => err(C::InternalError, msg),
            G::Conflict(_) => custom("PathConflict", StatusCode::CONFLICT, msg),
            G::NotConfigured { code, .. } => custom(code, StatusCode::NOT_FOUND, msg),
            G::NotImplemented(_) => err(C::NotImplemented, msg),
            G::KmsKeyNotFound(_) => custom("KMS.NotFoundException", StatusCode::BAD_REQUEST, msg),
            G::Filer(f) => match f {
                FilerError::NotFound(_) => err(C::NoSuchKey, msg),
                FilerError::BadRequest(_) => err(C::InvalidArgument, msg),
                FilerError::Conflict(_) => custom("PathConflict", StatusCode::CONFLICT, msg),
                FilerError::Unavailable(_) | FilerError::NoSpace(_) => {
                    err(C::ServiceUnavailable, msg)
                }
                FilerError::Internal(_) | FilerError::Gone(_) => err(C::InternalError, msg),
                FilerError::PreconditionFailed(_) => err(C::PreconditionFailed, msg),
                FilerError::Locked(_) => err(C::AccessDenied, msg),
            },
        }
    }
}

/// Shorthand for results of gateway operations.
pub type GatewayResult<T> = Result<T, GatewayError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: GatewayError) -> (String, Option<StatusCode>) {
        let s: S3Error = e.into();
        (s.code().as_str().to_string(), s.status_code())
    }

    #[test]
    fn codes_and_statuses() {
        assert_eq!(
            code(GatewayError::NoSuchBucket("b".into())),
            ("NoSuchBucket".into(), Some(StatusCode::NOT_FOUND))
        );
        assert_eq!(
            code(GatewayError::BucketNotEmpty("b".into())).1,
            Some(StatusCode::CONFLICT)
        );
        assert_eq!(
            code(GatewayError::NotModified).1,
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(
            code(GatewayError::PreconditionFailed).1,
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(
            code(GatewayError::Conflict("x".into())),
            ("PathConflict".into(), Some(StatusCode::CONFLICT))
        );
        assert_eq!(
            code(GatewayError::Filer(FilerError::Unavailable("m".into()))).1,
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(code(GatewayError::BadDigest("x".into())).0, "BadDigest");
    }
}
