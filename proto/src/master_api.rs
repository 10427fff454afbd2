//! JSON bodies and query parameters of the master HTTP API, with SeaweedFS's key names.

use serde::{Deserialize, Serialize};

/// `{"error": "..."}`: the body of every error the master and volume servers answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: String,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// Query parameters of `/dir/assign` (any method).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_center: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preallocate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writable_volume_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_size: Option<u64>,
    #[serde(
        default,
        rename = "memoryMapMaxSizeMb",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_map_max_size_mb: Option<u32>,
}

/// Query parameters of `/vol/vacuum` (`garbageThreshold` empty or absent: the master's
/// own threshold).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct VacuumRequest {
    #[serde(
        default,
        rename = "garbageThreshold",
        with = "crate::query::opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    pub garbage_threshold: Option<f64>,
}

impl VacuumRequest {
    /// The threshold asked for, if any, once checked to be from 0 to 1.
    pub fn threshold(&self) -> Result<Option<f64>, String> {
        match self.garbage_threshold {
            Some(t) if !(0.0..=1.0).contains(&t) => {
                Err(format!("garbageThreshold {t} must be a number from 0 to 1"))
            }
            t => Ok(t),
        }
    }
}

/// `?collection=C` of `/col/delete` on the master and `/admin/collection/delete` on a
/// volume server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeleteCollectionRequest {
    pub collection: String,
}

/// Query parameters of `/cluster/lock` and `/cluster/unlock`: `owner` (required, 1 to 200
/// bytes) and `leaseSeconds` (lock only, default 30).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockRequest {
    #[serde(default)]
    pub owner: String,
    #[serde(
        default,
        rename = "leaseSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub lease_seconds: Option<u64>,
}

impl LockRequest {
    /// The owner, trimmed, once checked.
    pub fn owner(&self) -> Result<&str, String> {
        let o = self.owner.trim();
        if o.is_empty() || o.len() > 200 {
            return Err("give owner=<name> (1 to 200 bytes)".into());
        }
        Ok(o)
    }
}

/// The answer of `/dir/assign`: `{"fid","url","publicUrl","count"}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_url: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Other servers holding the same volume (the upload goes to `url`, which fans out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<Location>,
    /// The write token for `fid` (and the `count - 1` keys after it) when volume writes
    /// are guarded; also sent as `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
}

/// Where a volume can be read: one volume server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub url: String,
    #[serde(default)]
    pub public_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_center: String,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub grpc_port: u32,
    /// For an erasure-coded volume: the shard ids this server holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ec_shards: Vec<u8>,
    /// This replica came back with a server the master had dropped and has not been
    /// reconciled with the others yet (kelp addition): readers should use another one.
    /// Stale replicas are listed last.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

/// The EC shards of one volume that a volume server holds (heartbeats, `/dir/status`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EcShardInfo {
    pub id: u32,
    #[serde(default)]
    pub collection: String,
    /// Shard ids held here, ascending.
    #[serde(default)]
    pub shards: Vec<u8>,
}

/// Query parameters of `/dir/lookup`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LookupRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
}

/// The answer of `/dir/lookup`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LookupResponse {
    pub volume_or_file_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Servers holding EC shards of the volume, each with `ecShards` filled in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ec_locations: Vec<Location>,
    /// With `fileId` and `read=yes` when reads are guarded: the read token for that
    /// file id (also sent as `Authorization: Bearer`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
}

/// The answer of `/cluster/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterStatus {
    #[serde(rename = "IsLeader", default)]
    pub is_leader: bool,
    #[serde(rename = "Leader", default, skip_serializing_if = "String::is_empty")]
    pub leader: String,
    #[serde(rename = "Peers", default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    #[serde(rename = "MaxVolumeId", default, skip_serializing_if = "is_zero_u32")]
    pub max_volume_id: u32,
}

/// One volume as a volume server reports it in a heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeInformation {
    pub id: u32,
    /// Bytes of the `.dat` file.
    pub size: u64,
    #[serde(default)]
    pub collection: String,
    #[serde(default)]
    pub file_count: u64,
    #[serde(default)]
    pub delete_count: u64,
    #[serde(default)]
    pub deleted_byte_count: u64,
    #[serde(default)]
    pub read_only: bool,
    /// The placement byte (`x*100+y*10+z`).
    #[serde(default)]
    pub replica_placement: u32,
    #[serde(default)]
    pub version: u32,
    /// The TTL as `count << 8 | unit`.
    #[serde(default)]
    pub ttl: u32,
    #[serde(default)]
    pub compact_revision: u32,
    #[serde(default)]
    pub modified_at_second: i64,
    #[serde(default)]
    pub max_file_key: u64,
}

/// What a volume server tells the master every few seconds and on every change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub ip: String,
    pub port: u16,
    #[serde(default)]
    pub public_url: String,
    #[serde(default)]
    pub data_center: String,
    #[serde(default)]
    pub rack: String,
    /// Volumes this server may hold in all.
    pub max_volume_count: u32,
    /// The largest needle key stored on this server.
    #[serde(default)]
    pub max_file_key: u64,
    /// Every volume this server holds (the full list each time).
    #[serde(default)]
    pub volumes: Vec<VolumeInformation>,
    /// Every EC volume this server holds shards of (the full list each time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ec_shards: Vec<EcShardInfo>,
}

/// The master's answer to a heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    /// Volumes at or over this many bytes leave the writable set.
    pub volume_size_limit: u64,
    /// The current leader's address, if known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub leader: String,
    /// Every master of the cluster: a volume server heartbeats to each of them, so any
    /// new leader already knows the whole topology.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masters: Vec<String>,
    /// The master's `-pulseSeconds`: a server that has not heartbeated for three pulses
    /// counts as gone, so servers heartbeat at least once a pulse (0: not said).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pulse_seconds: u64,
}

/// Query parameters of `/vol/grow`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrowRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_center: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
}

/// The answer of `/vol/grow`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrowResponse {
    pub count: u32,
}

/// `/dir/status`: the topology tree and the writable layouts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DirStatus {
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Topology")]
    pub topology: TopologyStatus,
    /// The master's volume size limit in bytes (kelp addition; 0 = not sent).
    #[serde(rename = "VolumeSizeLimit", default, skip_serializing_if = "is_zero")]
    pub volume_size_limit: u64,
    /// Volume servers dropped as dead that have not come back (kelp addition).
    #[serde(rename = "Departed", default, skip_serializing_if = "Vec::is_empty")]
    pub departed: Vec<DepartedNode>,
}

/// A volume server the master dropped as dead, and the volumes it held then.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DepartedNode {
    #[serde(rename = "Url")]
    pub url: String,
    /// When it was dropped (unix seconds).
    #[serde(rename = "Since")]
    pub since: i64,
    #[serde(rename = "Volumes")]
    pub volumes: Vec<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TopologyStatus {
    #[serde(rename = "Max")]
    pub max: u64,
    #[serde(rename = "Free")]
    pub free: u64,
    #[serde(rename = "DataCenters")]
    pub data_centers: Vec<DataCenterStatus>,
    #[serde(rename = "Layouts")]
    pub layouts: Vec<LayoutStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DataCenterStatus {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Racks")]
    pub racks: Vec<RackStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RackStatus {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "DataNodes")]
    pub data_nodes: Vec<DataNodeStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DataNodeStatus {
    #[serde(rename = "Url")]
    pub url: String,
    #[serde(rename = "PublicUrl")]
    pub public_url: String,
    #[serde(rename = "Volumes")]
    pub volumes: u64,
    #[serde(rename = "EcShards")]
    pub ec_shards: u64,
    #[serde(rename = "Max")]
    pub max: u64,
    #[serde(rename = "VolumeIds")]
    pub volume_ids: String,
    #[serde(rename = "Rack", default, skip_serializing_if = "String::is_empty")]
    pub rack: String,
    /// The EC shards held, per volume.
    #[serde(rename = "EcVolumes", default, skip_serializing_if = "Vec::is_empty")]
    pub ec_volumes: Vec<EcShardInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LayoutStatus {
    pub replication: String,
    pub ttl: String,
    pub writables: Vec<u32>,
    pub collection: String,
    #[serde(rename = "diskType")]
    pub disk_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_uses_seaweedfs_keys() {
        let a = Assignment {
            fid: "3,01637037d6".into(),
            url: "127.0.0.1:8080".into(),
            public_url: "127.0.0.1:8080".into(),
            count: 1,
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"fid":"3,01637037d6","url":"127.0.0.1:8080","publicUrl":"127.0.0.1:8080","count":1})
        );
        // A SeaweedFS answer (with its extra grpcPort) parses.
        let a: Assignment = serde_json::from_str(
            r#"{"fid":"4,02a105935c","url":"127.0.0.1:8080","publicUrl":"127.0.0.1:8080","count":5,"grpcPort":18080}"#,
        )
        .unwrap();
        assert_eq!(a.count, 5);
    }

    #[test]
    fn lookup_and_cluster_status_keys() {
        let l: LookupResponse = serde_json::from_str(
            r#"{"volumeOrFileId":"1","locations":[{"url":"127.0.0.1:8080","publicUrl":"127.0.0.1:8080","dataCenter":"dc1","grpcPort":18080}]}"#,
        )
        .unwrap();
        assert_eq!(l.locations[0].data_center, "dc1");
        let e: LookupResponse =
            serde_json::from_str(r#"{"volumeOrFileId":"99","error":"volume id 99 not found"}"#)
                .unwrap();
        assert!(e.locations.is_empty());
        let c: ClusterStatus = serde_json::from_str(
            r#"{"IsLeader":true,"Leader":"127.0.0.1:9333.19333","Peers":["127.0.0.1:9334"],"MaxVolumeId":7}"#,
        )
        .unwrap();
        assert!(c.is_leader);
        assert_eq!(c.max_volume_id, 7);
        let v = serde_json::to_value(ClusterStatus {
            is_leader: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"IsLeader": false}));
    }

    #[test]
    fn assign_request_refuses_unknown_parameters() {
        let ok: Result<AssignRequest, _> =
            serde_json::from_str(r#"{"count":2,"dataCenter":"dc1"}"#);
        assert_eq!(ok.unwrap().data_center.as_deref(), Some("dc1"));
        let bad: Result<AssignRequest, _> = serde_json::from_str(r#"{"cuont":2}"#);
        assert!(bad.unwrap_err().to_string().contains("cuont"));
    }
}
