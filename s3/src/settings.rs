//! Bucket settings kelp does not keep, answered the way S3 answers for a bucket that
//! never had them, so tools that ask before acting (mc, terraform, s3fs, Cyberduck) go
//! on: "not configured" for lifecycle, encryption and bucket tags. Changing any of them
//! stays NotImplemented. (Versioning, object lock, ACLs, policies and CORS are real.)

use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;

impl Gateway {
    /// NotConfigured for `bucket` (or NoSuchBucket).
    pub async fn not_configured<T>(
        &self,
        bucket: &str,
        code: &'static str,
        what: &str,
    ) -> GatewayResult<T> {
        self.bucket_entry(bucket).await?;
        Err(GatewayError::NotConfigured {
            code,
            msg: format!("the bucket {bucket} has no {what}"),
        })
    }
}
