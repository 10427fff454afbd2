//! `kelp filer`: the namespace server (HTTP REST, optionally S3).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use kelp_filer::store::{FilerStore, PostgresStore, RedbStore};
use kelp_filer::{Filer, FilerConfig};
use kelp_s3::S3Config;

use super::common;

/// Flags of `kelp filer`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address clients use to reach this filer.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Address to listen on (default: the -ip address).
    #[arg(long = "ip.bind")]
    pub ip_bind: Option<String>,
    /// HTTP port of the REST API.
    #[arg(long, default_value_t = FilerConfig::DEFAULT_PORT)]
    pub port: u16,
    /// Masters as host:port,...
    #[arg(long, default_value = "127.0.0.1:9333")]
    pub master: String,
    /// Metadata store: redb (embedded, the default) or postgres.
    #[arg(long, value_parser = ["redb", "postgres"])]
    pub store: Option<String>,
    /// A filer.toml with the store settings (store, [postgres] url, schema); default:
    /// the first of ./filer.toml, $HOME/.kelp/filer.toml and /etc/kelp/filer.toml that
    /// exists. Flags given here win over it. `kelp scaffold -config=filer` prints one.
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded store (and of this filer's lock file).
    #[arg(long, default_value = "./filer")]
    pub dir: PathBuf,
    /// PostgreSQL URL for -store=postgres (postgres://user:password@host:port/database).
    /// Empty: read from the environment variable KELP_POSTGRES_URL, which keeps the
    /// password off the command line.
    #[arg(long = "postgres.url", default_value = "")]
    pub postgres_url: String,
    /// Schema that holds kelp's tables in that database (created if missing); default
    /// kelp.
    #[arg(long = "postgres.schema")]
    pub postgres_schema: Option<String>,
    /// Serve the S3 API too.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub s3: bool,
    #[command(flatten)]
    pub s3_flags: S3Flags,
    /// Chunk size for uploads, in MiB.
    #[arg(long = "maxMB", default_value_t = FilerConfig::DEFAULT_MAX_MB)]
    pub max_mb: u64,
    /// Data chunks an entry holds before they are folded into a manifest chunk.
    #[arg(long = "manifestBatch", default_value_t = FilerConfig::DEFAULT_MANIFEST_BATCH)]
    pub manifest_batch: usize,
    /// Keep change-log events (GET /?op=meta.events) this many hours; 0 keeps them
    /// for ever.
    #[arg(long = "meta.retainHours", default_value_t = FilerConfig::DEFAULT_META_RETAIN_HOURS)]
    pub meta_retain_hours: u64,
    /// Seconds this filer's liveness lease lasts (renewed every quarter of it): another
    /// filer sharing the store, or this one restarted, reclaims the chunks of uploads
    /// left unfinished by a filer that died this long after its last renewal.
    #[arg(long = "aliveSeconds", default_value_t = FilerConfig::DEFAULT_ALIVE_SECS)]
    pub alive_seconds: u64,
    /// Close a connection after this many seconds without a byte moving either way
    /// (a stalled request head or body, an idle keep-alive connection).
    #[arg(long = "idleTimeout", default_value_t = kelp_proto::server::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout: u64,
    /// Serve Prometheus metrics (this filer's and its S3 gateway's; in `kelp server`,
    /// every role's) at /metrics on this port; 0: not served. Masters and volume
    /// servers also answer /metrics on their own ports.
    #[arg(long = "metricsPort", default_value_t = 0)]
    pub metrics_port: u16,
    #[command(flatten)]
    pub security: common::SecurityFlags,
}

/// The S3 gateway's flags, declared once for `kelp filer` and `kelp server` (whose
/// `-s3` switch differs in default and wording, so it stays with each command).
#[derive(Debug, Clone, clap::Args)]
pub struct S3Flags {
    /// S3 port.
    #[arg(long = "s3.port", default_value_t = S3Config::DEFAULT_PORT)]
    pub s3_port: u16,
    /// S3 identities file (SeaweedFS s3.json format). Without one, S3 accepts any key.
    #[arg(long = "s3.config", default_value = "")]
    pub s3_config: String,
    /// Domains for virtual-hosted-style S3 requests (`<bucket>.<domain>`), comma-separated;
    /// path style always works.
    #[arg(long = "s3.domainName", default_value = "")]
    pub s3_domain_name: String,
    /// Pin the S3 region: requests signed for another one are refused, and
    /// GetBucketLocation answers it. Empty: any region is accepted (`US` and `EU`
    /// too) and the location is us-east-1.
    #[arg(long = "s3.region", default_value = "")]
    pub s3_region: String,
    /// PEM certificate chain for HTTPS on the S3 port (with -s3.key.file). Without it,
    /// the security file's [https] applies, if any.
    #[arg(long = "s3.cert.file", default_value = "")]
    pub s3_cert_file: String,
    /// PEM private key of -s3.cert.file.
    #[arg(long = "s3.key.file", default_value = "")]
    pub s3_key_file: String,
    /// Key file of the SSE-S3 and SSE-KMS master keys, created with fresh keys on
    /// first start (back it up: without it encrypted objects cannot be read). Manage
    /// keys with `kelp s3.keys`. Default: s3-keys.json in the filer's -dir.
    #[arg(long = "s3.keyFile", default_value = "")]
    pub s3_keys_file: String,
    /// Accept SSE-C (customer-provided keys) over plain HTTP, for TLS ended in front
    /// of kelp. Without it SSE-C needs the S3 port to speak HTTPS.
    #[arg(long = "s3.allowInsecureSSE", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_name = "BOOL")]
    pub s3_allow_insecure_sse: bool,
    /// Seconds in a lifecycle-rule "day" (rules say Days: N), and how often the
    /// lifecycle worker runs. Lower it only to test rules.
    #[arg(long = "s3.lifecycle.daySeconds", default_value_t = 86_400)]
    pub s3_lifecycle_day_seconds: u64,
    /// Test failpoint: abort once a fresh lifecycle run has expired this many objects.
    #[arg(long = "s3.lifecycle.crashAfter", hide = true)]
    pub s3_lifecycle_crash_after: Option<u64>,
}

impl S3Flags {
    /// `https` when the S3 port speaks TLS.
    pub fn scheme(&self) -> &'static str {
        let security = kelp_proto::security::current();
        if !self.s3_cert_file.is_empty() || security.https.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The gateway's config, checked: domain names well formed, identities file readable.
    /// `dir`: the filer's directory, where the key file is by default.
    pub fn config(&self, dir: &std::path::Path) -> anyhow::Result<S3Config> {
        let tls = match (self.s3_cert_file.as_str(), self.s3_key_file.as_str()) {
            ("", "") => None,
            ("", _) | (_, "") => {
                anyhow::bail!("-s3.cert.file and -s3.key.file go together")
            }
            (cert, key) => Some(
                kelp_proto::security::tls::server_config(
                    std::path::Path::new(cert),
                    std::path::Path::new(key),
                    None,
                    kelp_proto::security::tls::ClientAuth::None,
                )
                .map_err(|e| anyhow::anyhow!("-s3.cert.file: {e}"))?,
            ),
        };
        let cfg = S3Config {
            identities_file: Some(PathBuf::from(&self.s3_config))
                .filter(|p| !p.as_os_str().is_empty()),
            domains: common::split_list(&self.s3_domain_name),
            tls,
            pin_region: !self.s3_region.is_empty(),
            key_file: Some(if self.s3_keys_file.is_empty() {
                dir.join("s3-keys.json")
            } else {
                PathBuf::from(&self.s3_keys_file)
            }),
            allow_insecure_sse: self.s3_allow_insecure_sse,
            lifecycle_day_secs: self.s3_lifecycle_day_seconds.max(1),
            lifecycle_crash_after: self.s3_lifecycle_crash_after,
            ..Default::default()
        };
        let cfg = if self.s3_region.is_empty() {
            cfg
        } else {
            S3Config {
                region: self.s3_region.clone(),
                ..cfg
            }
        };
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("-s3.domainName: {e}"))?;
        if let Some(f) = &cfg.identities_file
            && !f.is_file()
        {
            anyhow::bail!("-s3.config {} is not a readable file", f.display());
        }
        Ok(cfg)
    }
}

impl Args {
    pub fn config(&self) -> FilerConfig {
        FilerConfig {
            masters: common::split_list(&self.master),
            chunk_size: (self.max_mb.clamp(1, 1024) << 20) as usize,
            manifest_batch: self.manifest_batch.max(2),
            meta_retain: FilerConfig::retain_hours(self.meta_retain_hours),
            alive_ttl: std::time::Duration::from_secs(self.alive_seconds.max(1)),
            limits: kelp_proto::server::Limits {
                idle: std::time::Duration::from_secs(self.idle_timeout.max(1)),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// A filer ready to serve: its port, and the S3 port when `-s3` is on.
pub struct Started {
    pub listener: tokio::net::TcpListener,
    pub filer: Arc<Filer>,
    pub s3: Option<(tokio::net::TcpListener, S3Config, kelp_s3::Identities)>,
    /// The `-metricsPort` listener.
    pub metrics: Option<tokio::net::TcpListener>,
}

/// Binds the filer's (and S3's) ports and opens its store. `local`: the volume server
/// in this process (`kelp server`), which then serves chunk writes and reads without
/// HTTP.
pub async fn start(
    args: &Args,
    bind_host: &str,
    local: Option<Arc<dyn kelp_proto::client::LocalVolumes>>,
) -> anyhow::Result<Started> {
    let store = open_store(args).await?;
    let listener = common::bind("filer", bind_host, args.port).await?;
    let metrics = match args.metrics_port {
        0 => None,
        p => Some(common::bind("metrics", bind_host, p).await?),
    };
    let s3 = match args.s3 {
        true => {
            let l = common::bind("S3 gateway", bind_host, args.s3_flags.s3_port).await?;
            let mut cfg = args.s3_flags.config(&args.dir)?;
            cfg.limits = args.config().limits;
            // Read now, so a bad identities file stops start-up instead of the gateway.
            let file = cfg
                .identities_file
                .as_deref()
                .filter(|p| !p.as_os_str().is_empty());
            let ids =
                kelp_s3::Identities::load(file).map_err(|e| anyhow::anyhow!("-s3.config: {e}"))?;
            if ids.is_open() && !args.security.insecure {
                kelp_proto::security::check_bind(
                    bind_host,
                    &kelp_proto::security::Security::default(),
                    false,
                )
                .map_err(|_| {
                    anyhow::anyhow!(
                        "refusing to run an open S3 gateway on {bind_host}: anyone who can \
                         reach it could read and write every bucket (pass -s3.config=FILE or \
                         set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass -insecure \
                         to accept the risk)"
                    )
                })?;
            }
            Some((l, cfg, ids))
        }
        false => None,
    };
    Ok(Started {
        metrics,
        listener,
        filer: Arc::new({
            let mut f = Filer::new(store, args.config());
            if let Some(l) = local {
                f.volumes = f.volumes.with_local(l);
            }
            f
        }),
        s3,
    })
}

/// Opens the store `-store` (or the filer.toml) names.
async fn open_store(args: &Args) -> anyhow::Result<Arc<dyn FilerStore>> {
    // `-store=redb` (and `kelp server`) need nothing from a filer.toml.
    let (file, from) = if args.store.as_deref() == Some("redb") && args.config.is_none() {
        Default::default()
    } else {
        super::filer_toml::load(args.config.as_deref())?
    };
    if let Some(p) = &from {
        tracing::info!(file = %p.display(), "filer settings read");
    }
    let store = args
        .store
        .clone()
        .or(file.store)
        .unwrap_or_else(|| "redb".into());
    if store == "postgres" {
        let url = match args.postgres_url.as_str() {
            "" => file
                .postgres
                .url
                .unwrap_or_else(|| std::env::var("KELP_POSTGRES_URL").unwrap_or_default()),
            u => u.to_string(),
        };
        if url.is_empty() {
            anyhow::bail!(
                "-store=postgres needs -postgres.url, [postgres] url in filer.toml, or KELP_POSTGRES_URL"
            );
        }
        let schema = args
            .postgres_schema
            .clone()
            .or(file.postgres.schema)
            .unwrap_or_else(|| "kelp".into());
        let store = PostgresStore::open(&url, &schema)
            .await
            .context("cannot open the PostgreSQL filer store")?;
        return Ok(Arc::new(store));
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create -dir {}", args.dir.display()))?;
    let dir = args.dir.clone();
    let store = tokio::task::spawn_blocking(move || RedbStore::open(&dir))
        .await?
        .with_context(|| format!("cannot open the filer store in {}", args.dir.display()))?;
    Ok(Arc::new(store))
}

/// Serves the filer (and S3) until `stopped` resolves.
pub async fn serve<F>(started: Started, stopped: impl Fn() -> F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if let Some(l) = started.metrics {
        tokio::spawn(kelp_proto::metrics::serve_all(l, stopped()));
    }
    let s3 = started.s3.map(|(l, cfg, ids)| {
        tokio::spawn(kelp_s3::serve_with_identities(
            l,
            started.filer.clone(),
            cfg,
            ids,
            stopped(),
        ))
    });
    kelp_filer::http::serve(started.listener, started.filer, stopped())
        .await
        .context("filer failed")?;
    if let Some(t) = s3 {
        t.await.context("S3 task")?.context("S3 gateway failed")?;
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.security
        .install(&args.ip_bind.clone().unwrap_or(args.ip.clone()))?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create -dir {}", args.dir.display()))?;
    let _lock = common::lock_dir(&args.dir)?;
    let rt = common::runtime()?;
    rt.block_on(async {
        let bind = args.ip_bind.clone().unwrap_or_else(|| args.ip.clone());
        let started = start(&args, &bind, None).await?;
        println!(
            "filer: {}://{}:{}",
            kelp_proto::client::scheme(),
            args.ip,
            args.port
        );
        if started.s3.is_some() {
            println!(
                "s3: {}://{}:{}",
                args.s3_flags.scheme(),
                args.ip,
                args.s3_flags.s3_port
            );
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            common::shutdown_signal().await;
            let _ = tx.send(true);
        });
        serve(started, move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        })
        .await
    })
}
