//! Entries as SeaweedFS's filer prints them in JSON (`FullPath`, `Mtime`, `chunks`, ...).

use base64::Engine;
use serde_json::{Value, json};

use crate::entry::Entry;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Unix seconds as RFC 3339 (UTC), as Go's `time.Time` marshals.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
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
    let chunks: Vec<Value> = e
        .chunks
        .iter()
        .map(|c| {
            let fid = c.fid.parse::<kelp_proto::FileId>().ok();
            json!({
                "file_id": c.fid,
                "offset": c.offset,
                "size": c.size,
                "modified_ts_ns": c.modified_ts_ns,
                "e_tag": c.etag,
                "is_chunk_manifest": c.is_manifest,
                "fid": fid.map(|f| json!({"volume_id": f.volume.0, "file_key": f.key.0, "cookie": f.cookie.0})),
            })
        })
        .collect();
    let extended: serde_json::Map<String, Value> = e
        .extended
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(B64.encode(v))))
        .collect();
    json!({
        "FullPath": e.path,
        "Mtime": rfc3339(e.attr.mtime),
        "Crtime": rfc3339(e.attr.crtime),
        "Mode": go_mode(e),
        "Uid": e.attr.uid,
        "Gid": e.attr.gid,
        "Mime": e.attr.mime,
        "TtlSec": e.attr.ttl_sec,
        "UserName": "",
        "GroupNames": null,
        "SymlinkTarget": e.attr.symlink_target,
        "Md5": if e.attr.md5.is_empty() { Value::Null } else { Value::String(B64.encode(&e.attr.md5)) },
        "FileSize": e.attr.file_size,
        "Rdev": 0,
        "Inode": 0,
        "Extended": if extended.is_empty() { Value::Null } else { Value::Object(extended) },
        "chunks": if chunks.is_empty() { Value::Null } else { Value::Array(chunks) },
        "HardLinkId": null,
        "HardLinkCounter": 0,
        "Content": if e.content.is_empty() { Value::Null } else { Value::String(B64.encode(&e.content)) },
        "Remote": null,
        "Quota": 0,
    })
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
