//! The cluster map, rebuilt from heartbeats: data center → rack → node → volumes,
//! and the writable volumes of each layout (collection, replication, ttl).

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use kelp_proto::master_api::{
    DataCenterStatus, DataNodeStatus, DepartedNode, EcShardInfo, Heartbeat, LayoutStatus, Location,
    RackStatus, TopologyStatus, VolumeInformation,
};
use kelp_proto::{ReplicaPlacement, Ttl};

/// Which volumes can take a write: same collection, replication and TTL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayoutKey {
    pub collection: String,
    pub placement: u8,
    pub ttl: u32,
}

impl LayoutKey {
    pub fn new(collection: &str, placement: ReplicaPlacement, ttl: Ttl) -> LayoutKey {
        LayoutKey {
            collection: collection.to_string(),
            placement: placement.to_byte(),
            ttl: ttl.to_u32(),
        }
    }
}

/// One volume server as the master knows it.
#[derive(Debug, Clone)]
pub struct DataNode {
    pub url: String,
    pub public_url: String,
    pub data_center: String,
    pub rack: String,
    pub max_volumes: u32,
    pub max_file_key: u64,
    pub last_seen: Instant,
    pub volumes: BTreeMap<u32, VolumeInformation>,
    /// EC shards held, by volume id.
    pub ec_shards: BTreeMap<u32, EcShardInfo>,
}

impl DataNode {
    /// Volume slots left: `-max` minus normal volumes minus EC shards, counted as one
    /// slot per started group of 10 shards (a volume's worth of data, as SeaweedFS counts).
    pub fn free_slots(&self) -> u32 {
        let ec = self.ec_shard_count().div_ceil(EC_SHARDS_PER_SLOT) as u32;
        self.max_volumes
            .saturating_sub(self.volumes.len() as u32)
            .saturating_sub(ec)
    }

    pub fn location(&self) -> Location {
        Location {
            url: self.url.clone(),
            public_url: self.public_url.clone(),
            data_center: self.data_center.clone(),
            grpc_port: 0,
            ec_shards: Vec::new(),
            stale: false,
        }
    }

    /// Number of EC shards held, over all EC volumes.
    pub fn ec_shard_count(&self) -> usize {
        self.ec_shards.values().map(|e| e.shards.len()).sum()
    }
}

/// EC shards that take up one volume slot: a data shard is a tenth of a volume.
const EC_SHARDS_PER_SLOT: usize = 10;

/// The soft state of the cluster. Cheap to clone parts out of; all methods lock briefly.
#[derive(Debug)]
pub struct Topology {
    nodes: RwLock<BTreeMap<String, DataNode>>,
    dead_after: Duration,
    /// Servers dropped as dead (newest last), with the volumes they held: replica
    /// repair waits a grace period before re-creating what they held.
    departed: RwLock<Vec<DepartedNode>>,
    /// Replicas `(server, volume)` that came back with a departed server and are not
    /// reconciled yet: lookups list them last, flagged, so readers skip them.
    stale: RwLock<std::collections::BTreeSet<(String, u32)>>,
    /// Woken when a departed server comes back (the maintenance loop then reconciles
    /// its replicas at once instead of at its next round).
    pub rejoined: std::sync::Arc<tokio::sync::Notify>,
}

/// Departed servers remembered at most.
const DEPARTED_MAX: usize = 256;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn node_key(hb: &Heartbeat) -> String {
    format!("{}:{}", hb.ip, hb.port)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// A volume and the servers holding it.
#[derive(Debug, Clone)]
pub struct VolumeLocations {
    pub id: u32,
    pub key: LayoutKey,
    pub size: u64,
    pub read_only: bool,
    pub garbage_bytes: u64,
    pub nodes: Vec<DataNode>,
}

impl Topology {
    /// `dead_after`: a node silent this long is dropped (3 heartbeat periods).
    pub fn new(dead_after: Duration) -> Topology {
        Topology {
            nodes: RwLock::new(BTreeMap::new()),
            dead_after,
            departed: RwLock::new(Vec::new()),
            stale: RwLock::new(std::collections::BTreeSet::new()),
            rejoined: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Records a heartbeat (each carries the full volume list).
    pub fn heartbeat(&self, hb: &Heartbeat) {
        let key = node_key(hb);
        let node = DataNode {
            url: key.clone(),
            public_url: if hb.public_url.is_empty() {
                key.clone()
            } else {
                hb.public_url.clone()
            },
            data_center: if hb.data_center.is_empty() {
                "DefaultDataCenter".into()
            } else {
                hb.data_center.clone()
            },
            rack: if hb.rack.is_empty() {
                "DefaultRack".into()
            } else {
                hb.rack.clone()
            },
            max_volumes: hb.max_volume_count,
            max_file_key: hb.max_file_key,
            last_seen: Instant::now(),
            volumes: hb.volumes.iter().map(|v| (v.id, v.clone())).collect(),
            ec_shards: hb
                .ec_shards
                .iter()
                .filter(|e| !e.shards.is_empty())
                .map(|e| (e.id, e.clone()))
                .collect(),
        };
        let mut nodes = write(&self.nodes);
        if !nodes.contains_key(&key) {
            tracing::info!(node = %key, dc = %node.data_center, rack = %node.rack, volumes = node.volumes.len(), "volume server joined");
            let mut departed = write(&self.departed);
            if departed.iter().any(|d| d.url == key) {
                departed.retain(|d| d.url != key);
                let mut stale = write(&self.stale);
                for vid in node.volumes.keys() {
                    stale.insert((key.clone(), *vid));
                }
                tracing::warn!(node = %key, volumes = node.volumes.len(), "volume server came back after it was dropped: its replicas are not read from until volume.check.disk reconciles them");
                self.rejoined.notify_one();
            }
        }
        nodes.insert(key, node);
    }

    /// Adds a volume just allocated on `url`, before its next heartbeat reports it.
    pub fn add_volume(&self, url: &str, info: VolumeInformation) {
        if let Some(n) = write(&self.nodes).get_mut(url) {
            n.volumes.insert(info.id, info);
        }
    }

    pub fn remove_volume(&self, url: &str, vid: u32) {
        if let Some(n) = write(&self.nodes).get_mut(url) {
            n.volumes.remove(&vid);
        }
    }

    /// Drops nodes not heard from within `dead_after`; returns their urls.
    pub fn sweep(&self) -> Vec<String> {
        let mut nodes = write(&self.nodes);
        let dead: Vec<String> = nodes
            .values()
            .filter(|n| n.last_seen.elapsed() > self.dead_after)
            .map(|n| n.url.clone())
            .collect();
        let mut departed = write(&self.departed);
        for d in &dead {
            if let Some(n) = nodes.remove(d) {
                departed.retain(|x| x.url != n.url);
                departed.push(DepartedNode {
                    url: n.url.clone(),
                    since: unix_now(),
                    volumes: n.volumes.keys().copied().collect(),
                });
            }
            tracing::warn!(node = %d, "volume server is silent for too long; treating it as dead");
        }
        let extra = departed.len().saturating_sub(DEPARTED_MAX);
        departed.drain(..extra);
        dead
    }

    /// Servers dropped as dead that have not come back, oldest first.
    pub fn departed(&self) -> Vec<DepartedNode> {
        read(&self.departed).clone()
    }

    pub fn nodes(&self) -> Vec<DataNode> {
        read(&self.nodes).values().cloned().collect()
    }

    pub fn node_count(&self) -> usize {
        read(&self.nodes).len()
    }

    /// The largest needle key any volume server has stored.
    pub fn max_file_key(&self) -> u64 {
        read(&self.nodes)
            .values()
            .map(|n| n.max_file_key)
            .max()
            .unwrap_or(0)
    }

    /// The largest volume id any server reports (EC volumes included).
    pub fn max_volume_id(&self) -> u32 {
        read(&self.nodes)
            .values()
            .flat_map(|n| n.volumes.keys().chain(n.ec_shards.keys()).copied())
            .max()
            .unwrap_or(0)
    }

    /// Servers holding volume `vid`; replicas not yet reconciled after their server
    /// came back are flagged `stale` and listed last.
    pub fn lookup(&self, vid: u32) -> Vec<Location> {
        let stale = read(&self.stale);
        let mut out: Vec<Location> = read(&self.nodes)
            .values()
            .filter(|n| n.volumes.contains_key(&vid))
            .map(|n| Location {
                stale: stale.contains(&(n.url.clone(), vid)),
                ..n.location()
            })
            .collect();
        out.sort_by_key(|l| l.stale);
        out
    }

    /// Every replica of `vid` is reconciled (`volume.check.disk` compared them).
    pub fn reconciled(&self, vid: u32) {
        write(&self.stale).retain(|(_, v)| *v != vid);
    }

    /// Servers holding EC shards of volume `vid`, each with its shard ids.
    pub fn lookup_ec(&self, vid: u32) -> Vec<Location> {
        read(&self.nodes)
            .values()
            .filter_map(|n| {
                let e = n.ec_shards.get(&vid)?;
                let mut l = n.location();
                l.ec_shards = e.shards.clone();
                Some(l)
            })
            .collect()
    }

    /// Every volume with its holders.
    pub fn volumes(&self) -> Vec<VolumeLocations> {
        let nodes = read(&self.nodes);
        let mut out: BTreeMap<u32, VolumeLocations> = BTreeMap::new();
        for n in nodes.values() {
            for v in n.volumes.values() {
                let e = out.entry(v.id).or_insert_with(|| VolumeLocations {
                    id: v.id,
                    key: LayoutKey {
                        collection: v.collection.clone(),
                        placement: v.replica_placement as u8,
                        ttl: v.ttl,
                    },
                    size: 0,
                    read_only: false,
                    garbage_bytes: 0,
                    nodes: Vec::new(),
                });
                e.size = e.size.max(v.size);
                e.read_only |= v.read_only;
                e.garbage_bytes = e.garbage_bytes.max(v.deleted_byte_count);
                e.nodes.push(n.clone());
            }
        }
        out.into_values().collect()
    }

    /// Writable volumes of a layout: under the size limit, not read-only, all copies alive.
    pub fn writable(&self, key: &LayoutKey, size_limit: u64) -> Vec<VolumeLocations> {
        let copies = ReplicaPlacement::from_byte(key.placement).copy_count();
        self.volumes()
            .into_iter()
            .filter(|v| {
                v.key == *key && !v.read_only && v.size < size_limit && v.nodes.len() >= copies
            })
            .collect()
    }

    /// `/dir/status`'s topology tree.
    pub fn status(&self, size_limit: u64) -> TopologyStatus {
        let nodes = read(&self.nodes);
        let mut dcs: BTreeMap<String, BTreeMap<String, Vec<DataNodeStatus>>> = BTreeMap::new();
        let (mut max, mut free) = (0u64, 0u64);
        for n in nodes.values() {
            max += n.max_volumes as u64;
            free += n.free_slots() as u64;
            dcs.entry(n.data_center.clone())
                .or_default()
                .entry(n.rack.clone())
                .or_default()
                .push(DataNodeStatus {
                    url: n.url.clone(),
                    public_url: n.public_url.clone(),
                    volumes: n.volumes.len() as u64,
                    ec_shards: n.ec_shard_count() as u64,
                    max: n.max_volumes as u64,
                    volume_ids: n
                        .volumes
                        .keys()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                    rack: n.rack.clone(),
                    ec_volumes: n.ec_shards.values().cloned().collect(),
                });
        }
        drop(nodes);
        let mut layouts: HashMap<LayoutKey, Vec<u32>> = HashMap::new();
        for v in self.volumes() {
            let w = layouts.entry(v.key.clone()).or_default();
            let copies = ReplicaPlacement::from_byte(v.key.placement).copy_count();
            if !v.read_only && v.size < size_limit && v.nodes.len() >= copies {
                w.push(v.id);
            }
        }
        let mut layouts: Vec<LayoutStatus> = layouts
            .into_iter()
            .map(|(k, writables)| LayoutStatus {
                replication: ReplicaPlacement::from_byte(k.placement).to_string(),
                ttl: Ttl::from_u32(k.ttl)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                writables,
                collection: k.collection,
                disk_type: String::new(),
            })
            .collect();
        layouts.sort_by(|a, b| {
            (&a.collection, &a.replication, &a.ttl).cmp(&(&b.collection, &b.replication, &b.ttl))
        });
        TopologyStatus {
            max,
            free,
            data_centers: dcs
                .into_iter()
                .map(|(id, racks)| DataCenterStatus {
                    id,
                    racks: racks
                        .into_iter()
                        .map(|(id, data_nodes)| RackStatus { id, data_nodes })
                        .collect(),
                })
                .collect(),
            layouts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(port: u16, rack: &str, vols: &[(u32, u64)]) -> Heartbeat {
        Heartbeat {
            ip: "127.0.0.1".into(),
            port,
            rack: rack.into(),
            max_volume_count: 8,
            volumes: vols
                .iter()
                .map(|&(id, size)| VolumeInformation {
                    id,
                    size,
                    replica_placement: 1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn writable_needs_every_copy_and_room() {
        let t = Topology::new(Duration::from_secs(15));
        let key = LayoutKey::new("", "001".parse().unwrap(), Ttl::EMPTY);
        t.heartbeat(&hb(1, "r1", &[(1, 10), (2, 10), (3, 500)]));
        assert!(
            t.writable(&key, 100).is_empty(),
            "one copy of a 001 volume is not writable"
        );
        t.heartbeat(&hb(2, "r1", &[(1, 10), (3, 500)]));
        let w: Vec<u32> = t.writable(&key, 100).iter().map(|v| v.id).collect();
        assert_eq!(w, vec![1]);
        assert_eq!(t.lookup(1).len(), 2);
        assert_eq!(t.max_volume_id(), 3);
        let s = t.status(100);
        assert_eq!(s.data_centers[0].racks[0].data_nodes.len(), 2);
        assert_eq!(s.layouts[0].writables, vec![1]);
    }

    #[test]
    fn ec_shards_are_looked_up_and_counted() {
        let t = Topology::new(Duration::from_secs(15));
        let mut a = hb(1, "r1", &[(1, 10)]);
        a.ec_shards = vec![EcShardInfo {
            id: 7,
            collection: "c".into(),
            shards: vec![0, 1, 2],
        }];
        let mut b = hb(2, "r2", &[]);
        b.ec_shards = vec![EcShardInfo {
            id: 7,
            collection: "c".into(),
            shards: vec![3],
        }];
        t.heartbeat(&a);
        t.heartbeat(&b);
        assert!(t.lookup(7).is_empty());
        // -max 8: one normal volume, and 3 shards take a slot (a started group of 10).
        let node = |url: &str| t.nodes().into_iter().find(|n| n.url == url).unwrap();
        assert_eq!(node("127.0.0.1:1").free_slots(), 6);
        assert_eq!(node("127.0.0.1:2").free_slots(), 7);
        let ec = t.lookup_ec(7);
        assert_eq!(ec.len(), 2);
        assert_eq!(ec[0].ec_shards, vec![0, 1, 2]);
        assert_eq!(t.max_volume_id(), 7);
        let s = t.status(100);
        let counts: Vec<u64> = s.data_centers[0]
            .racks
            .iter()
            .map(|r| r.data_nodes[0].ec_shards)
            .collect();
        assert_eq!(counts, vec![3, 1]);
    }
}
