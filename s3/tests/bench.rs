//! Gateway throughput on the in-process stack (open mode, unsigned requests, 16
//! concurrent clients): PUT/GET ops/s of 4 KiB objects and MB/s of 16 MiB objects.
//! Ignored by default; run with
//! `cargo test --release -p kelp-s3 --test bench -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::*;

const CLIENTS: usize = 16;

/// Runs `total` requests from `CLIENTS` tasks; returns seconds taken.
async fn run<F, Fut>(total: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (next, f) = (next.clone(), f.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                f(i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    t0.elapsed().as_secs_f64()
}

async fn phase(base: &str, name: &'static str, size: usize, count: usize) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let body = bytes::Bytes::from(data(size, 7));
    let (h, b, u) = (http.clone(), body.clone(), base.to_string());
    let put = run(count, move |i| {
        let (h, b, u) = (h.clone(), b.clone(), u.clone());
        async move {
            let r = h
                .put(format!("{u}/bench/{name}/{i:06}"))
                .body(b)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "PUT {}", r.status());
        }
    })
    .await;
    let (h, u) = (http.clone(), base.to_string());
    let get = run(count, move |i| {
        let (h, u) = (h.clone(), u.clone());
        async move {
            let r = h
                .get(format!("{u}/bench/{name}/{i:06}"))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "GET {}", r.status());
            let got = r.bytes().await.unwrap();
            assert_eq!(got.len(), size);
        }
    })
    .await;
    let mb = (size * count) as f64 / 1e6;
    println!(
        "{name}: {count} x {size} B, {CLIENTS} clients: PUT {:.0} ops/s {:.1} MB/s | GET {:.0} ops/s {:.1} MB/s",
        count as f64 / put,
        mb / put,
        count as f64 / get,
        mb / get
    );
}

#[test]
#[ignore = "benchmark: run explicitly with --ignored --nocapture (release build)"]
fn s3_throughput() {
    let s = Stack::open();
    let base = s.endpoint.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let r = http.put(format!("{base}/bench")).send().await.unwrap();
        assert!(r.status().is_success());
        phase(&base, "small", 4 << 10, 5000).await;
        phase(&base, "large", 16 << 20, 64).await;
        // The same load on the filer's REST API: what the layers below S3 deliver.
        let filer = s.filer_endpoint.clone();
        phase(&filer, "filer-small", 4 << 10, 5000).await;
        phase(&filer, "filer-large", 16 << 20, 64).await;
    });
}
