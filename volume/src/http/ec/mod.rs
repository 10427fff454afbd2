//! The `/admin/ec/*` endpoints `kelp shell` orchestrates (encode, info, shard reads, file
//! streaming, mount, unmount, delete); copies are in `copy`, rebuild and decode in
//! `rebuild`, vacuum in `vacuum`, needle reads in `read`, journal catch-up in `journal`.
//! The handlers only parse, call [`crate::ec::store::EcStore`] and answer.

mod copy;
pub(crate) mod journal;
pub(crate) mod read;
mod rebuild;
mod vacuum;

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kelp_proto::VolumeId;
use kelp_proto::master_api::DeleteCollectionRequest;
use kelp_proto::volume_api::{
    EcDeleteShardsRequest, EcEncodeRequest, EcFileRequest, EcShardReadRequest, EcShardsReadRequest,
    EcVolumeStatus, VolumeRequest,
};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiQuery, ApiResult};
use crate::ec::store::{EcHome, EcStore, status_of};
use crate::ec::{self, EcVolume};

pub(crate) use copy::copy;
pub(crate) use read::ShardHolders;
pub(crate) use rebuild::{decode, rebuild};
pub(crate) use vacuum::vacuum;

/// The loaded EC volume `vid`, or a 404.
pub(super) fn local_ec(state: &AppState, vid: VolumeId) -> ApiResult<Arc<EcVolume>> {
    state
        .ec
        .get(vid.0)
        .ok_or_else(|| ApiError::NotFound(format!("ec volume {vid} is not on this server")))
}

/// After EC volume `vid` changed here: its remote holders are asked again at the next
/// read, and the masters hear of it at once.
fn changed(state: &AppState, vid: VolumeId) {
    state.ec_holders.forget(vid.0);
    state.volume_changed();
}

/// `POST /admin/ec/encode?volume=N[&dataShards=10&parityShards=4]`: marks the volume
/// read-only and encodes it into shards next to it; the `.dat` stays until the volume is
/// deleted.
pub(crate) async fn encode(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<EcEncodeRequest>,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = req.volume;
    let (data_shards, parity_shards) =
        req.geometry(ec::MAX_SHARDS).map_err(ApiError::BadRequest)?;
    let vol = state
        .store
        .volume(vid)
        .ok_or_else(|| ApiError::NotFound(format!("volume {vid} is not on this server")))?;
    let _g = state.ec.lock_admin().await;
    let s = state.clone();
    let (v, report) =
        tokio::task::spawn_blocking(move || s.ec.encode(&vol, data_shards, parity_shards))
            .await??;
    tracing::info!(
        volume = vid.0,
        data_shards,
        parity_shards,
        needles = report.needles,
        mb_per_sec = report.mb_per_sec,
        "volume encoded"
    );
    changed(&state, vid);
    state
        .ec_encodes
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut st = status_of(vid.0, &v);
    st.seconds = report.seconds;
    Ok(Json(st))
}

/// `GET /admin/ec/info?volume=N`.
pub(crate) async fn info(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<EcVolumeStatus>> {
    let v = local_ec(&state, req.volume)?;
    Ok(Json(status_of(req.volume.0, &v)))
}

fn octets(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

/// `GET /admin/ec/shard?volume=N&shard=S&offset=O&size=L`: verified bytes of a local shard.
pub(crate) async fn shard(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<EcShardReadRequest>,
) -> ApiResult<Response> {
    let v = local_ec(&state, req.volume)?;
    req.validate().map_err(ApiError::BadRequest)?;
    let (shard, offset, size) = (req.shard, req.offset, req.size as usize);
    let bytes = tokio::task::spawn_blocking(move || v.shard_read(shard, offset, size)).await??;
    Ok(octets(bytes))
}

/// `GET /admin/ec/shards?volume=N&shards=1,6,11&offset=O&size=L`: the same range of
/// several local shards, concatenated in the order asked (one round trip for a rebuild).
pub(crate) async fn shards(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<EcShardsReadRequest>,
) -> ApiResult<Response> {
    let v = local_ec(&state, req.volume)?;
    req.validate().map_err(ApiError::BadRequest)?;
    let (ids, offset, size) = (req.shards.0, req.offset, req.size as usize);
    let bytes = tokio::task::spawn_blocking(move || -> crate::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(size * ids.len());
        for id in ids {
            out.extend_from_slice(&v.shard_read(id, offset, size)?);
        }
        Ok(out)
    })
    .await??;
    Ok(octets(bytes))
}

/// `GET /admin/ec/file?volume=N&ext=.ec03`: streams one EC file (for copies).
pub(crate) async fn file(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<EcFileRequest>,
) -> ApiResult<Response> {
    let v = local_ec(&state, req.volume)?;
    req.validate().map_err(ApiError::BadRequest)?;
    let (f, len) = tokio::task::spawn_blocking(move || EcStore::open_file(&v, &req.ext)).await??;
    let stream = tokio_util::io::ReaderStream::with_capacity(f, 256 << 10);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `POST /admin/ec/mount?volume=N`: (re)opens the EC volume from the files on disk.
pub(crate) async fn mount(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = req.volume;
    let _g = state.ec.lock_admin().await;
    let s = state.clone();
    let v = tokio::task::spawn_blocking(move || s.ec.mount(vid)).await??;
    changed(&state, vid);
    Ok(Json(status_of(vid.0, &v)))
}

/// `POST /admin/ec/unmount?volume=N`: stops serving the EC volume (files stay).
pub(crate) async fn unmount(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<Value>> {
    let _g = state.ec.lock_admin().await;
    state.ec.unmount(req.volume.0);
    changed(&state, req.volume);
    Ok(Json(json!({})))
}

/// Removes every EC volume of the collection held here, shard files and all (part of
/// `/admin/collection/delete`).
pub(crate) async fn delete_collection(
    state: &Arc<AppState>,
    req: DeleteCollectionRequest,
) -> ApiResult<()> {
    let _g = state.ec.lock_admin().await;
    let s = state.clone();
    let removed =
        tokio::task::spawn_blocking(move || s.ec.delete_collection(&req.collection)).await??;
    for vid in removed {
        state.ec_holders.forget(vid);
    }
    Ok(())
}

/// `POST /admin/ec/delete-shards?volume=N&shards=1,2`.
pub(crate) async fn delete_shards(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<EcDeleteShardsRequest>,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = req.volume;
    let shards = req
        .shards
        .validate(ec::MAX_SHARDS)
        .map_err(ApiError::BadRequest)?;
    let _g = state.ec.lock_admin().await;
    let home = EcHome::of(&*local_ec(&state, vid)?);
    let collection = ec::layout::collection_of(home.base()).to_string();
    let s = state.clone();
    let reopened =
        tokio::task::spawn_blocking(move || s.ec.delete_shards(vid, &home, &shards)).await?;
    changed(&state, vid);
    let st = match reopened? {
        Some(v) => status_of(vid.0, &v),
        None => EcVolumeStatus {
            id: vid.0,
            collection,
            ..Default::default()
        },
    };
    Ok(Json(st))
}

#[cfg(test)]
mod tests {
    use kelp_proto::volume_api::EcVolumeStatus;

    #[test]
    fn proto_defaults_match_the_codec_defaults() {
        let st = EcVolumeStatus::default();
        assert_eq!(
            (st.data_shards, st.parity_shards),
            (
                crate::ec::DEFAULT_DATA_SHARDS,
                crate::ec::DEFAULT_PARITY_SHARDS
            )
        );
    }
}
