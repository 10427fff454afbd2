//! Default bucket encryption: `Put/Get/DeleteBucketEncryption`, kept as JSON in the
//! bucket directory's `X-Kelp-S3-Encryption` attribute, and the [`Wanted`] it gives
//! writes that ask for nothing.

use s3s::dto::*;
use s3s::{S3Request, S3Response};
use serde::{Deserialize, Serialize};

use super::{AES256, KMS, Wanted};
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;

const ENCRYPTION_KEY: &str = "X-Kelp-S3-Encryption";

/// The one rule a bucket's encryption configuration holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BucketDefault {
    /// `AES256` or `aws:kms`.
    algorithm: String,
    kms_key_id: Option<String>,
    bucket_key: bool,
}

fn stored(bucket: &kelp_filer::entry::Entry) -> Option<BucketDefault> {
    serde_json::from_slice(bucket.extended.get(ENCRYPTION_KEY)?).ok()
}

/// What a write that asks for no encryption gets in `bucket`.
pub fn default_of(bucket: &kelp_filer::entry::Entry) -> Wanted {
    match stored(bucket) {
        Some(d) if d.algorithm == KMS => Wanted::Kms {
            key_id: d.kms_key_id,
            context: None,
            bucket_key: d.bucket_key,
        },
        Some(d) if d.algorithm == AES256 => Wanted::S3,
        _ => Wanted::Plain,
    }
}

impl Gateway {
    pub async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> GatewayResult<S3Response<PutBucketEncryptionOutput>> {
        let i = req.input;
        let bucket = self.bucket_entry(&i.bucket).await?;
        let rules = i.server_side_encryption_configuration.rules;
        let [rule] = rules.as_slice() else {
            return Err(GatewayError::MalformedXml(format!(
                "an encryption configuration holds exactly one rule, not {}",
                rules.len()
            )));
        };
        let by_default = rule
            .apply_server_side_encryption_by_default
            .as_ref()
            .ok_or_else(|| {
                GatewayError::MalformedXml(
                    "the rule needs ApplyServerSideEncryptionByDefault".into(),
                )
            })?;
        let algorithm = by_default.sse_algorithm.as_str().to_string();
        let kms_key_id = match (algorithm.as_str(), &by_default.kms_master_key_id) {
            (AES256, None) => None,
            (AES256, Some(_)) => {
                return Err(GatewayError::InvalidArgument(
                    "KMSMasterKeyID goes with aws:kms, not AES256".into(),
                ));
            }
            (KMS, id) => match id {
                Some(id) => Some(self.kms()?.resolve(id).await.map_err(super::kms_error)?),
                None => None,
            },
            (other, _) => {
                return Err(GatewayError::InvalidArgument(format!(
                    "the SSEAlgorithm {other:?} is not AES256 or aws:kms"
                )));
            }
        };
        if algorithm == AES256 || kms_key_id.is_none() {
            // Fail now, not on the first write, when there is no key file.
            self.kms()?;
        }
        let d = BucketDefault {
            algorithm,
            kms_key_id,
            bucket_key: rule.bucket_key_enabled.unwrap_or(false),
        };
        let json = serde_json::to_vec(&d).map_err(|e| GatewayError::Internal(e.to_string()))?;
        self.filer
            .set_extended(&bucket.path, vec![(ENCRYPTION_KEY.to_string(), json)], None)
            .await?;
        Ok(S3Response::new(PutBucketEncryptionOutput::default()))
    }

    pub async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> GatewayResult<S3Response<GetBucketEncryptionOutput>> {
        let bucket = self.bucket_entry(&req.input.bucket).await?;
        let d = stored(&bucket).ok_or_else(|| GatewayError::NotConfigured {
            code: "ServerSideEncryptionConfigurationNotFoundError",
            msg: format!(
                "the bucket {} has no server-side encryption configuration",
                req.input.bucket
            ),
        })?;
        let rule = ServerSideEncryptionRule {
            apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                sse_algorithm: ServerSideEncryption::from(d.algorithm),
                kms_master_key_id: d.kms_key_id,
            }),
            bucket_key_enabled: Some(d.bucket_key),
        };
        Ok(S3Response::new(GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration {
                rules: vec![rule],
            }),
        }))
    }

    pub async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> GatewayResult<S3Response<DeleteBucketEncryptionOutput>> {
        let bucket = self.bucket_entry(&req.input.bucket).await?;
        self.filer
            .set_extended(
                &bucket.path,
                Vec::new(),
                Some(vec![ENCRYPTION_KEY.to_string()]),
            )
            .await?;
        Ok(S3Response::with_status(
            DeleteBucketEncryptionOutput::default(),
            http::StatusCode::NO_CONTENT,
        ))
    }
}
