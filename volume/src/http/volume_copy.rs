//! `/admin/volume/{sizes,file,copy}`: copying a whole normal volume from another volume
//! server. The source answers a consistent size snapshot and streams its files; the
//! target pulls them (throttled, bounded memory) into staged files that the store
//! verifies and installs ([`crate::store::IncomingVolume`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kelp_proto::VolumeId;
use kelp_proto::volume_api::{
    VolumeCopied, VolumeCopyRequest, VolumeFileRequest, VolumeRequest, VolumeSizes,
};

use super::AppState;
use super::admin::local_volume;
use super::error::{ApiError, ApiQuery, ApiResult};
use crate::store::IncomingVolume;

/// Bytes read from disk per chunk when streaming a file or a record.
const STREAM_CHUNK: u64 = 256 << 10;
/// A source that sends nothing for this long has failed the copy.
const STALL: Duration = Duration::from_secs(60);
/// A `.vif` is a small JSON file; anything larger is not one.
const VIF_MAX: u64 = 1 << 20;

/// `len` bytes of `file` from `start`, read with positioned reads one chunk at a time on
/// the blocking pool (the file's offset is never used, so the volume's own handle can be
/// streamed).
pub(super) fn file_range_body(file: Arc<File>, start: u64, len: u64) -> Body {
    let end = start + len;
    let stream = futures::stream::try_unfold((file, start), move |(file, pos)| async move {
        if pos >= end {
            return Ok(None);
        }
        let n = STREAM_CHUNK.min(end - pos) as usize;
        let f = file.clone();
        let buf = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let mut buf = vec![0u8; n];
            f.read_exact_at(&mut buf, pos)?;
            Ok(buf)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok::<_, std::io::Error>(Some((Bytes::from(buf), (file, pos + n as u64))))
    });
    Body::from_stream(stream)
}

/// An `application/octet-stream` answer of `len` bytes.
pub(super) fn octet_stream(len: u64, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response()
}

/// `GET /admin/volume/sizes?volume=N`.
pub(crate) async fn sizes(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeRequest>,
) -> ApiResult<Json<VolumeSizes>> {
    let v = local_volume(&state, req.volume)?;
    let v2 = v.clone();
    let (idx, dat) = tokio::task::spawn_blocking(move || v2.copy_sizes()).await??;
    Ok(Json(VolumeSizes {
        volume: req.volume.0,
        collection: v.collection().to_string(),
        idx,
        dat,
        read_only: v.is_read_only(),
    }))
}

/// `GET /admin/volume/file?volume=N&ext=.dat|.idx|.vif[&upto=BYTES]`.
pub(crate) async fn file(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeFileRequest>,
) -> ApiResult<Response> {
    req.validate().map_err(ApiError::BadRequest)?;
    let v = local_volume(&state, req.volume)?;
    let ext = req.ext.clone();
    let found = tokio::task::spawn_blocking(move || v.file_for_copy(&ext)).await??;
    let Some((f, len)) = found else {
        return Err(ApiError::NotFound(format!(
            "volume {} has no {} file here",
            req.volume, req.ext
        )));
    };
    let n = match req.upto {
        Some(upto) if upto > len => {
            return Err(ApiError::BadRequest(format!(
                "upto={upto} is beyond the {len} bytes of the {} file",
                req.ext
            )));
        }
        Some(upto) => upto,
        None => len,
    };
    Ok(octet_stream(n, file_range_body(f, 0, n)))
}

/// Sleeps so that the bytes passed so far take at least `bytes / rate` seconds.
struct Throttle {
    rate: Option<u64>,
    start: Instant,
    bytes: u64,
}

impl Throttle {
    fn new(rate: Option<u64>) -> Throttle {
        Throttle {
            rate,
            start: Instant::now(),
            bytes: 0,
        }
    }

    async fn pace(&mut self, n: usize) {
        let Some(rate) = self.rate else {
            return;
        };
        self.bytes += n as u64;
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// Streams the first `upto` bytes (all if `None`) of `from`'s `ext` file of `vid` into
/// the staged file; `None` when `from` has no `.vif`.
async fn pull(
    state: &AppState,
    from: &str,
    incoming: &IncomingVolume,
    ext: &str,
    upto: Option<u64>,
    throttle: &mut Throttle,
) -> ApiResult<Option<u64>> {
    let vid = incoming.volume();
    let failed = |e: String| ApiError::Upstream(format!("copying {ext} of {vid} from {from}: {e}"));
    let asked = tokio::time::timeout(STALL, state.volumes.volume_file(from, vid.0, ext, upto))
        .await
        .map_err(|_| failed(format!("no answer in {} s", STALL.as_secs())))?;
    let mut resp = match asked {
        Ok(r) => r,
        Err(e) if ext == ".vif" && e.status() == Some(404) => return Ok(None),
        Err(e) => return Err(failed(e.to_string())),
    };
    let limit = upto.unwrap_or(VIF_MAX);
    if let Some(len) = resp.content_length()
        && (len > limit || upto.is_some_and(|u| u != len))
    {
        return Err(failed(format!("{len} bytes announced, {limit} asked")));
    }
    let mut f = incoming.receive(ext).await?;
    loop {
        let chunk = tokio::time::timeout(STALL, resp.chunk())
            .await
            .map_err(|_| failed(format!("nothing received for {} s", STALL.as_secs())))?
            .map_err(|e| failed(e.to_string()))?;
        let Some(chunk) = chunk else { break };
        if f.len() + chunk.len() as u64 > limit {
            return Err(failed(format!("more than the {limit} bytes asked")));
        }
        f.write(&chunk).await?;
        throttle.pace(chunk.len()).await;
    }
    if upto.is_some_and(|u| u != f.len()) {
        return Err(failed(format!("{} bytes received of {limit}", f.len())));
    }
    Ok(Some(f.finish().await?.1))
}

/// `POST /admin/volume/copy?volume=N&collection=C&from=host:port[&maxMBps=M]`.
pub(crate) async fn copy(
    State(state): State<Arc<AppState>>,
    ApiQuery(req): ApiQuery<VolumeCopyRequest>,
) -> ApiResult<Json<VolumeCopied>> {
    req.validate().map_err(ApiError::BadRequest)?;
    let vid: VolumeId = req.volume;
    if state.store.volume(vid).is_some() || state.ec.get(vid.0).is_some() {
        return Err(ApiError::Conflict(format!(
            "volume {vid} is already on this server"
        )));
    }
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
    let sizes = state
        .volumes
        .volume_sizes(&req.from, vid.0)
        .await
        .map_err(|e| ApiError::Upstream(format!("sizes of {vid} on {}: {e}", req.from)))?;
    if sizes.volume != vid.0 {
        return Err(ApiError::Upstream(format!(
            "{} answered the sizes of volume {} for {vid}",
            req.from, sizes.volume
        )));
    }
    if sizes.collection != req.collection {
        return Err(ApiError::BadRequest(format!(
            "volume {vid} on {} is in collection {:?}, not {:?}",
            req.from, sizes.collection, req.collection
        )));
    }
    let store = state.store.clone();
    let collection = req.collection.clone();
    // From here on, dropping `incoming` (an error, or the caller going away) removes
    // everything received.
    let incoming =
        tokio::task::spawn_blocking(move || store.begin_copy(vid, &collection)).await??;
    let mut throttle = Throttle::new(req.bytes_per_sec());
    let mut bytes = 0;
    for (ext, upto) in [
        (".vif", None),
        (".idx", Some(sizes.idx)),
        (".dat", Some(sizes.dat)),
    ] {
        bytes += pull(&state, &req.from, &incoming, ext, upto, &mut throttle)
            .await?
            .unwrap_or(0);
    }
    let (idx, dat) = (sizes.idx, sizes.dat);
    let (v, report) = tokio::task::spawn_blocking(move || incoming.install(idx, dat)).await??;
    state.volume_changed();
    let seconds = start.elapsed().as_secs_f64();
    tracing::info!(
        volume = vid.0,
        collection = %req.collection,
        from = %req.from,
        bytes,
        needles = report.needles_checked,
        read_only = v.is_read_only(),
        seconds,
        "volume copied"
    );
    Ok(Json(VolumeCopied {
        volume: vid.0,
        bytes,
        seconds,
    }))
}
