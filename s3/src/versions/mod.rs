//! S3 bucket versioning: the bucket's state, version ids, where non-current versions
//! and delete markers live, and finding a version by id (see
//! `docs/formats/s3-versions.md`). The latest version of a key stays the plain file at
//! the key's path, so reading and listing the latest versions costs what it always did;
//! older versions and delete markers are files under the bucket's `.versions`
//! directory, named so that a key's versions sort newest first.

mod commit;
mod delete;
mod list;

use std::time::{SystemTime, UNIX_EPOCH};

use kelp_filer::entry::Entry;
use kelp_filer::store::ListOptions;
use s3s::dto::*;
use s3s::{S3Request, S3Response};

use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::keys::VERSION_SEP;

/// The bucket's versioning state (extended attribute of the bucket directory).
pub const STATE_KEY: &str = "X-Kelp-S3-Versioning";
/// A version's id (extended attribute of every version written by a versioned bucket;
/// absent means the `null` version).
pub const VERSION_ID_KEY: &str = "X-Kelp-S3-Version-Id";
/// Marks a delete marker (an empty file under `.versions`).
pub const DELETE_MARKER_KEY: &str = "X-Kelp-S3-Delete-Marker";
/// The id of the version written while versioning is off or suspended.
pub const NULL: &str = "null";

/// A bucket's versioning state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Never enabled: one version per key, the `null` one.
    Off,
    Enabled,
    Suspended,
}

impl State {
    /// The state recorded on a bucket's directory entry.
    pub fn of(bucket: &Entry) -> State {
        match bucket.extended.get(STATE_KEY).map(Vec::as_slice) {
            Some(b"Enabled") => State::Enabled,
            Some(b"Suspended") => State::Suspended,
            _ => State::Off,
        }
    }

    pub fn is_versioned(self) -> bool {
        self != State::Off
    }
}

/// The version id of an entry (a current object, an archived version or a marker).
pub fn id_of(e: &Entry) -> String {
    e.extended
        .get(VERSION_ID_KEY)
        .and_then(|v| String::from_utf8(v.clone()).ok())
        .unwrap_or_else(|| NULL.to_string())
}

/// The `x-amz-version-id` to answer for `e`: only entries a versioned bucket wrote
/// carry one.
pub fn shown_id(e: &Entry) -> Option<String> {
    e.extended
        .get(VERSION_ID_KEY)
        .and_then(|v| String::from_utf8(v.clone()).ok())
}

pub fn is_delete_marker(e: &Entry) -> bool {
    e.extended.contains_key(DELETE_MARKER_KEY)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A version file's name for a version created at `ns`: newer versions sort first.
fn name_at(ns: u64, suffix: &str) -> String {
    format!("{:016x}{suffix}", u64::MAX - ns)
}

/// A new version id: 24 hex digits, which are also its file name under `.versions`
/// once it is no longer current (the creation time inverted, then 32 random bits).
pub fn new_id() -> String {
    name_at(now_ns(), &format!("{:08x}", rand::random::<u32>()))
}

/// Whether `id` can name a version (`null` or one of ours); anything else is
/// `InvalidArgument`, as S3 answers.
pub fn check_id(id: &str) -> GatewayResult<()> {
    if id == NULL || (id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Ok(());
    }
    Err(GatewayError::InvalidArgument(format!(
        "invalid version id specified: {id}"
    )))
}

/// The file name an entry gets under `.versions` when it stops being current: its id,
/// or for a `null` version a name built from its modification time.
fn archive_name(e: &Entry) -> String {
    match e.extended.get(VERSION_ID_KEY) {
        Some(v) if v.as_slice() != NULL.as_bytes() => String::from_utf8_lossy(v).into_owned(),
        _ => {
            let secs = u64::try_from(e.attr.mtime).unwrap_or(0);
            name_at(secs.saturating_mul(1_000_000_000), NULL)
        }
    }
}

/// Where a version was found.
#[derive(Debug, Clone)]
pub enum Found {
    /// The current object at the key's path.
    Current(Entry),
    /// A non-current version or a delete marker under `.versions`.
    Archived(Entry),
}

impl Found {
    pub fn entry(&self) -> &Entry {
        match self {
            Found::Current(e) | Found::Archived(e) => e,
        }
    }
}

impl Gateway {
    /// The archived copy of `current` (the entry at `key`'s path) under `.versions`.
    pub(crate) fn archived(&self, bucket: &str, key: &str, current: &Entry) -> Entry {
        let mut e = current.clone();
        e.path = self.paths.version_file(bucket, key, &archive_name(current));
        if !e.extended.contains_key(VERSION_ID_KEY) {
            e.extended
                .insert(VERSION_ID_KEY.into(), NULL.as_bytes().to_vec());
        }
        e
    }

    /// The versions of `key` under `.versions`, newest first (at most `limit`; 0: all).
    pub(crate) async fn archived_versions(
        &self,
        bucket: &str,
        key: &str,
        limit: usize,
    ) -> GatewayResult<Vec<Entry>> {
        let (dir, prefix) = self.paths.version_home(bucket, key);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let opts = ListOptions {
                start_after: after.clone(),
                inclusive: false,
                limit: 1000,
                prefix: Some(prefix.clone()),
            };
            let page = match self.filer.list(&dir, &opts).await {
                Ok(p) => p,
                Err(kelp_filer::FilerError::NotFound(_)) => return Ok(out),
                Err(e) => return Err(e.into()),
            };
            let full = page.len() == 1000;
            after = page.last().map(|e| e.name().to_string());
            // The prefix also matches keys that continue with VERSION_SEP: keep only
            // names whose last separator ends the prefix.
            out.extend(page.into_iter().filter(|e| {
                !e.is_directory && e.name().rfind(VERSION_SEP) == Some(prefix.len() - 1)
            }));
            if (limit > 0 && out.len() >= limit) || !full {
                break;
            }
        }
        if limit > 0 {
            out.truncate(limit);
        }
        Ok(out)
    }

    /// Finds version `id` of `key` (the current object, or under `.versions`).
    pub(crate) async fn find_version(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
    ) -> GatewayResult<Option<Found>> {
        check_id(id)?;
        let op = self.paths.object(bucket, key)?;
        if let Some(cur) = self.find_object(&op).await?
            && id_of(&cur) == id
        {
            return Ok(Some(Found::Current(cur)));
        }
        if op.dir_marker {
            return Ok(None);
        }
        if id == NULL {
            let all = self.archived_versions(bucket, key, 0).await?;
            return Ok(all
                .into_iter()
                .find(|e| id_of(e) == NULL)
                .map(Found::Archived));
        }
        let path = self.paths.version_file(bucket, key, id);
        Ok(self
            .filer
            .find(&path)
            .await?
            .filter(|e| !e.is_directory)
            .map(Found::Archived))
    }

    /// Version `id` of `key` for a read: `NoSuchVersion` when absent, the delete
    /// marker's 405 when it is one.
    pub(crate) async fn version_entry(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
    ) -> GatewayResult<Entry> {
        let Some(found) = self.find_version(bucket, key, id).await? else {
            self.bucket_entry(bucket).await?;
            return Err(GatewayError::NoSuchVersion(id.to_string()));
        };
        let e = found.entry().clone();
        if is_delete_marker(&e) {
            return Err(GatewayError::DeleteMarker {
                key: key.to_string(),
                version_id: id.to_string(),
                last_modified: e.attr.mtime,
                by_id: true,
            });
        }
        Ok(e)
    }

    /// The latest version of `key`, or version `id` when one is named.
    pub(crate) async fn object_or_version(
        &self,
        bucket: &str,
        key: &str,
        id: Option<&str>,
    ) -> GatewayResult<Entry> {
        match id {
            Some(id) => self.version_entry(bucket, key, id).await,
            None => self.object_entry(bucket, key).await,
        }
    }

    /// For a key with no current object: its newest delete marker, if that is its
    /// latest version.
    pub(crate) async fn latest_marker(
        &self,
        bucket: &str,
        key: &str,
    ) -> GatewayResult<Option<Entry>> {
        if key.ends_with('/') {
            return Ok(None);
        }
        let newest = self.archived_versions(bucket, key, 1).await?;
        Ok(newest.into_iter().next().filter(is_delete_marker))
    }

    pub async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> GatewayResult<S3Response<PutBucketVersioningOutput>> {
        let i = &req.input;
        let bucket = self.bucket_entry(&i.bucket).await?;
        let c = &i.versioning_configuration;
        if c.mfa_delete
            .as_ref()
            .is_some_and(|m| m.as_str() == MFADelete::ENABLED)
        {
            return Err(GatewayError::NotImplemented(
                "MFA delete is not supported".into(),
            ));
        }
        let status = match c.status.as_ref().map(|s| s.as_str()) {
            Some(BucketVersioningStatus::ENABLED) => "Enabled",
            Some(BucketVersioningStatus::SUSPENDED) => "Suspended",
            _ => {
                return Err(GatewayError::MalformedXml(
                    "the versioning Status must be Enabled or Suspended".into(),
                ));
            }
        };
        if status == "Suspended" && crate::retention::enabled_on(&bucket) {
            return Err(GatewayError::InvalidBucketState(
                "versioning cannot be suspended on a bucket with object lock".into(),
            ));
        }
        self.filer
            .set_extended(
                &bucket.path,
                vec![(STATE_KEY.to_string(), status.as_bytes().to_vec())],
                None,
            )
            .await?;
        Ok(S3Response::new(PutBucketVersioningOutput {}))
    }

    pub async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> GatewayResult<S3Response<GetBucketVersioningOutput>> {
        let bucket = self.bucket_entry(&req.input.bucket).await?;
        let status = match State::of(&bucket) {
            State::Off => None,
            State::Enabled => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::ENABLED,
            )),
            State::Suspended => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::SUSPENDED,
            )),
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_newest_first_and_are_checked() {
        let old = name_at(1_000, "00000000");
        let new = name_at(2_000, "00000000");
        assert!(new < old);
        let id = new_id();
        assert_eq!(id.len(), 24);
        check_id(&id).unwrap();
        check_id(NULL).unwrap();
        assert!(check_id("nope").is_err());
        assert!(check_id(&format!("{id}0")).is_err());
    }

    #[test]
    fn null_versions_archive_by_mtime() {
        let mut e = Entry::new_file("/b/k", 100);
        assert_eq!(id_of(&e), NULL);
        let older = archive_name(&e);
        e.attr.mtime = 200;
        assert!(archive_name(&e) < older);
        assert!(archive_name(&e).ends_with(NULL));
        e.extended
            .insert(VERSION_ID_KEY.into(), b"0123456789abcdef01234567".to_vec());
        assert_eq!(archive_name(&e), "0123456789abcdef01234567");
    }
}
