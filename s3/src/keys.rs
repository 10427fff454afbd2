//! How buckets and keys map to filer paths: `/buckets/<bucket>/<key>`, keys checked so
//! that every accepted key names exactly one normalized path (no `..`, no `//`), keys
//! ending in `/` are directory markers, and `.uploads` at a bucket's top is reserved.

use kelp_filer::path::{MAX_NAME_LEN, MAX_PATH_LEN};

use crate::error::{GatewayError, GatewayResult};

/// The bucket-level directory multipart uploads live in (hidden from listings).
pub const UPLOADS_DIR: &str = ".uploads";

/// The bucket-level directory non-current object versions and delete markers live in
/// (hidden from listings; see `docs/formats/s3-versions.md`).
pub const VERSIONS_DIR: &str = ".versions";

/// Separates a key's last segment from a version's name in a version file's name: it
/// sorts below every other byte a key can hold, so version files sort in key order.
pub const VERSION_SEP: char = '\u{1}';

/// Where an object key lives in the filer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// The filer path: the file, or for a directory marker the directory.
    pub path: String,
    /// The key ends in `/`: a directory placeholder object.
    pub dir_marker: bool,
}

/// Maps buckets and keys to filer paths under one buckets directory.
#[derive(Debug, Clone)]
pub struct Paths {
    root: String,
}

impl Paths {
    /// `buckets_dir` is the filer directory of buckets, e.g. `/buckets`.
    pub fn new(buckets_dir: &str) -> GatewayResult<Paths> {
        let root = kelp_filer::path::normalize(buckets_dir)
            .map_err(|e| GatewayError::Config(format!("buckets directory: {e}")))?;
        Ok(Paths { root })
    }

    /// The directory holding every bucket.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The directory of `bucket` (its name was checked by s3s's path parser).
    pub fn bucket(&self, bucket: &str) -> String {
        kelp_filer::path::join(&self.root, bucket)
    }

    /// The multipart upload directory of `bucket`.
    pub fn uploads(&self, bucket: &str) -> String {
        format!("{}/{UPLOADS_DIR}", self.bucket(bucket))
    }

    /// The directory holding `bucket`'s non-current versions and delete markers.
    pub fn versions(&self, bucket: &str) -> String {
        format!("{}/{VERSIONS_DIR}", self.bucket(bucket))
    }

    /// Where the versions of `key` (not a directory marker) live: the directory and the
    /// name prefix (`<last segment><VERSION_SEP>`) of their files.
    pub fn version_home(&self, bucket: &str, key: &str) -> (String, String) {
        let (dir, base) = match key.rfind('/') {
            Some(i) => (
                format!("{}/{}", self.versions(bucket), &key[..i]),
                &key[i + 1..],
            ),
            None => (self.versions(bucket), key),
        };
        (dir, format!("{base}{VERSION_SEP}"))
    }

    /// The file of version `name` of `key`.
    pub fn version_file(&self, bucket: &str, key: &str, name: &str) -> String {
        let (dir, prefix) = self.version_home(bucket, key);
        format!("{dir}/{prefix}{name}")
    }

    /// The directory of one multipart upload.
    pub fn upload(&self, bucket: &str, upload_id: &str) -> GatewayResult<String> {
        if upload_id.len() != 32 || !upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GatewayError::NoSuchUpload(upload_id.to_string()));
        }
        Ok(format!("{}/{upload_id}", self.uploads(bucket)))
    }

    /// The filer path of `key` in `bucket`, or why the key cannot be stored.
    pub fn object(&self, bucket: &str, key: &str) -> GatewayResult<ObjectPath> {
        check_key(key)?;
        let dir_marker = key.ends_with('/');
        let body = key.strip_suffix('/').unwrap_or(key);
        let path = format!("{}/{body}", self.bucket(bucket));
        if path.len() > MAX_PATH_LEN {
            return Err(GatewayError::KeyTooLong(format!(
                "the key is too long: its filer path would be {} bytes (limit {MAX_PATH_LEN})",
                path.len()
            )));
        }
        Ok(ObjectPath { path, dir_marker })
    }
}

/// Checks that `key` maps to exactly one filer path.
pub fn check_key(key: &str) -> GatewayResult<()> {
    if key.is_empty() {
        return Err(GatewayError::InvalidKey("the object key is empty".into()));
    }
    if key.len() > 1024 {
        return Err(GatewayError::KeyTooLong(format!(
            "the key is {} bytes long; the limit is 1024",
            key.len()
        )));
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    let bad = |why: &str| GatewayError::InvalidKey(format!("key {key:?} cannot be stored: {why}"));
    if body.is_empty() {
        return Err(bad("it has no name before the '/'"));
    }
    if key.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    for (i, comp) in body.split('/').enumerate() {
        match comp {
            "" => return Err(bad("it has an empty path segment (a leading '/' or '//')")),
            "." | ".." => return Err(bad("it has a '.' or '..' path segment")),
            UPLOADS_DIR if i == 0 => {
                return Err(bad(
                    "keys under '.uploads/' are reserved for multipart uploads",
                ));
            }
            VERSIONS_DIR if i == 0 => {
                return Err(bad(
                    "keys under '.versions/' are reserved for object versions",
                ));
            }
            c if c.len() > MAX_NAME_LEN => {
                return Err(GatewayError::KeyTooLong(format!(
                    "key {key:?} has a path segment of {} bytes; the limit is {MAX_NAME_LEN}",
                    c.len()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a bucket name against S3's rules (3-63 characters of `a-z0-9.-`, starting and
/// ending with a letter or digit, no `..`, not an IP address, no `xn--` prefix).
pub fn check_bucket_name(name: &str) -> GatewayResult<()> {
    if s3s::path::check_bucket_name(name) {
        Ok(())
    } else {
        Err(GatewayError::InvalidBucketName(format!(
            "{name:?} is not a valid bucket name: use 3-63 characters of a-z, 0-9, '.' and '-', \
             starting and ending with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_paths() {
        let p = Paths::new("/buckets").unwrap();
        assert_eq!(p.bucket("b1"), "/buckets/b1");
        let o = p.object("b1", "a/b c/é%20.txt").unwrap();
        assert_eq!(o.path, "/buckets/b1/a/b c/é%20.txt");
        assert!(!o.dir_marker);
        let d = p.object("b1", "dir/sub/").unwrap();
        assert_eq!(d.path, "/buckets/b1/dir/sub");
        assert!(d.dir_marker);
        assert_eq!(p.uploads("b1"), "/buckets/b1/.uploads");
    }

    #[test]
    fn refuses_keys_that_do_not_normalize() {
        let p = Paths::new("/buckets").unwrap();
        for k in [
            "",
            "/",
            "/a",
            "a//b",
            "../x",
            "a/../b",
            "a/./b",
            ".",
            "a/..",
            "//",
            "a\0b",
            ".uploads/x",
            ".uploads",
        ] {
            assert!(p.object("b", k).is_err(), "{k:?}");
        }
        for k in [
            "a/.uploads/x",
            ".uploadsx",
            "...",
            "a.",
            ".a/b",
            "a b/%2F/+",
        ] {
            assert!(p.object("b", k).is_ok(), "{k:?}");
        }
        assert!(matches!(
            p.object("b", &"x".repeat(256)),
            Err(GatewayError::KeyTooLong(_))
        ));
        assert!(matches!(
            p.object("b", &"x".repeat(1025)),
            Err(GatewayError::KeyTooLong(_))
        ));
    }

    #[test]
    fn upload_ids_are_checked() {
        let p = Paths::new("/buckets").unwrap();
        assert!(p.upload("b", "../../etc").is_err());
        assert_eq!(
            p.upload("b", &"a".repeat(32)).unwrap(),
            format!("/buckets/b/.uploads/{}", "a".repeat(32))
        );
    }

    #[test]
    fn bucket_names() {
        assert!(check_bucket_name("my-bucket.1").is_ok());
        for n in [
            "ab",
            "Upper",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "192.168.1.1",
            "xn--ab",
        ] {
            assert!(check_bucket_name(n).is_err(), "{n}");
        }
    }
}
