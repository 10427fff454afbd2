//! The master HTTP API (SeaweedFS-compatible): routes, leader forwarding, background tasks.

mod admin;
mod dir;
pub mod error;
mod ui;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use kelp_proto::security::require_admin;

use crate::master::{Master, MasterError};
use crate::raft::Role;

/// Marks a request a follower already forwarded, so it is never forwarded twice.
const FORWARDED: &str = "x-kelp-forwarded";
/// Largest body a follower forwards (`/submit` uploads).
const FORWARD_LIMIT: usize = 256 << 20;
/// How long a leader-only request waits for an election before the answer is 503.
const LEADER_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct AppState {
    pub master: Arc<Master>,
    pub http: reqwest::Client,
}

/// Builds the master router: the API plus Raft's own RPC routes.
pub fn router(master: Arc<Master>, http: reqwest::Client) -> Router {
    let state = Arc::new(AppState {
        master: master.clone(),
        http,
    });
    // Admin calls need the cluster's admin credential once a security file is in
    // force (kelp_proto::security); the rest is the public API.
    let leader_only_admin = Router::new()
        .route("/vol/grow", any(admin::grow))
        .route("/vol/vacuum", any(admin::vacuum))
        .route("/col/delete", any(admin::delete_collection))
        .route("/cluster/lock", post(admin::lock))
        .route("/cluster/unlock", post(admin::unlock))
        .route("/vol/reconciled", post(admin::reconciled))
        .route("/cluster/raft/add", post(admin::raft_add))
        .route("/cluster/raft/remove", post(admin::raft_remove))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            forward_to_leader,
        ))
        .layer(middleware::from_fn(require_admin));
    let leader_only = Router::new()
        .route("/dir/assign", any(dir::assign))
        .route("/submit", post(dir::submit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            forward_to_leader,
        ));
    let admin = Router::new()
        .route("/cluster/status", get(admin::cluster_status))
        .route("/cluster/raft/ps", get(admin::raft_ps))
        .route("/vol/status", any(admin::vol_status))
        .route("/heartbeat", post(admin::heartbeat))
        .merge(master.raft.router())
        .layer(middleware::from_fn(require_admin));
    Router::new()
        .merge(leader_only)
        .merge(leader_only_admin)
        .route("/dir/lookup", any(dir::lookup))
        .route("/dir/status", any(dir::status))
        .route("/healthz", get(|| async { StatusCode::OK }))
        .route("/", get(ui::status_page))
        .route("/{fid}", get(dir::redirect))
        .with_state(state.clone())
        .merge(admin.with_state(state))
}

/// Runs the handler on the leader; a follower forwards the request to the leader and
/// relays the answer; with no leader known after [`LEADER_WAIT`] the answer is 503 +
/// Retry-After.
async fn forward_to_leader(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    // Right after a start or a failover an election may still be running: a client is
    // better served by a short wait than by a 503 it has to retry.
    let leader = match state.master.raft.wait_for_role(LEADER_WAIT).await {
        Some(Role::Leader) => return next.run(req).await,
        Some(Role::Follower(leader)) if !req.headers().contains_key(FORWARDED) => leader,
        _ => return MasterError::NotLeader(None).into_response(),
    };
    match forward(&state.http, &leader, req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(leader = %leader, error = %e, "forwarding to the leader failed");
            MasterError::Unavailable(format!("the leader {leader} did not answer: {e}"))
                .into_response()
        }
    }
}

async fn forward(http: &reqwest::Client, leader: &str, req: Request) -> Result<Response, String> {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{path}", kelp_proto::client::base_url(leader));
    let body = axum::body::to_bytes(body, FORWARD_LIMIT)
        .await
        .map_err(|e| e.to_string())?;
    let mut rb = http
        .request(parts.method.clone(), &url)
        .timeout(Duration::from_secs(60))
        .header(FORWARDED, "1")
        .body(body);
    for (k, v) in parts.headers.iter() {
        if k != "host" && k != "content-length" {
            rb = rb.header(k, v);
        }
    }
    let resp = rb.send().await.map_err(|e| e.to_string())?;
    let mut out = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if k != "transfer-encoding" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    out.body(Body::from(bytes)).map_err(|e| e.to_string())
}

/// Serves the master API on `listener` until `shutdown` resolves; runs the dead-node
/// sweep and the periodic vacuum meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    master: Arc<Master>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = kelp_proto::client::http_client();
    let tasks = [
        tokio::spawn(sweep_loop(master.clone())),
        tokio::spawn(vacuum_loop(master.clone())),
    ];
    tracing::info!(addr = %master.cfg.addr(), peers = ?master.cfg.peers, "master listening");
    let metrics = master_metrics(&master, listener.local_addr()?.port());
    let answer = metrics.clone();
    let app = metrics.layer(router(master.clone(), http)).route(
        "/metrics",
        axum::routing::get(move || async move { answer.answer() }),
    );
    let limits = master.cfg.limits;
    let tls = kelp_proto::security::current()
        .https
        .as_ref()
        .and_then(|h| h.server(kelp_proto::security::Role::Master));
    let res = kelp_proto::server::serve(listener, app, limits, tls, shutdown).await;
    for t in tasks {
        t.abort();
    }
    if let Err(e) = master.raft.shutdown().await {
        tracing::warn!(error = %e, "raft shutdown");
    }
    res
}

/// The operation of a master request, for metrics labels.
fn classify(_: &axum::http::Method, uri: &axum::http::Uri) -> &'static str {
    match uri.path() {
        "/dir/assign" => "assign",
        "/dir/lookup" => "lookup",
        "/dir/status" => "dir_status",
        "/submit" => "submit",
        "/heartbeat" => "heartbeat",
        "/vol/grow" => "grow",
        "/vol/vacuum" => "vacuum",
        "/vol/status" => "vol_status",
        "/col/delete" => "collection_delete",
        "/cluster/status" => "cluster_status",
        "/cluster/lock" => "lock",
        "/cluster/unlock" => "unlock",
        "/healthz" => "healthz",
        "/" => "ui",
        p if p.starts_with("/raft/") => "raft",
        p if p.len() > 1 && !p[1..].contains('/') => "redirect",
        _ => "other",
    }
}

/// The master's metrics: its HTTP API, Raft's state and the topology it sees.
fn master_metrics(master: &Arc<Master>, port: u16) -> Arc<kelp_proto::metrics::Metrics> {
    use kelp_proto::metrics::Metrics;
    let mut b = Metrics::builder("master", classify);
    Metrics::connections_gauge(&mut b, port);
    let m = master.clone();
    b.gauge(
        "raft_term",
        "The Raft term this master is in",
        None,
        move || m.raft.metrics().current_term as f64,
    );
    let m = master.clone();
    b.gauge(
        "raft_is_leader",
        "1 on the Raft leader, else 0",
        None,
        move || f64::from(u8::from(m.raft.is_leader())),
    );
    let m = master.clone();
    b.gauge(
        "raft_last_log_index",
        "Index of the last Raft log entry here",
        None,
        move || m.raft.metrics().last_log_index.unwrap_or(0) as f64,
    );
    let m = master.clone();
    b.gauge(
        "raft_applied_index",
        "Index of the last Raft log entry applied here",
        None,
        move || m.raft.metrics().last_applied.map_or(0, |l| l.index) as f64,
    );
    let m = master.clone();
    b.gauge(
        "volume_servers",
        "Volume servers that sent heartbeats recently",
        None,
        move || m.topology.node_count() as f64,
    );
    let m = master.clone();
    b.gauge(
        "volumes",
        "Volumes (each counted once, whatever its replicas)",
        None,
        move || m.topology.volumes().len() as f64,
    );
    b.counter(
        "maintenance_rounds",
        "Rounds of the maintenance scripts this master ran",
        None,
        || kelp_proto::runs::totals().0 as f64,
    );
    b.counter(
        "maintenance_failed_rounds",
        "Rounds of the maintenance scripts with a failed command",
        None,
        || kelp_proto::runs::totals().1 as f64,
    );
    let m = master.clone();
    b.gauge(
        "readonly_volumes",
        "Volumes marked read-only",
        None,
        move || m.topology.volumes().iter().filter(|v| v.read_only).count() as f64,
    );
    let m = master.clone();
    b.gauge(
        "free_volume_slots",
        "Volumes that could still be created on the servers",
        None,
        move || {
            m.topology
                .nodes()
                .iter()
                .map(|n| f64::from(n.free_slots()))
                .sum()
        },
    );
    b.build()
}

async fn sweep_loop(master: Arc<Master>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        master.topology.sweep();
    }
}

async fn vacuum_loop(master: Arc<Master>) {
    let secs = master.cfg.vacuum_interval_secs;
    if secs == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(secs));
    tick.tick().await;
    loop {
        tick.tick().await;
        if master.raft.is_leader() {
            let done = master.vacuum(master.cfg.garbage_threshold).await;
            if !done.is_empty() {
                tracing::info!(volumes = ?done, "periodic vacuum");
            }
        }
    }
}
