//! `kelp filer`: the namespace server (HTTP REST, optionally S3).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use kelp_filer::Filer;
use kelp_filer::store::redb::RedbStore;

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
    #[arg(long, default_value_t = 8888)]
    pub port: u16,
    /// Masters as host:port,...
    #[arg(long, default_value = "127.0.0.1:9333")]
    pub master: String,
    /// Metadata store.
    #[arg(long, default_value = "redb", value_parser = ["redb", "postgres"])]
    pub store: String,
    /// Directory of the embedded store.
    #[arg(long, default_value = "./filer")]
    pub dir: PathBuf,
    /// Serve the S3 API too.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub s3: bool,
    /// S3 port.
    #[arg(long = "s3.port", default_value_t = 8333)]
    pub s3_port: u16,
    /// S3 identities file (SeaweedFS s3.json format). Without one, S3 accepts any key.
    #[arg(long = "s3.config", default_value = "")]
    pub s3_config: String,
    /// Chunk size for uploads, in MiB.
    #[arg(long = "maxMB", default_value_t = 8)]
    pub max_mb: u64,
    /// Data chunks an entry holds before they are folded into a manifest chunk.
    #[arg(long = "manifestBatch", default_value_t = 1000)]
    pub manifest_batch: usize,
}

impl Args {
    pub fn config(&self) -> kelp_filer::FilerConfig {
        kelp_filer::FilerConfig {
            masters: common::split_list(&self.master),
            chunk_size: (self.max_mb.clamp(1, 1024) << 20) as usize,
            manifest_batch: self.manifest_batch.max(2),
            ..Default::default()
        }
    }
}

/// Opens the filer's store and binds its port.
pub async fn start(
    args: &Args,
    bind_host: &str,
) -> anyhow::Result<(tokio::net::TcpListener, Arc<Filer>)> {
    if args.store != "redb" {
        anyhow::bail!("-store={} is not built yet; use -store=redb", args.store);
    }
    if args.s3 {
        anyhow::bail!("the S3 gateway is not built yet in this version of kelp; run without -s3");
    }
    let listener = common::bind("filer", bind_host, args.port).await?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create -dir {}", args.dir.display()))?;
    let dir = args.dir.clone();
    let store = tokio::task::spawn_blocking(move || RedbStore::open(&dir))
        .await?
        .with_context(|| format!("cannot open the filer store in {}", args.dir.display()))?;
    Ok((
        listener,
        Arc::new(Filer::new(Arc::new(store), args.config())),
    ))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create -dir {}", args.dir.display()))?;
    let _lock = common::lock_dir(&args.dir)?;
    let rt = common::runtime()?;
    rt.block_on(async {
        let bind = args.ip_bind.clone().unwrap_or_else(|| args.ip.clone());
        let (listener, filer) = start(&args, &bind).await?;
        println!("filer: http://{}:{}", args.ip, args.port);
        kelp_filer::http::serve(listener, filer, common::shutdown_signal())
            .await
            .context("filer failed")
    })
}
