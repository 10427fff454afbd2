//! An in-process kelp stack for the S3 tests: master, volume server, filer (REST, for
//! chunk GC) and the S3 gateway, each on a 127.0.0.1:0 listener in a temp dir, run on
//! a background runtime and stopped on drop. Plus helpers to drive the real `aws` cli,
//! `python3` + boto3 and `curl` against it. A missing client fails the test.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use kelp_filer::{Filer, FilerConfig};
use kelp_s3::{Identities, S3Config};
use kelp_testkit::wait_until_async;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the stack may take to come up (the test machine has 2 shared cores).
const READY: Duration = Duration::from_secs(60);

/// The domain test gateways take `<bucket>.<domain>` requests on (the Python scenarios
/// resolve it to 127.0.0.1 themselves).
pub const VHOST_DOMAIN: &str = "s3.kelp.test";

pub const AK: &str = "AKIDKELPTEST";
pub const SK: &str = "kelp/secret+KEY/for/tests";

/// An s3.json with an admin (AK/SK), an admin of another account (`acct2`), a reader of `shared`, a writer limited to
/// `shared/up/*`, and an anonymous identity that may read the bucket `public`.
pub fn identities_json() -> String {
    format!(
        r#"{{"identities":[
  {{"name":"admin","credentials":[{{"accessKey":"{AK}","secretKey":"{SK}"}}],"actions":["Admin"]}},
  {{"name":"admin2","account":{{"id":"acct2","displayName":"Second"}},
    "credentials":[{{"accessKey":"ADMIN2KEY","secretKey":"admin2secret"}}],"actions":["Admin"]}},
  {{"name":"reader","credentials":[{{"accessKey":"READERKEY","secretKey":"readersecret"}}],
    "actions":["Read:shared","List:shared"]}},
  {{"name":"uploader","credentials":[{{"accessKey":"UPKEY","secretKey":"upsecret"}}],
    "actions":["Write:shared/up/*","Read:shared/up/*","List:shared/up/"]}},
  {{"name":"anonymous","actions":["Read:public","List:public"]}}
]}}"#
    )
}

pub struct Stack {
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>` of the S3 gateway.
    pub endpoint: String,
    /// `http://127.0.0.1:<port>` of the filer's REST API (for comparisons).
    pub filer_endpoint: String,
    /// `http://127.0.0.1:<port>` of the master.
    pub master_endpoint: String,
    pub filer: Arc<Filer>,
    rt: Option<tokio::runtime::Runtime>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,s3s=off".into()),
        )
        .with_test_writer()
        .try_init();
}

impl Stack {
    /// A stack whose gateway is open (no identities).
    pub fn open() -> Stack {
        Stack::start(Identities::open())
    }

    /// A stack whose gateway uses the identities of [`identities_json`].
    pub fn with_auth() -> Stack {
        Stack::start(Identities::from_json(&identities_json()).unwrap())
    }

    pub fn start(ids: Identities) -> Stack {
        Stack::start_with(ids, |_| {})
    }

    /// A stack whose gateway config `tweak` adjusts (by default it has a key file in
    /// its filer dir and accepts SSE-C over plain HTTP).
    pub fn start_with(ids: Identities, tweak: impl FnOnce(&mut S3Config)) -> Stack {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let root = dir.path().to_path_buf();
        let (endpoint, filer_endpoint, master_endpoint, filer, tasks) = rt.block_on(async move {
            let bind = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };
            let (ml, vl, fl, sl) = (bind().await, bind().await, bind().await, bind().await);
            let mport = ml.local_addr().unwrap().port();
            let vport = vl.local_addr().unwrap().port();
            let master_addr = format!("127.0.0.1:{mport}");
            let mcfg = kelp_master::MasterConfig {
                ip: "127.0.0.1".into(),
                port: mport,
                mdir: root.join("master"),
                peers: vec![],
                volume_size_limit_mb: 1024,
                default_replication: "000".parse().unwrap(),
                garbage_threshold: 0.3,
                vacuum_interval_secs: 0,
                pulse_secs: 1,
                ..Default::default()
            };
            std::fs::create_dir_all(&mcfg.mdir).unwrap();
            let master = kelp_master::start(mcfg).await.unwrap();
            let store = kelp_volume::Store::open(
                vec![kelp_volume::DiskLocation::new(root.join("volume"), 8)],
                kelp_volume::StoreOptions {
                    volume_size_limit: 1024 << 20,
                    ..Default::default()
                },
            )
            .unwrap();
            let vcfg = kelp_volume::http::VolumeServerConfig {
                ip: "127.0.0.1".into(),
                port: vport,
                public_url: String::new(),
                masters: vec![master_addr.clone()],
                data_center: String::new(),
                rack: String::new(),
                file_size_limit: 256 << 20,
                fsync: false,
                heartbeat_secs: 1,
                ..Default::default()
            };
            std::fs::create_dir_all(root.join("filer")).unwrap();
            let fstore = kelp_filer::store::redb::RedbStore::open(&root.join("filer")).unwrap();
            let filer = Arc::new(Filer::new(
                Arc::new(fstore),
                FilerConfig {
                    masters: vec![master_addr],
                    ..FilerConfig::default()
                },
            ));
            let endpoint = format!("http://{}", sl.local_addr().unwrap());
            let filer_endpoint = format!("http://{}", fl.local_addr().unwrap());
            let master_endpoint = format!("http://127.0.0.1:{mport}");
            // Virtual-hosted style on a test domain; path style (127.0.0.1) still works.
            let mut cfg = S3Config {
                domains: vec![VHOST_DOMAIN.into()],
                key_file: Some(root.join("filer").join("s3-keys.json")),
                allow_insecure_sse: true,
                ..S3Config::default()
            };
            tweak(&mut cfg);
            let tasks = vec![
                tokio::spawn(kelp_master::http::serve(ml, master, stopped())),
                tokio::spawn(kelp_volume::http::serve(
                    vl,
                    Arc::new(store),
                    vcfg,
                    stopped(),
                )),
                tokio::spawn(kelp_filer::http::serve(fl, filer.clone(), stopped())),
                tokio::spawn(kelp_s3::serve_with_identities(
                    sl,
                    filer.clone(),
                    cfg,
                    ids,
                    stopped(),
                )),
            ];
            // Ready when the master can hand out a file id (leader elected, volume
            // server registered, volumes grown). The last refusal is logged once.
            let last_err = std::sync::Mutex::new(String::new());
            let (master, last_err) = (&filer.master, &last_err);
            wait_until_async(
                "the stack to hand out a file id",
                READY,
                move || async move {
                    let req = kelp_proto::master_api::AssignRequest::default();
                    match master.assign(&req).await {
                        Ok(_) => true,
                        Err(e) => {
                            let e = e.to_string();
                            let mut last = last_err.lock().unwrap();
                            if *last != e {
                                eprintln!("stack not ready yet: {e}");
                                *last = e;
                            }
                            false
                        }
                    }
                },
            )
            .await;
            (endpoint, filer_endpoint, master_endpoint, filer, tasks)
        });
        Stack {
            dir,
            endpoint,
            filer_endpoint,
            master_endpoint,
            filer,
            rt: Some(rt),
            stop,
            tasks,
        }
    }

    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.as_ref().unwrap().block_on(f)
    }

    /// A scratch directory for client files.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("client").join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Runs `aws --endpoint-url <s3> <args>` with the given keys.
    pub fn aws_as(&self, ak: &str, sk: &str, args: &[&str]) -> Output {
        self.aws_configured(ak, sk, "", args)
    }

    /// Runs `aws` with an AWS_CONFIG_FILE holding `config`.
    pub fn aws_configured(&self, ak: &str, sk: &str, config: &str, args: &[&str]) -> Output {
        let cfg = self.dir.path().join(format!("aws-config-{}", config.len()));
        std::fs::write(&cfg, config).unwrap();
        Command::new("aws")
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("AWS_PROFILE")
            .env("AWS_ACCESS_KEY_ID", ak)
            .env("AWS_SECRET_ACCESS_KEY", sk)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", &cfg)
            .env("AWS_SHARED_CREDENTIALS_FILE", &cfg)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["--endpoint-url", &self.endpoint, "--cli-read-timeout", "15"])
            .args(args)
            .output()
            .expect("the aws cli must be installed (it is part of the test toolchain)")
    }

    /// `aws` as the admin; panics with its output unless it succeeds.
    pub fn aws(&self, args: &[&str]) -> String {
        let out = self.aws_as(AK, SK, args);
        assert!(out.status.success(), "aws {args:?} failed:\n{}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `tests/py/s3_checks.py <scenario> <endpoint> <extra...>`; panics with its
    /// output unless it succeeds.
    pub fn python(&self, scenario: &str, extra: &[&str]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/s3_checks.py");
        let out = Command::new("python3")
            .env_remove("AWS_CA_BUNDLE")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .arg(&script)
            .arg(scenario)
            .arg(&self.endpoint)
            .args(extra)
            .output()
            .expect("python3 (with boto3) must be installed");
        assert!(
            out.status.success(),
            "python {scenario} failed:\n{}",
            show(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Deterministic pseudo-random bytes.
pub fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.rt.take() {
            let tasks = std::mem::take(&mut self.tasks);
            rt.block_on(async {
                for t in tasks {
                    let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
                }
            });
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}
