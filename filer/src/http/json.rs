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

/// Entries as a JSON array, or `null` when there are none: the serde form that
/// [`write_entries`] must give byte for byte.
#[cfg(test)]
pub struct EntriesJson<'a>(pub &'a [Entry]);

#[cfg(test)]
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

/// Appends `entries` as [`EntriesJson`] serializes them, byte for byte, but with the
/// keys written as literals: only values go through the serializer. A listing page of
/// 1,000 entries writes 25,000 keys, and escaping them was its largest single cost.
pub fn write_entries(out: &mut Vec<u8>, entries: &[Entry]) -> serde_json::Result<()> {
    if entries.is_empty() {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    out.push(b'[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_entry(out, e)?;
    }
    out.push(b']');
    Ok(())
}

fn write_entry(out: &mut Vec<u8>, e: &Entry) -> serde_json::Result<()> {
    fn value<T: Serialize + ?Sized>(
        out: &mut Vec<u8>,
        key: &[u8],
        v: &T,
    ) -> serde_json::Result<()> {
        out.extend_from_slice(key);
        serde_json::to_writer(&mut *out, v)
    }
    value(out, br#"{"FullPath":"#, &e.path)?;
    value(out, br#","Mtime":"#, &rfc3339(e.attr.mtime))?;
    value(out, br#","Crtime":"#, &rfc3339(e.attr.crtime))?;
    value(out, br#","Mode":"#, &go_mode(e))?;
    value(out, br#","Uid":"#, &e.attr.uid)?;
    value(out, br#","Gid":"#, &e.attr.gid)?;
    value(out, br#","Mime":"#, &e.attr.mime)?;
    value(out, br#","TtlSec":"#, &e.attr.ttl_sec)?;
    out.extend_from_slice(br#","UserName":"","GroupNames":null"#);
    value(out, br#","SymlinkTarget":"#, &e.attr.symlink_target)?;
    value(out, br#","Md5":"#, &B64OrNull(&e.attr.md5))?;
    value(out, br#","FileSize":"#, &e.attr.file_size)?;
    out.extend_from_slice(br#","Rdev":0,"Inode":0"#);
    value(out, br#","Extended":"#, &Extended(&e.extended))?;
    out.extend_from_slice(br#","chunks":"#);
    if e.chunks.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        out.push(b'[');
        for (i, c) in e.chunks.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            value(out, br#"{"file_id":"#, &c.fid)?;
            value(out, br#","offset":"#, &c.offset)?;
            value(out, br#","size":"#, &c.size)?;
            value(out, br#","modified_ts_ns":"#, &c.modified_ts_ns)?;
            value(out, br#","e_tag":"#, &c.etag)?;
            value(out, br#","is_chunk_manifest":"#, &c.is_manifest)?;
            match c.fid.parse::<kelp_proto::FileId>() {
                Ok(f) => {
                    value(out, br#","fid":{"volume_id":"#, &f.volume.0)?;
                    value(out, br#","file_key":"#, &f.key.0)?;
                    value(out, br#","cookie":"#, &f.cookie.0)?;
                    out.extend_from_slice(b"}}");
                }
                Err(_) => out.extend_from_slice(br#","fid":null}"#),
            }
        }
        out.push(b']');
    }
    out.extend_from_slice(br#","HardLinkId":null,"HardLinkCounter":0"#);
    value(out, br#","Content":"#, &B64OrNull(&e.content))?;
    out.extend_from_slice(br#","Remote":null,"Quota":0}"#);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn written_entries_match_their_serde_form() {
        use crate::entry::{Entry, FileChunk};
        let mut odd = Entry::new_file("/d/\"quoted\" \\ \u{1} é 日本.txt", -5);
        odd.attr.mime = "text/plain; charset=\"x\"".into();
        odd.attr.md5 = vec![7; 16];
        odd.attr.ttl_sec = 60;
        odd.attr.symlink_target = "/a\tb".into();
        odd.content = b"inline".to_vec();
        odd.extended.insert("X-Kelp-\"k\"".into(), vec![0, 255, 10]);
        odd.extended.insert("Seaweed-a".into(), b"v".to_vec());
        for (i, fid) in ["3,01637037d6", "not a fid", "7,ffffffffffffffff01020304"]
            .iter()
            .enumerate()
        {
            odd.chunks.push(FileChunk {
                fid: fid.to_string(),
                offset: i as u64 * 8,
                size: 8,
                modified_ts_ns: -1,
                etag: "\"e\"".into(),
                is_manifest: i == 1,
            });
        }
        let cases = [
            vec![],
            vec![Entry::new_dir("/d", 1_795_279_990)],
            vec![odd, Entry::new_file("/d/plain", 0), Entry::new_dir("/", 0)],
        ];
        for entries in cases {
            let mut ours = Vec::new();
            super::write_entries(&mut ours, &entries).unwrap();
            let theirs = serde_json::to_vec(&super::EntriesJson(&entries)).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_279_990), "2026-11-21T16:53:10Z");
    }
}
