//! `kelp volume`: one volume server storing needles under -dir.

use std::sync::Arc;

use anyhow::Context;
use kelp_volume::http::VolumeServerConfig;
use kelp_volume::{DiskLocation, Store, StoreOptions};

use super::common;

/// Flags of `kelp volume`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address the master and clients use to reach this server.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Address to listen on (default: the -ip address).
    #[arg(long = "ip.bind")]
    pub ip_bind: Option<String>,
    /// HTTP port.
    #[arg(long, default_value_t = VolumeServerConfig::DEFAULT_PORT)]
    pub port: u16,
    /// Address handed to clients for reads (default: ip:port).
    #[arg(long = "publicUrl", default_value = "")]
    pub public_url: String,
    /// Data directories, comma separated.
    #[arg(long, default_value = "./data")]
    pub dir: String,
    /// Maximum volumes per directory, comma separated like -dir; 0 = from free space.
    #[arg(long, default_value_t = VolumeServerConfig::DEFAULT_MAX_VOLUMES.to_string())]
    pub max: String,
    /// Masters as host:port,... (any of them; the leader is found).
    #[arg(long, alias = "master", default_value = "127.0.0.1:9333")]
    pub mserver: String,
    /// Data center of this server.
    #[arg(long = "dataCenter", default_value = "")]
    pub data_center: String,
    /// Rack of this server.
    #[arg(long, default_value = "")]
    pub rack: String,
    /// Largest accepted upload, in MiB.
    #[arg(long = "fileSizeLimitMB", default_value_t = VolumeServerConfig::DEFAULT_FILE_SIZE_LIMIT_MB)]
    pub file_size_limit_mb: u64,
    /// Close a connection after this many seconds without a byte moving either way
    /// (a stalled request head or body, an idle keep-alive connection).
    #[arg(long = "idleTimeout", default_value_t = kelp_proto::server::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout: u64,
    #[command(flatten)]
    pub security: common::SecurityFlags,
    /// Fsync every write before answering (otherwise only writes with ?fsync=true).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub fsync: bool,
    /// Write and read the block-aligned middle of large needles (1 MiB or more) around
    /// the page cache (O_DIRECT), where the file system supports it. Saves the CPU of
    /// filling the cache with bytes written once; `false` keeps large needles cached
    /// for reads (hot large objects on a slow disk).
    #[arg(long = "directIO", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub direct_io: bool,
    /// Size limit the master applies to volumes, in MiB (sizes -max=0 directories).
    #[arg(long = "volumeSizeLimitMB", default_value_t = kelp_master::MasterConfig::DEFAULT_VOLUME_SIZE_LIMIT_MB)]
    pub volume_size_limit_mb: u64,
}

/// Everything needed to start a volume server inside a process.
pub struct Prepared {
    pub store: Arc<Store>,
    pub cfg: VolumeServerConfig,
}

/// Opens the store and builds the server config from the flags.
pub fn prepare(args: &Args) -> anyhow::Result<Prepared> {
    let dirs = common::split_list(&args.dir);
    if dirs.is_empty() {
        anyhow::bail!("-dir names no directory");
    }
    let maxes: Vec<usize> = common::split_list(&args.max)
        .iter()
        .map(|m| {
            m.parse::<usize>()
                .with_context(|| format!("-max value {m:?} is not a number"))
        })
        .collect::<anyhow::Result<_>>()?;
    let max_for = |i: usize| -> usize {
        match maxes.len() {
            0 => VolumeServerConfig::DEFAULT_MAX_VOLUMES,
            1 => maxes[0],
            _ => maxes
                .get(i)
                .copied()
                .unwrap_or(VolumeServerConfig::DEFAULT_MAX_VOLUMES),
        }
    };
    let locations = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| DiskLocation::new(d, max_for(i)))
        .collect();
    let mut opts = StoreOptions {
        volume_size_limit: args.volume_size_limit_mb << 20,
        ..Default::default()
    };
    opts.volume.fsync_always = args.fsync;
    opts.volume.direct_io = args.direct_io;
    let store = Store::open(locations, opts)
        .with_context(|| format!("cannot open the volume store in {}", args.dir))?;
    for (path, err) in store.load_errors() {
        tracing::error!(path = %path.display(), error = %err, "volume not loaded");
    }
    let cfg = VolumeServerConfig {
        ip: args.ip.clone(),
        port: args.port,
        public_url: args.public_url.clone(),
        masters: common::split_list(&args.mserver),
        data_center: args.data_center.clone(),
        rack: args.rack.clone(),
        file_size_limit: args.file_size_limit_mb << 20,
        fsync: args.fsync,
        heartbeat_secs: VolumeServerConfig::DEFAULT_HEARTBEAT_SECS,
        limits: kelp_proto::server::Limits {
            idle: std::time::Duration::from_secs(args.idle_timeout.max(1)),
            ..Default::default()
        },
    };
    Ok(Prepared {
        store: Arc::new(store),
        cfg,
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.security
        .install(&args.ip_bind.clone().unwrap_or(args.ip.clone()))?;
    let _locks = common::split_list(&args.dir)
        .iter()
        .map(|d| {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create -dir {d}"))?;
            common::lock_dir(std::path::Path::new(d))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rt = common::runtime()?;
    rt.block_on(async {
        let listener = common::bind(
            "volume server",
            &args.ip_bind.clone().unwrap_or(args.ip.clone()),
            args.port,
        )
        .await?;
        let p = tokio::task::spawn_blocking({
            let args = args.clone();
            move || prepare(&args)
        })
        .await??;
        println!(
            "volume server: {}://{}:{}",
            kelp_proto::client::scheme(),
            p.cfg.ip,
            args.port
        );
        kelp_volume::http::serve(listener, p.store, p.cfg, common::shutdown_signal())
            .await
            .context("volume server failed")
    })
}
