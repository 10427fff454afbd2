//! Bucket operations: a bucket is the filer directory `<buckets_dir>/<name>`.
//! CreateBucket, HeadBucket, ListBuckets, DeleteBucket (only when it holds no object)
//! and GetBucketLocation.

use std::time::{Duration, SystemTime};

use kelp_filer::entry::Entry;
use kelp_filer::store::ListOptions;
use s3s::dto::*;
use s3s::{S3Request, S3Response};

use crate::auth::Action;
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::keys::check_bucket_name;
use crate::walk::has_objects;

/// Does the bucket's policy allow the caller `s3:ListBucket` on it?
fn policy_lets_list(ext: &http::Extensions, bucket: &kelp_filer::entry::Entry, name: &str) -> bool {
    let (Some(caller), Some(text)) = (
        ext.get::<crate::access::Caller>(),
        bucket.extended.get(crate::policy::bucket::POLICY_KEY),
    ) else {
        return false;
    };
    crate::policy::Policy::parse(&String::from_utf8_lossy(text), name).is_ok_and(|p| {
        p.evaluate(
            &caller.principal,
            "s3:ListBucket",
            &format!("arn:aws:s3:::{name}"),
            &caller.ctx,
        ) == crate::policy::Decision::Allow
    })
}

impl Gateway {
    pub async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> GatewayResult<S3Response<CreateBucketOutput>> {
        let name = &req.input.bucket;
        check_bucket_name(name)?;
        let dir = self.paths.bucket(name);
        if let Some(e) = self.filer.find(&dir).await? {
            let mine = crate::ownership::BucketAccess::of(&e).acl.owner.id
                == self.account_of(&req.extensions).id;
            return Err(match (e.is_directory, mine) {
                (true, true) => GatewayError::BucketAlreadyOwnedByYou(name.clone()),
                (true, false) => GatewayError::BucketAlreadyExists(name.clone()),
                (false, _) => {
                    GatewayError::Conflict(format!("{dir} exists in the filer and is a file"))
                }
            });
        }
        let i = &req.input;
        let acl = self.request_acl(
            &req.extensions,
            None,
            crate::ownership::RequestedAcl {
                canned: i.acl.as_ref().map(|c| c.as_str()),
                grants: crate::acl::GrantHeaders {
                    read: i.grant_read.as_deref(),
                    write: i.grant_write.as_deref(),
                    read_acp: i.grant_read_acp.as_deref(),
                    write_acp: i.grant_write_acp.as_deref(),
                    full_control: i.grant_full_control.as_deref(),
                },
                body: None,
            },
        )?;
        let ownership = match i.object_ownership.as_ref().map(|o| o.as_str()) {
            Some(o) if o == ObjectOwnership::BUCKET_OWNER_ENFORCED && acl.is_public() => {
                return Err(GatewayError::AclNotSupported(
                    "a bucket with BucketOwnerEnforced takes no public ACL".into(),
                ));
            }
            Some(o) => Some(o.to_string()),
            None => None,
        };
        self.filer.mkdir(&dir).await?;
        let mut attrs = vec![acl.to_attr()];
        if let Some(o) = ownership {
            attrs.push((crate::ownership::OWNERSHIP_KEY.to_string(), o.into_bytes()));
        }
        self.filer.set_extended(&dir, attrs, None).await?;
        if req.input.object_lock_enabled_for_bucket == Some(true) {
            // Object lock needs versioning: both come on together, for good.
            let attrs = vec![
                (crate::versions::STATE_KEY.to_string(), b"Enabled".to_vec()),
                (
                    crate::retention::ENABLED_KEY.to_string(),
                    b"Enabled".to_vec(),
                ),
            ];
            self.filer.set_extended(&dir, attrs, None).await?;
        }
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    pub async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> GatewayResult<S3Response<HeadBucketOutput>> {
        self.bucket_entry(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..Default::default()
        }))
    }

    pub async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> GatewayResult<S3Response<GetBucketLocationOutput>> {
        self.bucket_entry(&req.input.bucket).await?;
        // us-east-1 is reported as an empty constraint, as S3 does.
        let location_constraint = (self.region != "us-east-1")
            .then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint,
        }))
    }

    pub async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> GatewayResult<S3Response<ListBucketsOutput>> {
        let root = self.paths.root().to_string();
        let prefix = req.input.prefix.clone().filter(|p| !p.is_empty());
        let mut buckets = Vec::new();
        let mut after: Option<String> = None;
        let me = self.account_of(&req.extensions);
        loop {
            let opts = ListOptions {
                start_after: after.clone(),
                inclusive: false,
                limit: 1000,
                prefix: prefix.clone(),
            };
            let page = self.filer.list(&root, &opts).await?;
            let full = page.len() == opts.limit;
            after = page.last().map(|e| e.name().to_string());
            for e in page.into_iter().filter(|e| e.is_directory) {
                let name = e.name().to_string();
                // Its own buckets, those it has some action on, and those whose policy
                // lets it list them.
                let visible = !self.auth
                    || crate::ownership::BucketAccess::of(&e).acl.owner.id == me.id
                    || [Action::List, Action::Read, Action::Write]
                        .into_iter()
                        .any(|a| self.allowed(&req.extensions, a, "s3:ListBucket", &name, None))
                    || policy_lets_list(&req.extensions, &e, &name);
                if visible {
                    buckets.push(bucket_dto(&e, &self.region));
                }
            }
            if !full {
                break;
            }
        }
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(self.account_of(&req.extensions).to_dto()),
            prefix: req.input.prefix.clone(),
            ..Default::default()
        }))
    }

    pub async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> GatewayResult<S3Response<DeleteBucketOutput>> {
        let name = &req.input.bucket;
        let e = self.bucket_entry(name).await?;
        if has_objects(&self.filer, &e.path, &e, "").await? {
            return Err(GatewayError::BucketNotEmpty(name.clone()));
        }
        // Older versions and delete markers count too, as in S3.
        if let Some(v) = self.filer.find(&self.paths.versions(name)).await?
            && has_objects(&self.filer, &e.path, &v, "").await?
        {
            return Err(GatewayError::BucketNotEmpty(name.clone()));
        }
        // What is left are empty directories and unfinished multipart uploads.
        self.filer.delete(&e.path, true).await?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }
}

fn bucket_dto(e: &Entry, region: &str) -> Bucket {
    let secs = u64::try_from(e.attr.crtime).unwrap_or(0);
    Bucket {
        name: Some(e.name().to_string()),
        creation_date: Some(Timestamp::from(
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        )),
        bucket_region: Some(region.to_string()),
    }
}
