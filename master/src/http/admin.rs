//! `/heartbeat`, `/cluster/status`, `/cluster/lock`, `/cluster/unlock`, `/vol/grow`,
//! `/vol/vacuum`, `/vol/status`, `/col/delete`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kelp_proto::master_api::{
    ClusterStatus, DeleteCollectionRequest, DirStatus, GrowRequest, GrowResponse, Heartbeat,
    HeartbeatResponse, LockRequest, VacuumRequest,
};
use kelp_proto::{ReplicaPlacement, Ttl, VERSION};

use super::AppState;
use super::error::ApiQuery;
use crate::growth::GrowSpec;
use crate::master::MasterError;

/// How far above the highest allocated volume id a reported id is still adopted.
const ADOPT_WINDOW: u32 = 1 << 20;

pub(crate) async fn heartbeat(
    State(state): State<Arc<AppState>>,
    body: Result<Json<Heartbeat>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<HeartbeatResponse>, MasterError> {
    let Json(mut hb) = body.map_err(|e| MasterError::BadRequest(e.body_text()))?;
    if hb.ip.is_empty() || hb.port == 0 {
        return Err(MasterError::BadRequest(
            "heartbeat needs ip and port".into(),
        ));
    }
    let m = &state.master;
    // Ids far beyond anything allocated are not adopted: one bogus id would otherwise
    // become the floor of every future allocation, and near u32::MAX end growth for
    // good. Servers restored onto a master with lost state are within the window.
    let ceiling = m.raft.state().max_volume_id.saturating_add(ADOPT_WINDOW);
    let before = hb.volumes.len() + hb.ec_shards.len();
    hb.volumes.retain(|v| v.id != 0 && v.id <= ceiling);
    hb.ec_shards.retain(|e| e.id != 0 && e.id <= ceiling);
    if hb.volumes.len() + hb.ec_shards.len() < before {
        tracing::warn!(server = %format!("{}:{}", hb.ip, hb.port), ceiling,
            "ignoring volume ids this master never allocated (0, or beyond the ceiling)");
    }
    m.topology.heartbeat(&hb);
    let mut masters = m.raft.peers();
    if !masters.iter().any(|p| p == m.raft.self_addr()) {
        masters.push(m.raft.self_addr().to_string());
    }
    Ok(Json(HeartbeatResponse {
        volume_size_limit: m.cfg.size_limit(),
        leader: m.raft.leader_addr().unwrap_or_default(),
        masters,
        pulse_seconds: m.cfg.pulse_secs,
    }))
}

pub(crate) async fn cluster_status(State(state): State<Arc<AppState>>) -> Json<ClusterStatus> {
    let raft = &state.master.raft;
    let me = raft.self_addr().to_string();
    Json(ClusterStatus {
        is_leader: raft.is_leader(),
        leader: raft.leader_addr().unwrap_or_default(),
        peers: raft.peers().into_iter().filter(|p| *p != me).collect(),
        max_volume_id: raft.state().max_volume_id,
    })
}

/// `GET /cluster/raft/ps`: the master group as this master sees it.
pub(crate) async fn raft_ps(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let raft = &state.master.raft;
    let members: Vec<serde_json::Value> = raft
        .members()
        .into_iter()
        .map(|(addr, id, voter)| {
            serde_json::json!({ "address": addr, "id": format!("{id:016x}"), "voter": voter })
        })
        .collect();
    Json(serde_json::json!({
        "self": raft.self_addr(),
        "leader": raft.leader_addr().unwrap_or_default(),
        "members": members,
    }))
}

/// The volume of `/vol/reconciled`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ReconciledRequest {
    volume: u32,
}

/// `POST /vol/reconciled?volume=N` (on the leader): the replicas of volume N were
/// compared and repaired (`volume.check.disk`); none is stale any more.
pub(crate) async fn reconciled(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<ReconciledRequest>,
) -> Json<serde_json::Value> {
    state.master.topology.reconciled(req.volume);
    Json(serde_json::json!({ "volume": req.volume }))
}

/// The `address` (and `voter`) of a membership change.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct RaftMemberRequest {
    address: String,
    #[serde(default)]
    voter: Option<bool>,
}

/// `POST /cluster/raft/add?address=H:P[&voter=true]` (on the leader): the master at
/// `address` (started with `-raft.join`) joins as a learner, catches up, and with `voter`
/// (the default) becomes a voter.
pub(crate) async fn raft_add(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<RaftMemberRequest>,
) -> Result<Json<serde_json::Value>, MasterError> {
    let voter = req.voter.unwrap_or(true);
    state
        .master
        .raft
        .add_member(&req.address, voter)
        .await
        .map_err(|e| MasterError::BadRequest(e.to_string()))?;
    tracing::info!(member = %req.address, voter, "master added to the group");
    Ok(Json(
        serde_json::json!({ "added": req.address, "voter": voter }),
    ))
}

/// `POST /cluster/raft/remove?address=H:P` (on the leader).
pub(crate) async fn raft_remove(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<RaftMemberRequest>,
) -> Result<Json<serde_json::Value>, MasterError> {
    state
        .master
        .raft
        .remove_member(&req.address)
        .await
        .map_err(|e| MasterError::BadRequest(e.to_string()))?;
    tracing::info!(member = %req.address, "master removed from the group");
    Ok(Json(serde_json::json!({ "removed": req.address })))
}

pub(crate) async fn grow(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<GrowRequest>,
) -> Result<Json<GrowResponse>, MasterError> {
    let count = req
        .count
        .ok_or_else(|| MasterError::BadRequest("missing parameter count".into()))?;
    if count == 0 || count > 100 {
        return Err(MasterError::BadRequest(format!(
            "count {count} must be between 1 and 100"
        )));
    }
    let placement: ReplicaPlacement = match req.replication.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse()
            .map_err(|e: kelp_proto::PlacementParseError| MasterError::BadRequest(e.to_string()))?,
        None => state.master.cfg.default_replication,
    };
    let ttl: Ttl = req
        .ttl
        .as_deref()
        .unwrap_or("")
        .parse()
        .map_err(|e: kelp_proto::TtlError| MasterError::BadRequest(e.to_string()))?;
    let collection = req.collection.clone().unwrap_or_default();
    kelp_proto::name::check_collection(&collection)
        .map_err(|e| MasterError::BadRequest(e.to_string()))?;
    let spec = GrowSpec {
        collection,
        placement,
        ttl,
        data_center: req.data_center.clone().filter(|s| !s.is_empty()),
        rack: req.rack.clone().filter(|s| !s.is_empty()),
        data_node: req.data_node.clone().filter(|s| !s.is_empty()),
    };
    let made = state.master.grow(&spec, count as usize).await?;
    Ok(Json(GrowResponse { count: made as u32 }))
}

pub(crate) async fn vacuum(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VacuumRequest>,
) -> Result<Json<DirStatus>, MasterError> {
    let threshold = req
        .threshold()
        .map_err(MasterError::BadRequest)?
        .unwrap_or(state.master.cfg.garbage_threshold);
    state.master.vacuum(threshold).await;
    Ok(Json(super::dir::dir_status(&state)))
}

pub(crate) async fn vol_status(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let mut dcs: BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<serde_json::Value>>>> =
        BTreeMap::new();
    for n in state.master.topology.nodes() {
        let vols = n
            .volumes
            .values()
            .map(|v| serde_json::to_value(v).unwrap_or_default())
            .collect();
        dcs.entry(n.data_center.clone())
            .or_default()
            .entry(n.rack.clone())
            .or_default()
            .insert(n.url.clone(), vols);
    }
    Json(serde_json::json!({ "Version": VERSION, "Volumes": { "DataCenters": dcs } }))
}

pub(crate) async fn delete_collection(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<DeleteCollectionRequest>,
) -> Result<StatusCode, MasterError> {
    if req.collection.is_empty() {
        return Err(MasterError::BadRequest(
            "missing parameter collection".into(),
        ));
    }
    state.master.delete_collection(&req.collection).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /cluster/lock?owner=X&leaseSeconds=30`: takes or renews the admin lock; 409
/// naming the holder when someone else has it.
pub(crate) async fn lock(
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<LockRequest>,
) -> Result<Json<serde_json::Value>, MasterError> {
    let owner = q.owner().map_err(MasterError::BadRequest)?;
    let lease = std::time::Duration::from_secs(q.lease_seconds.unwrap_or(30).max(1))
        .min(crate::lock::MAX_LEASE);
    match state.master.admin_lock.acquire(owner, lease) {
        Ok(()) => Ok(Json(serde_json::json!({
            "owner": owner,
            "leaseSeconds": lease.as_secs(),
        }))),
        Err(held) => Err(MasterError::Locked(format!(
            "the cluster is locked by {} for up to {}s more",
            held.owner,
            held.left.as_secs() + 1
        ))),
    }
}

/// `POST /cluster/unlock?owner=X`: frees the lock if X holds it.
pub(crate) async fn unlock(
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<LockRequest>,
) -> Result<Json<serde_json::Value>, MasterError> {
    let owner = q.owner().map_err(MasterError::BadRequest)?;
    let released = state.master.admin_lock.release(owner);
    Ok(Json(serde_json::json!({ "released": released })))
}
