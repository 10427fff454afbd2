//! Bucket and object settings kelp does not keep, answered the way S3 answers for a
//! bucket that never had them, so tools that ask before acting (mc, terraform, s3fs,
//! Cyberduck) go on: the owner holding FULL_CONTROL as the only grant, and "not
//! configured" for CORS, policy, lifecycle, encryption and bucket tags. Changing any of
//! them stays NotImplemented. (Versioning and object lock are real: `versions/`,
//! `retention.rs`.)

use s3s::dto::*;
use s3s::{S3Request, S3Response};

use crate::error::{GatewayError, GatewayResult};
use crate::gateway::{Gateway, owner};

/// The one grant every bucket and object has: its owner, FULL_CONTROL.
fn owner_acl() -> (Option<Owner>, Option<Grants>) {
    let o = owner();
    let grant = Grant {
        grantee: Some(Grantee {
            display_name: o.display_name.clone(),
            id: o.id.clone(),
            type_: Type::from_static(Type::CANONICAL_USER),
            email_address: None,
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    };
    (Some(o), Some(vec![grant]))
}

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

    pub async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> GatewayResult<S3Response<GetBucketAclOutput>> {
        self.bucket_entry(&req.input.bucket).await?;
        let (owner, grants) = owner_acl();
        Ok(S3Response::new(GetBucketAclOutput { owner, grants }))
    }

    pub async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> GatewayResult<S3Response<GetObjectAclOutput>> {
        let i = &req.input;
        self.object_or_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        let (owner, grants) = owner_acl();
        Ok(S3Response::new(GetObjectAclOutput {
            owner,
            grants,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_has_full_control() {
        let (o, g) = owner_acl();
        let g = g.unwrap_or_default();
        assert_eq!(g.len(), 1);
        assert_eq!(
            g[0].permission.as_ref().map(Permission::as_str),
            Some(Permission::FULL_CONTROL)
        );
        assert_eq!(
            g[0].grantee.as_ref().and_then(|x| x.id.clone()),
            o.and_then(|o| o.id)
        );
    }
}
