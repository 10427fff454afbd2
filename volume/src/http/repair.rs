//! `/admin/volume/needles`, `/admin/volume/needle` and `/admin/volume/needle/delete`:
//! repairing the replicas of a volume needle by needle. Every call acts on this server's
//! copy only: no replication, no cookie check, and writes go into read-only volumes too.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use kelp_proto::NeedleKey;
use kelp_proto::volume_api::{
    NeedleDeleted, NeedleList, NeedleRawStored, NeedleRequest, NeedlesRequest, VolumeRequest,
};

use super::AppState;
use super::admin::local_volume;
use super::error::{ApiError, ApiQuery, ApiResult};
use super::volume_copy::{file_range_body, octet_stream};
use crate::needle::parse_header;

/// What a raw record may add to the upload size limit: header, metadata, tail, padding.
const RECORD_OVERHEAD: u64 = 128 << 10;

/// `GET /admin/volume/needles?volume=N[&times=true]`.
pub(crate) async fn needles(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<NeedlesRequest>,
) -> ApiResult<Json<NeedleList>> {
    let v = local_volume(&state, req.volume)?;
    let keys = tokio::task::spawn_blocking(move || v.needle_keys(req.times)).await??;
    Ok(Json(NeedleList {
        volume: req.volume.0,
        live: keys
            .live
            .into_iter()
            .map(|(k, size)| [k, u64::from(size)])
            .collect(),
        deleted: keys.deleted,
        times: keys.times,
    }))
}

/// `GET /admin/volume/needle?volume=N&key=K` (K decimal): the raw record as stored.
pub(crate) async fn needle(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<NeedleRequest>,
) -> ApiResult<Response> {
    let v = local_volume(&state, req.volume)?;
    let key = NeedleKey(req.key);
    let (f, at, len) = tokio::task::spawn_blocking(move || v.raw_record(key)).await??;
    Ok(octet_stream(len, file_range_body(f, at, len)))
}

/// `POST /admin/volume/needle?volume=N` with a raw record as the body.
pub(crate) async fn put_needle(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<NeedleRawStored>> {
    let v = local_volume(&state, req.volume)?;
    let limit = state.cfg.file_size_limit.saturating_add(RECORD_OVERHEAD);
    let too_large = ApiError::TooLarge {
        limit: state.cfg.file_size_limit,
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.parse::<u64>().ok());
    if announced.is_some_and(|l| l > limit) {
        return Err(too_large);
    }
    let record = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|e| {
            ApiError::BadRequest(format!("reading the record (at most {limit} bytes): {e}"))
        })?;
    let (out, key) = tokio::task::spawn_blocking(move || {
        let out = v.append_raw(&record)?;
        Ok::<_, crate::VolumeError>((out, parse_header(&record)?.key))
    })
    .await??;
    tracing::info!(volume = req.volume.0, key = %key, size = out.size, "needle restored from a replica");
    Ok(Json(NeedleRawStored {
        key: key.0,
        size: out.size,
        offset: out.offset,
    }))
}

/// `POST /admin/volume/needle/delete?volume=N&key=K` (K decimal).
pub(crate) async fn delete_needle(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<NeedleRequest>,
) -> ApiResult<Json<NeedleDeleted>> {
    let v = local_volume(&state, req.volume)?;
    let key = NeedleKey(req.key);
    let deleted = tokio::task::spawn_blocking(move || v.delete_local(key)).await??;
    Ok(Json(NeedleDeleted { deleted }))
}
