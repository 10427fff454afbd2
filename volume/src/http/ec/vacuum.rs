//! `POST /admin/ec/vacuum`: drops the deleted needles of an EC volume on a server that
//! holds at least `data_shards` of its shards (every shard is rewritten there; `kelp
//! shell`'s `ec.vacuum` then hands the new shards back to the other holders).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use kelp_proto::volume_api::{EcVolumeStatus, VolumeRequest};

use super::{AppState, changed, local_ec};
use crate::ec::store::{EcHome, status_of};
use crate::http::error::{ApiError, ApiQuery, ApiResult};

/// `POST /admin/ec/vacuum?volume=N`: rewrites every shard of EC volume N here without
/// the needles its `.ecj` deletes (crash-safe swap), reloads it and answers the new
/// status (every shard is now local).
pub(crate) async fn vacuum(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = req.volume;
    let start = Instant::now();
    let _g = state.ec.lock_admin().await;
    let v = local_ec(&state, vid)?;
    let need = v.geometry().data_shards();
    let have = v.local_shards().len();
    if have < need {
        return Err(ApiError::Conflict(format!(
            "ec volume {vid}: {have} shards here, an ec vacuum needs {need} of them locally"
        )));
    }
    let home = EcHome::of(&v);
    drop(v);
    let s = state.clone();
    let (report, v) = tokio::task::spawn_blocking(move || s.ec.vacuum(vid, &home)).await??;
    changed(&state, vid);
    tracing::info!(
        volume = vid.0,
        kept = report.needles_kept,
        dropped = report.deleted_dropped,
        corrupt = report.corrupt_dropped,
        shard_bytes_before = report.shard_bytes_before,
        shard_bytes_after = report.shard_bytes_after,
        "ec volume vacuumed"
    );
    let mut st = status_of(vid.0, &v);
    st.seconds = start.elapsed().as_secs_f64();
    Ok(Json(st))
}
