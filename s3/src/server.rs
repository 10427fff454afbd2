//! The S3 HTTP server: hyper connections on an already-bound listener, each request
//! handed to the s3s service (path-style addressing), graceful shutdown. In open mode
//! (no identities) request signatures are stripped before s3s sees them, so any key is
//! accepted, and `aws-chunked` bodies are unwrapped here.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH};
use http::{HeaderValue, Request, Response, StatusCode};
use kelp_filer::Filer;
use kelp_proto::server::{Acceptor, Limits, drain, spawn_connection};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::stream::DynByteStream;

use crate::S3Config;
use crate::access::IamAccess;
use crate::auth::{IamAuth, Identities};
use crate::checksum::OpenTrailers;
use crate::chunked::AwsChunked;
use crate::cors::Cors;
use crate::gateway::Gateway;
use crate::keys::Paths;

/// Query parameters of presigned URLs (SigV4 and SigV2).
const PRESIGN_PARAMS: [&str; 10] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// Aborts a background task when the gateway stops serving.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The encryption setup: the key file opened (created with fresh keys on first start),
/// and whether SSE-C is allowed on this listener.
fn sse_config(cfg: &S3Config, tls: bool) -> io::Result<crate::sse::SseConfig> {
    let kms: Option<Arc<dyn crate::sse::kms::Kms>> = match &cfg.key_file {
        None => None,
        Some(path) => {
            let (kms, created) = crate::sse::kms::LocalKms::open_or_create(path)
                .map_err(|e| invalid(format!("-s3.keyFile: {e}")))?;
            if created {
                tracing::warn!(
                    file = %path.display(),
                    "created the S3 key file with new master keys: back it up and keep it \
                     secret; without it no SSE-S3 or SSE-KMS object can be read"
                );
            }
            Some(Arc::new(kms))
        }
    };
    if cfg.allow_insecure_sse && !tls {
        tracing::warn!(
            "SSE-C accepted over plain HTTP (-s3.allowInsecureSSE): customer keys cross the network in clear"
        );
    }
    Ok(crate::sse::SseConfig {
        kms,
        secure: tls || cfg.allow_insecure_sse,
    })
}

/// Serves the S3 API for `filer` on `listener` until `shutdown` resolves. Identities
/// come from `cfg.identities_file` and the `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
/// environment variables; with none the gateway is open (and says so loudly).
pub async fn serve(
    listener: tokio::net::TcpListener,
    filer: Arc<Filer>,
    cfg: S3Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let file = cfg
        .identities_file
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty());
    let ids = Identities::load(file).map_err(invalid)?;
    serve_with_identities(listener, filer, cfg, ids, shutdown).await
}

/// [`serve`] with the identities given (`cfg.identities_file` and the environment are
/// not read): what tests and embedders use.
pub async fn serve_with_identities(
    listener: tokio::net::TcpListener,
    filer: Arc<Filer>,
    cfg: S3Config,
    ids: Identities,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let cfg_limits = cfg.limits;
    let paths = Paths::new(&cfg.buckets_dir).map_err(invalid)?;
    if let Err(e) = filer.mkdir(paths.root()).await {
        tracing::warn!(dir = %paths.root(), error = %e, "cannot create the buckets directory yet");
    }
    let open = ids.is_open();
    let tls = cfg.tls.clone().or_else(|| {
        kelp_proto::security::current()
            .https
            .as_ref()
            .and_then(|h| h.server(kelp_proto::security::Role::S3))
    });
    let sse = sse_config(&cfg, tls.is_some())?;
    let gateway = Gateway {
        filer,
        paths,
        region: cfg.region.clone(),
        auth: !open,
        sse,
        lifecycle_day: cfg.lifecycle_day_secs.max(1),
        lifecycle_cache: Arc::default(),
    };
    // Runs as long as the gateway serves.
    let _lifecycle = AbortOnDrop(tokio::spawn(crate::lifecycle::worker::run(
        gateway.clone(),
        cfg.lifecycle_day_secs,
        cfg.lifecycle_crash_after,
    )));
    let domains = crate::vhost::Domains::new(&cfg.domains).map_err(invalid)?;
    if !domains.is_empty() {
        tracing::info!(domains = ?cfg.domains, "S3 accepts virtual-hosted-style requests");
    }
    let ids = Arc::new(ids);
    let policies = Arc::new(crate::policy::bucket::PolicyCache::default());
    // `with_auth`: checks signatures (when there are identities) and takes requests
    // whose Range s3s cannot parse to the inner service built without it (range.rs).
    let build = |with_auth: bool| {
        let mut builder = S3ServiceBuilder::new(gateway.clone());
        if !domains.is_empty() {
            builder.set_host(domains.clone());
        }
        if !open {
            if with_auth {
                builder.set_auth(IamAuth(ids.clone()));
            }
            builder.set_access(IamAccess {
                ids: ids.clone(),
                filer: gateway.filer.clone(),
                paths: gateway.paths.clone(),
                policies: policies.clone(),
            });
        }
        builder
    };
    let mut builder = build(true);
    let inner = build(false).build();
    builder.set_route(crate::range::IgnoredRange {
        inner: inner.clone(),
    });
    let addr = listener.local_addr()?;
    if open {
        tracing::warn!(
            %addr,
            "S3 gateway is OPEN: no identities are configured, so every request is accepted \
             with any access key or none. Pass an s3.json identities file (-s3.config) or set \
             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY to require signatures."
        );
    } else {
        let (n, admin) = ids.summary();
        tracing::info!(%addr, identities = n, admin, "S3 gateway requires signed requests");
    }
    let service = builder.build();
    if tls.is_some() {
        tracing::info!(%addr, "S3 gateway speaks HTTPS");
    }
    let metrics = {
        let mut b = kelp_proto::metrics::Metrics::builder("s3", classify);
        kelp_proto::metrics::Metrics::connections_gauge(&mut b, addr.port());
        b.build()
    };
    let front = Arc::new(Front {
        metrics,
        pinned: cfg.pin_region.then(|| cfg.region.clone()),
        service,
        inner,
        ids,
        cors: Cors {
            filer: gateway.filer.clone(),
            paths: gateway.paths.clone(),
            domains,
        },
        open,
    });
    run(listener, front, cfg_limits, tls, shutdown).await
}

/// Unused by the gateway, which names requests with `opname::of` (it needs the
/// headers) or the access check.
fn classify(_: &http::Method, _: &http::Uri) -> &'static str {
    "Unidentified"
}

/// What every connection's requests go through: CORS, then the s3s service.
struct Front {
    /// Requests by S3 operation and status, latencies, bytes.
    metrics: Arc<kelp_proto::metrics::Metrics>,
    /// `-s3.region`, when pinned.
    pinned: Option<String>,
    service: S3Service,
    /// The same gateway without signature checks, for requests verified here.
    inner: S3Service,
    ids: Arc<Identities>,
    cors: Cors,
    /// No identities: signatures are dropped before s3s sees them.
    open: bool,
}

impl Front {
    /// A request signed for a region s3s refuses (`US`): verified here, then served by
    /// the gateway that does not check signatures, as the verified caller.
    async fn foreign_region(
        &self,
        req: Request<s3s::Body>,
        signed: crate::sigv4::Signed,
    ) -> Response<s3s::Body> {
        let Some(secret) = self.ids.secret_of(&signed.access_key) else {
            return early_error(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            );
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Err(e) =
            crate::sigv4::verify(&signed, req.method(), req.uri(), req.headers(), secret, now)
        {
            return early_error(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", &e);
        }
        let (mut parts, body) = req.into_parts();
        parts.headers.remove(AUTHORIZATION);
        let payload = parts
            .headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = s3s::Body::http_body_unsync(crate::sigv4::Sha256Checked::new(body, &payload));
        let mut inner = Request::from_parts(parts, body);
        inner
            .extensions_mut()
            .insert(crate::range::VerifiedCaller(s3s::auth::Credentials {
                access_key: signed.access_key.clone(),
                secret_key: s3s::auth::SecretKey::from(secret),
            }));
        call(&self.inner, inner, false).await
    }
}

async fn run(
    listener: tokio::net::TcpListener,
    front: Arc<Front>,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    // Idle connections time out and connections over the cap get a 503 (see proto).
    let acceptor = Acceptor::new(listener, limits, tls);
    while let Some(c) = acceptor.next(&mut shutdown).await {
        let front = front.clone();
        spawn_connection(c, graceful.watcher(), move |req| {
            let front = front.clone();
            let mut req = req.map(s3s::Body::http_body_unsync);
            async move {
                let started = std::time::Instant::now();
                let m = front.metrics.clone();
                let _in_flight = m.in_flight();
                let named = kelp_proto::metrics::OpName::default();
                req.extensions_mut().insert(named.clone());
                let fallback = crate::opname::of(&req);
                let received = kelp_proto::metrics::content_length(req.headers());
                // Every log line of the request carries its id, as its answer does.
                let id = new_request_id();
                let span = tracing::info_span!("s3", request_id = %id);
                let resp = tracing::Instrument::instrument(handle(&front, req, &id), span).await;
                let sent = http_body::Body::size_hint(resp.body()).exact();
                let op = named.get().unwrap_or(fallback);
                m.observe(op, resp.status().as_u16(), started, received, sent);
                Ok::<_, Infallible>(resp)
            }
        });
    }
    drop(acceptor);
    drain(graceful).await;
    Ok(())
}

/// `Expect: 100-continue` requests whose connection must close after the answer:
/// - an empty body: the answer comes without a `100 Continue` (there is nothing to
///   continue), which botocore (aws cli, boto3) misreads on the *next* request of that
///   connection, stalling it until its read timeout;
/// - any answer that is not a success: the body may not have been read, yet botocore
///   sends it anyway after the answer, and those bytes would be parsed as the start of
///   the next request on the connection (seen as spurious `SignatureDoesNotMatch`,
///   `NotImplemented` or 400 answers).
fn expects_continue<B>(req: &Request<B>) -> (bool, bool) {
    let h = req.headers();
    let expects = h
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let empty = h.get(CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0");
    (expects, expects && empty)
}

async fn handle(front: &Front, req: Request<s3s::Body>, id: &str) -> Response<s3s::Body> {
    if crate::cors::is_preflight(&req) {
        return with_request_id(front.cors.preflight(&req).await, id);
    }
    if let Some(pinned) = &front.pinned
        && let Some(region) = crate::sigv4::scope_region(&req)
        && region != *pinned
    {
        return with_request_id(
            early_error(
                StatusCode::BAD_REQUEST,
                "AuthorizationHeaderMalformed",
                &format!("the region '{region}' is wrong; expecting '{pinned}'"),
            ),
            id,
        );
    }
    let (expects, empty) = expects_continue(&req);
    let asked = front.cors.asked(&req);
    let mut resp = match crate::sigv4::foreign_region(req.headers()) {
        Some(signed) if !front.open => front.foreign_region(req, signed).await,
        _ => call(&front.service, req, front.open).await,
    };
    if let Some(a) = asked {
        front.cors.decorate(a, &mut resp).await;
    }
    if empty || (expects && !resp.status().is_success()) {
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    with_request_id(resp, id)
}

/// Gives every answer an `x-amz-request-id` (and `x-amz-id-2`), and every S3 error
/// document the same id as `<RequestId>`, so a client's error report can be matched
/// with the server log.
/// A new request id: 16 hex digits, as S3's.
fn new_request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

/// Puts the request id in the answer's headers and in an S3 error body.
fn with_request_id(mut resp: Response<s3s::Body>, id: &str) -> Response<s3s::Body> {
    if resp.status().as_u16() >= 400
        && let Some(body) = resp.body_mut().take_bytes()
    {
        let patched = match std::str::from_utf8(&body) {
            Ok(text) if text.ends_with("</Error>") && !text.contains("<RequestId>") => {
                let cut = text.len() - "</Error>".len();
                format!("{}<RequestId>{id}</RequestId></Error>", &text[..cut]).into()
            }
            _ => body,
        };
        resp.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(patched.len()));
        *resp.body_mut() = s3s::Body::from(patched);
        tracing::debug!(request_id = %id, status = %resp.status(), "S3 error answered");
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-amz-id-2", v.clone());
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    resp
}

/// The longest a presigned URL may stay valid, as in S3 (7 days).
const MAX_PRESIGNED_SECS: u64 = 604_800;

/// A presigned URL that asks for more than [`MAX_PRESIGNED_SECS`] (S3 refuses those).
fn presigned_too_long<B>(req: &Request<B>) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        let secs: u64 = k
            .eq_ignore_ascii_case("X-Amz-Expires")
            .then(|| v.parse().ok())??;
        (secs > MAX_PRESIGNED_SECS).then_some(secs)
    })
}

/// An S3 error document answered before the request reaches s3s.
pub(crate) fn early_error(status: StatusCode, code: &str, message: &str) -> Response<s3s::Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut r = Response::new(s3s::Body::from(xml));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

async fn call(svc: &S3Service, req: Request<s3s::Body>, open: bool) -> Response<s3s::Body> {
    if let Some(secs) = presigned_too_long(&req) {
        return early_error(
            StatusCode::BAD_REQUEST,
            "AuthorizationQueryParametersError",
            &format!(
                "X-Amz-Expires must be less than a week (that is, {MAX_PRESIGNED_SECS} seconds); got {secs}"
            ),
        );
    }
    let req = if open { unsigned(req) } else { req };
    match svc.call(req).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = ?e, "S3 request failed outside the S3 error model");
            let mut r = Response::new(s3s::Body::from("internal error".to_string()));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

/// `uri` without the query parameters of presigned URLs.
pub(crate) fn without_presign_params(uri: &http::Uri) -> http::Uri {
    let Some(q) = uri.query() else {
        return uri.clone();
    };
    let kept: Vec<&str> = q
        .split('&')
        .filter(|kv| {
            let name = kv.split('=').next().unwrap_or("");
            !PRESIGN_PARAMS.contains(&name)
        })
        .collect();
    if kept.len() == q.split('&').count() {
        return uri.clone();
    }
    let pq = if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    pq.parse().unwrap_or_else(|_| uri.clone())
}

/// Open mode: drops the signature (header or presigned query) so s3s treats the
/// request as anonymous, and unwraps `aws-chunked` bodies.
fn unsigned(req: Request<s3s::Body>) -> Request<s3s::Body> {
    let (mut parts, body) = req.into_parts();
    parts.headers.remove(AUTHORIZATION);
    parts.uri = without_presign_params(&parts.uri);
    let mut body = body;
    let streaming = parts
        .headers
        .get("x-amz-content-sha256")
        .is_some_and(|v| v.as_bytes().starts_with(b"STREAMING-"));
    if streaming {
        let decoded: Option<u64> = parts
            .headers
            .remove("x-amz-decoded-content-length")
            .and_then(|v| v.to_str().ok()?.trim().parse().ok());
        parts.headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static("UNSIGNED-PAYLOAD"),
        );
        match decoded {
            Some(n) => {
                parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
            }
            None => {
                parts.headers.remove(CONTENT_LENGTH);
            }
        }
        if let Some(enc) = parts.headers.remove(CONTENT_ENCODING) {
            let rest: Vec<&str> = enc
                .to_str()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
                .collect();
            if !rest.is_empty()
                && let Ok(v) = HeaderValue::from_str(&rest.join(", "))
            {
                parts.headers.insert(CONTENT_ENCODING, v);
            }
        }
        let trailers = OpenTrailers::default();
        parts.extensions.insert(trailers.clone());
        let stream: DynByteStream = Box::pin(AwsChunked::new(body, decoded, trailers));
        body = s3s::Body::from(stream);
    }
    Request::from_parts(parts, body)
}
