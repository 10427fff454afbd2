//! JSON bodies of the volume server HTTP API (uploads, deletes, status, admin calls).

use serde::{Deserialize, Serialize};

use crate::master_api::VolumeInformation;

/// The 201 answer to an upload: `{"name","size","eTag","mime","contentMd5"}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UploadResult {
    #[serde(default)]
    pub name: String,
    /// The stored data's length.
    pub size: u64,
    #[serde(rename = "eTag", default)]
    pub etag: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mime: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The stored data's MD5, base64 (as in the `Content-MD5` answer header).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_md5: String,
}

/// The 202 answer to a delete: `{"size": N}` with N the needle's stored `Size` field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeleteResult {
    pub size: u64,
}

/// Query parameters of the admin call that creates a volume on a volume server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllocateVolumeRequest {
    pub volume: u32,
    #[serde(default)]
    pub collection: String,
    #[serde(default)]
    pub replication: String,
    #[serde(default)]
    pub ttl: String,
    #[serde(default)]
    pub preallocate: u64,
}

/// One data directory in `/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskStatus {
    pub dir: String,
    pub all: u64,
    pub used: u64,
    pub free: u64,
}

/// The volume server's `/status` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VolumeServerStatus {
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "DiskStatuses")]
    pub disk_statuses: Vec<DiskStatus>,
    #[serde(rename = "Volumes")]
    pub volumes: Vec<VolumeInformation>,
}

/// The answer of the vacuum check: the volume's garbage ratio.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VacuumCheck {
    pub garbage_ratio: f64,
}

/// One EC shard file on a volume server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EcShardFile {
    pub id: u8,
    /// Bytes of the shard file (checksum trailer included).
    pub size: u64,
}

fn default_data_shards() -> u8 {
    10
}

fn default_parity_shards() -> u8 {
    4
}

/// The answer of every `/admin/ec/*` call that changes shards: what the server holds of
/// that EC volume afterwards.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EcVolumeStatus {
    pub id: u32,
    #[serde(default)]
    pub collection: String,
    /// The volume's geometry (10 + 4 when a server does not say: older servers).
    #[serde(default = "default_data_shards")]
    pub data_shards: u8,
    #[serde(default = "default_parity_shards")]
    pub parity_shards: u8,
    /// Shards held here (usable ones), ascending.
    #[serde(default)]
    pub shards: Vec<EcShardFile>,
    /// Needles in the `.ecx` and deletions in the `.ecj`.
    #[serde(default)]
    pub needles: u64,
    #[serde(default)]
    pub deleted: u64,
    /// Shard ids this call regenerated (`/admin/ec/rebuild`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rebuilt: Vec<u8>,
    /// Seconds the operation took.
    #[serde(default)]
    pub seconds: f64,
}

impl EcVolumeStatus {
    /// `data_shards + parity_shards`.
    pub fn total_shards(&self) -> usize {
        self.data_shards as usize + self.parity_shards as usize
    }

    /// Bytes of the shard files listed.
    pub fn shard_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.size).sum()
    }
}

impl Default for EcVolumeStatus {
    fn default() -> Self {
        EcVolumeStatus {
            id: 0,
            collection: String::new(),
            data_shards: default_data_shards(),
            parity_shards: default_parity_shards(),
            shards: Vec::new(),
            needles: 0,
            deleted: 0,
            rebuilt: Vec::new(),
            seconds: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_result_keys() {
        let r = UploadResult {
            name: "hello.txt".into(),
            size: 12,
            etag: "f0ff7292".into(),
            mime: "text/plain".into(),
            error: String::new(),
            content_md5: String::new(),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"name":"hello.txt","size":12,"eTag":"f0ff7292","mime":"text/plain"})
        );
        let with_md5 = UploadResult {
            content_md5: "XUFAKrxLKna5cZ2REBfFkg==".into(),
            ..r
        };
        assert_eq!(
            serde_json::to_value(&with_md5).unwrap()["contentMd5"],
            "XUFAKrxLKna5cZ2REBfFkg=="
        );
    }

    #[test]
    fn ec_status_without_geometry_means_10_plus_4() {
        let st: EcVolumeStatus = serde_json::from_str(r#"{"id":3}"#).unwrap();
        assert_eq!(
            (st.data_shards, st.parity_shards, st.total_shards()),
            (10, 4, 14)
        );
        let st: EcVolumeStatus =
            serde_json::from_str(r#"{"id":3,"dataShards":4,"parityShards":2}"#).unwrap();
        assert_eq!(st.total_shards(), 6);
    }
}
