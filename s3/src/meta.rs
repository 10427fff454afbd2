//! Object metadata as it is kept in a filer entry: `Content-Type` in the entry's mime,
//! the other content headers, `x-amz-meta-*` and tags in its extended attributes, and the
//! ETag (the MD5 the filer computed, or the multipart ETag kept in extended).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use kelp_filer::entry::Entry;
use md5::{Digest, Md5};
use s3s::dto::{ETag, Metadata, Timestamp};

use crate::error::{GatewayError, GatewayResult};

/// Extended key prefix of user metadata (`x-amz-meta-<name>`, name lower-cased).
pub const META_PREFIX: &str = "X-Amz-Meta-";
/// Extended key prefix of object tags.
pub const TAG_PREFIX: &str = "X-Amz-Tagging-";
/// The multipart ETag (`<md5 of part md5s>-<N>`).
pub const ETAG_KEY: &str = "X-Kelp-S3-Etag";
/// Comma-separated part sizes of a completed multipart object.
pub const PARTS_KEY: &str = "X-Kelp-S3-Parts";
/// Set on a directory that is also the directory-marker object `<dir>/`.
pub const DIR_MARKER_KEY: &str = "X-Kelp-S3-Dir-Marker";
/// The object key of a multipart upload directory.
pub const UPLOAD_KEY: &str = "X-Kelp-S3-Upload-Key";
/// Content headers kept verbatim in extended attributes.
pub const CONTENT_HEADERS: [&str; 5] = [
    "Cache-Control",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Expires",
];
/// The MD5 of no bytes.
pub const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The metadata a PUT, CopyObject (REPLACE) or CreateMultipartUpload sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    /// `(header name from CONTENT_HEADERS, value)`.
    pub headers: Vec<(&'static str, String)>,
    /// User metadata, names lower-cased.
    pub user: BTreeMap<String, String>,
    /// Tags from an `x-amz-tagging` header.
    pub tags: Vec<(String, String)>,
    /// The object's ACL (set by the caller once the writer is known).
    pub acl: Option<crate::acl::Acl>,
}

/// The content headers of a request, in `CONTENT_HEADERS` order.
pub struct ContentHeaders<'a> {
    pub cache_control: Option<&'a str>,
    pub content_disposition: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    pub content_language: Option<&'a str>,
    pub expires: Option<String>,
}

impl ObjectMeta {
    pub fn new(
        content_type: Option<&str>,
        h: ContentHeaders<'_>,
        user: Option<&Metadata>,
        tagging: Option<&str>,
    ) -> GatewayResult<ObjectMeta> {
        // `aws-chunked` describes the transfer, not the object: S3 drops it.
        let encoding = h.content_encoding.map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|t| !t.eq_ignore_ascii_case("aws-chunked") && !t.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        });
        let values = [
            h.cache_control.map(str::to_string),
            h.content_disposition.map(str::to_string),
            encoding,
            h.content_language.map(str::to_string),
            h.expires,
        ];
        let headers = CONTENT_HEADERS
            .iter()
            .zip(values)
            .filter_map(|(n, v)| v.filter(|v| !v.is_empty()).map(|v| (*n, v)))
            .collect();
        let user = user
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let tags = match tagging {
            Some(t) => parse_tagging_header(t)?,
            None => Vec::new(),
        };
        Ok(ObjectMeta {
            content_type: content_type.map(str::to_string),
            headers,
            user,
            tags,
            acl: None,
        })
    }

    /// The extended attributes holding this metadata (not the content type: that is
    /// the entry's mime).
    pub fn extended(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone().into_bytes()))
            .collect();
        out.extend(
            self.user
                .iter()
                .map(|(k, v)| (format!("{META_PREFIX}{k}"), v.clone().into_bytes())),
        );
        out.extend(
            self.tags
                .iter()
                .map(|(k, v)| (format!("{TAG_PREFIX}{k}"), v.clone().into_bytes())),
        );
        out.extend(self.acl.as_ref().map(crate::acl::Acl::to_attr));
        out
    }
}

/// Parses `k1=v1&k2=v2` (URL-encoded) from an `x-amz-tagging` header.
pub fn parse_tagging_header(s: &str) -> GatewayResult<Vec<(String, String)>> {
    let decode = |x: &str| -> GatewayResult<String> {
        let x = x.replace('+', " ");
        percent_encoding::percent_decode_str(&x)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| GatewayError::InvalidTag("the tagging header is not valid UTF-8".into()))
    };
    let mut tags = Vec::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((decode(k)?, decode(v)?));
    }
    check_tags(&tags)?;
    Ok(tags)
}

/// S3's tag limits: at most 10 tags, keys 1-128 and values 0-256 characters, keys unique.
pub fn check_tags(tags: &[(String, String)]) -> GatewayResult<()> {
    if tags.len() > 10 {
        return Err(GatewayError::InvalidTag(
            "an object can have at most 10 tags".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(GatewayError::InvalidTag(format!(
                "tag key {k:?} must be 1 to 128 characters"
            )));
        }
        if v.chars().count() > 256 {
            return Err(GatewayError::InvalidTag(format!(
                "the value of tag {k:?} is longer than 256 characters"
            )));
        }
        if !seen.insert(k) {
            return Err(GatewayError::InvalidTag(format!(
                "tag key {k:?} is given twice"
            )));
        }
    }
    Ok(())
}

/// The entry's tags, in key order.
pub fn tags(e: &Entry) -> Vec<(String, String)> {
    e.extended
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(TAG_PREFIX)?;
            Some((name.to_string(), String::from_utf8_lossy(v).into_owned()))
        })
        .collect()
}

/// True for the extended keys that are object metadata replaced by a REPLACE directive.
pub fn is_replaceable_meta(k: &str) -> bool {
    k.starts_with(META_PREFIX) || CONTENT_HEADERS.contains(&k)
}

/// The entry's user metadata (`x-amz-meta-*` without the prefix).
pub fn user_metadata(e: &Entry) -> Option<Metadata> {
    let m: Metadata = e
        .extended
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(META_PREFIX)?;
            Some((name.to_string(), String::from_utf8_lossy(v).into_owned()))
        })
        .collect();
    (!m.is_empty()).then_some(m)
}

/// A content header kept in extended.
pub fn header(e: &Entry, name: &str) -> Option<String> {
    e.extended
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The object's ETag value (without quotes).
pub fn etag(e: &Entry) -> String {
    if e.attr.md5.len() == 16 {
        return hex(&e.attr.md5);
    }
    if let Some(v) = e.extended.get(ETAG_KEY) {
        return String::from_utf8_lossy(v).into_owned();
    }
    if e.is_directory || (e.chunks.is_empty() && e.content.is_empty()) {
        return EMPTY_MD5.into();
    }
    if !e.content.is_empty() {
        return hex(&Md5::digest(&e.content));
    }
    if let [c] = e.chunks.as_slice()
        && c.offset == 0
        && c.size == e.attr.file_size
        && c.etag.len() == 32
    {
        return c.etag.clone();
    }
    // Written without a whole-file MD5 (appends): a stable digest of the chunk list.
    let mut h = Md5::new();
    for c in &e.chunks {
        h.update(c.fid.as_bytes());
        h.update(c.offset.to_le_bytes());
        h.update(c.size.to_le_bytes());
    }
    format!("{}-{}", hex(&h.finalize()), e.chunks.len())
}

pub fn etag_dto(e: &Entry) -> ETag {
    ETag::Strong(etag(e))
}

/// The entry's last modification time.
pub fn last_modified(e: &Entry) -> Timestamp {
    let secs = u64::try_from(e.attr.mtime).unwrap_or(0);
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Unix seconds of an S3 timestamp.
pub fn unix_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

/// The object's size.
pub fn size(e: &Entry) -> u64 {
    if e.is_directory { 0 } else { e.attr.file_size }
}

/// The object's content type (S3's default when none was given).
pub fn content_type(e: &Entry) -> String {
    if !e.attr.mime.is_empty() {
        e.attr.mime.clone()
    } else if e.is_directory {
        "application/x-directory".into()
    } else {
        "binary/octet-stream".into()
    }
}

/// Part sizes of a multipart object, if it is one.
pub fn part_sizes(e: &Entry) -> Option<Vec<u64>> {
    let v = e.extended.get(PARTS_KEY)?;
    std::str::from_utf8(v)
        .ok()?
        .split(',')
        .map(|s| s.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kelp_filer::entry::FileChunk;

    #[test]
    fn tagging_header() {
        let t = parse_tagging_header("a=1&b%20c=x+y&empty=").unwrap();
        assert_eq!(
            t,
            vec![
                ("a".into(), "1".into()),
                ("b c".into(), "x y".into()),
                ("empty".into(), String::new())
            ]
        );
        assert!(parse_tagging_header("a=1&a=2").is_err());
        let many: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(parse_tagging_header(&many.join("&")).is_err());
    }

    #[test]
    fn metadata_round_trip() {
        let mut user = Metadata::default();
        user.insert("Color".into(), "blue".into());
        let m = ObjectMeta::new(
            Some("text/plain"),
            ContentHeaders {
                cache_control: Some("no-cache"),
                content_disposition: None,
                content_encoding: Some("aws-chunked,gzip"),
                content_language: None,
                expires: None,
            },
            Some(&user),
            Some("t=1"),
        )
        .unwrap();
        let mut e = Entry::new_file("/b/k", 5);
        e.extended = m.extended().into_iter().collect();
        assert_eq!(header(&e, "Content-Encoding").as_deref(), Some("gzip"));
        assert_eq!(header(&e, "Cache-Control").as_deref(), Some("no-cache"));
        assert_eq!(user_metadata(&e).unwrap().get("color").unwrap(), "blue");
        assert_eq!(tags(&e), vec![("t".into(), "1".into())]);
        assert!(is_replaceable_meta("X-Amz-Meta-color"));
        assert!(!is_replaceable_meta("X-Amz-Tagging-t"));
        assert_eq!(unix_secs(&last_modified(&e)), 5);
    }

    #[test]
    fn etags() {
        let mut e = Entry::new_file("/b/k", 0);
        assert_eq!(etag(&e), EMPTY_MD5);
        e.attr.md5 = vec![0xab; 16];
        assert_eq!(etag(&e), "ab".repeat(16));
        e.attr.md5.clear();
        e.extended.insert(ETAG_KEY.into(), b"abc-2".to_vec());
        assert_eq!(etag(&e), "abc-2");
        e.extended.clear();
        e.attr.file_size = 3;
        e.chunks = vec![FileChunk {
            fid: "1,01".into(),
            size: 3,
            etag: "c".repeat(32),
            ..FileChunk::default()
        }];
        assert_eq!(etag(&e), "c".repeat(32));
        assert_eq!(unhex("0aff").unwrap(), vec![10, 255]);
        assert!(unhex("0g").is_none());
    }
}
