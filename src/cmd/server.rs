//! `kelp server`: master, volume server, filer and S3 in one process.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use kelp_filer::FilerConfig;
use kelp_master::MasterConfig;
use kelp_volume::http::VolumeServerConfig;

use super::common;
use super::filer::S3Flags;

/// Flags of `kelp server`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Data directory (volumes, master state and filer store live under it).
    #[arg(long, default_value = "./data")]
    pub dir: PathBuf,
    /// Address other servers and clients use to reach this one.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Address to listen on (default: the -ip address).
    #[arg(long = "ip.bind")]
    pub ip_bind: Option<String>,
    /// Data center of this server.
    #[arg(long = "dataCenter", default_value = "")]
    pub data_center: String,
    /// Rack of this server.
    #[arg(long, default_value = "")]
    pub rack: String,
    /// Master HTTP port.
    #[arg(long = "master.port", default_value_t = MasterConfig::DEFAULT_PORT)]
    pub master_port: u16,
    /// All masters as host:port,... (this one included); empty or "none" for a single master.
    #[arg(long = "master.peers", default_value = "")]
    pub master_peers: String,
    /// Master state directory (default: <dir>/master).
    #[arg(long = "master.dir")]
    pub master_dir: Option<PathBuf>,
    /// Volumes at or over this size stop taking writes.
    #[arg(
        long = "volumeSizeLimitMB",
        alias = "master.volumeSizeLimitMB",
        default_value_t = MasterConfig::DEFAULT_VOLUME_SIZE_LIMIT_MB
    )]
    pub volume_size_limit_mb: u64,
    /// Replication for writes that name none, like "000" or "010".
    #[arg(
        long = "defaultReplication",
        alias = "master.defaultReplication",
        default_value = ""
    )]
    pub default_replication: String,
    /// Vacuum volumes whose garbage ratio is over this.
    #[arg(
        long = "garbageThreshold",
        alias = "master.garbageThreshold",
        default_value_t = MasterConfig::DEFAULT_GARBAGE_THRESHOLD
    )]
    pub garbage_threshold: f64,
    /// `kelp shell` commands the master runs every -maintenance.interval, separated by
    /// ';' (e.g. "ec.encode -collection=logs -fullPercent=95 -quietFor=1h"). The default
    /// repairs replicas; empty: nothing runs by itself.
    #[arg(
        long = "maintenance.scripts",
        alias = "master.maintenance.scripts",
        default_value = kelp_shell::maintenance::DEFAULT_SCRIPTS
    )]
    pub maintenance_scripts: String,
    /// Time between maintenance rounds (like 17m, 1h, 30s).
    #[arg(
        long = "maintenance.interval",
        alias = "master.maintenance.interval",
        default_value = kelp_shell::maintenance::DEFAULT_INTERVAL
    )]
    pub maintenance_interval: String,
    /// Volume server HTTP port.
    #[arg(long = "volume.port", default_value_t = VolumeServerConfig::DEFAULT_PORT)]
    pub volume_port: u16,
    /// Maximum volumes; 0 = from free space.
    #[arg(long = "volume.max", default_value_t = VolumeServerConfig::DEFAULT_MAX_VOLUMES.to_string())]
    pub volume_max: String,
    /// Address handed to clients for reads (default: ip:volume.port).
    #[arg(long = "volume.publicUrl", default_value = "")]
    pub volume_public_url: String,
    /// Fsync every volume write before answering.
    #[arg(long = "volume.fsync", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub volume_fsync: bool,
    /// Large needles bypass the page cache (see `kelp volume -directIO`).
    #[arg(long = "volume.directIO", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub volume_direct_io: bool,
    /// Run the filer.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub filer: bool,
    /// Filer HTTP port.
    #[arg(long = "filer.port", default_value_t = FilerConfig::DEFAULT_PORT)]
    pub filer_port: u16,
    /// Filer chunk size, in MiB.
    #[arg(long = "filer.maxMB", default_value_t = FilerConfig::DEFAULT_MAX_MB)]
    pub filer_max_mb: u64,
    /// Data chunks a filer entry holds before they are folded into a manifest chunk.
    #[arg(long = "filer.manifestBatch", default_value_t = FilerConfig::DEFAULT_MANIFEST_BATCH)]
    pub filer_manifest_batch: usize,
    /// Serve every role's Prometheus metrics at /metrics on this port; 0: not served
    /// (the master and volume ports answer /metrics anyway).
    #[arg(long = "metricsPort", default_value_t = 0)]
    pub metrics_port: u16,
    /// Keep the filer's change-log events this many hours; 0 keeps them for ever.
    #[arg(long = "filer.meta.retainHours", default_value_t = FilerConfig::DEFAULT_META_RETAIN_HOURS)]
    pub filer_meta_retain_hours: u64,
    /// Seconds the filer's liveness lease lasts: after a crash, the chunks of uploads
    /// it left unfinished are reclaimed this long after its last renewal.
    #[arg(long = "filer.aliveSeconds", default_value_t = FilerConfig::DEFAULT_ALIVE_SECS)]
    pub filer_alive_seconds: u64,
    /// Run the S3 gateway.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub s3: bool,
    #[command(flatten)]
    pub s3_flags: S3Flags,
    /// Close a connection after this many seconds without a byte moving either way
    /// (every role's listener).
    #[arg(long = "idleTimeout", default_value_t = kelp_proto::server::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout: u64,
    #[command(flatten)]
    pub security: common::SecurityFlags,
}

impl Args {
    fn master_args(&self) -> super::master::Args {
        super::master::Args {
            idle_timeout: self.idle_timeout,
            security: self.security.clone(),
            ip: self.ip.clone(),
            ip_bind: self.ip_bind.clone(),
            port: self.master_port,
            mdir: self
                .master_dir
                .clone()
                .unwrap_or_else(|| self.dir.join("master")),
            peers: self.master_peers.clone(),
            volume_size_limit_mb: self.volume_size_limit_mb,
            default_replication: self.default_replication.clone(),
            garbage_threshold: self.garbage_threshold,
            vacuum_interval_seconds: MasterConfig::DEFAULT_VACUUM_INTERVAL_SECS,
            pulse_seconds: MasterConfig::DEFAULT_PULSE_SECS,
            maintenance_scripts: self.maintenance_scripts.clone(),
            maintenance_interval: self.maintenance_interval.clone(),
            raft_join: false,
        }
    }

    fn filer_args(&self) -> super::filer::Args {
        super::filer::Args {
            idle_timeout: self.idle_timeout,
            security: self.security.clone(),
            ip: self.ip.clone(),
            ip_bind: self.ip_bind.clone(),
            port: self.filer_port,
            master: format!("{}:{}", self.ip, self.master_port),
            store: Some("redb".into()),
            config: None,
            postgres_url: String::new(),
            postgres_schema: None,
            dir: self.dir.join("filer"),
            s3: self.s3,
            s3_flags: self.s3_flags.clone(),
            max_mb: self.filer_max_mb,
            manifest_batch: self.filer_manifest_batch,
            meta_retain_hours: self.filer_meta_retain_hours,
            alive_seconds: self.filer_alive_seconds,
            metrics_port: self.metrics_port,
        }
    }

    fn volume_args(&self) -> super::volume::Args {
        let mut masters = common::peers(&self.master_peers);
        let me = format!("{}:{}", self.ip, self.master_port);
        if !masters.contains(&me) {
            masters.insert(0, me);
        }
        super::volume::Args {
            idle_timeout: self.idle_timeout,
            security: self.security.clone(),
            ip: self.ip.clone(),
            ip_bind: self.ip_bind.clone(),
            port: self.volume_port,
            public_url: self.volume_public_url.clone(),
            dir: self.dir.join("volume").display().to_string(),
            max: self.volume_max.clone(),
            mserver: masters.join(","),
            data_center: self.data_center.clone(),
            rack: self.rack.clone(),
            file_size_limit_mb: VolumeServerConfig::DEFAULT_FILE_SIZE_LIMIT_MB,
            fsync: self.volume_fsync,
            direct_io: self.volume_direct_io,
            volume_size_limit_mb: self.volume_size_limit_mb,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.security
        .install(&args.ip_bind.clone().unwrap_or(args.ip.clone()))?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create -dir {}", args.dir.display()))?;
    let _lock = common::lock_dir(&args.dir)?;
    let master_args = args.master_args();
    let master_cfg = master_args.config()?;
    let maintenance = master_args.maintenance()?;
    let volume_args = args.volume_args();
    let bind = args.ip_bind.clone().unwrap_or_else(|| args.ip.clone());
    let rt = common::runtime()?;
    rt.block_on(async {
        let volume_listener = common::bind("volume server", &bind, args.volume_port).await?;
        let (master_listener, master) = super::master::start(master_cfg, &bind).await?;
        if let Some(m) = maintenance {
            let leader = master.clone();
            let wake = master.topology.rejoined.clone();
            m.spawn(
                move || leader.raft.is_leader(),
                format!("{}:{}", args.ip, args.master_port),
                wake,
            );
        }
        let vol =
            tokio::task::spawn_blocking(move || super::volume::prepare(&volume_args)).await??;
        if args.s3 && !args.filer {
            anyhow::bail!("the S3 gateway runs on the filer: drop -filer=false or add -s3=false");
        }
        let filer = match args.filer {
            true => {
                let local = kelp_volume::local::LocalStore::new(
                    vol.store.clone(),
                    vol.cfg.url(),
                    vol.cfg.fsync,
                    vol.cfg.file_size_limit,
                );
                Some(super::filer::start(&args.filer_args(), &bind, Some(Arc::new(local))).await?)
            }
            false => None,
        };

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        println!(
            "master: {}://{}:{}",
            kelp_proto::client::scheme(),
            args.ip,
            args.master_port
        );
        println!(
            "volume server: {}://{}:{}",
            kelp_proto::client::scheme(),
            args.ip,
            args.volume_port
        );
        if let Some(f) = &filer {
            println!(
                "filer: {}://{}:{}",
                kelp_proto::client::scheme(),
                args.ip,
                args.filer_port
            );
            if f.s3.is_some() {
                println!(
                    "s3: {}://{}:{}",
                    args.s3_flags.scheme(),
                    args.ip,
                    args.s3_flags.s3_port
                );
            }
        }
        let master_task =
            tokio::spawn(kelp_master::http::serve(master_listener, master, stopped()));
        let volume_task = tokio::spawn(kelp_volume::http::serve(
            volume_listener,
            vol.store,
            vol.cfg,
            stopped(),
        ));
        let filer_task = filer.map(|f| tokio::spawn(super::filer::serve(f, stopped)));
        common::shutdown_signal().await;
        let _ = stop_tx.send(true);
        if let Some(t) = filer_task {
            t.await.context("filer task")??;
        }
        let (m, v) = tokio::join!(master_task, volume_task);
        m.context("master task")?.context("master failed")?;
        v.context("volume task")?.context("volume server failed")?;
        Ok(())
    })
}
