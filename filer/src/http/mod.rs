//! The filer HTTP REST API (SeaweedFS-compatible): routing by method and query, and `serve`.

mod error;
mod events;
mod json;
mod meta;
mod read;
mod ui;
mod write;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};

use crate::error::FilerError;
use crate::filer::Filer;

pub(crate) use json::{entry as json_entry, rfc3339};
pub use meta::load_export;

/// A request's decoded path (trailing slash kept) and query.
pub(crate) struct Target {
    pub path: String,
    pub trailing_slash: bool,
    pub query: HashMap<String, String>,
}

impl Target {
    fn parse(req: &Request) -> Result<Target, FilerError> {
        let raw = req.uri().path();
        let path = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| FilerError::BadRequest(format!("path {raw:?} is not UTF-8 once decoded")))?
            .into_owned();
        let query = Query::<HashMap<String, String>>::try_from_uri(req.uri())
            .map(|q| q.0)
            .map_err(|e| FilerError::BadRequest(format!("bad query string: {e}")))?;
        Ok(Target {
            trailing_slash: path.len() > 1 && path.ends_with('/'),
            path,
            query,
        })
    }

    pub fn flag(&self, k: &str) -> bool {
        self.query
            .get(k)
            .is_some_and(|v| v == "true" || v == "1" || v == "y" || v == "yes")
    }

    pub fn has(&self, k: &str) -> bool {
        self.query.contains_key(k)
    }
}

/// The router: every path is a filer path, so everything goes through one dispatcher.
pub fn router(filer: Arc<Filer>) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(DefaultBodyLimit::disable())
        .with_state(filer)
}

async fn dispatch(State(filer): State<Arc<Filer>>, req: Request) -> Response {
    // Every answer carries the request's id (the client's own `X-Request-Id` when it
    // sent a sane one), and so does every log line written while handling it.
    let id = request_id(&req);
    let span = tracing::info_span!("filer", request_id = %id);
    let mut resp = tracing::Instrument::instrument(handle(filer, req), span).await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// The client's `X-Request-Id` if it is up to 64 letters, digits, `-` and `_`; else a
/// new one (16 hex digits).
fn request_id(req: &Request) -> String {
    let theirs = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    match theirs {
        Some(v) => v.to_string(),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}

async fn handle(filer: Arc<Filer>, req: Request) -> Response {
    if let Err(e) = check_token(&req) {
        return kelp_proto::security::unauthorized(&e);
    }
    let target = match Target::parse(&req) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let op = target.query.get("op").map(String::as_str);
    let result = match *req.method() {
        Method::GET if op == Some("meta.export") => meta::export(&filer, target).await,
        Method::GET if op == Some("meta.events") => events::events(&filer, target).await,
        Method::GET if op == Some("meta.head") => events::head(&filer).await,
        Method::POST if op == Some("meta.import") => meta::import(&filer, req).await,
        Method::POST if target.has("ui") => ui::post(&filer, target, req).await,
        Method::GET | Method::HEAD => read::get(&filer, target, req).await,
        Method::PUT => write::put(&filer, target, req).await,
        Method::POST => write::post(&filer, target, req).await,
        Method::DELETE => write::delete(&filer, target).await,
        _ => Err(FilerError::BadRequest(format!(
            "method {} is not supported",
            req.method()
        ))),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// With a security file, writes need a filer token (`[jwt.filer_signing]`) or an admin
/// credential; reads need one only under `[jwt.filer_signing.read]`.
fn check_token(req: &Request) -> Result<(), kelp_proto::security::TokenError> {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD);
    let token = kelp_proto::security::request_token(req.headers(), req.uri().query());
    let certified = req
        .extensions()
        .get::<kelp_proto::security::PeerCertified>()
        .is_some();
    kelp_proto::security::current().check_filer(write, token.as_deref(), certified)
}

/// The operation of a filer request, for metrics labels.
fn classify(method: &Method, uri: &axum::http::Uri) -> &'static str {
    let q = uri.query().unwrap_or("");
    let has = |k: &str| {
        q.split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    let op = q
        .split('&')
        .find_map(|p| p.strip_prefix("op="))
        .unwrap_or("");
    match *method {
        Method::GET | Method::HEAD => match op {
            "meta.events" => "meta_events",
            "meta.head" => "meta_head",
            "meta.export" => "meta_export",
            _ if has("metadata") => "metadata",
            _ if uri.path().ends_with('/') => "list",
            _ => "read",
        },
        Method::PUT => "write",
        Method::POST if op == "meta.import" => "meta_import",
        Method::POST if has("ui") => "ui",
        Method::POST if has("mv.from") => "rename",
        Method::POST if has("cp.from") => "copy",
        Method::POST => "write",
        Method::DELETE => "delete",
        _ => "other",
    }
}

/// The filer's metrics: its REST API, its store's latencies, the chunk collector.
fn filer_metrics(filer: &Arc<Filer>, port: u16) -> Arc<kelp_proto::metrics::Metrics> {
    use kelp_proto::metrics::Metrics;
    use std::sync::atomic::Ordering;
    let mut b = Metrics::builder("filer", classify);
    Metrics::connections_gauge(&mut b, port);
    filer
        .store_timings
        .register(&mut b, "store_duration", "Filer store calls, by operation");
    let f = filer.clone();
    b.counter(
        "chunks_collected",
        "Chunks the collector deleted from volume servers",
        None,
        move || f.collected.load(Ordering::Relaxed) as f64,
    );
    let f = filer.clone();
    b.gauge(
        "gc_queue",
        "Chunks waiting for the collector (counted by the collecting filer each round)",
        None,
        move || f.gc_queued.load(Ordering::Relaxed) as f64,
    );
    let f = filer.clone();
    b.counter(
        "uploads_reclaimed",
        "Chunks of uploads left unfinished (a filer died) sent to the collector",
        None,
        move || f.reclaimed.load(Ordering::Relaxed) as f64,
    );
    b.build()
}

/// Serves the filer on `listener` until `shutdown`, running the chunk collector meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    filer: Arc<Filer>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Alive before the first upload: another filer reclaims the uploads of a filer
    // whose liveness lease is missing.
    if !filer.pending.keep_alive().await {
        tracing::warn!("cannot write this filer's liveness lease yet; uploads wait for it");
    }
    let alive = tokio::spawn(crate::gc::keep_alive(filer.clone(), stop_rx.clone()));
    let gc = tokio::spawn(crate::gc::run(filer.clone(), stop_rx));
    tracing::info!(store = filer.store.name(), "filer listening");
    let limits = filer.cfg.limits;
    let tls = kelp_proto::security::current()
        .https
        .as_ref()
        .and_then(|h| h.server(kelp_proto::security::Role::Filer));
    let metrics = filer_metrics(&filer, listener.local_addr()?.port());
    let app = metrics.layer(router(filer));
    let res = kelp_proto::server::serve(listener, app, limits, tls, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = gc.await;
    let _ = alive.await;
    res
}
