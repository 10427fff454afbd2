//! The EC `.vif`: the volume's `VolumeInfo` with `datFileSize` and `ecShardConfig` filled in.
//!
//! `ecShardConfig` is a JSON object; `layout: "kelp-stripe"` tells our layout from
//! SeaweedFS's (whose parity differs), and `layoutVersion` versions it. 64-bit numbers are
//! written as strings, as protojson does.

use std::path::Path;

use kelp_proto::Ttl;
use serde_json::{Map, Value, json};

use crate::error::{Result, VolumeError};
use crate::idx::OffsetWidth;
use crate::needle::Version;
use crate::vif::VolumeInfo;

use super::LAYOUT_VERSION;
use super::layout::{EcConfig, Geometry};

/// The `layout` value of our `ecShardConfig`.
pub const LAYOUT_NAME: &str = "kelp-stripe";

/// Everything an EC volume records about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcInfo {
    pub config: EcConfig,
    /// Bytes of the `.dat` the shards encode.
    pub dat_size: u64,
    /// Needle version of the encoded `.dat`.
    pub version: Version,
    /// Offset width of the `.ecx` entries.
    pub offset_width: OffsetWidth,
    pub collection: String,
    /// Replica placement string (as in the `.vif`).
    pub replication: String,
    /// The volume TTL (needles without their own TTL expire by it).
    pub ttl: Ttl,
    /// Compaction revision of the encoded `.dat` (bumped by EC vacuum).
    pub compaction_revision: u16,
    /// When the shards were written (Unix ns).
    pub encode_ts_ns: u64,
}

fn field<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a Value> {
    m.get(name)
        .ok_or_else(|| VolumeError::corrupt(".vif ecShardConfig", format!("{name} is missing")))
}

fn uint(m: &Map<String, Value>, name: &str) -> Result<u64> {
    let v = field(m, name)?;
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        VolumeError::corrupt(
            ".vif ecShardConfig",
            format!("{name} is not an unsigned integer: {v}"),
        )
    })
}

fn small<T: TryFrom<u64>>(m: &Map<String, Value>, name: &str) -> Result<T> {
    let v = uint(m, name)?;
    T::try_from(v).map_err(|_| {
        VolumeError::corrupt(".vif ecShardConfig", format!("{name} {v} is out of range"))
    })
}

impl EcInfo {
    pub fn geometry(&self) -> Geometry {
        Geometry {
            config: self.config,
            dat_size: self.dat_size,
        }
    }

    /// The `ecShardConfig` object.
    pub fn shard_config_json(&self) -> Value {
        json!({
            "layout": LAYOUT_NAME,
            "layoutVersion": LAYOUT_VERSION,
            "dataShards": self.config.data_shards,
            "parityShards": self.config.parity_shards,
            "blockSize": self.config.block_size,
            "chunkSize": self.config.chunk_size,
            "encodeTsNs": self.encode_ts_ns.to_string(),
            "collection": self.collection,
            "ttl": self.ttl.to_string(),
            "compactionRevision": self.compaction_revision,
        })
    }

    /// Writes this into a `VolumeInfo` (which keeps its other fields); marks it read-only.
    pub fn apply_to(&self, vi: &mut VolumeInfo) {
        vi.version = self.version.as_u8() as u32;
        vi.replication = self.replication.clone();
        vi.bytes_offset = self.offset_width.bytes() as u32;
        vi.dat_file_size = self.dat_size;
        vi.read_only = true;
        vi.ec_shard_config = self.shard_config_json();
    }

    /// Reads the EC fields of a `VolumeInfo`; refuses one without our `ecShardConfig`.
    pub fn from_volume_info(vi: &VolumeInfo) -> Result<EcInfo> {
        let Value::Object(m) = &vi.ec_shard_config else {
            return Err(VolumeError::EcInvalid(
                "the .vif has no ecShardConfig: not an erasure-coded volume".into(),
            ));
        };
        if m.get("layout").and_then(Value::as_str) != Some(LAYOUT_NAME) {
            return Err(VolumeError::EcInvalid(format!(
                "ecShardConfig layout is {:?}, only {LAYOUT_NAME:?} is supported",
                m.get("layout")
            )));
        }
        let lv = uint(m, "layoutVersion")?;
        if lv != LAYOUT_VERSION as u64 {
            return Err(VolumeError::EcInvalid(format!(
                "layout version {lv} is not supported (this build knows {LAYOUT_VERSION})"
            )));
        }
        let config = EcConfig {
            data_shards: small(m, "dataShards")?,
            parity_shards: small(m, "parityShards")?,
            block_size: small(m, "blockSize")?,
            chunk_size: small(m, "chunkSize")?,
        };
        config.validate()?;
        let version = Version::from_u8(vi.version as u8)
            .filter(|_| vi.version <= 3)
            .ok_or_else(|| {
                VolumeError::corrupt(".vif", format!("needle version {}", vi.version))
            })?;
        let offset_width = match vi.bytes_offset {
            0 => OffsetWidth::default(),
            n => OffsetWidth::from_bytes(n).ok_or_else(|| {
                VolumeError::corrupt(".vif", format!("bytesOffset is {n}, expected 4 or 5"))
            })?,
        };
        let ttl_text = m.get("ttl").and_then(Value::as_str).unwrap_or_default();
        let ttl = if ttl_text.is_empty() {
            Ttl::EMPTY
        } else {
            ttl_text
                .parse()
                .map_err(|e| VolumeError::corrupt(".vif ecShardConfig", format!("ttl: {e}")))?
        };
        Ok(EcInfo {
            config,
            dat_size: vi.dat_file_size,
            version,
            offset_width,
            collection: m
                .get("collection")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            replication: vi.replication.clone(),
            ttl,
            compaction_revision: small(m, "compactionRevision")?,
            encode_ts_ns: uint(m, "encodeTsNs").unwrap_or(0),
        })
    }

    /// Loads `path` (a `.vif`) as an EC volume info, with the whole `VolumeInfo`.
    pub fn load(path: &Path) -> Result<(EcInfo, VolumeInfo)> {
        let vi = VolumeInfo::load(path)?.ok_or_else(|| {
            VolumeError::EcInvalid(format!("{} is missing or empty", path.display()))
        })?;
        let info = EcInfo::from_volume_info(&vi).map_err(|e| e.at(path, 0))?;
        Ok((info, vi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_vif_json() {
        let info = EcInfo {
            config: EcConfig::default(),
            dat_size: 1 << 33,
            version: Version::V3,
            offset_width: OffsetWidth::Five,
            collection: "pics".into(),
            replication: "010".into(),
            ttl: "3d".parse().unwrap(),
            compaction_revision: 2,
            encode_ts_ns: 123,
        };
        let mut vi = VolumeInfo::default();
        info.apply_to(&mut vi);
        let text = vi.to_json();
        assert!(text.contains(r#""layout": "kelp-stripe""#), "{text}");
        let back = VolumeInfo::parse(&text).unwrap().unwrap();
        assert!(back.read_only);
        assert_eq!(EcInfo::from_volume_info(&back).unwrap(), info);
    }

    #[test]
    fn refuses_other_layouts() {
        let vi = VolumeInfo::default();
        assert!(EcInfo::from_volume_info(&vi).is_err());
        let vi = VolumeInfo {
            ec_shard_config: json!({"dataShards": 10, "parityShards": 4}),
            ..VolumeInfo::default()
        };
        assert!(EcInfo::from_volume_info(&vi).is_err());
    }
}
