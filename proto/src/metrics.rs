//! Prometheus metrics: one registry per role (names `kelp_<role>_…`), the HTTP request
//! metrics every role records through [`Metrics::layer`], gauges sampled when scraped,
//! the process's CPU and memory, and the text answer of `GET /metrics`. The list of
//! metrics is in `docs/operations.md`.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use prometheus_client::registry::Unit;

/// Names a request's operation from its method and URI, with few distinct values
/// (`assign`, `read`, `write`, …): metrics labels must stay low-cardinality.
pub type Classify = fn(&http::Method, &http::Uri) -> &'static str;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpStatus {
    op: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    op: &'static str,
}

/// A slot in a request's extensions where an inner layer names the operation better
/// than [`Classify`] can (the S3 gateway puts the S3 operation's name there).
#[derive(Clone, Default, Debug)]
pub struct OpName(Arc<OnceLock<&'static str>>);

impl OpName {
    pub fn set(&self, name: &'static str) {
        let _ = self.0.set(name);
    }

    pub fn get(&self) -> Option<&'static str> {
        self.0.get().copied()
    }
}

/// `name` as a `&'static str`, each distinct name allocated once: for label values that
/// come from a small fixed set (S3 operation names) but not as `'static` borrows.
pub fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> =
        OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

fn histogram() -> Histogram {
    // 50 µs to about 27 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// The request metrics of one HTTP API.
struct HttpMetrics {
    requests: Family<OpStatus, Counter>,
    duration: Family<Op, Histogram, fn() -> Histogram>,
    received: Counter,
    sent: Counter,
    in_flight: Gauge,
}

/// One role's metrics.
pub struct Metrics {
    registry: Registry,
    http: HttpMetrics,
    classify: Classify,
}

/// A gauge or counter whose value is read when scraped.
struct Sampled {
    name: String,
    help: String,
    unit: Option<Unit>,
    counter: bool,
    read: Box<dyn Fn() -> f64 + Send + Sync>,
}

#[derive(Default)]
struct SampledSet(Vec<Sampled>);

impl std::fmt::Debug for SampledSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| &s.name))
            .finish()
    }
}

impl Collector for SampledSet {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for s in &self.0 {
            let v = (s.read)();
            if s.counter {
                let c = ConstCounter::new(v);
                let m = encoder.encode_descriptor(
                    &s.name,
                    &s.help,
                    s.unit.as_ref(),
                    c.metric_type(),
                )?;
                c.encode(m)?;
            } else {
                let g = ConstGauge::new(v);
                let m = encoder.encode_descriptor(
                    &s.name,
                    &s.help,
                    s.unit.as_ref(),
                    g.metric_type(),
                )?;
                g.encode(m)?;
            }
        }
        Ok(())
    }
}

/// Collects a role's metrics before it starts serving.
pub struct MetricsBuilder {
    registry: Registry,
    sampled: SampledSet,
    classify: Classify,
}

impl MetricsBuilder {
    /// The registry, to register the role's own counters and histograms (under the
    /// `kelp_<role>_` prefix).
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// A gauge read from `read` at each scrape.
    pub fn gauge(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> &mut Self {
        self.sampled(false, name, help, unit, Box::new(read))
    }

    /// A counter read from `read` at each scrape (it must never go down).
    pub fn counter(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> &mut Self {
        self.sampled(true, name, help, unit, Box::new(read))
    }

    fn sampled(
        &mut self,
        counter: bool,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        read: Box<dyn Fn() -> f64 + Send + Sync>,
    ) -> &mut Self {
        self.sampled.0.push(Sampled {
            name: name.to_string(),
            help: help.to_string(),
            unit,
            counter,
            read,
        });
        self
    }

    pub fn build(mut self) -> Arc<Metrics> {
        let http = HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(histogram as fn() -> Histogram),
            received: Counter::default(),
            sent: Counter::default(),
            in_flight: Gauge::default(),
        };
        let r = &mut self.registry;
        r.register(
            "requests",
            "HTTP requests answered, by operation and status",
            http.requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its answer's head, by operation",
            Unit::Seconds,
            http.duration.clone(),
        );
        r.register_with_unit(
            "received",
            "Request body bytes received (as their Content-Length declares)",
            Unit::Bytes,
            http.received.clone(),
        );
        r.register_with_unit(
            "sent",
            "Answer body bytes sent (when their length is known up front)",
            Unit::Bytes,
            http.sent.clone(),
        );
        r.register(
            "requests_in_flight",
            "Requests being handled now",
            http.in_flight.clone(),
        );
        let mut sampled = std::mem::take(&mut self.sampled);
        process_metrics(&mut sampled);
        self.registry.register_collector(Box::new(sampled));
        let m = Arc::new(Metrics {
            registry: self.registry,
            http,
            classify: self.classify,
        });
        all_metrics().push(Arc::downgrade(&m));
        m
    }
}

fn all_metrics() -> std::sync::MutexGuard<'static, Vec<std::sync::Weak<Metrics>>> {
    static ALL: OnceLock<std::sync::Mutex<Vec<std::sync::Weak<Metrics>>>> = OnceLock::new();
    ALL.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The metrics of every role running in this process, as one exposition (what
/// `-metricsPort` serves).
pub fn render_all() -> String {
    let live: Vec<Arc<Metrics>> = {
        let mut all = all_metrics();
        all.retain(|w| w.strong_count() > 0);
        all.iter().filter_map(std::sync::Weak::upgrade).collect()
    };
    let mut out = String::new();
    for m in live {
        let text = m.render();
        out.push_str(text.strip_suffix("# EOF\n").unwrap_or(&text));
    }
    out.push_str("# EOF\n");
    out
}

/// Serves `GET /metrics` with [`render_all`] on `listener` until `shutdown`.
pub async fn serve_all(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            ([(http::header::CONTENT_TYPE, OPENMETRICS)], render_all())
        }),
    );
    crate::server::serve(
        listener,
        app,
        crate::server::Limits::default(),
        None,
        shutdown,
    )
    .await
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Each listener's connection slots and their number, by local port.
type Listeners = std::collections::HashMap<u16, (Arc<tokio::sync::Semaphore>, usize)>;

fn listeners() -> std::sync::MutexGuard<'static, Listeners> {
    static ALL: OnceLock<std::sync::Mutex<Listeners>> = OnceLock::new();
    ALL.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Notes the connection slots of the listener on `port` (`server::Acceptor` does).
pub(crate) fn listening(port: u16, slots: Arc<tokio::sync::Semaphore>, max: usize) {
    listeners().insert(port, (slots, max));
}

/// Connections open now on the listener on `port`.
pub fn open_connections(port: u16) -> usize {
    listeners()
        .get(&port)
        .map_or(0, |(s, max)| max.saturating_sub(s.available_permits()))
}

/// The process's CPU time and resident memory, from `/proc/self`.
fn process_metrics(s: &mut SampledSet) {
    // /proc reports CPU times in USER_HZ, which Linux fixes at 100 for user space.
    let ticks = 100.0;
    s.0.push(Sampled {
        name: "process_cpu".into(),
        help: "User and system CPU time of the whole process (all roles it runs)".into(),
        unit: Some(Unit::Seconds),
        counter: true,
        read: Box::new(move || {
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
            // Fields after the command name (which ends with ')'): utime is the 12th,
            // stime the 13th.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<&str> = rest.split_whitespace().collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (n(11) + n(12)) / ticks
        }),
    });
    s.0.push(Sampled {
        name: "process_resident_memory".into(),
        help: "Resident memory of the whole process".into(),
        unit: Some(Unit::Bytes),
        counter: false,
        read: Box::new(|| {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(0.0, |kb| kb * 1024.0)
        }),
    });
}

impl Metrics {
    /// Starts the metrics of `role` (`master`, `volume`, `filer`, `s3`).
    pub fn builder(role: &str, classify: Classify) -> MetricsBuilder {
        MetricsBuilder {
            registry: Registry::with_prefix(format!("kelp_{role}")),
            sampled: SampledSet::default(),
            classify,
        }
    }

    /// Adds a gauge of the open connections of the listener on `port`.
    pub fn connections_gauge(b: &mut MetricsBuilder, port: u16) {
        b.gauge(
            "open_connections",
            "Connections open on this role's port",
            None,
            move || open_connections(port) as f64,
        );
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 << 10);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }

    /// The answer of `GET /metrics`.
    pub fn answer(&self) -> Response {
        ([(http::header::CONTENT_TYPE, OPENMETRICS)], self.render()).into_response()
    }

    /// Counts one request answered outside an axum router (the S3 gateway's loop).
    pub fn observe(
        &self,
        op: &'static str,
        status: u16,
        started: Instant,
        received: Option<u64>,
        sent: Option<u64>,
    ) {
        self.http
            .requests
            .get_or_create(&OpStatus { op, status })
            .inc();
        self.http
            .duration
            .get_or_create(&Op { op })
            .observe(started.elapsed().as_secs_f64());
        if let Some(n) = received {
            self.http.received.inc_by(n);
        }
        if let Some(n) = sent {
            self.http.sent.inc_by(n);
        }
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.http.in_flight.inc();
        InFlight(&self.http.in_flight)
    }

    /// The operation [`Classify`] names.
    pub fn classify(&self, method: &http::Method, uri: &http::Uri) -> &'static str {
        (self.classify)(method, uri)
    }

    /// Wraps a role's router so every request is counted and timed.
    pub fn layer(self: &Arc<Metrics>, router: axum::Router) -> axum::Router {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), record))
    }
}

/// Latency histograms by an `op` label, to register with a role's metrics.
#[derive(Clone, Debug)]
pub struct LabeledHistograms(Family<Op, Histogram, fn() -> Histogram>);

impl Default for LabeledHistograms {
    fn default() -> Self {
        LabeledHistograms(Family::new_with_constructor(histogram as fn() -> Histogram))
    }
}

impl LabeledHistograms {
    pub fn observe(&self, op: &'static str, took: std::time::Duration) {
        self.0.get_or_create(&Op { op }).observe(took.as_secs_f64());
    }

    /// Registers them as `<name>_seconds` with `help`.
    pub fn register(&self, b: &mut MetricsBuilder, name: &str, help: &str) {
        b.registry
            .register_with_unit(name, help, Unit::Seconds, self.0.clone());
    }
}

/// A request in flight ([`Metrics::in_flight`]).
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn record(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let op = (m.classify)(req.method(), req.uri());
    let received = content_length(req.headers());
    // A guard, so a request whose client went away (its future dropped) leaves too.
    let _in_flight = m.in_flight();
    let resp = next.run(req).await;
    let sent = http_body::Body::size_hint(resp.body()).exact();
    m.observe(op, resp.status().as_u16(), start, received, sent);
    resp
}

/// A request's declared body length.
pub fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
