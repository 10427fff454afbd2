//! Deletes: DeleteObject (plain, conditional with If-Match / size / modification time,
//! or by version in a versioned bucket) and DeleteObjects, and the removal of the empty
//! directories a deleted key leaves behind.

use kelp_filer::store::ListOptions;
use kelp_filer::{FilerError, Precondition};
use s3s::dto::*;
use s3s::{S3Request, S3Response};

use crate::auth::Action;
use crate::conditional::Conditions;
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::keys::ObjectPath;
use crate::meta::{self, DIR_MARKER_KEY, TAG_PREFIX};
use crate::versions;

impl Gateway {
    /// Deletes the object under `op` (nothing to do if absent), then removes the
    /// directories it leaves empty up to the bucket.
    pub async fn delete_key(&self, bucket: &str, op: &ObjectPath) -> GatewayResult<()> {
        let Some(e) = self.find_object(op).await? else {
            return Ok(());
        };
        if op.dir_marker {
            match self.filer.delete(&e.path, false).await {
                Ok(()) => {}
                Err(FilerError::Conflict(_)) => {
                    // Not empty: only the marker (and its metadata) goes.
                    let drop: Vec<String> = e
                        .extended
                        .keys()
                        .filter(|k| {
                            k.as_str() == DIR_MARKER_KEY
                                || meta::is_replaceable_meta(k)
                                || k.starts_with(TAG_PREFIX)
                        })
                        .cloned()
                        .collect();
                    self.filer.set_extended(&e.path, vec![], Some(drop)).await?;
                    return Ok(());
                }
                Err(other) => return Err(other.into()),
            }
        } else {
            match self.filer.delete(&e.path, false).await {
                Ok(()) | Err(FilerError::NotFound(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        self.prune(bucket, &e.path).await
    }

    /// Removes the empty, unmarked ancestors of `path` below the bucket directory.
    pub(crate) async fn prune(&self, bucket: &str, path: &str) -> GatewayResult<()> {
        let top = self.paths.bucket(bucket);
        let mut cur = kelp_filer::path::parent(path).map(str::to_string);
        while let Some(dir) = cur {
            if dir == top || !kelp_filer::path::is_within(&dir, &top) {
                break;
            }
            match self.filer.find(&dir).await? {
                Some(d) if d.is_directory && !d.extended.contains_key(DIR_MARKER_KEY) => {}
                _ => break,
            }
            if !self
                .filer
                .list(&dir, &ListOptions::first(1))
                .await?
                .is_empty()
            {
                break;
            }
            match self.filer.delete(&dir, false).await {
                Ok(()) => {}
                // Refilled or removed by a concurrent request meanwhile.
                Err(FilerError::Conflict(_) | FilerError::NotFound(_)) => break,
                Err(e) => return Err(e.into()),
            }
            cur = kelp_filer::path::parent(&dir).map(str::to_string);
        }
        Ok(())
    }

    pub async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> GatewayResult<S3Response<DeleteObjectOutput>> {
        let i = &req.input;
        let op = self.paths.object(&i.bucket, &i.key)?;
        let bucket = self.bucket_entry(&i.bucket).await?;
        let state = versions::State::of(&bucket);
        let bypass = self.may_bypass(
            &req.extensions,
            i.bypass_governance_retention,
            &i.bucket,
            Some(&i.key),
        );
        let conditional = i.if_match.is_some()
            || i.if_match_last_modified_time.is_some()
            || i.if_match_size.is_some();
        let plain = || async {
            let d = self
                .delete_any(&i.bucket, state, &i.key, i.version_id.as_deref(), bypass)
                .await?;
            Ok(S3Response::new(DeleteObjectOutput {
                version_id: d.version_id,
                delete_marker: d.delete_marker.then_some(true),
                ..Default::default()
            }))
        };
        if !conditional {
            return plain().await;
        }
        // A conditional delete: the object must exist and match, at the moment it goes.
        let Some(e) = self.find_object(&op).await? else {
            return Err(GatewayError::NoSuchKey(i.key.clone()));
        };
        let c = Conditions {
            if_match: i.if_match.as_ref(),
            ..Conditions::default()
        };
        c.check(&meta::etag(&e), e.attr.mtime, false)?;
        if i.if_match_last_modified_time
            .as_ref()
            .is_some_and(|t| meta::unix_secs(t) != e.attr.mtime)
            || i.if_match_size
                .is_some_and(|n| u64::try_from(n).ok() != Some(meta::size(&e)))
        {
            return Err(GatewayError::PreconditionFailed);
        }
        if state.is_versioned() {
            return plain().await;
        }
        let path = e.path.clone();
        self.filer
            .delete_if(&path, false, Some(&Precondition::Unchanged(Box::new(e))))
            .await?;
        self.prune(&i.bucket, &path).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    pub async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> GatewayResult<S3Response<DeleteObjectsOutput>> {
        let i = &req.input;
        let bucket = self.bucket_entry(&i.bucket).await?;
        let state = versions::State::of(&bucket);
        let bypass = self.may_bypass(
            &req.extensions,
            i.bypass_governance_retention,
            &i.bucket,
            None,
        );
        if i.delete.objects.len() > 1000 {
            return Err(GatewayError::MalformedXml(
                "DeleteObjects takes at most 1000 keys".into(),
            ));
        }
        let quiet = i.delete.quiet.unwrap_or(false);
        let (mut deleted, mut errors) = (Vec::new(), Vec::new());
        for o in &i.delete.objects {
            let r = if self.allowed(
                &req.extensions,
                Action::Write,
                "s3:DeleteObject",
                &i.bucket,
                Some(&o.key),
            ) {
                self.delete_any(&i.bucket, state, &o.key, o.version_id.as_deref(), bypass)
                    .await
            } else {
                Err(GatewayError::AccessDenied(format!(
                    "you may not delete {}",
                    o.key
                )))
            };
            match r {
                Ok(_) if quiet => {}
                Ok(d) => deleted.push(DeletedObject {
                    key: Some(o.key.clone()),
                    version_id: o.version_id.clone(),
                    delete_marker: d.delete_marker.then_some(true),
                    delete_marker_version_id: d
                        .version_id
                        .filter(|_| d.delete_marker && o.version_id.is_none()),
                }),
                Err(e) => {
                    let s3: s3s::S3Error = e.into();
                    errors.push(Error {
                        code: Some(s3.code().as_str().to_string()),
                        key: Some(o.key.clone()),
                        message: s3.message().map(str::to_string),
                        version_id: o.version_id.clone(),
                    });
                }
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }
}
