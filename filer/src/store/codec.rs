//! How entries become store keys and values (format version 1, documented in
//! `docs/formats/filer-store.md`): the ordered key layout that makes a directory listing
//! one range scan, and the versioned postcard encoding of an entry.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::Deserialize;
use serde::Serialize;

use super::StoreError;
use crate::entry::Attributes;
use crate::entry::Entry;
use crate::entry::FileChunk;
use crate::path;

/// The first byte of every encoded entry: the value format this build writes.
pub const ENTRY_VERSION: u8 = 1;

/// The key of the entry at the normalized path `p`: `dir \0 name` (`"/a/b"` is
/// `"/a\0b"`, `"/a"` is `"/\0a"`); the root's own key is empty. NUL never occurs in a
/// path, so all children of a directory share the prefix `dir \0` and sort by name.
pub fn entry_key(p: &str) -> Vec<u8> {
    let (Some(dir), name) = (path::parent(p), path::name(p)) else {
        return Vec::new();
    };
    let mut key = Vec::with_capacity(dir.len() + 1 + name.len());
    key.extend_from_slice(dir.as_bytes());
    key.push(0);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The path an entry key stands for (the inverse of [`entry_key`]).
pub fn key_path(key: &[u8]) -> Result<String, StoreError> {
    if key.is_empty() {
        return Ok("/".to_string());
    }
    let bad = || {
        StoreError::Corrupt(format!(
            "entry key {:?} is not `dir \\0 name`",
            String::from_utf8_lossy(key)
        ))
    };
    let nul = key.iter().position(|&b| b == 0).ok_or_else(bad)?;
    let dir = std::str::from_utf8(&key[..nul]).map_err(|_| bad())?;
    let name = std::str::from_utf8(&key[nul + 1..]).map_err(|_| bad())?;
    if !dir.starts_with('/') || name.is_empty() {
        return Err(bad());
    }
    Ok(path::join(dir, name))
}

/// The key prefix shared by the children of `dir`: `dir \0`.
pub fn children_prefix(dir: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1);
    p.extend_from_slice(dir.as_bytes());
    p.push(0);
    p
}

/// The smallest key greater than every key starting with `prefix` (`None`: no bound).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A key range `[start, end)` (`end` `None`: to the end of the table).
pub type KeyRange = (Vec<u8>, Option<Vec<u8>>);

/// The key ranges holding every descendant of `dir` (not `dir` itself): its children
/// (`dir \0 …`) and the entries of directories below it (`dir / …`). For the root it
/// is the one range of all keys starting with `/`.
pub fn descendant_ranges(dir: &str) -> Vec<KeyRange> {
    let deeper = if dir == "/" {
        b"/".to_vec()
    } else {
        format!("{dir}/").into_bytes()
    };
    let mut ranges = Vec::with_capacity(2);
    if dir != "/" {
        let children = children_prefix(dir);
        let end = prefix_end(&children);
        ranges.push((children, end));
    }
    let end = prefix_end(&deeper);
    ranges.push((deeper, end));
    ranges
}

/// The key range `list(dir, …)` scans: the children of `dir` whose names start with
/// `prefix`, after (or from, if `inclusive`) `start_after`.
pub fn list_range(
    dir: &str,
    start_after: Option<&str>,
    inclusive: bool,
    prefix: Option<&str>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let base = children_prefix(dir);
    let mut from_prefix = base.clone();
    from_prefix.extend_from_slice(prefix.unwrap_or("").as_bytes());
    let upper = match prefix_end(&from_prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    let mut lower = Bound::Included(from_prefix);
    if let Some(name) = start_after {
        let mut cursor = base;
        cursor.extend_from_slice(name.as_bytes());
        let (Bound::Included(l) | Bound::Excluded(l)) = &lower else {
            return (lower, upper);
        };
        if cursor > *l || (cursor == *l && !inclusive) {
            lower = if inclusive {
                Bound::Included(cursor)
            } else {
                Bound::Excluded(cursor)
            };
        }
    }
    (lower, upper)
}

/// The stored form of an entry, version 1: the entry without its path (the key holds
/// it), fields in this order. Serialize side, borrowing the entry.
#[derive(Serialize)]
struct EntryOutV1<'a> {
    is_directory: bool,
    attr: AttrV1<&'a str, &'a [u8]>,
    chunks: Vec<ChunkV1<&'a str>>,
    extended: &'a BTreeMap<String, Vec<u8>>,
    content: &'a [u8],
}

/// Deserialize side of [`EntryOutV1`] (same fields, owned).
#[derive(Deserialize)]
struct EntryInV1 {
    is_directory: bool,
    attr: AttrV1<String, Vec<u8>>,
    chunks: Vec<ChunkV1<String>>,
    extended: BTreeMap<String, Vec<u8>>,
    content: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct AttrV1<S, B> {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    crtime: i64,
    mime: S,
    ttl_sec: u32,
    file_size: u64,
    md5: B,
    symlink_target: S,
}

#[derive(Serialize, Deserialize)]
struct ChunkV1<S> {
    fid: S,
    offset: u64,
    size: u64,
    modified_ts_ns: i64,
    etag: S,
    is_manifest: bool,
}

/// The stored value of `e`: [`ENTRY_VERSION`] then the postcard encoding of
/// [`EntryOutV1`]. The path is not stored (the key holds it).
pub fn encode_entry(e: &Entry) -> Result<Vec<u8>, StoreError> {
    let a = &e.attr;
    let out = EntryOutV1 {
        is_directory: e.is_directory,
        attr: AttrV1 {
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
            mtime: a.mtime,
            crtime: a.crtime,
            mime: &a.mime,
            ttl_sec: a.ttl_sec,
            file_size: a.file_size,
            md5: &a.md5,
            symlink_target: &a.symlink_target,
        },
        chunks: e
            .chunks
            .iter()
            .map(|c| ChunkV1 {
                fid: c.fid.as_str(),
                offset: c.offset,
                size: c.size,
                modified_ts_ns: c.modified_ts_ns,
                etag: c.etag.as_str(),
                is_manifest: c.is_manifest,
            })
            .collect(),
        extended: &e.extended,
        content: &e.content,
    };
    postcard::to_extend(&out, vec![ENTRY_VERSION])
        .map_err(|err| StoreError::Backend(format!("encoding entry {}: {err}", e.path)))
}

/// Decodes a stored value (see [`encode_entry`]) into the entry at `path`.
pub fn decode_entry(path: String, value: &[u8]) -> Result<Entry, StoreError> {
    let Some((&version, body)) = value.split_first() else {
        return Err(StoreError::Corrupt(format!("entry {path}: empty value")));
    };
    if version != ENTRY_VERSION {
        return Err(StoreError::Corrupt(format!(
            "entry {path}: unknown entry format version {version} (this build reads {ENTRY_VERSION})"
        )));
    }
    let (e, rest): (EntryInV1, &[u8]) = postcard::take_from_bytes(body)
        .map_err(|err| StoreError::Corrupt(format!("entry {path}: {err}")))?;
    if !rest.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "entry {path}: {} unexpected bytes after the entry",
            rest.len()
        )));
    }
    let a = e.attr;
    Ok(Entry {
        path,
        is_directory: e.is_directory,
        attr: Attributes {
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
            mtime: a.mtime,
            crtime: a.crtime,
            mime: a.mime,
            ttl_sec: a.ttl_sec,
            file_size: a.file_size,
            md5: a.md5,
            symlink_target: a.symlink_target,
        },
        chunks: e
            .chunks
            .into_iter()
            .map(|c| FileChunk {
                fid: c.fid,
                offset: c.offset,
                size: c.size,
                modified_ts_ns: c.modified_ts_ns,
                etag: c.etag,
                is_manifest: c.is_manifest,
            })
            .collect(),
        extended: e.extended,
        content: e.content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        let mut e = Entry::new_file("/d/f", 1_700_000_000);
        e.attr.mime = "text/plain".into();
        e.attr.file_size = 3;
        e.attr.md5 = vec![0xab; 16];
        e.attr.ttl_sec = 60;
        e.chunks.push(FileChunk {
            fid: "3,01637037d6".into(),
            offset: 0,
            size: 3,
            modified_ts_ns: -1,
            etag: "acbd18db4cc2f85cedef654fccc4a4d8".into(),
            is_manifest: false,
        });
        e.extended.insert("Seaweed-X".into(), b"v\0w".to_vec());
        e.content = b"hi".to_vec();
        e
    }

    #[test]
    fn keys() {
        assert_eq!(entry_key("/"), b"");
        assert_eq!(entry_key("/a"), b"/\0a");
        assert_eq!(entry_key("/a/b c"), b"/a\0b c");
        for p in ["/", "/a", "/a/b", "/é/😀 x"] {
            assert_eq!(key_path(&entry_key(p)).unwrap(), p);
        }
        for bad in [&b"/a"[..], b"/\0", b"a\0b", b"/\0\xff"] {
            assert!(
                matches!(key_path(bad), Err(StoreError::Corrupt(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(prefix_end(b"/a\0"), Some(b"/a\x01".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(
            descendant_ranges("/a"),
            vec![
                (b"/a\0".to_vec(), Some(b"/a\x01".to_vec())),
                (b"/a/".to_vec(), Some(b"/a0".to_vec()))
            ]
        );
        assert_eq!(
            descendant_ranges("/"),
            vec![(b"/".to_vec(), Some(b"0".to_vec()))]
        );
        let inc = |v: &[u8]| Bound::Included(v.to_vec());
        let exc = |v: &[u8]| Bound::Excluded(v.to_vec());
        assert_eq!(
            list_range("/d", None, false, None),
            (inc(b"/d\0"), exc(b"/d\x01"))
        );
        assert_eq!(
            list_range("/d", Some("m"), false, None),
            (exc(b"/d\0m"), exc(b"/d\x01"))
        );
        assert_eq!(
            list_range("/d", Some("m"), true, None),
            (inc(b"/d\0m"), exc(b"/d\x01"))
        );
        // A cursor before the prefix starts at the prefix; one inside it wins.
        assert_eq!(
            list_range("/d", Some("a"), false, Some("f")),
            (inc(b"/d\0f"), exc(b"/d\0g"))
        );
        assert_eq!(
            list_range("/d", Some("f1"), false, Some("f")),
            (exc(b"/d\0f1"), exc(b"/d\0g"))
        );
        // A cursor equal to the prefix: exclusive skips the entry named exactly so.
        assert_eq!(
            list_range("/d", Some("f"), false, Some("f")),
            (exc(b"/d\0f"), exc(b"/d\0g"))
        );
        assert_eq!(
            list_range("/d", Some("f"), true, Some("f")),
            (inc(b"/d\0f"), exc(b"/d\0g"))
        );
    }

    #[test]
    fn entry_round_trip() {
        let e = sample();
        let bytes = encode_entry(&e).unwrap();
        assert_eq!(bytes[0], ENTRY_VERSION);
        assert_eq!(decode_entry("/d/f".into(), &bytes).unwrap(), e);
        let d = Entry::new_dir("/", 0);
        assert_eq!(
            decode_entry("/".into(), &encode_entry(&d).unwrap()).unwrap(),
            d
        );
    }

    /// Pins format version 1 byte for byte (documented in docs/formats/filer-store.md).
    #[test]
    fn entry_format_v1_is_stable() {
        let mut e = Entry::new_file("/ignored", 1);
        e.attr.mime = "a".into();
        e.attr.md5 = vec![7];
        e.chunks.push(FileChunk {
            fid: "1,2".into(),
            offset: 300,
            size: 5,
            modified_ts_ns: -2,
            etag: String::new(),
            is_manifest: true,
        });
        e.extended.insert("k".into(), vec![9]);
        e.content = vec![1, 2];
        let bytes = encode_entry(&e).unwrap();
        let want: &[u8] = &[
            1, // version
            0, // is_directory
            0xb0, 0x03, 0, 0, 2, 2, 1, b'a', 0, 0, 1, 7,
            0, // attr: mode 0o660 .. symlink_target
            1, 3, b'1', b',', b'2', 0xac, 0x02, 5, 3, 0, 1, // one chunk
            1, 1, b'k', 1, 9, // extended
            2, 1, 2, // content
        ];
        assert_eq!(bytes, want);
    }

    #[test]
    fn damaged_values_are_corrupt_not_panics() {
        let good = encode_entry(&sample()).unwrap();
        assert!(matches!(
            decode_entry("/x".into(), &[]),
            Err(StoreError::Corrupt(_))
        ));
        let mut v2 = good.clone();
        v2[0] = 2;
        let err = decode_entry("/x".into(), &v2).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        for cut in 1..good.len() {
            assert!(matches!(
                decode_entry("/x".into(), &good[..cut]),
                Err(StoreError::Corrupt(_))
            ));
        }
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            decode_entry("/x".into(), &long),
            Err(StoreError::Corrupt(_))
        ));
        // A huge declared length must not allocate or panic.
        let huge = [1u8, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode_entry("/x".into(), &huge).is_err());
    }
}
