//! Admin endpoints the master and shell call (allocate, delete, readonly, vacuum) and `/status`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use kelp_proto::volume_api::{AllocateVolumeRequest, VacuumCheck, VolumeServerStatus};
use kelp_proto::{ReplicaPlacement, Ttl, VolumeId};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::volume::Volume;

type Params = Query<HashMap<String, String>>;

pub(super) fn volume_param(q: &HashMap<String, String>) -> ApiResult<VolumeId> {
    let v = q
        .get("volume")
        .ok_or_else(|| ApiError::bad_request("missing parameter volume"))?;
    v.parse()
        .map_err(|e: kelp_proto::FileIdError| ApiError::bad_request(e.to_string()))
}

fn local_volume(state: &AppState, q: &HashMap<String, String>) -> ApiResult<Arc<Volume>> {
    let vid = volume_param(q)?;
    state
        .store
        .volume(vid)
        .ok_or_else(|| ApiError::not_found(format!("volume {vid} is not on this server")))
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
    q: Result<Query<AllocateVolumeRequest>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(req) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let placement: ReplicaPlacement = req
        .replication
        .parse()
        .map_err(|e: kelp_proto::PlacementError| ApiError::bad_request(e.to_string()))?;
    let ttl: Ttl = req
        .ttl
        .parse()
        .map_err(|e: kelp_proto::TtlError| ApiError::bad_request(e.to_string()))?;
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
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let vid = volume_param(&q)?;
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.delete_volume(vid)).await??;
    state.volume_changed();
    Ok(Json(json!({})))
}

pub(crate) async fn readonly(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let vid = volume_param(&q)?;
    let ro = match q.get("readonly").map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "readonly must be true or false, not {other:?}"
            )));
        }
    };
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.mark_readonly(vid, ro)).await??;
    state.volume_changed();
    Ok(Json(json!({})))
}

pub(crate) async fn delete_collection(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let collection = q
        .get("collection")
        .cloned()
        .ok_or_else(|| ApiError::bad_request("missing parameter collection"))?;
    let store = state.store.clone();
    let c = collection.clone();
    tokio::task::spawn_blocking(move || store.delete_collection(&c)).await??;
    super::ec::delete_collection(&state, &collection).await?;
    state.volume_changed();
    Ok(Json(json!({})))
}

pub(crate) async fn vacuum_check(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<VacuumCheck>> {
    let v = local_volume(&state, &q)?;
    Ok(Json(VacuumCheck {
        garbage_ratio: v.garbage_ratio(),
    }))
}

pub(crate) async fn vacuum_compact(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let v = local_volume(&state, &q)?;
    let report = tokio::task::spawn_blocking(move || v.compact()).await??;
    Ok(Json(json!({ "report": format!("{report:?}") })))
}

pub(crate) async fn vacuum_commit(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let v = local_volume(&state, &q)?;
    tokio::task::spawn_blocking(move || v.commit_compaction()).await??;
    state.volume_changed();
    Ok(Json(json!({})))
}

pub(crate) async fn vacuum_cleanup(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let v = local_volume(&state, &q)?;
    tokio::task::spawn_blocking(move || v.cleanup_compaction()).await??;
    Ok(Json(json!({})))
}
