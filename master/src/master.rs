//! The master's logic behind its HTTP API: assign, lookup, grow, vacuum, collections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kelp_proto::client::VolumeClient;
use kelp_proto::master_api::{AssignRequest, Assignment, Location, VolumeInformation};
use kelp_proto::volume_api::AllocateVolumeRequest;
use kelp_proto::{Cookie, FileId, NeedleKey, ReplicaPlacement, Ttl, VolumeId};
use rand::seq::IndexedRandom;
use tokio::sync::Mutex;

use crate::growth::{self, GrowSpec, NoPlacement};
use crate::raft::{ConsensusError, RaftNode};
use crate::sequencer::Sequencer;
use crate::topology::{LayoutKey, Topology};

/// How a master runs.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// `host` of this master; with `port` it is this master's id among its peers.
    pub ip: String,
    pub port: u16,
    pub mdir: std::path::PathBuf,
    /// Every master's `host:port` (this one may be included); empty for a single master.
    pub peers: Vec<String>,
    pub volume_size_limit_mb: u64,
    pub default_replication: ReplicaPlacement,
    pub garbage_threshold: f64,
    /// Seconds between automatic vacuum rounds (0: never).
    pub vacuum_interval_secs: u64,
    /// Seconds between volume server heartbeats; silence for 3 of them means dead.
    pub pulse_secs: u64,
    /// Idle timeout and connection cap of the listener.
    pub limits: kelp_proto::server::Limits,
    /// Join a running master group (`-raft.join`): on first start, wait to be added
    /// with `cluster.raft.add` instead of forming a group with `peers`.
    pub raft_join: bool,
}

impl MasterConfig {
    /// Documented default of `-port` (`-master.port` of `kelp server`).
    pub const DEFAULT_PORT: u16 = 9333;
    /// Documented default of `-volumeSizeLimitMB`: volumes stop taking writes at 30 GiB.
    pub const DEFAULT_VOLUME_SIZE_LIMIT_MB: u64 = 30720;
    /// Documented default of `-garbageThreshold`.
    pub const DEFAULT_GARBAGE_THRESHOLD: f64 = 0.3;
    /// Documented default of `-vacuumIntervalSeconds` (14 minutes, as in SeaweedFS).
    pub const DEFAULT_VACUUM_INTERVAL_SECS: u64 = 840;
    /// Documented default of `-pulseSeconds`.
    pub const DEFAULT_PULSE_SECS: u64 = 5;

    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn size_limit(&self) -> u64 {
        self.volume_size_limit_mb << 20
    }
}

impl Default for MasterConfig {
    /// A single master on 127.0.0.1 with the documented defaults of `kelp master`.
    fn default() -> Self {
        MasterConfig {
            ip: "127.0.0.1".into(),
            port: Self::DEFAULT_PORT,
            mdir: "./master".into(),
            peers: Vec::new(),
            volume_size_limit_mb: Self::DEFAULT_VOLUME_SIZE_LIMIT_MB,
            default_replication: ReplicaPlacement::default(),
            garbage_threshold: Self::DEFAULT_GARBAGE_THRESHOLD,
            vacuum_interval_secs: Self::DEFAULT_VACUUM_INTERVAL_SECS,
            pulse_secs: Self::DEFAULT_PULSE_SECS,
            limits: kelp_proto::server::Limits::default(),
            raft_join: false,
        }
    }
}

/// Errors of master operations; the HTTP layer maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Placement(#[from] NoPlacement),
    #[error("{0}")]
    NotFound(String),
    #[error("not the leader")]
    NotLeader(Option<String>),
    #[error("{0}")]
    Unavailable(String),
    /// The admin lock is held by someone else.
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    Internal(String),
}

impl From<ConsensusError> for MasterError {
    fn from(e: ConsensusError) -> MasterError {
        match e {
            ConsensusError::NotLeader { leader } => MasterError::NotLeader(leader),
            ConsensusError::Timeout(_) => MasterError::Unavailable(e.to_string()),
            other => MasterError::Internal(other.to_string()),
        }
    }
}

pub struct Master {
    pub cfg: MasterConfig,
    pub raft: Arc<RaftNode>,
    pub topology: Topology,
    pub volumes: VolumeClient,
    sequencer: Sequencer,
    grow_lock: Mutex<()>,
    started: Instant,
    /// The cluster admin lock (`/cluster/lock`), held in the leader's memory.
    pub admin_lock: crate::lock::AdminLock,
}

fn parse_placement(
    s: Option<&str>,
    default: ReplicaPlacement,
) -> Result<ReplicaPlacement, MasterError> {
    match s.filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse()
            .map_err(|e: kelp_proto::PlacementParseError| MasterError::BadRequest(e.to_string())),
        None => Ok(default),
    }
}

fn parse_ttl(s: Option<&str>) -> Result<Ttl, MasterError> {
    s.unwrap_or("")
        .parse()
        .map_err(|e: kelp_proto::TtlError| MasterError::BadRequest(e.to_string()))
}

impl Master {
    pub fn new(cfg: MasterConfig, raft: Arc<RaftNode>, http: reqwest::Client) -> Master {
        let dead_after = Duration::from_secs(cfg.pulse_secs * 3);
        Master {
            sequencer: Sequencer::new(raft.clone()),
            raft,
            topology: Topology::new(dead_after),
            volumes: VolumeClient::new(http),
            grow_lock: Mutex::new(()),
            started: Instant::now(),
            admin_lock: crate::lock::AdminLock::default(),
            cfg,
        }
    }

    /// `/dir/assign` on the leader.
    pub async fn assign(&self, req: &AssignRequest) -> Result<Assignment, MasterError> {
        if !self.raft.leads_with_quorum() {
            return Err(MasterError::Unavailable(
                "this master has not heard from a majority of the masters within its lease: \
                 it may be cut off, and another may lead; try another master"
                    .into(),
            ));
        }
        let count = req.count.unwrap_or(1);
        if count == 0 || count > 1_000_000 {
            return Err(MasterError::BadRequest(format!(
                "count {count} must be between 1 and 1000000"
            )));
        }
        let placement = parse_placement(req.replication.as_deref(), self.cfg.default_replication)?;
        let ttl = parse_ttl(req.ttl.as_deref())?;
        let collection = req.collection.clone().unwrap_or_default();
        kelp_proto::name::check_collection(&collection)
            .map_err(|e| MasterError::BadRequest(e.to_string()))?;
        let key = LayoutKey::new(&collection, placement, ttl);
        let mut writable = self.topology.writable(&key, self.cfg.size_limit());
        if writable.is_empty() {
            // A master that just started may not have heard every volume server yet: while
            // Raft knows of volume ids no heartbeat has reported, wait up to one heartbeat
            // period rather than grow volumes that may already exist.
            let warming = self.started.elapsed() < Duration::from_secs(self.cfg.pulse_secs + 1);
            if warming && self.raft.state().max_volume_id > self.topology.max_volume_id() {
                return Err(MasterError::Unavailable(
                    "master is starting and has not heard from every volume server yet".into(),
                ));
            }
            let spec = GrowSpec {
                collection: collection.clone(),
                placement,
                ttl,
                data_center: req.data_center.clone().filter(|s| !s.is_empty()),
                rack: req.rack.clone().filter(|s| !s.is_empty()),
                data_node: req.data_node.clone().filter(|s| !s.is_empty()),
            };
            let _g = self.grow_lock.lock().await;
            writable = self.topology.writable(&key, self.cfg.size_limit());
            if writable.is_empty() {
                self.grow(&spec, growth::growth_count(placement.copy_count()))
                    .await?;
                writable = self.topology.writable(&key, self.cfg.size_limit());
            }
        }
        let filtered: Vec<_> = writable
            .iter()
            .filter(|v| {
                v.nodes.iter().any(|n| {
                    req.data_center
                        .as_deref()
                        .is_none_or(|d| d.is_empty() || n.data_center == d)
                        && req
                            .rack
                            .as_deref()
                            .is_none_or(|r| r.is_empty() || n.rack == r)
                        && req
                            .data_node
                            .as_deref()
                            .is_none_or(|d| d.is_empty() || n.url == d || n.public_url == d)
                })
            })
            .collect();
        let candidates = if filtered.is_empty() {
            writable.iter().collect()
        } else {
            filtered
        };
        let vol = candidates.choose(&mut rand::rng()).ok_or_else(|| {
            MasterError::Unavailable(format!("no writable volume for collection {collection:?}"))
        })?;
        let first = self
            .sequencer
            .next(count, self.topology.max_file_key())
            .await?;
        let fid = FileId::new(VolumeId(vol.id), NeedleKey(first), Cookie::random());
        let node = vol
            .nodes
            .choose(&mut rand::rng())
            .ok_or_else(|| MasterError::Internal("writable volume without a server".into()))?;
        Ok(Assignment {
            fid: fid.to_string(),
            url: node.url.clone(),
            public_url: node.public_url.clone(),
            count,
            error: String::new(),
            replicas: vol
                .nodes
                .iter()
                .filter(|n| n.url != node.url)
                .map(|n| n.location())
                .collect(),
            auth: String::new(),
        })
    }

    /// Adds `count` volumes of a layout; returns how many were created.
    pub async fn grow(&self, spec: &GrowSpec, count: usize) -> Result<usize, MasterError> {
        let mut made = 0;
        for _ in 0..count {
            let nodes = self.topology.nodes();
            let picked = match growth::pick_servers(
                &nodes,
                spec.placement,
                spec.data_center.as_deref(),
                spec.rack.as_deref(),
                spec.data_node.as_deref(),
            ) {
                Ok(p) => p,
                Err(e) if made > 0 => {
                    tracing::info!(error = %e, made, "volume growth stopped early");
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            // Never reuse an id a server already has, even one the Raft state missed.
            let seen = self.topology.max_volume_id();
            if seen > self.raft.state().max_volume_id {
                self.raft.raise_max_volume_id(seen).await?;
            }
            let vid = self.raft.next_volume_id().await?;
            let req = AllocateVolumeRequest {
                volume: vid,
                collection: spec.collection.clone(),
                replication: spec.placement.to_string(),
                ttl: spec.ttl.to_string(),
                preallocate: 0,
            };
            let calls = picked
                .iter()
                .map(|n| self.volumes.allocate_volume(&n.url, &req));
            let results = futures::future::join_all(calls).await;
            if let Some(e) = results.iter().find_map(|r| r.as_ref().err()) {
                return Err(MasterError::Internal(format!(
                    "allocating volume {vid} failed: {e}"
                )));
            }
            for n in &picked {
                self.topology.add_volume(
                    &n.url,
                    VolumeInformation {
                        id: vid,
                        size: 8,
                        collection: spec.collection.clone(),
                        replica_placement: spec.placement.to_byte() as u32,
                        ttl: spec.ttl.to_u32(),
                        version: 3,
                        ..Default::default()
                    },
                );
            }
            tracing::info!(volume = vid, collection = %spec.collection, replication = %spec.placement,
                servers = ?picked.iter().map(|n| n.url.as_str()).collect::<Vec<_>>(), "volume grown");
            made += 1;
        }
        Ok(made)
    }

    /// `/dir/lookup`: a volume id, or a file id cut at the comma.
    pub fn lookup(&self, volume_or_fid: &str) -> Result<Vec<Location>, MasterError> {
        let vid_str = volume_or_fid.split(',').next().unwrap_or("");
        let vid: VolumeId = vid_str
            .parse()
            .map_err(|e: kelp_proto::FileIdError| MasterError::BadRequest(e.to_string()))?;
        let mut locs = self.topology.lookup(vid.0);
        if locs.is_empty() {
            locs = self.topology.lookup_ec(vid.0);
        }
        if locs.is_empty() {
            return Err(MasterError::NotFound(format!("volume id {vid} not found")));
        }
        Ok(locs)
    }

    /// Vacuums every volume whose garbage ratio passes `threshold`, all replicas together:
    /// check, compact, commit (cleanup on failure). Returns the ids vacuumed.
    pub async fn vacuum(&self, threshold: f64) -> Vec<u32> {
        let mut done = Vec::new();
        for v in self.topology.volumes() {
            if v.garbage_bytes == 0 {
                continue;
            }
            let urls: Vec<String> = v.nodes.iter().map(|n| n.url.clone()).collect();
            let mut over = true;
            for u in &urls {
                match self.volumes.vacuum_check(u, v.id).await {
                    Ok(c) if c.garbage_ratio > threshold => {}
                    _ => over = false,
                }
            }
            if !over {
                continue;
            }
            let mut ok = true;
            for u in &urls {
                if let Err(e) = self.volumes.vacuum_compact(u, v.id).await {
                    tracing::warn!(volume = v.id, server = %u, error = %e, "vacuum compact failed");
                    ok = false;
                    break;
                }
            }
            for u in &urls {
                let r = if ok {
                    self.volumes.vacuum_commit(u, v.id).await
                } else {
                    self.volumes.vacuum_cleanup(u, v.id).await
                };
                if let Err(e) = r {
                    tracing::warn!(volume = v.id, server = %u, error = %e, "vacuum commit/cleanup failed");
                    ok = false;
                }
            }
            if ok {
                tracing::info!(volume = v.id, "volume vacuumed");
                done.push(v.id);
            }
        }
        done
    }

    /// Deletes a collection's volumes on every server.
    pub async fn delete_collection(&self, collection: &str) -> Result<(), MasterError> {
        kelp_proto::name::check_named_collection(collection)
            .map_err(|e| MasterError::BadRequest(e.to_string()))?;
        for n in self.topology.nodes() {
            let holds_ec = n.ec_shards.values().any(|e| e.collection == collection);
            if holds_ec || n.volumes.values().any(|v| v.collection == collection) {
                self.volumes
                    .delete_collection(&n.url, collection)
                    .await
                    .map_err(|e| MasterError::Internal(e.to_string()))?;
                for v in n.volumes.values().filter(|v| v.collection == collection) {
                    self.topology.remove_volume(&n.url, v.id);
                }
            }
        }
        Ok(())
    }
}
