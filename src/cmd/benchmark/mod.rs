//! `kelp benchmark`: write then random-read phases over the master and volume HTTP APIs,
//! a filer's REST API or an S3 gateway. It speaks only the SeaweedFS-compatible APIs, so
//! it measures a SeaweedFS cluster too, and with `-serverPid` it charges each phase with
//! the server's CPU time.

mod cpu;
mod s3;

use kelp_proto::security::Authorize;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use kelp_proto::FileId;
use kelp_proto::client::{MasterClient, base_url, http_client};
use kelp_proto::master_api::AssignRequest;

use super::common;

/// Flags of `kelp benchmark`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Master to assign file ids from (kelp or SeaweedFS).
    #[arg(long, default_value = "127.0.0.1:9333")]
    pub master: String,
    /// Total number of files to write (and then read).
    #[arg(long = "n", default_value_t = 1024 * 1024)]
    pub n: u64,
    /// Concurrent clients.
    #[arg(long = "c", default_value_t = 16)]
    pub c: usize,
    /// Bytes per file.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Replication of the written files.
    #[arg(long, default_value = "000")]
    pub replication: String,
    /// Collection of the written files.
    #[arg(long, default_value = "benchmark")]
    pub collection: String,
    /// Skip the read phase.
    #[arg(long = "writeOnly", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub write_only: bool,
    /// Skip the write phase of -filer and -s3: read the files an earlier `-writeOnly`
    /// run with the same -n wrote.
    #[arg(long = "readOnly", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub read_only: bool,
    /// Only measure /dir/assign (count=1), without uploading.
    #[arg(long = "assignOnly", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub assign_only: bool,
    /// Benchmark a filer (host:port) instead: PUT files under /benchmark/, GET random
    /// ones, then list the directory in pages of 1000.
    #[arg(long, default_value = "")]
    pub filer: String,
    /// Benchmark an S3 endpoint (host:port) instead: PUT objects into the bucket
    /// `kelp-benchmark`, then GET random ones. Requests are unsigned, so the gateway
    /// must run without identities (kelp, or SeaweedFS `weed server -s3`, without an
    /// s3.json).
    #[arg(long, default_value = "")]
    pub s3: String,
    /// How blobs are uploaded: `form` (multipart/form-data POST, as SeaweedFS's own
    /// benchmark does) or `raw` (PUT of the bytes as application/octet-stream).
    #[arg(long, value_enum, default_value = "form")]
    pub upload: Upload,
    /// S3 authentication: `anonymous` (unsigned requests), `signed` (SigV4 over the
    /// body's SHA-256) or `unsigned` (SigV4 with UNSIGNED-PAYLOAD). The two SigV4 modes
    /// need -s3.accessKey and -s3.secretKey.
    #[arg(long = "s3.payload", value_enum, default_value = "anonymous")]
    pub s3_payload: s3::Payload,
    /// Server-side encryption of the S3 PUTs (`AES256` or `aws:kms`, sent as
    /// x-amz-server-side-encryption); empty: none.
    #[arg(long = "s3.sse", default_value = "", value_parser = ["", "AES256", "aws:kms"])]
    pub s3_sse: String,
    /// Access key for signed S3 requests.
    #[arg(long = "s3.accessKey", default_value = "")]
    pub s3_access_key: String,
    /// Secret key for signed S3 requests.
    #[arg(long = "s3.secretKey", default_value = "")]
    pub s3_secret_key: String,
    /// Server process ids (comma-separated) whose CPU time (user + system, from
    /// /proc) each phase reports per request.
    #[arg(long = "serverPid", default_value = "")]
    pub server_pid: String,
    /// The cluster's security file, for guarded reads and filer writes (writes to
    /// volume servers use the token the master assigns with each fid).
    #[arg(long = "security", value_name = "FILE")]
    pub security: Option<std::path::PathBuf>,
}

/// How `kelp benchmark` uploads blobs to volume servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Upload {
    /// `POST /<fid>` with a multipart/form-data body.
    Form,
    /// `PUT /<fid>` with the bytes as application/octet-stream.
    Raw,
}

/// A written file and the server it went to.
type Written = (FileId, String);

/// Latencies (µs) and bytes of one phase.
struct Phase {
    name: &'static str,
    latencies: Vec<u64>,
    bytes: u64,
    failures: u64,
    elapsed: Duration,
    /// Server CPU time spent during the phase (with -serverPid).
    server_cpu: Option<Duration>,
}

impl Phase {
    fn report(&mut self) {
        let ok = self.latencies.len() as u64;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        self.latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let i = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
            self.latencies[i] as f64 / 1000.0
        };
        let avg = if ok > 0 {
            self.latencies.iter().sum::<u64>() as f64 / ok as f64 / 1000.0
        } else {
            0.0
        };
        println!("\n------------ {} ------------", self.name);
        println!("Completed requests:   {ok}");
        println!("Failed requests:      {}", self.failures);
        println!("Time taken:           {:.3} s", secs);
        println!("Requests per second:  {:.2} [#/sec]", ok as f64 / secs);
        println!(
            "Transfer rate:        {:.2} MB/s",
            self.bytes as f64 / secs / 1_000_000.0
        );
        println!(
            "Latency (ms):         min {:.2}  avg {avg:.2}  max {:.2}",
            pct(0.0),
            pct(100.0)
        );
        if let Some(cpu) = self.server_cpu {
            let per_op = cpu.as_secs_f64() * 1e6 / ok.max(1) as f64;
            println!(
                "Server CPU:           {:.3} s, {per_op:.1} us/op, {:.2} ms/MiB",
                cpu.as_secs_f64(),
                cpu.as_secs_f64() * 1e3 / (self.bytes.max(1) as f64 / (1 << 20) as f64)
            );
        }
        println!("Percentiles (ms):");
        for p in [50.0, 66.0, 75.0, 80.0, 90.0, 95.0, 98.0, 99.0, 100.0] {
            println!("  {p:>5.0}%  {:.2}", pct(p));
        }
    }
}

fn multipart(data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "kelpbenchmarkboundary7d3c";
    let mut body = Vec::with_capacity(data.len() + 200);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.dat\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn progress(name: &str, done: u64, total: u64, start: Instant) {
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    eprintln!("{name}: {done}/{total} ({:.0} req/s)", done as f64 / secs);
    let _ = std::io::stderr().flush();
}

async fn run_phase<F, Fut>(
    name: &'static str,
    n: u64,
    c: usize,
    cpu: &cpu::ServerCpu,
    op: F,
) -> Phase
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<u64>> + Send,
{
    let op = Arc::new(op);
    let cpu_before = cpu.total();
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    // A bar on a terminal; elsewhere a plain line a second.
    let bar = std::io::stderr().is_terminal().then(|| {
        let style = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:32}] {pos}/{len} {per_sec} {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        indicatif::ProgressBar::new(n)
            .with_style(style)
            .with_prefix(name)
    });
    let ticker = {
        let (done, bar) = (done.clone(), bar.clone());
        tokio::spawn(async move {
            loop {
                match &bar {
                    Some(b) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        b.set_position(done.load(Ordering::Relaxed));
                    }
                    None => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        progress(name, done.load(Ordering::Relaxed), n, start);
                    }
                }
            }
        })
    };
    let workers: Vec<_> = (0..c.max(1))
        .map(|_| {
            let (op, next, done) = (op.clone(), next.clone(), done.clone());
            tokio::spawn(async move {
                let (mut lat, mut bytes, mut failures) = (Vec::new(), 0u64, 0u64);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let t = Instant::now();
                    match op(i).await {
                        Ok(b) => {
                            lat.push(t.elapsed().as_micros() as u64);
                            bytes += b;
                        }
                        Err(e) => {
                            if failures < 3 {
                                tracing::warn!(error = %format!("{e:#}"), "{name} request failed");
                            }
                            failures += 1;
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (lat, bytes, failures)
            })
        })
        .collect();
    let mut phase = Phase {
        name,
        latencies: Vec::with_capacity(n as usize),
        bytes: 0,
        failures: 0,
        elapsed: Duration::ZERO,
        server_cpu: None,
    };
    for w in workers {
        if let Ok((lat, bytes, failures)) = w.await {
            phase.latencies.extend(lat);
            phase.bytes += bytes;
            phase.failures += failures;
        }
    }
    phase.elapsed = start.elapsed();
    phase.server_cpu = cpu_before
        .zip(cpu.total())
        .map(|(a, b)| b.saturating_sub(a));
    ticker.abort();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    progress(name, done.load(Ordering::Relaxed), n, start);
    phase
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.n == 0 {
        anyhow::bail!("-n must be at least 1");
    }
    if args.read_only && args.filer.is_empty() && args.s3.is_empty() {
        anyhow::bail!(
            "-readOnly reads what an earlier -writeOnly run wrote: it needs -filer or -s3"
        );
    }
    if args.read_only && args.write_only {
        anyhow::bail!("-readOnly and -writeOnly leave nothing to do");
    }
    common::install_client_security(args.security.as_deref())?;
    let cpu = cpu::ServerCpu::parse(&args.server_pid)?;
    if args.s3_payload != s3::Payload::Anonymous
        && (args.s3_access_key.is_empty() || args.s3_secret_key.is_empty())
    {
        anyhow::bail!(
            "-s3.payload={:?} needs -s3.accessKey and -s3.secretKey",
            args.s3_payload
        );
    }
    let rt = common::runtime()?;
    rt.block_on(async move {
        let http = http_client();
        let master = Arc::new(MasterClient::with_http(common::split_list(&args.master), http.clone()));
        println!(
            "benchmark: {} files of {} bytes, {} clients, master {}, collection {:?}, replication {}",
            args.n, args.size, args.c, args.master, args.collection, args.replication
        );
        if !args.filer.is_empty() {
            return filer_benchmark(&args, http, &cpu).await;
        }
        if !args.s3.is_empty() {
            return s3::benchmark(&args, http, &cpu).await;
        }
        if args.assign_only {
            let (master, req) = (master.clone(), Arc::new(AssignRequest {
                collection: Some(args.collection.clone()).filter(|c| !c.is_empty()),
                replication: Some(args.replication.clone()),
                ..Default::default()
            }));
            let mut phase = run_phase("assign", args.n, args.c, &cpu, move |_| {
                let (master, req) = (master.clone(), req.clone());
                async move {
                    master.assign(&req).await?;
                    Ok(0)
                }
            })
            .await;
            phase.report();
            return Ok(());
        }
        let fids: Arc<std::sync::Mutex<Vec<Option<Written>>>> = Arc::new(std::sync::Mutex::new(vec![None; args.n as usize]));
        let payload: Arc<Vec<u8>> = Arc::new((0..args.size).map(|i| (i % 251) as u8).collect());
        let assign_req = Arc::new(AssignRequest {
            collection: Some(args.collection.clone()).filter(|c| !c.is_empty()),
            replication: Some(args.replication.clone()),
            ..Default::default()
        });
        let mut write = {
            let (master, http, fids, payload, assign_req) =
                (master.clone(), http.clone(), fids.clone(), payload.clone(), assign_req.clone());
            let upload = args.upload;
            run_phase("write", args.n, args.c, &cpu, move |i| {
                let (master, http, fids, payload, assign_req) =
                    (master.clone(), http.clone(), fids.clone(), payload.clone(), assign_req.clone());
                async move {
                    let a = master.assign(&assign_req).await?;
                    let fid: FileId = a.fid.parse().context("bad fid from the master")?;
                    let url = format!("{}/{}", base_url(&a.url), a.fid);
                    let rb = match upload {
                        Upload::Form => {
                            let (ctype, body) = multipart(&payload);
                            http.post(&url).header("Content-Type", ctype).body(body)
                        }
                        Upload::Raw => http
                            .put(&url)
                            .header("Content-Type", "application/octet-stream")
                            .body(bytes::Bytes::copy_from_slice(&payload)),
                    };
                    let resp = rb
                        .token_or_admin(Some(&a.auth))
                        .send()
                        .await?;
                    if !resp.status().is_success() {
                        anyhow::bail!("upload to {url} answered {}", resp.status());
                    }
                    if let Ok(mut f) = fids.lock() {
                        f[i as usize] = Some((fid, a.public_url.clone()));
                    }
                    Ok(payload.len() as u64)
                }
            })
            .await
        };
        write.report();
        if args.write_only {
            return Ok(());
        }
        let written: Arc<Vec<(FileId, String)>> =
            Arc::new(fids.lock().map(|f| f.iter().flatten().cloned().collect()).unwrap_or_default());
        if written.is_empty() {
            anyhow::bail!("no file was written, nothing to read");
        }
        let mut read = {
            let (master, http, written) = (master.clone(), http.clone(), written.clone());
            run_phase("random read", args.n, args.c, &cpu, move |_| {
                let (master, http, written) = (master.clone(), http.clone(), written.clone());
                async move {
                    let (fid, _) = &written[rand::random_range(0..written.len())];
                    let locs = master.lookup(fid.volume).await?;
                    let loc = locs.first().context("volume has no location")?;
                    let url = format!("{}/{fid}", base_url(&loc.public_url));
                    let resp = http.get(&url).admin().send().await?;
                    if !resp.status().is_success() {
                        anyhow::bail!("read of {url} answered {}", resp.status());
                    }
                    Ok(resp.bytes().await?.len() as u64)
                }
            })
            .await
        };
        read.report();
        Ok(())
    })
}

/// Adds credentials to one request of [`put_get_phases`]: `(request, is_write, path)`.
type Authorizer =
    Arc<dyn Fn(reqwest::RequestBuilder, bool, &str) -> reqwest::RequestBuilder + Send + Sync>;

/// PUTs `args.n` bodies of `args.size` bytes to `<base>/f<i>`, then GETs random ones
/// (unless `-writeOnly`): the filer REST and S3 phases. `base` is `http://host/path`.
async fn put_get_phases(
    args: &Args,
    http: &reqwest::Client,
    base: &str,
    names: [&'static str; 2],
    cpu: &cpu::ServerCpu,
    authorize: Authorizer,
) -> anyhow::Result<()> {
    if !args.read_only {
        write_phase(args, http, base, names[0], cpu, authorize.clone()).await;
    }
    if args.write_only {
        return Ok(());
    }
    let n = args.n;
    let mut read = {
        let (http, base) = (http.clone(), base.to_string());
        run_phase(names[1], args.n, args.c, cpu, move |_| {
            let (http, base, authorize) = (http.clone(), base.clone(), authorize.clone());
            async move {
                let i = rand::random_range(0..n);
                let url = format!("{base}/f{i:09}");
                let mut resp = authorize(http.get(&url), false, &url).send().await?;
                if !resp.status().is_success() {
                    anyhow::bail!("GET answered {}", resp.status());
                }
                // Counted as it arrives, not gathered: the client's cost stays per byte
                // received, whatever the size.
                let mut len = 0u64;
                while let Some(piece) = resp.chunk().await? {
                    len += piece.len() as u64;
                }
                Ok(len)
            }
        })
        .await
    };
    read.report();
    Ok(())
}

/// The PUT phase of [`put_get_phases`].
async fn write_phase(
    args: &Args,
    http: &reqwest::Client,
    base: &str,
    name: &'static str,
    cpu: &cpu::ServerCpu,
    authorize: Authorizer,
) {
    let payload = bytes::Bytes::from(vec![7u8; args.size]);
    let mut write = {
        let (http, base) = (http.clone(), base.to_string());
        run_phase(name, args.n, args.c, cpu, move |i| {
            let (http, base, payload, authorize) = (
                http.clone(),
                base.clone(),
                payload.clone(),
                authorize.clone(),
            );
            async move {
                let len = payload.len() as u64;
                let url = format!("{base}/f{i:09}");
                let resp = authorize(http.put(&url), true, &url)
                    .body(payload)
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    anyhow::bail!("PUT answered {}", resp.status());
                }
                Ok(len)
            }
        })
        .await
    };
    write.report();
}

/// Writes, reads and lists files through a filer's REST API.
async fn filer_benchmark(
    args: &Args,
    http: reqwest::Client,
    cpu: &cpu::ServerCpu,
) -> anyhow::Result<()> {
    let base = format!("{}/benchmark", base_url(&args.filer));
    let authorize: Authorizer =
        Arc::new(|rb: reqwest::RequestBuilder, write, _: &str| rb.filer(write));
    put_get_phases(
        args,
        &http,
        &base,
        ["filer create", "filer random read"],
        cpu,
        authorize,
    )
    .await?;
    /// What the listing phase needs of a page. Entries are checked to be well-formed
    /// JSON and counted, not built into values: the phase measures the server.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Page {
        entries: Option<Vec<serde::de::IgnoredAny>>,
        #[serde(default)]
        last_file_name: String,
        #[serde(default)]
        should_display_load_more: bool,
    }
    let start = Instant::now();
    let (mut listed, mut last) = (0u64, String::new());
    loop {
        let page: Page = http
            .get(format!("{base}/?limit=1000&lastFileName={last}"))
            .filer(false)
            .header("Accept", "application/json")
            .send()
            .await?
            .json()
            .await?;
        listed += page.entries.map_or(0, |e| e.len() as u64);
        last = page.last_file_name;
        if !page.should_display_load_more {
            break;
        }
    }
    println!(
        "\n------------ filer list ------------\nListed {listed} entries in pages of 1000 in {:.3} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
