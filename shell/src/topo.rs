//! The cluster as the shell sees it (from `/dir/status` and `/vol/status`), and the
//! simple commands: `cluster.status`, `volume.list`, `volume.vacuum`.

use std::collections::BTreeMap;

use kelp_proto::master_api::{ClusterStatus, DirStatus, EcShardInfo, VolumeInformation};

use crate::error::ShellError;
use crate::flags::Flags;
use crate::{Shell, say};

/// One volume server.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub url: String,
    pub data_center: String,
    pub rack: String,
    pub max: u64,
    pub volumes: Vec<VolumeInformation>,
    pub ec: Vec<EcShardInfo>,
}

impl Node {
    pub(crate) fn ec_shards_of(&self, vid: u32) -> Vec<u8> {
        self.ec
            .iter()
            .find(|e| e.id == vid)
            .map(|e| e.shards.clone())
            .unwrap_or_default()
    }

    pub(crate) fn ec_shard_count(&self) -> usize {
        self.ec.iter().map(|e| e.shards.len()).sum()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub nodes: Vec<Node>,
    /// The master's volume size limit in bytes (0 = unknown).
    pub size_limit: u64,
    /// Servers the master dropped as dead that have not come back.
    pub departed: Vec<kelp_proto::master_api::DepartedNode>,
}

impl Cluster {
    /// Every EC volume id with its collection.
    pub(crate) fn ec_volumes(&self) -> BTreeMap<u32, String> {
        self.nodes
            .iter()
            .flat_map(|n| n.ec.iter().map(|e| (e.id, e.collection.clone())))
            .collect()
    }
}

/// Reads the topology from the masters.
pub(crate) async fn cluster(shell: &Shell) -> Result<Cluster, ShellError> {
    let dir: DirStatus = shell.master_get("/dir/status").await?;
    let vs: serde_json::Value = shell.master_get("/vol/status").await?;
    let mut nodes = Vec::new();
    for dc in &dir.topology.data_centers {
        for rack in &dc.racks {
            for n in &rack.data_nodes {
                let vols = &vs["Volumes"]["DataCenters"][&dc.id][&rack.id][&n.url];
                let volumes: Vec<VolumeInformation> =
                    serde_json::from_value(vols.clone()).unwrap_or_default();
                nodes.push(Node {
                    url: n.url.clone(),
                    data_center: dc.id.clone(),
                    rack: rack.id.clone(),
                    max: n.max,
                    volumes,
                    ec: n.ec_volumes.clone(),
                });
            }
        }
    }
    Ok(Cluster {
        nodes,
        size_limit: dir.volume_size_limit,
        departed: dir.departed,
    })
}

pub(crate) async fn cluster_status(shell: &Shell) -> Result<(), ShellError> {
    for m in shell.master.masters() {
        match shell.master.cluster_status(m).await {
            Ok(ClusterStatus {
                is_leader, leader, ..
            }) => say(format!(
                "master {m}: {} (leader {leader})",
                if is_leader { "leader" } else { "follower" }
            )),
            Err(e) => say(format!("master {m}: unreachable: {e}")),
        }
    }
    let c = cluster(shell).await?;
    let volumes: usize = c.nodes.iter().map(|n| n.volumes.len()).sum();
    let shards: usize = c.nodes.iter().map(Node::ec_shard_count).sum();
    for n in &c.nodes {
        say(format!(
            "  {} dc={} rack={} volumes={}/{} ecShards={}",
            n.url,
            n.data_center,
            n.rack,
            n.volumes.len(),
            n.max,
            n.ec_shard_count()
        ));
    }
    say(format!(
        "cluster: {} volume servers, {volumes} volumes, {} ec volumes ({shards} shards)",
        c.nodes.len(),
        c.ec_volumes().len()
    ));
    Ok(())
}

pub(crate) async fn volume_list(shell: &Shell) -> Result<(), ShellError> {
    let c = cluster(shell).await?;
    for n in &c.nodes {
        say(format!("{} (dc {} rack {})", n.url, n.data_center, n.rack));
        for v in &n.volumes {
            say(format!(
                "  volume id:{} size:{} collection:{:?} files:{} deleted:{} readOnly:{}",
                v.id, v.size, v.collection, v.file_count, v.delete_count, v.read_only
            ));
        }
        for e in &n.ec {
            say(format!(
                "  ec volume id:{} collection:{:?} shards:{:?}",
                e.id, e.collection, e.shards
            ));
        }
    }
    say(format!("{} volume servers listed", c.nodes.len()));
    Ok(())
}

pub(crate) async fn volume_vacuum(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let t: f64 = flags.num("garbageThreshold")?.unwrap_or(0.3);
    if !(0.0..=1.0).contains(&t) {
        return Err(ShellError::BadFlags(
            "-garbageThreshold must be between 0 and 1".into(),
        ));
    }
    say(format!(
        "vacuuming volumes with over {:.0}% garbage...",
        t * 100.0
    ));
    let waiting = crate::progress::Progress::spinner("volume.vacuum");
    let _: DirStatus = shell
        .master_get(&format!("/vol/vacuum?garbageThreshold={t}"))
        .await?;
    drop(waiting);
    say("volume.vacuum done");
    Ok(())
}
