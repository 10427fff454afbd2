//! Prometheus metrics of every role after real traffic: each `/metrics` parses as the
//! text exposition format (with a parser crate), and the counters of the requests just
//! made have moved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// The samples of one scrape, by name and labels.
fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let r = http("GET", addr, "/metrics", b"").unwrap();
    assert_eq!(r.status, 200, "{addr}/metrics");
    let text = r.text();
    assert!(text.ends_with("# EOF\n"), "an exposition ends with # EOF");
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("the exposition parses")
}

fn value(s: &prometheus_parse::Value) -> f64 {
    match s {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_) => f64::NAN,
    }
}

/// The value of `name` whose labels include `labels`, summed over the others.
fn sum(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| value(&s.value))
        .sum()
}

/// Every sample name of a scrape, with a histogram's series names too.
fn names(scrape: &prometheus_parse::Scrape) -> Vec<String> {
    let mut n = Vec::new();
    for s in &scrape.samples {
        if let prometheus_parse::Value::Histogram(_) = s.value {
            for suffix in ["_bucket", "_count", "_sum"] {
                n.push(format!("{}{suffix}", s.metric));
            }
        }
        n.push(s.metric.clone());
    }
    n.sort();
    n.dedup();
    n
}

#[test]
fn every_role_counts_its_requests() {
    let mut ports = reserve_ports(1);
    let (metrics_addr, metrics_port) = (ports.addr(0), ports.port(0));
    ports.release(metrics_port);
    let c = cluster()
        .volumes(&[("", 1)])
        .s3(true)
        .filer_args(&[&format!("-metricsPort={metrics_port}")])
        .start();
    let (filer, s3) = (c.filer_addr().to_string(), c.s3_addr().to_string());

    // Traffic: a file through the filer (assign, volume write), S3 writes and reads.
    let put = http("PUT", &filer, "/m/a.txt", b"hello metrics").unwrap();
    assert!(put.status < 300);
    assert_eq!(http("GET", &filer, "/m/a.txt", b"").unwrap().status, 200);
    assert!(http("PUT", &s3, "/mbucket", b"").unwrap().status < 300);
    assert!(http("PUT", &s3, "/mbucket/k", b"object").unwrap().status < 300);
    assert_eq!(http("GET", &s3, "/mbucket/k", b"").unwrap().status, 200);
    assert_eq!(
        http("GET", &s3, "/mbucket/missing", b"").unwrap().status,
        404
    );

    let m = scrape(c.master());
    assert!(
        sum(
            &m,
            "kelp_master_requests_total",
            &[("op", "assign"), ("status", "200")]
        ) >= 1.0,
        "{:?}",
        names(&m)
    );
    assert!(
        sum(
            &m,
            "kelp_master_request_duration_seconds_count",
            &[("op", "assign")]
        ) >= 1.0
    );
    assert_eq!(sum(&m, "kelp_master_raft_is_leader", &[]), 1.0);
    assert!(sum(&m, "kelp_master_volume_servers", &[]) >= 1.0);
    assert!(sum(&m, "kelp_master_process_cpu_seconds_total", &[]) > 0.0);

    let v = scrape(&c.volumes[0].addr);
    assert!(
        sum(&v, "kelp_volume_requests_total", &[("op", "write")]) >= 1.0,
        "{:?}",
        names(&v)
    );
    assert!(sum(&v, "kelp_volume_volumes", &[]) >= 1.0);
    assert!(sum(&v, "kelp_volume_received_bytes_total", &[]) >= 13.0);
    assert!(sum(&v, "kelp_volume_open_connections", &[]) >= 0.0);
    assert!(sum(&v, "kelp_volume_disk_free_bytes", &[]) > 0.0);

    // The filer's and the S3 gateway's on -metricsPort.
    let f = scrape(&metrics_addr);
    assert!(
        sum(&f, "kelp_filer_requests_total", &[("op", "write")]) >= 1.0,
        "{:?}",
        names(&f)
    );
    assert!(
        sum(
            &f,
            "kelp_filer_requests_total",
            &[("op", "read"), ("status", "200")]
        ) >= 1.0
    );
    assert!(
        sum(
            &f,
            "kelp_filer_store_duration_seconds_count",
            &[("op", "apply")]
        ) >= 1.0
    );
    assert!(
        sum(
            &f,
            "kelp_s3_requests_total",
            &[("op", "PutObject"), ("status", "200")]
        ) >= 1.0
    );
    assert!(
        sum(
            &f,
            "kelp_s3_requests_total",
            &[("op", "GetObject"), ("status", "404")]
        ) >= 1.0
    );
    assert!(sum(&f, "kelp_s3_requests_total", &[("op", "CreateBucket")]) >= 1.0);
    assert!(sum(&f, "kelp_s3_sent_bytes_total", &[]) >= 6.0);

    // Every metric the dashboard in docs/ queries exists.
    let mut known: Vec<String> = [&m, &v, &f].iter().flat_map(|s| names(s)).collect();
    known.sort();
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana-dashboard.json"),
    )
    .unwrap();
    let mut rest = dashboard.as_str();
    while let Some(at) = rest.find("kelp_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        if name == "kelp_" || name.starts_with("kelp_overview") {
            continue;
        }
        assert!(
            known.binary_search(&name).is_ok(),
            "the dashboard queries {name}, which no role exports"
        );
    }
}
