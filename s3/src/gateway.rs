//! [`Gateway`]: the `s3s::S3` implementation. Each operation lives in the module of its
//! family (`bucket`, `object`, `copy`, `list`, `multipart`); this file only routes to
//! them and turns their [`GatewayError`]s into S3 errors through the one mapping.

use std::sync::Arc;

use kelp_filer::Filer;
use kelp_filer::entry::Entry;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};

use crate::access::Caller;
use crate::error::{GatewayError, GatewayResult};
use crate::keys::Paths;

/// The S3 API over one filer.
#[derive(Clone)]
pub struct Gateway {
    pub filer: Arc<Filer>,
    pub paths: Paths,
    pub region: String,
    /// Identities are configured: every request carries a checked [`Caller`].
    pub auth: bool,
    /// Keys for server-side encryption.
    pub sse: crate::sse::SseConfig,
    /// Seconds in a lifecycle-rule day (86400 but in tests).
    pub lifecycle_day: u64,
    /// Buckets' lifecycle rules, for `x-amz-expiration` on reads.
    pub lifecycle_cache: Arc<crate::lifecycle::ConfigCache>,
}

/// The owner of what an open gateway made, and of anything written before owners
/// were recorded.
pub fn owner() -> Owner {
    crate::acl::Account::gateway().to_dto()
}

/// The owner of an entry: its ACL's owner.
pub fn owner_of(e: &kelp_filer::entry::Entry) -> Owner {
    crate::acl::Acl::of(e).map_or_else(owner, |a| a.owner.to_dto())
}

impl Gateway {
    /// The bucket's directory entry, or NoSuchBucket.
    pub async fn bucket_entry(&self, bucket: &str) -> GatewayResult<Entry> {
        match self.filer.find(&self.paths.bucket(bucket)).await? {
            Some(e) if e.is_directory => Ok(e),
            _ => Err(GatewayError::NoSuchBucket(bucket.to_string())),
        }
    }

    /// Did the request ask to bypass governance retention (`asked`), and may its caller?
    pub fn may_bypass(
        &self,
        ext: &http::Extensions,
        asked: Option<bool>,
        bucket: &str,
        key: Option<&str>,
    ) -> bool {
        asked == Some(true)
            && self.allowed(
                ext,
                crate::auth::Action::Admin,
                "s3:BypassGovernanceRetention",
                bucket,
                key,
            )
    }

    /// May the caller of a request do `action` (`iam_action` for the bucket policy) on
    /// `bucket`/`key`? (Always, when open.) See [`Caller::may`].
    pub fn allowed(
        &self,
        ext: &http::Extensions,
        action: crate::auth::Action,
        iam_action: &str,
        bucket: &str,
        key: Option<&str>,
    ) -> bool {
        if !self.auth {
            return true;
        }
        ext.get::<Caller>()
            .is_some_and(|c| c.may(action, iam_action, bucket, key))
    }
}

fn ok<T>(r: GatewayResult<S3Response<T>>) -> S3Result<S3Response<T>> {
    r.map_err(Into::into)
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        ok(self.create_bucket(req).await)
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        ok(self.delete_bucket(req).await)
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        ok(self.head_bucket(req).await)
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        ok(self.list_buckets(req).await)
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        ok(self.get_bucket_location(req).await)
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        ok(self.get_bucket_versioning(req).await)
    }

    async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        ok(self.put_bucket_acl(req).await)
    }

    async fn put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        ok(self.put_object_acl(req).await)
    }

    async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        ok(self.put_bucket_ownership_controls(req).await)
    }

    async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        ok(self.get_bucket_ownership_controls(req).await)
    }

    async fn delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
        ok(self.delete_bucket_ownership_controls(req).await)
    }

    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        ok(self.put_public_access_block(req).await)
    }

    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        ok(self.get_public_access_block(req).await)
    }

    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        ok(self.delete_public_access_block(req).await)
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        ok(self.put_bucket_cors(req).await)
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        ok(self.get_bucket_cors(req).await)
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        ok(self.delete_bucket_cors(req).await)
    }

    async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        ok(self.get_bucket_acl(req).await)
    }

    async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        ok(self.get_object_acl(req).await)
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        ok(self.get_bucket_policy(req).await)
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        ok(self.put_bucket_policy(req).await)
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        ok(self.delete_bucket_policy(req).await)
    }

    async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        ok(self.get_bucket_policy_status(req).await)
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        ok(self.get_bucket_lifecycle_configuration(req).await)
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        ok(self.put_bucket_lifecycle_configuration(req).await)
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        ok(self.delete_bucket_lifecycle(req).await)
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        ok(self.get_bucket_encryption(req).await)
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        ok(self.put_bucket_encryption(req).await)
    }

    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        ok(self.delete_bucket_encryption(req).await)
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        let b = &req.input.bucket;
        ok(self.not_configured(b, "NoSuchTagSet", "tag set").await)
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        ok(self.get_object_lock_configuration(req).await)
    }

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        ok(self.put_object_lock_configuration(req).await)
    }

    async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        ok(self.get_object_retention(req).await)
    }

    async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        ok(self.put_object_retention(req).await)
    }

    async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        ok(self.get_object_legal_hold(req).await)
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        ok(self.put_object_legal_hold(req).await)
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        ok(self.put_bucket_versioning(req).await)
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        ok(self.put_object(req).await)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        ok(self.get_object(req).await)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        ok(self.head_object(req).await)
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        ok(self.get_object_attributes(req).await)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        ok(self.delete_object(req).await)
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        ok(self.delete_objects(req).await)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        ok(self.copy_object(req).await)
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        ok(self.get_object_tagging(req).await)
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        ok(self.put_object_tagging(req).await)
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        ok(self.delete_object_tagging(req).await)
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        ok(self.list_objects(req).await)
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        ok(self.list_objects_v2(req).await)
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        ok(self.list_object_versions(req).await)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        ok(self.create_multipart_upload(req).await)
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        ok(self.upload_part(req).await)
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        ok(self.upload_part_copy(req).await)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        ok(self.complete_multipart_upload(req).await)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        ok(self.abort_multipart_upload(req).await)
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        ok(self.list_parts(req).await)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        ok(self.list_multipart_uploads(req).await)
    }
}
