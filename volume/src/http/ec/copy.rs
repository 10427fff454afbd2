//! `POST /admin/ec/copy` and the pull of shard files from other servers it shares with
//! rebuild and decode ([`gather`]): bytes come over HTTP from the peer, the
//! [`EcHome`] of the volume writes them to disk.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use kelp_proto::VolumeId;
use kelp_proto::volume_api::{EcCopyRequest, EcVolumeStatus};

use super::{AppState, changed};
use crate::ec;
use crate::ec::store::{EcHome, status_of};
use crate::http::error::{ApiError, ApiQuery, ApiResult};

/// Downloads the `ext` file of volume `vid` from `from` into `home` (staged when
/// `staged`): temp file, fsync, rename.
async fn pull_file(
    state: &AppState,
    from: &str,
    vid: VolumeId,
    home: &EcHome,
    ext: &str,
    staged: bool,
) -> ApiResult<u64> {
    let failed =
        |e: String| ApiError::Upstream(format!("copying {}{ext} from {from}: {e}", home.base()));
    let mut resp = state
        .volumes
        .ec_file(from, vid.0, ext)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let want = resp.content_length();
    let mut f = home
        .receive(ext, staged)
        .await
        .map_err(|e| failed(e.to_string()))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(e.to_string()))? {
        f.write(&chunk).await.map_err(|e| failed(e.to_string()))?;
    }
    let got = f.len();
    if want.is_some_and(|w| w != got) {
        f.abort().await;
        return Err(failed(format!("got {got} bytes of {want:?}")));
    }
    f.finish().await.map_err(|e| failed(e.to_string()))
}

/// Pulls `shards` (and the index files if missing here) from `from` into `home`; no
/// mount. With `replace`, the index files are pulled too, everything is staged and then
/// swapped in at once, and the local shards not in `shards` are removed.
pub(super) async fn pull_shards(
    state: &AppState,
    from: &str,
    vid: VolumeId,
    home: &EcHome,
    shards: &[u8],
    replace: bool,
) -> ApiResult<()> {
    let exts = home.files_to_fetch(shards, replace);
    for (i, ext) in exts.iter().enumerate() {
        if let Err(e) = pull_file(state, from, vid, home, ext, replace).await {
            if replace {
                home.discard_staged(&exts[..i]).await;
            }
            return Err(e);
        }
    }
    let (h, s) = (home.clone(), shards.to_vec());
    tokio::task::spawn_blocking(move || h.commit_received(&s, replace)).await??;
    Ok(())
}

/// Pulls shards from the other holders until `home` holds `need` of them; returns the ids
/// fetched (to be removed again by the caller if not wanted).
pub(super) async fn gather(
    state: &AppState,
    vid: VolumeId,
    home: &EcHome,
    have: &[u8],
    need: usize,
) -> ApiResult<Vec<u8>> {
    let mut local: Vec<u8> = have.to_vec();
    let mut fetched = Vec::new();
    if local.len() >= need {
        return Ok(fetched);
    }
    let (_, holders) = state
        .master
        .lookup_all(vid)
        .await
        .map_err(|e| ApiError::Upstream(format!("looking up the shards of {vid}: {e}")))?;
    let me = state.cfg.url();
    for h in holders.iter().filter(|h| h.url != me) {
        let want: Vec<u8> = h
            .ec_shards
            .iter()
            .copied()
            .filter(|s| !local.contains(s))
            .take(need - local.len())
            .collect();
        if want.is_empty() {
            continue;
        }
        match pull_shards(state, &h.url, vid, home, &want, false).await {
            Ok(()) => {
                local.extend(&want);
                fetched.extend(&want);
            }
            Err(e) => {
                tracing::warn!(volume = vid.0, from = %h.url, error = %e, "cannot fetch ec shards")
            }
        }
        if local.len() >= need {
            return Ok(fetched);
        }
    }
    Err(ApiError::Upstream(format!(
        "ec volume {vid}: only {} shards reachable, {need} needed",
        local.len()
    )))
}

/// `POST /admin/ec/copy?volume=N&collection=C&shards=1,2&from=host:port[&replace=true]`:
/// pulls shard files (and `.ecx`/`.ecj`/`.vif` when this server has none, or always with
/// `replace`, which makes `shards` this server's whole set) from another server and mounts
/// them.
pub(crate) async fn copy(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<EcCopyRequest>,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = req.volume;
    let shards = req.validate(ec::MAX_SHARDS).map_err(ApiError::BadRequest)?;
    // Only from a volume server the masters know: the call must not make this server
    // connect to any address a caller names.
    let known = state.master.knows_server(&req.from).await.map_err(|e| {
        ApiError::Upstream(format!("cannot ask the masters about {}: {e}", req.from))
    })?;
    if !known {
        return Err(ApiError::BadRequest(format!(
            "{} is not a volume server the masters know",
            req.from
        )));
    }
    let start = Instant::now();
    let _g = state.ec.lock_admin().await;
    let home = state.ec.home(vid, &req.collection)?;
    pull_shards(&state, &req.from, vid, &home, &shards, req.replace).await?;
    let s = state.clone();
    let v = tokio::task::spawn_blocking(move || s.ec.open(vid, &home)).await??;
    changed(&state, vid);
    let mut st = status_of(vid.0, &v);
    st.seconds = start.elapsed().as_secs_f64();
    Ok(Json(st))
}
