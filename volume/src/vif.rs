//! The `.vif` volume-info file: SeaweedFS's protobuf `VolumeInfo` written as protojson.
//!
//! Quirks handled: 64-bit numbers are JSON strings (numbers are accepted too), proto field
//! names and the old spellings `BytesOffset`/`DestroyTime` are accepted, an empty file means
//! "no info", unknown keys are kept and written back. Writes are atomic (temp + fsync + rename).

use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{IoContext, Result, VolumeError};
use crate::fsutil::write_atomic;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeInfo {
    /// Remote-tier copies; kept as found.
    pub files: Value,
    pub version: u32,
    pub replication: String,
    /// 4 or 5; 0 when the file does not say.
    pub bytes_offset: u32,
    #[serde(serialize_with = "as_string")]
    pub dat_file_size: u64,
    #[serde(serialize_with = "as_string")]
    pub expire_at_sec: u64,
    pub read_only: bool,
    pub ec_shard_config: Value,
    pub read_only_can_delete: bool,
    /// Keys we do not know, written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn as_string<S: serde::Serializer>(v: &u64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Default for VolumeInfo {
    fn default() -> Self {
        VolumeInfo {
            files: Value::Array(Vec::new()),
            version: 3,
            replication: String::new(),
            bytes_offset: 0,
            dat_file_size: 0,
            expire_at_sec: 0,
            read_only: false,
            ec_shard_config: Value::Null,
            read_only_can_delete: false,
            extra: Map::new(),
        }
    }
}

const KNOWN: &[&[&str]] = &[
    &["files"],
    &["version"],
    &["replication"],
    &["bytesOffset", "bytes_offset", "BytesOffset"],
    &["datFileSize", "dat_file_size"],
    &["expireAtSec", "expire_at_sec", "DestroyTime"],
    &["readOnly", "read_only"],
    &["ecShardConfig", "ec_shard_config"],
    &["readOnlyCanDelete", "read_only_can_delete"],
];

impl VolumeInfo {
    /// Parses the JSON text of a `.vif`. Returns `None` for an empty (or blank) file.
    pub fn parse(text: &str) -> Result<Option<VolumeInfo>> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        let bad = |reason: String| VolumeError::corrupt(".vif", reason);
        let mut map = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(bad("not a JSON object".into())),
            Err(e) => return Err(bad(e.to_string())),
        };
        let mut take = |names: &[&str]| names.iter().find_map(|n| map.remove(*n));
        let mut info = VolumeInfo::default();
        let mut found = Vec::new();
        for names in KNOWN {
            found.push(take(names));
        }
        let [
            files,
            version,
            replication,
            bytes_offset,
            dat_size,
            expire,
            ro,
            ec,
            ro_del,
        ]: [Option<Value>; 9] = found
            .try_into()
            .map_err(|_| bad("internal field table".into()))?;
        if let Some(v) = files {
            info.files = v;
        }
        if let Some(v) = version {
            info.version = int(&v, "version").map_err(bad)? as u32;
        }
        if let Some(v) = replication {
            info.replication = v.as_str().unwrap_or_default().to_string();
        }
        if let Some(v) = bytes_offset {
            info.bytes_offset = int(&v, "bytesOffset").map_err(bad)? as u32;
        }
        if let Some(v) = dat_size {
            info.dat_file_size = int(&v, "datFileSize").map_err(bad)?;
        }
        if let Some(v) = expire {
            info.expire_at_sec = int(&v, "expireAtSec").map_err(bad)?;
        }
        if let Some(v) = ro {
            info.read_only = v.as_bool().unwrap_or(false);
        }
        if let Some(v) = ec {
            info.ec_shard_config = v;
        }
        if let Some(v) = ro_del {
            info.read_only_can_delete = v.as_bool().unwrap_or(false);
        }
        info.extra = map;
        Ok(Some(info))
    }

    /// Reads `path`; a missing or empty file gives `None`.
    pub fn load(path: &Path) -> Result<Option<VolumeInfo>> {
        match std::fs::read_to_string(path) {
            Ok(text) => VolumeInfo::parse(&text).map_err(|e| e.at(path, 0)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("reading {}", path.display())),
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing plain values and maps cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes `path` atomically (temp file, fsync, rename, directory fsync).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = self.to_json();
        text.push('\n');
        write_atomic(path, text.as_bytes())
    }
}

/// A protojson integer: a JSON number or a decimal string.
fn int(v: &Value, field: &str) -> std::result::Result<u64, String> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        Value::Null => Some(0),
        _ => None,
    }
    .ok_or_else(|| format!("{field} is not an unsigned integer: {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEED: &str = r#"{
  "files":  [],
  "version":  3,
  "replication":  "",
  "bytesOffset":  5,
  "datFileSize":  "0",
  "expireAtSec":  "0",
  "readOnly":  false,
  "ecShardConfig":  null,
  "readOnlyCanDelete":  false
}"#;

    #[test]
    fn parses_what_weed_writes() {
        let info = VolumeInfo::parse(WEED).unwrap().unwrap();
        assert_eq!(info.version, 3);
        assert_eq!(info.bytes_offset, 5);
        assert!(!info.read_only);
        assert!(info.extra.is_empty());
    }

    #[test]
    fn round_trips_with_quirks() {
        let mut info = VolumeInfo {
            bytes_offset: 4,
            dat_file_size: 1 << 40,
            read_only: true,
            ..VolumeInfo::default()
        };
        info.extra.insert("future".into(), Value::from(7));
        let text = info.to_json();
        assert!(text.contains(r#""datFileSize": "1099511627776""#), "{text}");
        assert!(text.contains(r#""future": 7"#));
        assert_eq!(VolumeInfo::parse(&text).unwrap().unwrap(), info);
    }

    #[test]
    fn old_spellings_and_empty_files() {
        let info = VolumeInfo::parse(r#"{"BytesOffset": 4, "DestroyTime": 12, "datFileSize": 9}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            (info.bytes_offset, info.expire_at_sec, info.dat_file_size),
            (4, 12, 9)
        );
        assert_eq!(VolumeInfo::parse("").unwrap(), None);
        assert_eq!(VolumeInfo::parse(" \n").unwrap(), None);
        assert!(VolumeInfo::parse("[1]").is_err());
        assert!(VolumeInfo::parse(r#"{"bytesOffset": "x"}"#).is_err());
    }

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1.vif");
        assert_eq!(VolumeInfo::load(&p).unwrap(), None);
        std::fs::write(&p, "").unwrap();
        assert_eq!(VolumeInfo::load(&p).unwrap(), None);
        let info = VolumeInfo {
            bytes_offset: 5,
            ..VolumeInfo::default()
        };
        info.save(&p).unwrap();
        assert_eq!(VolumeInfo::load(&p).unwrap(), Some(info));
        assert!(!dir.path().join("1.vif.tmp").exists());
    }
}
