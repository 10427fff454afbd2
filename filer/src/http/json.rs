//! Entries as SeaweedFS's filer prints them in JSON (`FullPath`, `Mtime`, `chunks`, ...).

use base64::Engine;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeStruct, Serializer};
use serde_json::Value;

use crate::entry::Entry;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Unix seconds as RFC 3339 (UTC), as Go's `time.Time` marshals.
pub fn rfc3339(secs: i64) -> String {
    kelp_proto::civil::rfc3339(secs)
}

/// Go's `os.FileMode` bits: directories carry `1 << 31`.
pub fn go_mode(e: &Entry) -> u64 {
    let perm = u64::from(e.attr.mode & 0o7777);
    if e.is_directory {
        (1u64 << 31) | perm
    } else {
        perm
    }
}

/// The ETag of a file: hex MD5 when known, else `md5(chunk md5s)-N`.
pub fn etag(e: &Entry) -> String {
    if e.attr.md5.len() == 16 {
        return crate::chunks::hex(&e.attr.md5);
    }
    if e.chunks.len() == 1 && !e.chunks[0].etag.is_empty() {
        return e.chunks[0].etag.clone();
    }
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for c in &e.chunks {
        let mut raw = [0u8; 16];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = c
                .etag
                .get(i * 2..i * 2 + 2)
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .unwrap_or(0);
        }
        h.update(raw);
    }
    format!("{}-{}", crate::chunks::hex(&h.finalize()), e.chunks.len())
}

pub fn entry(e: &Entry) -> Value {
    serde_json::to_value(EntryJson(e)).unwrap_or(Value::Null)
}

/// An entry serialized straight from its fields, with no `Value` tree in between (a
/// listing of 1000 entries spent most of its time building and dropping those maps).
/// Keys in the order SeaweedFS's filer prints them.
pub struct EntryJson<'a>(pub &'a Entry);

/// Bytes as standard base64, or `null` when empty.
struct B64OrNull<'a>(&'a [u8]);

impl Serialize for B64OrNull<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            s.serialize_none()
        } else {
            s.serialize_str(&B64.encode(self.0))
        }
    }
}

struct Extended<'a>(&'a std::collections::BTreeMap<String, Vec<u8>>);

impl Serialize for Extended<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            return s.serialize_none();
        }
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, &B64.encode(v))?;
        }
        m.end()
    }
}

struct Chunks<'a>(&'a [crate::entry::FileChunk]);

impl Serialize for Chunks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            return s.serialize_none();
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for c in self.0 {
            seq.serialize_element(&ChunkJson(c))?;
        }
        seq.end()
    }
}

struct ChunkJson<'a>(&'a crate::entry::FileChunk);

impl Serialize for ChunkJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_struct("FileChunk", 7)?;
        m.serialize_field("file_id", &c.fid)?;
        m.serialize_field("offset", &c.offset)?;
        m.serialize_field("size", &c.size)?;
        m.serialize_field("modified_ts_ns", &c.modified_ts_ns)?;
        m.serialize_field("e_tag", &c.etag)?;
        m.serialize_field("is_chunk_manifest", &c.is_manifest)?;
        m.serialize_field(
            "fid",
            &c.fid.parse::<kelp_proto::FileId>().ok().map(FidJson),
        )?;
        m.end()
    }
}

struct FidJson(kelp_proto::FileId);

impl Serialize for FidJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("Fid", 3)?;
        m.serialize_field("volume_id", &self.0.volume.0)?;
        m.serialize_field("file_key", &self.0.key.0)?;
        m.serialize_field("cookie", &self.0.cookie.0)?;
        m.end()
    }
}

impl Serialize for EntryJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_struct("Entry", 23)?;
        m.serialize_field("FullPath", &e.path)?;
        m.serialize_field("Mtime", &rfc3339(e.attr.mtime))?;
        m.serialize_field("Crtime", &rfc3339(e.attr.crtime))?;
        m.serialize_field("Mode", &go_mode(e))?;
        m.serialize_field("Uid", &e.attr.uid)?;
        m.serialize_field("Gid", &e.attr.gid)?;
        m.serialize_field("Mime", &e.attr.mime)?;
        m.serialize_field("TtlSec", &e.attr.ttl_sec)?;
        m.serialize_field("UserName", "")?;
        m.serialize_field("GroupNames", &None::<()>)?;
        m.serialize_field("SymlinkTarget", &e.attr.symlink_target)?;
        m.serialize_field("Md5", &B64OrNull(&e.attr.md5))?;
        m.serialize_field("FileSize", &e.attr.file_size)?;
        m.serialize_field("Rdev", &0)?;
        m.serialize_field("Inode", &0)?;
        m.serialize_field("Extended", &Extended(&e.extended))?;
        m.serialize_field("chunks", &Chunks(&e.chunks))?;
        m.serialize_field("HardLinkId", &None::<()>)?;
        m.serialize_field("HardLinkCounter", &0)?;
        m.serialize_field("Content", &B64OrNull(&e.content))?;
        m.serialize_field("Remote", &None::<()>)?;
        m.serialize_field("Quota", &0)?;
        m.end()
    }
}

/// Entries as a JSON array, or `null` when there are none.
pub struct EntriesJson<'a>(pub &'a [Entry]);

impl Serialize for EntriesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            return s.serialize_none();
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            seq.serialize_element(&EntryJson(e))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_279_990), "2026-11-21T16:53:10Z");
    }
}
