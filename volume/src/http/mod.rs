//! The volume server's HTTP API (axum): SeaweedFS-compatible needle reads and writes,
//! admin calls for masters and the shell, and the heartbeat loop. Handlers parse the
//! request, call the storage layer ([`crate::store`], [`crate::ec::store`]) and map its
//! errors in one place ([`error`]); they do no file-system work themselves.

mod admin;
mod ec;
pub mod error;
mod heartbeat;
pub mod path;
mod read;
mod repair;
mod ui;
mod volume_copy;
mod write;

pub(crate) use write::{INLINE_WRITE_MAX, storable_mime};

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::routing::{get, post};
use kelp_proto::client::{MasterClient, VolumeClient, http_client};
use tokio::sync::Notify;

use crate::ec::store::EcStore;
use crate::store::Store;

/// How a volume server presents itself and which limits it applies.
#[derive(Debug, Clone)]
pub struct VolumeServerConfig {
    /// `host` other servers use to reach this one.
    pub ip: String,
    pub port: u16,
    /// `host:port` handed to clients for reads (default `ip:port`).
    pub public_url: String,
    /// Masters, any of which answers.
    pub masters: Vec<String>,
    pub data_center: String,
    pub rack: String,
    /// Largest accepted upload, in bytes.
    pub file_size_limit: u64,
    /// Fsync every write before answering.
    pub fsync: bool,
    /// Seconds between heartbeats (also sent at once on every change).
    pub heartbeat_secs: u64,
    /// Idle timeout and connection cap of the listener.
    pub limits: kelp_proto::server::Limits,
}

impl VolumeServerConfig {
    /// Documented default of `-port` (`-volume.port` of `kelp server`).
    pub const DEFAULT_PORT: u16 = 8080;
    /// Documented default of `-max` (`-volume.max`): volumes per data directory.
    pub const DEFAULT_MAX_VOLUMES: usize = 8;
    /// Documented default of `-fileSizeLimitMB`.
    pub const DEFAULT_FILE_SIZE_LIMIT_MB: u64 = 256;
    /// Seconds between heartbeats when nothing changes.
    pub const DEFAULT_HEARTBEAT_SECS: u64 = 5;
}

impl Default for VolumeServerConfig {
    /// A server on 127.0.0.1 reporting to a master on 127.0.0.1, with the documented
    /// defaults of `kelp volume`.
    fn default() -> Self {
        VolumeServerConfig {
            ip: "127.0.0.1".into(),
            port: Self::DEFAULT_PORT,
            public_url: String::new(),
            masters: vec!["127.0.0.1:9333".into()],
            data_center: String::new(),
            rack: String::new(),
            file_size_limit: Self::DEFAULT_FILE_SIZE_LIMIT_MB << 20,
            fsync: false,
            heartbeat_secs: Self::DEFAULT_HEARTBEAT_SECS,
            limits: kelp_proto::server::Limits::default(),
        }
    }
}

impl VolumeServerConfig {
    /// `ip:port`, this server's id in the cluster.
    pub fn url(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn public_url(&self) -> String {
        if self.public_url.is_empty() {
            self.url()
        } else {
            self.public_url.clone()
        }
    }
}

/// Shared state of the handlers.
pub(crate) struct AppState {
    pub store: Arc<Store>,
    pub cfg: VolumeServerConfig,
    pub master: MasterClient,
    pub volumes: VolumeClient,
    /// Wakes the heartbeat loop when volumes change.
    pub changed: Notify,
    /// The master's volume size limit, learned from heartbeat answers (0 = unknown).
    pub size_limit: AtomicU64,
    /// Erasure-coded volumes held here (any number of their shards).
    pub ec: EcStore,
    /// Where the other shards of those volumes are, for reads.
    pub ec_holders: ec::ShardHolders,
    /// Vacuums committed and volumes erasure-coded here since start (for metrics).
    pub vacuums: AtomicU64,
    pub ec_encodes: AtomicU64,
}

impl AppState {
    pub(crate) fn volume_changed(&self) {
        self.changed.notify_one();
    }
}

/// The admin calls (masters, the shell, other volume servers): they need the cluster's
/// admin credential once a security file is in force.
fn admin_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/volume/allocate", post(admin::allocate))
        .route("/admin/volume/delete", post(admin::delete_volume))
        .route("/admin/volume/readonly", post(admin::readonly))
        .route("/admin/volume/sizes", get(volume_copy::sizes))
        .route("/admin/volume/file", get(volume_copy::file))
        .route("/admin/volume/copy", post(volume_copy::copy))
        .route("/admin/volume/needles", get(repair::needles))
        .route(
            "/admin/volume/needle",
            get(repair::needle).post(repair::put_needle),
        )
        .route("/admin/volume/needle/delete", post(repair::delete_needle))
        .route("/admin/collection/delete", post(admin::delete_collection))
        .route("/admin/vacuum/check", post(admin::vacuum_check))
        .route("/admin/vacuum/compact", post(admin::vacuum_compact))
        .route("/admin/vacuum/commit", post(admin::vacuum_commit))
        .route("/admin/vacuum/cleanup", post(admin::vacuum_cleanup))
        .route("/admin/ec/encode", post(ec::encode))
        .route("/admin/ec/info", get(ec::info))
        .route("/admin/ec/shard", get(ec::shard))
        .route("/admin/ec/shards", get(ec::shards))
        .route("/admin/ec/file", get(ec::file))
        .route("/admin/ec/copy", post(ec::copy))
        .route("/admin/ec/mount", post(ec::mount))
        .route("/admin/ec/unmount", post(ec::unmount))
        .route("/admin/ec/delete-shards", post(ec::delete_shards))
        .route("/admin/ec/rebuild", post(ec::rebuild))
        .route("/admin/ec/decode", post(ec::decode))
        .route("/admin/ec/vacuum", post(ec::vacuum))
        .layer(axum::middleware::from_fn(
            kelp_proto::security::require_admin,
        ))
}

/// Builds the router (exposed for tests that serve it themselves).
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/status", get(admin::status))
        .route("/healthz", get(admin::healthz))
        .route("/ui", get(ui::status_page))
        .merge(admin_routes())
        .fallback(needle_request)
        // Upload size is checked against -fileSizeLimitMB by the handlers themselves.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

async fn needle_request(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    if let Err(e) = check_token(&req) {
        return kelp_proto::security::unauthorized(&e);
    }
    match *req.method() {
        Method::GET | Method::HEAD => read::get(state, req).await,
        Method::POST | Method::PUT => write::upload(state, req).await,
        Method::DELETE => write::delete(state, req).await,
        _ => error::ApiError::MethodNotAllowed(req.method().clone()).into_response(),
    }
}

/// Under `[jwt.signing]` (writes, deletes) and `[jwt.signing.read]` (reads) a needle
/// request needs a token for its fid, or an admin credential. A path that is not a
/// fid passes here and gets its 400 from the handler.
fn check_token(req: &axum::extract::Request) -> Result<(), kelp_proto::security::TokenError> {
    let security = kelp_proto::security::current();
    let write = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if (write && security.write.is_none()) || (!write && security.read.is_none()) {
        return Ok(());
    }
    let Ok(p) = path::parse(req.uri().path()) else {
        return Ok(());
    };
    let token = kelp_proto::security::request_token(req.headers(), req.uri().query());
    let certified = req
        .extensions()
        .get::<kelp_proto::security::PeerCertified>()
        .is_some();
    // `3,02a105935c_1` parses to the key after 02a1: the batch's token (its `count`)
    // covers it.
    security.check_needle(write, &p.fid, token.as_deref(), certified)
}

/// Serves the volume API on `listener` until `shutdown` resolves, heartbeating to
/// the masters meanwhile; in-flight requests finish, then the store is synced.
/// The operation of a volume server request, for metrics labels.
fn classify(method: &axum::http::Method, uri: &axum::http::Uri) -> &'static str {
    use axum::http::Method;
    let p = uri.path();
    if let Some(admin) = p.strip_prefix("/admin/") {
        return match admin {
            a if a.starts_with("ec/") => "admin_ec",
            a if a.starts_with("vacuum/") => "admin_vacuum",
            _ => "admin",
        };
    }
    match (p, method) {
        ("/status", _) => "status",
        ("/healthz", _) => "healthz",
        ("/ui", _) => "ui",
        (_, &Method::GET | &Method::HEAD) => "read",
        (_, &Method::PUT | &Method::POST) => "write",
        (_, &Method::DELETE) => "delete",
        _ => "other",
    }
}

/// The volume server's metrics: its HTTP API, volumes, EC shards and disks.
fn volume_metrics(state: &Arc<AppState>, port: u16) -> Arc<kelp_proto::metrics::Metrics> {
    use kelp_proto::metrics::Metrics;
    use kelp_proto::metrics::Unit;
    let mut b = Metrics::builder("volume", classify);
    Metrics::connections_gauge(&mut b, port);
    let s = state.clone();
    b.gauge("volumes", "Volumes on this server", None, move || {
        s.store.volumes().len() as f64
    });
    let s = state.clone();
    b.gauge(
        "free_volume_slots",
        "Volumes this server could still create",
        None,
        move || s.store.free_slots() as f64,
    );
    let s = state.clone();
    b.gauge(
        "used",
        "Bytes of the volumes' data files",
        Some(Unit::Bytes),
        move || s.store.volume_infos().iter().map(|v| v.size as f64).sum(),
    );
    let s = state.clone();
    b.gauge(
        "garbage",
        "Bytes of deleted needles not yet vacuumed",
        Some(Unit::Bytes),
        move || {
            s.store
                .volume_infos()
                .iter()
                .map(|v| v.deleted_byte_count as f64)
                .sum()
        },
    );
    let s = state.clone();
    b.gauge("files", "Live needles in the volumes", None, move || {
        s.store
            .volume_infos()
            .iter()
            .map(|v| v.file_count.saturating_sub(v.delete_count) as f64)
            .sum()
    });
    let s = state.clone();
    b.gauge(
        "ec_volumes",
        "Erasure-coded volumes with shards here",
        None,
        move || s.ec.len() as f64,
    );
    let s = state.clone();
    b.gauge(
        "needle_map_memory",
        "Heap bytes of the volumes' in-memory needle maps",
        Some(Unit::Bytes),
        move || {
            s.store
                .volumes()
                .iter()
                .map(|v| v.map_heap_bytes() as f64)
                .sum()
        },
    );
    let s = state.clone();
    b.counter(
        "vacuums",
        "Volume vacuums committed on this server",
        None,
        move || s.vacuums.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    let s = state.clone();
    b.counter(
        "ec_encodes",
        "Volumes erasure-coded on this server",
        None,
        move || s.ec_encodes.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    let s = state.clone();
    b.gauge(
        "disk_free",
        "Free bytes on the disks holding volumes",
        Some(Unit::Bytes),
        move || s.store.disk_statuses().iter().map(|d| d.free as f64).sum(),
    );
    b.build()
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    cfg: VolumeServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = http_client();
    let state = Arc::new(AppState {
        // Lookups here are best effort (redirects, replica lists): do not stall long.
        master: MasterClient::with_http(cfg.masters.clone(), http.clone())
            .retrying_for(std::time::Duration::from_secs(2)),
        volumes: VolumeClient::new(http),
        store: store.clone(),
        cfg,
        changed: Notify::new(),
        size_limit: AtomicU64::new(0),
        ec: EcStore::load(store.clone()),
        ec_holders: ec::ShardHolders::default(),
        vacuums: AtomicU64::new(0),
        ec_encodes: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let hb = tokio::spawn(heartbeat::run(state.clone(), stop_rx.clone()));
    let journals = tokio::spawn(ec::journal::run(state.clone(), stop_rx));
    tracing::info!(url = %state.cfg.url(), volumes = store.volumes().len(), ec_volumes = state.ec.len(), "volume server listening");
    let limits = state.cfg.limits;
    let metrics = volume_metrics(&state, listener.local_addr()?.port());
    let answer = metrics.clone();
    let app = metrics.layer(router(state)).route(
        "/metrics",
        axum::routing::get(move || async move { answer.answer() }),
    );
    let tls = kelp_proto::security::current()
        .https
        .as_ref()
        .and_then(|h| h.server(kelp_proto::security::Role::Volume));
    let res = kelp_proto::server::serve(listener, app, limits, tls, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = hb.await;
    let _ = journals.await;
    if let Err(e) = tokio::task::spawn_blocking(move || store.sync_all()).await {
        tracing::error!(error = %e, "syncing volumes at shutdown failed");
    }
    res
}
