//! Erasure coding on a running volume server: the loaded [`EcVolume`]s and the
//! `/admin/ec/*` endpoints (encode, shard ranges, pull-based shard copy, mount, delete,
//! rebuild, decode) that `kelp shell` orchestrates; vacuum is in `ec_vacuum`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kelp_proto::VolumeId;
use kelp_proto::master_api::{EcShardInfo, Location};
use kelp_proto::volume_api::{EcShardFile, EcVolumeStatus};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::AppState;
use super::admin::volume_param;
use super::error::{ApiError, ApiResult};
use crate::ec::{self, EcVolume, layout};
use crate::fsutil::sync_dir;
use crate::store::{Store, parse_volume_file_name};
use crate::volume::base_name;

type Params = Query<HashMap<String, String>>;

/// The EC volumes of this server, plus what reads need to reach remote shards.
pub(crate) struct EcStore {
    volumes: RwLock<BTreeMap<u32, Arc<EcVolume>>>,
    /// Remote shard holders per volume, from the master, with when they were asked.
    pub(super) holders: RwLock<HashMap<u32, (Instant, Vec<Location>)>>,
    /// Servers whose shard reads failed lately, skipped until the instant.
    pub(super) down: Mutex<HashMap<String, Instant>>,
    /// Serializes the admin calls that change shard files.
    pub(super) admin: tokio::sync::Mutex<()>,
}

fn rlock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn wlock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// `(collection, vid)` of a base name `<collection>_<vid>` or `<vid>`.
fn parse_base(base: &str) -> Option<(String, VolumeId)> {
    parse_volume_file_name(&format!("{base}.dat"))
}

/// Every `(dir, base)` with an `.ecx` in the store's directories.
fn scan(store: &Store) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for loc in store.locations() {
        let Ok(rd) = std::fs::read_dir(&loc.dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            if let Some(base) = name.to_str().and_then(|n| n.strip_suffix(".ecx"))
                && parse_base(base).is_some()
            {
                out.push((loc.dir.clone(), base.to_string()));
            }
        }
    }
    out
}

impl EcStore {
    /// Opens every EC volume (an `.ecx` present) in the store's directories.
    pub(crate) fn load(store: &Store) -> EcStore {
        let mut volumes = BTreeMap::new();
        for (dir, base) in scan(store) {
            let Some((_, vid)) = parse_base(&base) else {
                continue;
            };
            match EcVolume::open(&dir, &base) {
                Ok(v) => {
                    volumes.insert(vid.0, Arc::new(v));
                }
                Err(e) => {
                    tracing::error!(dir = %dir.display(), base, error = %e, "cannot load ec volume")
                }
            }
        }
        EcStore {
            volumes: RwLock::new(volumes),
            holders: RwLock::new(HashMap::new()),
            down: Mutex::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn get(&self, vid: u32) -> Option<Arc<EcVolume>> {
        rlock(&self.volumes).get(&vid).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        rlock(&self.volumes).len()
    }

    /// Every EC volume held here, by id.
    pub(crate) fn all(&self) -> Vec<(u32, Arc<EcVolume>)> {
        rlock(&self.volumes)
            .iter()
            .map(|(id, v)| (*id, v.clone()))
            .collect()
    }

    pub(super) fn insert(&self, vid: u32, v: EcVolume) -> Arc<EcVolume> {
        let v = Arc::new(v);
        wlock(&self.volumes).insert(vid, v.clone());
        wlock(&self.holders).remove(&vid);
        v
    }

    fn remove(&self, vid: u32) -> Option<Arc<EcVolume>> {
        wlock(&self.holders).remove(&vid);
        wlock(&self.volumes).remove(&vid)
    }

    /// What heartbeats report.
    pub(crate) fn shard_infos(&self) -> Vec<EcShardInfo> {
        rlock(&self.volumes)
            .iter()
            .map(|(id, v)| EcShardInfo {
                id: *id,
                collection: layout::collection_of(v.base()).to_string(),
                shards: v.local_shards(),
            })
            .collect()
    }
}

pub(super) fn status_of(vid: u32, v: &EcVolume) -> EcVolumeStatus {
    let config = v.info().config;
    EcVolumeStatus {
        id: vid,
        collection: layout::collection_of(v.base()).to_string(),
        data_shards: config.data_shards,
        parity_shards: config.parity_shards,
        shards: v
            .local_shards()
            .into_iter()
            .map(|id| EcShardFile {
                id,
                size: std::fs::metadata(layout::shard_path(v.dir(), v.base(), id))
                    .map(|m| m.len())
                    .unwrap_or(0),
            })
            .collect(),
        needles: v.needle_count() as u64,
        deleted: v.deleted_count() as u64,
        rebuilt: Vec::new(),
        seconds: 0.0,
    }
}

pub(super) fn local_ec(state: &AppState, vid: VolumeId) -> ApiResult<Arc<EcVolume>> {
    state
        .ec
        .get(vid.0)
        .ok_or_else(|| ApiError::not_found(format!("ec volume {vid} is not on this server")))
}

fn parse_num<T: std::str::FromStr>(q: &HashMap<String, String>, k: &str) -> ApiResult<T> {
    q.get(k)
        .ok_or_else(|| ApiError::bad_request(format!("missing parameter {k}")))?
        .parse()
        .map_err(|_| ApiError::bad_request(format!("parameter {k} is not a number")))
}

fn parse_shards(q: &HashMap<String, String>, k: &str) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    for s in q.get(k).map(String::as_str).unwrap_or("").split(',') {
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        let id: u8 = s
            .parse()
            .map_err(|_| ApiError::bad_request(format!("bad shard id {s:?} in {k}")))?;
        if id as usize >= ec::MAX_SHARDS {
            return Err(ApiError::bad_request(format!("shard id {id} is too large")));
        }
        out.push(id);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// An optional shard count parameter, `default` when absent.
fn shard_count(q: &HashMap<String, String>, k: &str, default: u8) -> ApiResult<usize> {
    match q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(default as usize),
        Some(s) => s.parse().map_err(|_| {
            ApiError::bad_request(format!("{k}={s:?} is not a positive whole number"))
        }),
    }
}

/// `dataShards` and `parityShards` of an encode: both at least 1, at most
/// [`ec::MAX_SHARDS`] in all; 10 and 4 when absent.
fn geometry_params(q: &HashMap<String, String>) -> ApiResult<(u8, u8)> {
    let d = shard_count(q, "dataShards", ec::DEFAULT_DATA_SHARDS)?;
    let p = shard_count(q, "parityShards", ec::DEFAULT_PARITY_SHARDS)?;
    if d == 0 || p == 0 || d.saturating_add(p) > ec::MAX_SHARDS {
        return Err(ApiError::bad_request(format!(
            "dataShards={d} parityShards={p}: each must be at least 1 and together at most {}",
            ec::MAX_SHARDS
        )));
    }
    Ok((d as u8, p as u8))
}

/// `POST /admin/ec/encode?volume=N[&dataShards=10&parityShards=4]`: marks the volume
/// read-only and encodes it into shards next to it; the `.dat` stays until the volume is
/// deleted.
pub(crate) async fn encode(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = volume_param(&q)?;
    let (data_shards, parity_shards) = geometry_params(&q)?;
    let vol = state
        .store
        .volume(vid)
        .ok_or_else(|| ApiError::not_found(format!("volume {vid} is not on this server")))?;
    let _g = state.ec.admin.lock().await;
    let (v, report) = tokio::task::spawn_blocking(move || -> crate::Result<_> {
        vol.set_read_only(true)?;
        vol.sync()?;
        let base = base_name(vol.collection(), vid);
        let report = ec::encode_volume(
            vol.dir(),
            &base,
            data_shards,
            parity_shards,
            ec::DEFAULT_BLOCK_SIZE,
        )?;
        Ok((EcVolume::open(vol.dir(), &base)?, report))
    })
    .await??;
    tracing::info!(
        volume = vid.0,
        data_shards,
        parity_shards,
        needles = report.needles,
        mb_per_sec = report.mb_per_sec,
        "volume encoded"
    );
    let v = state.ec.insert(vid.0, v);
    state.volume_changed();
    let mut st = status_of(vid.0, &v);
    st.seconds = report.seconds;
    Ok(Json(st))
}

/// `GET /admin/ec/info?volume=N`.
pub(crate) async fn info(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = volume_param(&q)?;
    let v = local_ec(&state, vid)?;
    Ok(Json(status_of(vid.0, &v)))
}

/// `GET /admin/ec/shard?volume=N&shard=S&offset=O&size=L`: verified bytes of a local shard.
pub(crate) async fn shard(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Response> {
    let vid = volume_param(&q)?;
    let v = local_ec(&state, vid)?;
    let shard: u8 = parse_num(&q, "shard")?;
    let offset: u64 = parse_num(&q, "offset")?;
    let size: usize = parse_num(&q, "size")?;
    if size > 64 << 20 {
        return Err(ApiError::bad_request("size is over 64 MiB"));
    }
    let bytes = tokio::task::spawn_blocking(move || v.shard_read(shard, offset, size)).await??;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `GET /admin/ec/shards?volume=N&shards=1,6,11&offset=O&size=L`: the same range of
/// several local shards, concatenated in the order asked (one round trip for a rebuild).
pub(crate) async fn shards(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Response> {
    let vid = volume_param(&q)?;
    let v = local_ec(&state, vid)?;
    let mut ids: Vec<u8> = Vec::new();
    for s in q.get("shards").map(String::as_str).unwrap_or("").split(',') {
        let id: u8 = s
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request(format!("bad shard id {s:?}")))?;
        ids.push(id);
    }
    let offset: u64 = parse_num(&q, "offset")?;
    let size: usize = parse_num(&q, "size")?;
    if size.saturating_mul(ids.len()) > 64 << 20 {
        return Err(ApiError::bad_request("more than 64 MiB asked"));
    }
    let bytes = tokio::task::spawn_blocking(move || -> crate::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(size * ids.len());
        for id in ids {
            out.extend_from_slice(&v.shard_read(id, offset, size)?);
        }
        Ok(out)
    })
    .await??;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// The file extension a copy may ask for: `.ecx`, `.ecj`, `.vif` or `.ecNN`.
fn valid_ext(ext: &str) -> bool {
    matches!(ext, ".ecx" | ".ecj" | ".vif")
        || ext
            .strip_prefix(".ec")
            .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `GET /admin/ec/file?volume=N&ext=.ec03`: streams one EC file (for copies).
pub(crate) async fn file(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Response> {
    let vid = volume_param(&q)?;
    let v = local_ec(&state, vid)?;
    let ext = q.get("ext").map(String::as_str).unwrap_or("");
    if !valid_ext(ext) {
        return Err(ApiError::bad_request(format!("bad ext {ext:?}")));
    }
    let path = layout::ec_path(v.dir(), v.base(), ext);
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::not_found(format!("{}: {e}", path.display())))?;
    let len = f
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?
        .len();
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

/// Downloads `<base><ext>` of volume `vid` from `from` to `path`: temp file, fsync,
/// rename.
async fn pull_file(
    state: &AppState,
    from: &str,
    vid: VolumeId,
    base: &str,
    ext: &str,
    path: &Path,
) -> ApiResult<u64> {
    let url = format!("{}/admin/ec/file", kelp_proto::client::base_url(from));
    let failed = |e: String| ApiError::internal(format!("copying {base}{ext} from {from}: {e}"));
    let resp = state
        .master
        .http()
        .get(&url)
        .query(&[("volume", vid.0.to_string()), ("ext", ext.to_string())])
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(failed(format!("answered {}", resp.status())));
    }
    let want = resp.content_length();
    let tmp = layout::with_suffix(path, ".tmp");
    let mut f = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut resp = resp;
    let mut got = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(e.to_string()))? {
        f.write_all(&chunk)
            .await
            .map_err(|e| failed(e.to_string()))?;
        got += chunk.len() as u64;
    }
    if want.is_some_and(|w| w != got) {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(failed(format!("got {got} bytes of {want:?}")));
    }
    f.sync_all().await.map_err(|e| failed(e.to_string()))?;
    drop(f);
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(got)
}

/// Where EC volume `vid` lives or would live here: its loaded directory, else the
/// directory of a normal volume with that id, else the first data directory.
fn ec_home(state: &AppState, vid: VolumeId, collection: &str) -> ApiResult<(PathBuf, String)> {
    if let Some(v) = state.ec.get(vid.0) {
        return Ok((v.dir().to_path_buf(), v.base().to_string()));
    }
    let base = base_name(collection, vid);
    if let Some(v) = state.store.volume(vid) {
        return Ok((v.dir().to_path_buf(), base));
    }
    if let Some((dir, b)) = scan(&state.store)
        .into_iter()
        .find(|(_, b)| parse_base(b).is_some_and(|(_, v)| v == vid))
    {
        return Ok((dir, b));
    }
    let dir = state
        .store
        .locations()
        .first()
        .map(|l| l.dir.clone())
        .ok_or_else(|| ApiError::internal("this server has no data directory"))?;
    Ok((dir, base))
}

/// Pulls `shards` (and the index files if missing here) from `from`; no mount. With
/// `replace`, the index files are pulled too, everything is staged and then swapped in
/// at once ([`ec::commit_staged`]), and the local shards not in `shards` are removed.
async fn pull_shards(
    state: &AppState,
    from: &str,
    vid: VolumeId,
    dir: &Path,
    base: &str,
    shards: &[u8],
    replace: bool,
) -> ApiResult<()> {
    let dest = |ext: &str| {
        let p = layout::ec_path(dir, base, ext);
        if replace { ec::staged_path(&p) } else { p }
    };
    let mut exts: Vec<String> = Vec::new();
    if replace || !layout::ec_path(dir, base, ".ecx").exists() {
        exts.extend([".ecx", ".ecj", ".vif"].map(String::from));
    }
    exts.extend(shards.iter().map(|s| format!(".ec{s:02}")));
    for (i, ext) in exts.iter().enumerate() {
        if let Err(e) = pull_file(state, from, vid, base, ext, &dest(ext)).await {
            if replace {
                // Staged files without a commit would only be dropped at the next open.
                for done in &exts[..i] {
                    let _ = tokio::fs::remove_file(dest(done)).await;
                }
            }
            return Err(e);
        }
    }
    if replace {
        let stale: Vec<u8> = (0..ec::MAX_SHARDS as u8)
            .filter(|s| !shards.contains(s))
            .collect();
        let (d, b) = (dir.to_path_buf(), base.to_string());
        tokio::task::spawn_blocking(move || -> crate::Result<()> {
            ec::commit_staged(&d, &b)?;
            remove_shard_files(&d, &b, &stale)
        })
        .await??;
    }
    sync_dir(dir)?;
    Ok(())
}

async fn open_blocking(dir: PathBuf, base: String) -> ApiResult<EcVolume> {
    Ok(tokio::task::spawn_blocking(move || EcVolume::open(&dir, &base)).await??)
}

/// `POST /admin/ec/copy?volume=N&collection=C&shards=1,2&from=host:port[&replace=true]`:
/// pulls shard files (and `.ecx`/`.ecj`/`.vif` when this server has none, or always with
/// `replace`, which makes `shards` this server's whole set) from another server and mounts
/// them.
pub(crate) async fn copy(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = volume_param(&q)?;
    let shards = parse_shards(&q, "shards")?;
    let from = q
        .get("from")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing parameter from"))?;
    let collection = q.get("collection").cloned().unwrap_or_default();
    let replace = match q.get("replace").map(String::as_str) {
        None | Some("" | "false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "replace={other:?}: expected true or false"
            )));
        }
    };
    if replace && shards.is_empty() {
        return Err(ApiError::bad_request(
            "replace=true needs at least one shard",
        ));
    }
    let start = Instant::now();
    let _g = state.ec.admin.lock().await;
    let (dir, base) = ec_home(&state, vid, &collection)?;
    pull_shards(&state, from, vid, &dir, &base, &shards, replace).await?;
    let v = state.ec.insert(vid.0, open_blocking(dir, base).await?);
    state.volume_changed();
    let mut st = status_of(vid.0, &v);
    st.seconds = start.elapsed().as_secs_f64();
    Ok(Json(st))
}

/// `POST /admin/ec/mount?volume=N`: (re)opens the EC volume from the files on disk.
pub(crate) async fn mount(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = volume_param(&q)?;
    let _g = state.ec.admin.lock().await;
    let (dir, base) = ec_home(&state, vid, "")?;
    if !layout::ec_path(&dir, &base, ".ecx").exists() {
        return Err(ApiError::not_found(format!(
            "no ec files of volume {vid} here"
        )));
    }
    let v = state.ec.insert(vid.0, open_blocking(dir, base).await?);
    state.volume_changed();
    Ok(Json(status_of(vid.0, &v)))
}

/// `POST /admin/ec/unmount?volume=N`: stops serving the EC volume (files stay).
pub(crate) async fn unmount(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let vid = volume_param(&q)?;
    let _g = state.ec.admin.lock().await;
    state.ec.remove(vid.0);
    state.volume_changed();
    Ok(Json(json!({})))
}

/// Removes the files of `shards` that exist.
fn remove_shard_files(dir: &Path, base: &str, shards: &[u8]) -> crate::Result<()> {
    for s in shards {
        let p = layout::shard_path(dir, base, *s);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(crate::VolumeError::EcInvalid(format!(
                    "{}: {e}",
                    p.display()
                )));
            }
        }
    }
    Ok(())
}

/// Removes shard files; when no shard is left, every EC file (and the `.vif` unless a
/// `.dat` still uses it). Returns the volume reopened, or `None` when all is gone.
fn remove_shards(dir: &Path, base: &str, shards: &[u8]) -> crate::Result<Option<EcVolume>> {
    remove_shard_files(dir, base, shards)?;
    let left = (0..ec::MAX_SHARDS).any(|i| layout::shard_path(dir, base, i as u8).exists());
    if left {
        sync_dir(dir)?;
        return EcVolume::open(dir, base).map(Some);
    }
    ec::remove_ec_files(dir, base)?;
    if !layout::ec_path(dir, base, ".dat").exists() {
        let vif = layout::ec_path(dir, base, ".vif");
        if vif.exists() {
            std::fs::remove_file(&vif)
                .map_err(|e| crate::VolumeError::EcInvalid(format!("{}: {e}", vif.display())))?;
        }
    }
    sync_dir(dir)?;
    Ok(None)
}

/// Removes every EC volume of `collection` held here, shard files and all (part of
/// `/admin/collection/delete`).
pub(crate) async fn delete_collection(state: &AppState, collection: &str) -> ApiResult<()> {
    let _g = state.ec.admin.lock().await;
    let doomed: Vec<Arc<EcVolume>> = rlock(&state.ec.volumes)
        .values()
        .filter(|v| layout::collection_of(v.base()) == collection)
        .cloned()
        .collect();
    for v in doomed {
        let Some((_, vid)) = parse_base(v.base()) else {
            continue;
        };
        state.ec.remove(vid.0);
        let (dir, base) = (v.dir().to_path_buf(), v.base().to_string());
        let all: Vec<u8> = (0..ec::MAX_SHARDS as u8).collect();
        tokio::task::spawn_blocking(move || remove_shards(&dir, &base, &all)).await??;
        tracing::info!(
            volume = vid.0,
            collection,
            "ec volume deleted with its collection"
        );
    }
    Ok(())
}

/// `POST /admin/ec/delete-shards?volume=N&shards=1,2`.
pub(crate) async fn delete_shards(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = volume_param(&q)?;
    let shards = parse_shards(&q, "shards")?;
    let _g = state.ec.admin.lock().await;
    let v = local_ec(&state, vid)?;
    let (dir, base) = (v.dir().to_path_buf(), v.base().to_string());
    let collection = layout::collection_of(&base).to_string();
    state.ec.remove(vid.0);
    let reopened = tokio::task::spawn_blocking(move || remove_shards(&dir, &base, &shards)).await?;
    let st = match reopened? {
        Some(v) => status_of(vid.0, &state.ec.insert(vid.0, v)),
        None => EcVolumeStatus {
            id: vid.0,
            collection,
            ..Default::default()
        },
    };
    state.volume_changed();
    Ok(Json(st))
}

/// Pulls shards from the other holders until `dir` holds `need` of them; returns the ids
/// fetched (to be removed again by the caller if not wanted).
async fn gather(
    state: &AppState,
    vid: VolumeId,
    dir: &Path,
    base: &str,
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
        .map_err(|e| ApiError::internal(format!("looking up the shards of {vid}: {e}")))?;
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
        match pull_shards(state, &h.url, vid, dir, base, &want, false).await {
            Ok(()) => {
                local.extend(&want);
                fetched.extend(&want);
            }
            Err(e) => {
                tracing::warn!(volume = vid.0, from = %h.url, error = %e.message, "cannot fetch ec shards")
            }
        }
        if local.len() >= need {
            return Ok(fetched);
        }
    }
    Err(ApiError::internal(format!(
        "ec volume {vid}: only {} shards reachable, {need} needed",
        local.len()
    )))
}

/// `POST /admin/ec/rebuild?volume=N&missing=1,2`: fetches enough shards from the other
/// holders, regenerates every missing shard locally, then keeps the shards it held
/// plus `missing` (all regenerated ones if `missing` is empty).
pub(crate) async fn rebuild(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<EcVolumeStatus>> {
    let vid = volume_param(&q)?;
    let asked = parse_shards(&q, "missing")?;
    let start = Instant::now();
    let _g = state.ec.admin.lock().await;
    let v = local_ec(&state, vid)?;
    let (dir, base) = (v.dir().to_path_buf(), v.base().to_string());
    let had = v.local_shards();
    let d = v.geometry().data_shards();
    drop(v);
    let fetched = gather(&state, vid, &dir, &base, &had, d).await?;
    let (d2, b2) = (dir.clone(), base.clone());
    let rebuilt = tokio::task::spawn_blocking(move || ec::rebuild_missing(&d2, &b2)).await??;
    let keep =
        |s: &u8| had.contains(s) || (asked.is_empty() && rebuilt.contains(s)) || asked.contains(s);
    let drop_ids: Vec<u8> = (0..ec::MAX_SHARDS as u8).filter(|s| !keep(s)).collect();
    let kept_rebuilt: Vec<u8> = rebuilt.iter().copied().filter(|s| keep(s)).collect();
    let (d3, b3) = (dir.clone(), base.clone());
    let reopened =
        tokio::task::spawn_blocking(move || remove_shards(&d3, &b3, &drop_ids)).await??;
    let mut st = match reopened {
        Some(v) => status_of(vid.0, &state.ec.insert(vid.0, v)),
        None => {
            state.ec.remove(vid.0);
            EcVolumeStatus::default()
        }
    };
    state.volume_changed();
    tracing::info!(volume = vid.0, fetched = ?fetched, rebuilt = ?kept_rebuilt, "ec shards rebuilt");
    st.rebuilt = kept_rebuilt;
    st.seconds = start.elapsed().as_secs_f64();
    Ok(Json(st))
}

/// `POST /admin/ec/decode?volume=N`: gathers data shards here if needed, decodes into a
/// normal volume, mounts it, then removes the local EC files.
pub(crate) async fn decode(
    State(state): State<Arc<AppState>>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let vid = volume_param(&q)?;
    let _g = state.ec.admin.lock().await;
    let v = local_ec(&state, vid)?;
    if state.store.volume(vid).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("volume {vid} is already a normal volume here"),
        ));
    }
    let (dir, base) = (v.dir().to_path_buf(), v.base().to_string());
    let had = v.local_shards();
    let d = v.geometry().data_shards();
    drop(v);
    gather(&state, vid, &dir, &base, &had, d).await?;
    let collection = layout::collection_of(&base).to_string();
    let store = state.store.clone();
    let (d2, b2) = (dir.clone(), base.clone());
    let report = tokio::task::spawn_blocking(move || -> crate::Result<_> {
        let r = ec::decode_to_volume(&d2, &b2)?;
        store.mount_volume(&d2, &collection, vid)?;
        Ok(r)
    })
    .await??;
    state.ec.remove(vid.0);
    tokio::task::spawn_blocking(move || ec::remove_ec_files(&dir, &base)).await??;
    state.volume_changed();
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
