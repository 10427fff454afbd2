//! JSON bodies of the volume server HTTP API (uploads, deletes, status, admin calls).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::VolumeId;
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

/// `?volume=N`: the admin calls that name one volume and nothing else
/// (`/admin/volume/delete`, `/admin/vacuum/*`, `/admin/ec/{info,mount,unmount,decode,vacuum}`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeRequest {
    pub volume: VolumeId,
}

/// `/admin/volume/readonly?volume=N[&readonly=false]` (`readonly` defaults to true).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReadonlyRequest {
    pub volume: VolumeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
}

impl ReadonlyRequest {
    /// The state asked for: read-only unless `readonly=false`.
    pub fn readonly(&self) -> bool {
        self.readonly.unwrap_or(true)
    }
}

/// A list of EC shard ids, `1,2,3` on the wire (spaces and empty items are ignored,
/// the order is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardIds(pub Vec<u8>);

impl ShardIds {
    /// The ids sorted and without duplicates, each below `max_shards`.
    pub fn validate(&self, max_shards: usize) -> Result<Vec<u8>, String> {
        if let Some(id) = self.0.iter().find(|id| **id as usize >= max_shards) {
            return Err(format!("shard id {id} is too large"));
        }
        let mut out = self.0.clone();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

impl From<&[u8]> for ShardIds {
    fn from(ids: &[u8]) -> ShardIds {
        ShardIds(ids.to_vec())
    }
}

impl fmt::Display for ShardIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

impl FromStr for ShardIds {
    type Err = String;
    fn from_str(s: &str) -> Result<ShardIds, String> {
        let mut out = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            out.push(
                item.parse()
                    .map_err(|_| format!("bad shard id {item:?} in {s:?}"))?,
            );
        }
        Ok(ShardIds(out))
    }
}

impl Serialize for ShardIds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ShardIds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ShardIds, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `/admin/ec/encode?volume=N[&dataShards=10&parityShards=4]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EcEncodeRequest {
    pub volume: VolumeId,
    #[serde(
        default,
        with = "crate::query::opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    pub data_shards: Option<u8>,
    #[serde(
        default,
        with = "crate::query::opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    pub parity_shards: Option<u8>,
}

impl EcEncodeRequest {
    /// `(dataShards, parityShards)`: 10 and 4 when absent, each at least 1, together at
    /// most `max_shards`.
    pub fn geometry(&self, max_shards: usize) -> Result<(u8, u8), String> {
        let d = self.data_shards.unwrap_or_else(default_data_shards);
        let p = self.parity_shards.unwrap_or_else(default_parity_shards);
        if d == 0 || p == 0 || d as usize + p as usize > max_shards {
            return Err(format!(
                "dataShards={d} parityShards={p}: each must be at least 1 and together at most {max_shards}"
            ));
        }
        Ok((d, p))
    }
}

/// Largest range one shard read may ask for.
pub const EC_READ_MAX: u64 = 64 << 20;

/// `/admin/ec/shard?volume=N&shard=S&offset=O&size=L`: a verified range of one shard.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct EcShardReadRequest {
    pub volume: VolumeId,
    pub shard: u8,
    pub offset: u64,
    pub size: u64,
}

impl EcShardReadRequest {
    pub fn validate(&self) -> Result<(), String> {
        if self.size > EC_READ_MAX {
            return Err("size is over 64 MiB".into());
        }
        Ok(())
    }
}

/// `/admin/ec/shards?volume=N&shards=1,6,11&offset=O&size=L`: the same range of several
/// shards, concatenated in the order asked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EcShardsReadRequest {
    pub volume: VolumeId,
    #[serde(default)]
    pub shards: ShardIds,
    pub offset: u64,
    pub size: u64,
}

impl EcShardsReadRequest {
    pub fn validate(&self) -> Result<(), String> {
        if self.shards.0.is_empty() {
            return Err("missing parameter shards".into());
        }
        if self.size.saturating_mul(self.shards.0.len() as u64) > EC_READ_MAX {
            return Err("more than 64 MiB asked".into());
        }
        Ok(())
    }
}

/// `/admin/ec/file?volume=N&ext=.ec03`: one EC file, whole (for copies).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EcFileRequest {
    pub volume: VolumeId,
    #[serde(default)]
    pub ext: String,
}

impl EcFileRequest {
    /// The extension must be `.ecx`, `.ecj`, `.vif` or `.ecNN` (never a path).
    pub fn validate(&self) -> Result<(), String> {
        let ext = self.ext.as_str();
        let ok = matches!(ext, ".ecx" | ".ecj" | ".vif")
            || ext
                .strip_prefix(".ec")
                .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()));
        if ok {
            Ok(())
        } else {
            Err(format!("bad ext {ext:?}"))
        }
    }
}

/// `/admin/ec/copy?volume=N&collection=C&shards=1,2&from=host:port[&replace=true]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EcCopyRequest {
    pub volume: VolumeId,
    #[serde(default)]
    pub collection: String,
    #[serde(default)]
    pub shards: ShardIds,
    #[serde(default)]
    pub from: String,
    #[serde(default, with = "crate::query::flag")]
    pub replace: bool,
}

impl EcCopyRequest {
    /// The shard ids (sorted, each below `max_shards`) once the request makes sense.
    pub fn validate(&self, max_shards: usize) -> Result<Vec<u8>, String> {
        let shards = self.shards.validate(max_shards)?;
        if self.from.is_empty() {
            return Err("missing parameter from".into());
        }
        if self.replace && shards.is_empty() {
            return Err("replace=true needs at least one shard".into());
        }
        Ok(shards)
    }
}

/// `/admin/ec/delete-shards?volume=N&shards=1,2`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EcDeleteShardsRequest {
    pub volume: VolumeId,
    #[serde(default)]
    pub shards: ShardIds,
}

/// `/admin/ec/rebuild?volume=N&missing=1,2` (`missing` empty: every missing shard).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EcRebuildRequest {
    pub volume: VolumeId,
    #[serde(default)]
    pub missing: ShardIds,
}

/// `/admin/volume/sizes?volume=N`: a consistent snapshot of a normal volume's files for
/// copying. Every `.idx` entry within the first `idx` bytes points at a record that ends
/// at or below `dat`, so pulling `.idx` up to `idx` and `.dat` up to `dat` gives a whole
/// volume even while writes go on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSizes {
    pub volume: u32,
    #[serde(default)]
    pub collection: String,
    /// Bytes of the `.idx` (whole entries).
    pub idx: u64,
    /// Bytes of the `.dat`.
    pub dat: u64,
    #[serde(default)]
    pub read_only: bool,
}

/// The files of a normal volume `/admin/volume/file` serves.
pub const VOLUME_FILE_EXTS: [&str; 3] = [".dat", ".idx", ".vif"];

/// `/admin/volume/file?volume=N&ext=.dat|.idx|.vif[&upto=BYTES]`: the first `upto` bytes
/// (all when absent) of one file of a normal volume (for copies).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeFileRequest {
    pub volume: VolumeId,
    #[serde(default)]
    pub ext: String,
    #[serde(
        default,
        with = "crate::query::opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    pub upto: Option<u64>,
}

impl VolumeFileRequest {
    /// The extension must be `.dat`, `.idx` or `.vif` (never a path).
    pub fn validate(&self) -> Result<(), String> {
        if VOLUME_FILE_EXTS.contains(&self.ext.as_str()) {
            Ok(())
        } else {
            Err(format!("bad ext {:?}: .dat, .idx or .vif", self.ext))
        }
    }
}

/// `/admin/volume/copy?volume=N&collection=C&from=host:port[&maxMBps=M]`: pull volume N
/// from `from`, throttled to `M` MiB/s (0 or absent: unlimited).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeCopyRequest {
    pub volume: VolumeId,
    #[serde(default)]
    pub collection: String,
    #[serde(default)]
    pub from: String,
    #[serde(
        rename = "maxMBps",
        default,
        with = "crate::query::opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_mbps: Option<u64>,
}

impl VolumeCopyRequest {
    pub fn validate(&self) -> Result<(), String> {
        if self.volume.0 == 0 {
            return Err("volume 0 does not exist".into());
        }
        if self.from.is_empty() {
            return Err("missing parameter from".into());
        }
        Ok(())
    }

    /// The throttle in bytes per second; `None` for unlimited.
    pub fn bytes_per_sec(&self) -> Option<u64> {
        self.max_mbps
            .filter(|m| *m > 0)
            .map(|m| m.saturating_mul(1 << 20))
    }
}

/// The answer of `/admin/volume/copy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeCopied {
    pub volume: u32,
    /// Bytes pulled (`.vif` + `.idx` + `.dat`).
    pub bytes: u64,
    pub seconds: f64,
}

/// `/admin/volume/needles?volume=N[&times=true]`: the query of a needle listing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct NeedlesRequest {
    pub volume: VolumeId,
    /// Also list when each live needle was written ([`NeedleList::times`]): one small
    /// read of the `.dat` per needle, so only when asked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub times: bool,
}

/// `/admin/volume/needles?volume=N`: every key of a normal volume held here.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NeedleList {
    pub volume: u32,
    /// `[key, Size field]` of every live needle, by key (decimal numbers; fids print the
    /// same key in hex).
    #[serde(default)]
    pub live: Vec<[u64; 2]>,
    /// Keys whose latest `.idx` entry is a deletion (and that are not live), by key.
    #[serde(default)]
    pub deleted: Vec<u64>,
    /// With `times=true`: when each needle of `live` was appended, in the same order
    /// (unix seconds; its last-modified time for needles of version 1 and 2 volumes,
    /// which keep no append time; 0 when neither is known). Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<u64>,
}

/// `/admin/volume/needle?volume=N&key=K` and `/admin/volume/needle/delete?volume=N&key=K`:
/// one needle of a normal volume. `key` is the needle key in **decimal** (as
/// [`NeedleList`] lists it); a fid shows it in hex (`3,01637037d6`: key 0x01 = 1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct NeedleRequest {
    pub volume: VolumeId,
    pub key: u64,
}

/// The answer of `POST /admin/volume/needle` (a raw record appended).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NeedleRawStored {
    pub key: u64,
    /// The record's `Size` field.
    pub size: u32,
    /// Byte offset of the record in the `.dat`.
    pub offset: u64,
}

/// The answer of `POST /admin/volume/needle/delete`: whether the key was live here.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NeedleDeleted {
    pub deleted: bool,
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

    /// The query string a typed request puts on the wire.
    fn wire<Q: Serialize>(q: &Q) -> String {
        let req = reqwest::Client::new()
            .get("http://x/")
            .query(q)
            .build()
            .unwrap();
        req.url().query().unwrap_or("").to_string()
    }

    #[test]
    fn ec_requests_keep_their_wire_names() {
        let copy = EcCopyRequest {
            volume: VolumeId(3),
            collection: "c".into(),
            shards: ShardIds(vec![1, 2]),
            from: "a:1".into(),
            replace: false,
        };
        assert_eq!(
            wire(&copy),
            "volume=3&collection=c&shards=1%2C2&from=a%3A1&replace=false"
        );
        let enc = EcEncodeRequest {
            volume: VolumeId(3),
            data_shards: Some(4),
            parity_shards: Some(2),
        };
        assert_eq!(wire(&enc), "volume=3&dataShards=4&parityShards=2");
        let ro = ReadonlyRequest {
            volume: VolumeId(5),
            readonly: Some(false),
        };
        assert_eq!(wire(&ro), "volume=5&readonly=false");
        let none = EcRebuildRequest {
            volume: VolumeId(1),
            missing: ShardIds::default(),
        };
        assert_eq!(wire(&none), "volume=1&missing=");
    }

    #[test]
    fn shard_ids_parse_and_validate() {
        let ids: ShardIds = " 3,1,,3 ".parse().unwrap();
        assert_eq!(ids.0, vec![3, 1, 3]);
        assert_eq!(ids.validate(32).unwrap(), vec![1, 3]);
        assert!(ShardIds(vec![40]).validate(32).is_err());
        assert!("1,x".parse::<ShardIds>().is_err());
        assert_eq!("".parse::<ShardIds>().unwrap(), ShardIds::default());
    }

    #[test]
    fn encode_geometry_defaults_and_limits() {
        let mut r = EcEncodeRequest {
            volume: VolumeId(1),
            data_shards: None,
            parity_shards: None,
        };
        assert_eq!(r.geometry(32), Ok((10, 4)));
        r.data_shards = Some(30);
        assert!(r.geometry(32).unwrap_err().contains("Shards"));
        r.data_shards = Some(0);
        assert!(r.geometry(32).is_err());
    }

    #[test]
    fn volume_copy_requests_keep_their_wire_names() {
        let copy = VolumeCopyRequest {
            volume: VolumeId(3),
            collection: "c".into(),
            from: "a:1".into(),
            max_mbps: Some(20),
        };
        assert_eq!(wire(&copy), "volume=3&collection=c&from=a%3A1&maxMBps=20");
        assert_eq!(copy.bytes_per_sec(), Some(20 << 20));
        let unlimited = VolumeCopyRequest {
            max_mbps: Some(0),
            ..copy.clone()
        };
        assert_eq!(unlimited.bytes_per_sec(), None);
        assert!(unlimited.validate().is_ok());
        assert!(
            VolumeCopyRequest {
                from: String::new(),
                ..copy.clone()
            }
            .validate()
            .is_err()
        );
        let file = VolumeFileRequest {
            volume: VolumeId(3),
            ext: ".idx".into(),
            upto: Some(34),
        };
        assert_eq!(wire(&file), "volume=3&ext=.idx&upto=34");
        assert!(file.validate().is_ok());
        for bad in ["", ".ecx", ".dat/../x", "/etc/passwd", ".note"] {
            let f = VolumeFileRequest {
                ext: bad.into(),
                ..file.clone()
            };
            assert!(f.validate().is_err(), "{bad}");
        }
        let n = NeedleRequest {
            volume: VolumeId(3),
            key: 255,
        };
        assert_eq!(wire(&n), "volume=3&key=255");
        let list = NeedleList {
            volume: 3,
            live: vec![[1, 10], [5, 0]],
            deleted: vec![2],
            times: Vec::new(),
        };
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            serde_json::json!({"volume":3,"live":[[1,10],[5,0]],"deleted":[2]})
        );
        let timed = NeedleList {
            times: vec![1_700_000_000, 1_700_000_005],
            ..list
        };
        assert_eq!(
            serde_json::to_value(&timed).unwrap()["times"],
            serde_json::json!([1_700_000_000u64, 1_700_000_005u64])
        );
        let plain = NeedlesRequest {
            volume: VolumeId(3),
            times: false,
        };
        assert_eq!(wire(&plain), "volume=3");
        assert_eq!(
            wire(&NeedlesRequest {
                times: true,
                ..plain
            }),
            "volume=3&times=true"
        );
        let sizes = VolumeSizes {
            volume: 3,
            collection: "c".into(),
            idx: 34,
            dat: 96,
            read_only: true,
        };
        assert_eq!(
            serde_json::to_value(&sizes).unwrap(),
            serde_json::json!({"volume":3,"collection":"c","idx":34,"dat":96,"readOnly":true})
        );
    }

    #[test]
    fn ec_file_ext_must_be_an_ec_extension() {
        let f = |ext: &str| EcFileRequest {
            volume: VolumeId(1),
            ext: ext.into(),
        };
        for ok in [".ecx", ".ecj", ".vif", ".ec03"] {
            assert!(f(ok).validate().is_ok(), "{ok}");
        }
        for bad in ["", ".dat", ".ec3", ".ec/../x", "/etc"] {
            assert!(f(bad).validate().is_err(), "{bad}");
        }
    }
}
