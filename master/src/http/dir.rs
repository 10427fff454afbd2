//! `/dir/assign`, `/dir/lookup`, `/dir/status`, `/submit` and the `/<fid>` redirect.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kelp_proto::client::UploadOptions;
use kelp_proto::master_api::{AssignRequest, DirStatus, LookupRequest, LookupResponse};
use kelp_proto::{FileId, VERSION};

use super::AppState;
use super::error::ApiQuery;
use crate::master::MasterError;

pub(crate) async fn assign(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<AssignRequest>,
) -> Result<Response, MasterError> {
    let mut a = state.master.assign(&req).await?;
    Ok(with_token(
        kelp_proto::security::current()
            .write_token(&a.fid, a.count.max(1))
            .inspect(|t| a.auth = t.clone()),
        Json(a),
    ))
}

/// `body`, with `Authorization: Bearer <token>` when there is a token.
fn with_token(token: Option<String>, body: impl IntoResponse) -> Response {
    match token {
        Some(t) => ([(header::AUTHORIZATION, format!("Bearer {t}"))], body).into_response(),
        None => body.into_response(),
    }
}

pub(crate) async fn lookup(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<LookupRequest>,
) -> Response {
    let Some(id) = req
        .volume_id
        .clone()
        .or(req.file_id.clone())
        .filter(|s| !s.is_empty())
    else {
        return MasterError::BadRequest("give volumeId or fileId".into()).into_response();
    };
    // A read token for a named file id (never a write token: knowing a fid must not
    // be enough to overwrite or delete it).
    let read_token = match (&req.file_id, req.read.as_deref()) {
        (Some(f), Some("yes" | "true")) => kelp_proto::security::current().read_token(f),
        _ => None,
    };
    match state.master.lookup(&id) {
        Ok(locations) => with_token(
            read_token.clone(),
            Json(LookupResponse {
                ec_locations: ec_locations(&state, &id),
                volume_or_file_id: id,
                locations,
                error: String::new(),
                auth: read_token.unwrap_or_default(),
            }),
        ),
        Err(MasterError::NotFound(msg)) => (
            StatusCode::NOT_FOUND,
            Json(LookupResponse {
                volume_or_file_id: id,
                locations: Vec::new(),
                error: msg,
                ec_locations: Vec::new(),
                auth: String::new(),
            }),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The EC shard holders of the volume named by a lookup id (`3` or `3,01637037d6`).
fn ec_locations(state: &AppState, id: &str) -> Vec<kelp_proto::master_api::Location> {
    id.split(',')
        .next()
        .and_then(|v| v.parse::<u32>().ok())
        .map(|vid| state.master.topology.lookup_ec(vid))
        .unwrap_or_default()
}

pub(crate) async fn status(State(state): State<Arc<AppState>>) -> Json<DirStatus> {
    Json(dir_status(&state))
}

pub(crate) fn dir_status(state: &AppState) -> DirStatus {
    DirStatus {
        version: VERSION.to_string(),
        topology: state.master.topology.status(state.master.cfg.size_limit()),
        volume_size_limit: state.master.cfg.size_limit(),
        departed: state.master.topology.departed(),
    }
}

/// `/<fid>`: 308 to a server holding the volume.
pub(crate) async fn redirect(
    State(state): State<Arc<AppState>>,
    Path(fid): Path<String>,
) -> Response {
    let (base, _ext) = fid.split_once('.').unwrap_or((&fid, ""));
    let parsed: FileId = match base.parse() {
        Ok(f) => f,
        Err(e) => return MasterError::BadRequest(format!("{e}")).into_response(),
    };
    match state.master.lookup(&parsed.volume.to_string()) {
        Ok(locs) => {
            let i = rand::random_range(0..locs.len());
            let target = format!(
                "{}/{fid}",
                kelp_proto::client::base_url(&locs[i].public_url)
            );
            (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, target)]).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `/submit`: assign and upload in one call (multipart form with one file).
pub(crate) async fn submit(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<AssignRequest>,
    mut form: Multipart,
) -> Result<Response, MasterError> {
    let bad = |e: String| MasterError::BadRequest(format!("bad multipart body: {e}"));
    let field = form
        .next_field()
        .await
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("no file part".into()))?;
    let name = field.file_name().unwrap_or("").to_string();
    let mime = field.content_type().map(str::to_string);
    let data = field.bytes().await.map_err(|e| bad(e.to_string()))?;
    let a = state.master.assign(&req).await?;
    let fid: FileId = a
        .fid
        .parse()
        .map_err(|e| MasterError::Internal(format!("assigned a bad fid: {e}")))?;
    let opts = UploadOptions {
        name: Some(name.clone()).filter(|n| !n.is_empty()),
        mime,
        ttl: req.ttl.clone(),
        jwt: kelp_proto::security::current().write_token(&a.fid, 1),
        ..Default::default()
    };
    let size = data.len();
    let up = state
        .master
        .volumes
        .upload(&a.url, &fid, data, &opts)
        .await
        .map_err(|e| MasterError::Internal(e.to_string()))?;
    Ok(Json(serde_json::json!({
        "eTag": up.etag,
        "fid": a.fid,
        "fileName": name,
        "fileUrl": format!("{}/{}", a.public_url, a.fid),
        "size": size,
    }))
    .into_response())
}
