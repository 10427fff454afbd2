//! `POST /admin/ec/vacuum`: drops the deleted needles of an EC volume on a server that
//! holds at least `data_shards` of its shards (every shard is rewritten there; `kelp
//! shell`'s `ec.vacuum` then hands the new shards back to the other holders).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use kelp_proto::volume_api::EcVolumeStatus;

use super::AppState;
use super::admin::volume_param;
use super::ec::{local_ec, status_of};
use super::error::{ApiError, ApiResult};
use crate::ec::{EcVolume, ec_vacuum};

/// `POST /admin/ec/vacuum?volume=N`: rewrites every shard of EC volume N here without
/// the needles its `.ecj` deletes (crash-safe swap), reloads it and answers the new
/// status (every shard is now local).
pub(crate) async fn vacuum(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = volume_param(&q)?;
    let start = Instant::now();
    let _g = state.ec.admin.lock().await;
    let v = local_ec(&state, vid)?;
    let need = v.geometry().data_shards();
    let have = v.local_shards().len();
    if have < need {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "ec volume {vid}: {have} shards here, an ec vacuum needs {need} of them locally"
            ),
        ));
    }
    let (dir, base) = (v.dir().to_path_buf(), v.base().to_string());
    drop(v);
    let (report, reopened) = tokio::task::spawn_blocking(move || -> crate::Result<_> {
        let report = ec_vacuum(&dir, &base)?;
        Ok((report, EcVolume::open(&dir, &base)?))
    })
    .await??;
    let v = state.ec.insert(vid.0, reopened);
    state.volume_changed();
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
