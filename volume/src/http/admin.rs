//! Admin endpoints the master and shell call (allocate, delete, readonly, vacuum) and `/status`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kelp_proto::master_api::DeleteCollectionRequest;
use kelp_proto::volume_api::{
    AllocateVolumeRequest, ReadonlyRequest, VacuumCheck, VolumeRequest, VolumeServerStatus,
};
use kelp_proto::{ReplicaPlacement, Ttl, VolumeId};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiQuery, ApiResult};
use crate::volume::Volume;

pub(super) fn local_volume(state: &AppState, vid: VolumeId) -> ApiResult<Arc<Volume>> {
    state
        .store
        .volume(vid)
        .ok_or_else(|| ApiError::NotFound(format!("volume {vid} is not on this server")))
}

pub(crate) async fn status(State(state): State<Arc<AppState>>) -> Json<VolumeServerStatus> {
    let store = state.store.clone();
    let (disks, volumes) =
        tokio::task::spawn_blocking(move || (store.disk_statuses(), store.volume_infos()))
            .await
            .unwrap_or_default();
    Json(VolumeServerStatus {
        version: kelp_proto::VERSION.to_string(),
        disk_statuses: disks,
        volumes,
    })
}

pub(crate) async fn healthz() -> StatusCode {
    StatusCode::OK
}

pub(crate) async fn allocate(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<AllocateVolumeRequest>,
) -> ApiResult<Json<Value>> {
    let placement: ReplicaPlacement = req
        .replication
        .parse()
        .map_err(|e: kelp_proto::PlacementParseError| ApiError::BadRequest(e.to_string()))?;
    let ttl: Ttl = req
        .ttl
        .parse()
        .map_err(|e: kelp_proto::TtlError| ApiError::BadRequest(e.to_string()))?;
    let store = state.store.clone();
    let vid = VolumeId(req.volume);
    let collection = req.collection.clone();
    tokio::task::spawn_blocking(move || store.allocate_volume(vid, &collection, placement, ttl))
        .await??;
    tracing::info!(volume = vid.0, collection = %req.collection, replication = %placement, ttl = %ttl, "volume allocated");
    state.volume_changed();
    Ok(Json(json!({})))
}

pub(crate) async fn delete_volume(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<Value>> {
    let vid = req.volume;
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.delete_volume(vid)).await??;
    state.volume_changed();
    Ok(Json(json!({})))
}

pub(crate) async fn readonly(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<ReadonlyRequest>,
) -> ApiResult<Json<Value>> {
    let (vid, ro) = (req.volume, req.readonly());
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.mark_readonly(vid, ro)).await??;
    state.volume_changed();
    Ok(Json(json!({})))
}

pub(crate) async fn delete_collection(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<DeleteCollectionRequest>,
) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    let c = req.collection.clone();
    tokio::task::spawn_blocking(move || store.delete_collection(&c)).await??;
    super::ec::delete_collection(&state, req).await?;
    state.volume_changed();
    Ok(Json(json!({})))
}

pub(crate) async fn vacuum_check(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<VacuumCheck>> {
    let v = local_volume(&state, req.volume)?;
    Ok(Json(VacuumCheck {
        garbage_ratio: v.garbage_ratio(),
    }))
}

pub(crate) async fn vacuum_compact(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<Value>> {
    let v = local_volume(&state, req.volume)?;
    let report = tokio::task::spawn_blocking(move || v.compact()).await??;
    Ok(Json(json!({ "report": format!("{report:?}") })))
}

pub(crate) async fn vacuum_commit(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<Value>> {
    let v = local_volume(&state, req.volume)?;
    tokio::task::spawn_blocking(move || v.commit_compaction()).await??;
    state
        .vacuums
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    state.volume_changed();
    Ok(Json(json!({})))
}

pub(crate) async fn vacuum_cleanup(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<Value>> {
    let v = local_volume(&state, req.volume)?;
    tokio::task::spawn_blocking(move || v.cleanup_compaction()).await??;
    Ok(Json(json!({})))
}
