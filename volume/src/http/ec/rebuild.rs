//! `POST /admin/ec/rebuild` and `POST /admin/ec/decode`: both first gather enough shards
//! from the other holders, then let the store regenerate or decode.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use kelp_proto::volume_api::{EcRebuildRequest, EcVolumeStatus, VolumeRequest};
use serde_json::{Value, json};

use super::copy::gather;
use super::{AppState, changed, local_ec};
use crate::ec;
use crate::ec::store::{EcHome, status_of};
use crate::http::error::{ApiError, ApiQuery, ApiResult};

/// `POST /admin/ec/rebuild?volume=N&missing=1,2`: fetches enough shards from the other
/// holders, regenerates every missing shard locally, then keeps the shards it held
/// plus `missing` (all regenerated ones if `missing` is empty).
pub(crate) async fn rebuild(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<EcRebuildRequest>,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = req.volume;
    let asked = req
        .missing
        .validate(ec::MAX_SHARDS)
        .map_err(ApiError::BadRequest)?;
    let start = Instant::now();
    let _g = state.ec.lock_admin().await;
    let v = local_ec(&state, vid)?;
    let home = EcHome::of(&v);
    let had = v.local_shards();
    let d = v.geometry().data_shards();
    drop(v);
    let fetched = gather(&state, vid, &home, &had, d).await?;
    let s = state.clone();
    let (reopened, kept_rebuilt) =
        tokio::task::spawn_blocking(move || s.ec.rebuild(vid, &home, &had, &asked)).await??;
    let mut st = match reopened {
        Some(v) => status_of(vid.0, &v),
        None => EcVolumeStatus::default(),
    };
    changed(&state, vid);
    tracing::info!(volume = vid.0, fetched = ?fetched, rebuilt = ?kept_rebuilt, "ec shards rebuilt");
    st.rebuilt = kept_rebuilt;
    st.seconds = start.elapsed().as_secs_f64();
    Ok(Json(st))
}

/// `POST /admin/ec/decode?volume=N`: gathers data shards here if needed, decodes into a
/// normal volume, mounts it, then removes the local EC files.
pub(crate) async fn decode(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<Value>> {
    let vid = req.volume;
    let _g = state.ec.lock_admin().await;
    let v = local_ec(&state, vid)?;
    if state.store.volume(vid).is_some() {
        return Err(ApiError::Conflict(format!(
            "volume {vid} is already a normal volume here"
        )));
    }
    let home = EcHome::of(&v);
    let had = v.local_shards();
    let d = v.geometry().data_shards();
    drop(v);
    gather(&state, vid, &home, &had, d).await?;
    let s = state.clone();
    let report = tokio::task::spawn_blocking(move || s.ec.decode(vid, &home)).await??;
    changed(&state, vid);
    tracing::info!(
        volume = vid.0,
        live = report.live_needles,
        tombstones = report.tombstones,
        "ec volume decoded"
    );
    Ok(Json(json!({
        "liveNeedles": report.live_needles,
        "tombstones": report.tombstones,
        "datBytes": report.dat_bytes,
        "seconds": report.seconds,
    })))
}
