//! Who owns what and who may set ACLs: a bucket's access state (its ACL, object
//! ownership mode and public access block, kept as bucket entry attributes), the
//! Put/Get/Delete calls for ownership controls and the public access block,
//! Put/Get Bucket/Object ACL, and [`Gateway::request_acl`], which turns the ACL of a
//! write request into the ACL stored with the new bucket or object, refusing what the
//! bucket's settings forbid.

use kelp_filer::entry::Entry;
use s3s::dto::*;
use s3s::{S3Request, S3Response};
use serde::{Deserialize, Serialize};

use crate::access::Caller;
use crate::acl::{Account, Acl, GrantHeaders};
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;

/// Bucket attribute: `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`.
pub const OWNERSHIP_KEY: &str = "X-Kelp-S3-Ownership";
/// Bucket attribute: the public access block as JSON.
pub const PAB_KEY: &str = "X-Kelp-S3-Public-Access-Block";

/// A bucket's public access block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// The object ownership mode of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// ACLs are off; the bucket owner owns every object.
    BucketOwnerEnforced,
    /// Objects written with `bucket-owner-full-control` belong to the bucket owner.
    BucketOwnerPreferred,
    /// The writer owns what it writes (kelp's default).
    ObjectWriter,
}

impl Ownership {
    fn parse(s: &str) -> Option<Ownership> {
        Some(match s {
            ObjectOwnership::BUCKET_OWNER_ENFORCED => Ownership::BucketOwnerEnforced,
            ObjectOwnership::BUCKET_OWNER_PREFERRED => Ownership::BucketOwnerPreferred,
            ObjectOwnership::OBJECT_WRITER => Ownership::ObjectWriter,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Ownership::BucketOwnerEnforced => ObjectOwnership::BUCKET_OWNER_ENFORCED,
            Ownership::BucketOwnerPreferred => ObjectOwnership::BUCKET_OWNER_PREFERRED,
            Ownership::ObjectWriter => ObjectOwnership::OBJECT_WRITER,
        }
    }
}

/// What a bucket entry says about access.
#[derive(Debug, Clone)]
pub struct BucketAccess {
    pub acl: Acl,
    pub ownership: Ownership,
    /// Set explicitly (GetBucketOwnershipControls answers not-found otherwise).
    pub ownership_set: bool,
    pub pab: Option<PublicAccessBlock>,
}

impl BucketAccess {
    pub fn of(bucket: &Entry) -> BucketAccess {
        let ownership = bucket
            .extended
            .get(OWNERSHIP_KEY)
            .and_then(|v| Ownership::parse(&String::from_utf8_lossy(v)));
        BucketAccess {
            // Buckets made before ACLs existed belong to the gateway account.
            acl: Acl::of(bucket).unwrap_or_else(|| Acl::private(Account::gateway())),
            ownership: ownership.unwrap_or(Ownership::ObjectWriter),
            ownership_set: ownership.is_some(),
            pab: bucket
                .extended
                .get(PAB_KEY)
                .and_then(|v| serde_json::from_slice(v).ok()),
        }
    }

    pub fn acls_enabled(&self) -> bool {
        self.ownership != Ownership::BucketOwnerEnforced
    }

    pub fn pab(&self) -> PublicAccessBlock {
        self.pab.unwrap_or_default()
    }
}

/// The ACL parts of an object write input (PutObject, CopyObject,
/// CreateMultipartUpload: a canned ACL and grant headers; objects take no WRITE grant).
macro_rules! object_acl_of {
    ($i:expr) => {
        $crate::ownership::RequestedAcl {
            canned: $i.acl.as_ref().map(|c| c.as_str()),
            grants: $crate::acl::GrantHeaders {
                read: $i.grant_read.as_deref(),
                write: None,
                read_acp: $i.grant_read_acp.as_deref(),
                write_acp: $i.grant_write_acp.as_deref(),
                full_control: $i.grant_full_control.as_deref(),
            },
            body: None,
        }
    };
}
pub(crate) use object_acl_of;

/// The ACL parts of a Put*Acl input (canned, all five grant headers, or a body).
macro_rules! acl_call_of {
    ($i:expr) => {
        RequestedAcl {
            canned: $i.acl.as_ref().map(|c| c.as_str()),
            grants: GrantHeaders {
                read: $i.grant_read.as_deref(),
                write: $i.grant_write.as_deref(),
                read_acp: $i.grant_read_acp.as_deref(),
                write_acp: $i.grant_write_acp.as_deref(),
                full_control: $i.grant_full_control.as_deref(),
            },
            body: $i.access_control_policy.as_ref(),
        }
    };
}

/// The ACL parts of a write request.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestedAcl<'a> {
    pub canned: Option<&'a str>,
    pub grants: GrantHeaders<'a>,
    pub body: Option<&'a AccessControlPolicy>,
}

impl Gateway {
    /// The account of the request's caller (the gateway account when open).
    pub fn account_of(&self, ext: &http::Extensions) -> Account {
        match ext.get::<Caller>() {
            Some(c) if c.principal != crate::policy::Principal::Anonymous => Account {
                id: c.id.account.clone(),
                name: c.id.name.clone(),
            },
            _ => Account::gateway(),
        }
    }

    /// The ACL to store with what a write request creates in `bucket` (`None` for a
    /// new bucket: `access` then describes nothing yet). Refuses ACLs a bucket with
    /// BucketOwnerEnforced cannot take (`AccessControlListNotSupported`) and public
    /// ones under BlockPublicAcls (`AccessDenied`).
    pub fn request_acl(
        &self,
        ext: &http::Extensions,
        access: Option<&BucketAccess>,
        r: RequestedAcl<'_>,
    ) -> GatewayResult<Acl> {
        let writer = self.account_of(ext);
        let bucket_owner = access.map(|a| a.acl.owner.clone());
        let enforced = access.is_some_and(|a| !a.acls_enabled());
        if enforced {
            let ok = r.grants.is_empty()
                && r.body.is_none()
                && r.canned.is_none_or(|c| c == "bucket-owner-full-control");
            if !ok {
                return Err(GatewayError::AclNotSupported(
                    "the bucket does not allow ACLs".into(),
                ));
            }
        }
        let preferred = access.is_some_and(|a| a.ownership == Ownership::BucketOwnerPreferred)
            && r.canned == Some("bucket-owner-full-control");
        // Under BucketOwnerEnforced (and Preferred with bucket-owner-full-control) the
        // bucket owner owns the object.
        let owner = match (&bucket_owner, enforced || preferred) {
            (Some(b), true) => b.clone(),
            _ => writer,
        };
        let acl = match (r.body, r.canned, r.grants.is_empty()) {
            (Some(body), _, _) => Acl::from_dto(body, owner)?,
            (None, Some(_), false) => {
                return Err(GatewayError::InvalidRequest(
                    "give either a canned ACL or grant headers, not both".into(),
                ));
            }
            (None, Some(c), true) => Acl::canned(c, owner, bucket_owner.as_ref())?,
            (None, None, false) => {
                let mut a = Acl::from_headers(owner.clone(), r.grants)?;
                if a.grants.is_empty() {
                    a = Acl::private(owner);
                }
                a
            }
            (None, None, true) => Acl::private(owner),
        };
        if acl.is_public() && access.is_some_and(|a| a.pab().block_public_acls) {
            return Err(GatewayError::AccessDenied(
                "the bucket's public access block forbids public ACLs".into(),
            ));
        }
        Ok(acl)
    }

    /// Stores the ACL a Put*Acl call asks for on `path`, owned by `owner`.
    async fn replace_acl(
        &self,
        ext: &http::Extensions,
        access: &BucketAccess,
        requested: RequestedAcl<'_>,
        owner: Account,
        path: &str,
    ) -> GatewayResult<()> {
        if !access.acls_enabled() {
            return Err(GatewayError::AclNotSupported(
                "the bucket does not allow ACLs".into(),
            ));
        }
        let mut acl = self.request_acl(ext, Some(access), requested)?;
        acl.owner = owner;
        self.filer
            .set_extended(path, vec![acl.to_attr()], None)
            .await?;
        Ok(())
    }

    async fn bucket_access(&self, bucket: &str) -> GatewayResult<(Entry, BucketAccess)> {
        let e = self.bucket_entry(bucket).await?;
        let a = BucketAccess::of(&e);
        Ok((e, a))
    }

    pub async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> GatewayResult<S3Response<GetBucketAclOutput>> {
        let (_, a) = self.bucket_access(&req.input.bucket).await?;
        let (owner, grants) = a.acl.to_dto();
        Ok(S3Response::new(GetBucketAclOutput { owner, grants }))
    }

    pub async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> GatewayResult<S3Response<PutBucketAclOutput>> {
        let i = &req.input;
        let (e, a) = self.bucket_access(&i.bucket).await?;
        // A bucket's ACL keeps the bucket's owner.
        let owner = a.acl.owner.clone();
        self.replace_acl(&req.extensions, &a, acl_call_of!(i), owner, &e.path)
            .await?;
        Ok(S3Response::new(PutBucketAclOutput::default()))
    }

    pub async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> GatewayResult<S3Response<GetObjectAclOutput>> {
        let i = &req.input;
        let (_, a) = self.bucket_access(&i.bucket).await?;
        let e = self
            .object_or_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        let acl = Acl::of(&e).unwrap_or_else(|| Acl::private(a.acl.owner.clone()));
        let (owner, grants) = acl.to_dto();
        Ok(S3Response::new(GetObjectAclOutput {
            owner,
            grants,
            ..Default::default()
        }))
    }

    pub async fn put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> GatewayResult<S3Response<PutObjectAclOutput>> {
        let i = &req.input;
        let (_, a) = self.bucket_access(&i.bucket).await?;
        let e = self
            .object_or_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        // An object's ACL keeps the object's owner.
        let owner = Acl::of(&e).map_or_else(|| a.acl.owner.clone(), |o| o.owner);
        self.replace_acl(&req.extensions, &a, acl_call_of!(i), owner, &e.path)
            .await?;
        Ok(S3Response::new(PutObjectAclOutput::default()))
    }

    pub async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> GatewayResult<S3Response<PutBucketOwnershipControlsOutput>> {
        let i = &req.input;
        let (e, a) = self.bucket_access(&i.bucket).await?;
        let [rule] = i.ownership_controls.rules.as_slice() else {
            return Err(GatewayError::MalformedXml(
                "OwnershipControls takes exactly one Rule".into(),
            ));
        };
        let mode = Ownership::parse(rule.object_ownership.as_str()).ok_or_else(|| {
            GatewayError::MalformedXml(format!(
                "unknown ObjectOwnership {:?}",
                rule.object_ownership.as_str()
            ))
        })?;
        if mode == Ownership::BucketOwnerEnforced && a.acl.is_public() {
            return Err(GatewayError::InvalidRequest(
                "the bucket ACL grants public access: make it private before disabling ACLs".into(),
            ));
        }
        self.filer
            .set_extended(
                &e.path,
                vec![(OWNERSHIP_KEY.to_string(), mode.as_str().as_bytes().to_vec())],
                None,
            )
            .await?;
        Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
    }

    pub async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> GatewayResult<S3Response<GetBucketOwnershipControlsOutput>> {
        let b = &req.input.bucket;
        let (_, a) = self.bucket_access(b).await?;
        if !a.ownership_set {
            return Err(GatewayError::NotConfigured {
                code: "OwnershipControlsNotFoundError",
                msg: format!("the bucket {b} has no ownership controls"),
            });
        }
        Ok(S3Response::new(GetBucketOwnershipControlsOutput {
            ownership_controls: Some(OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    object_ownership: ObjectOwnership::from(a.ownership.as_str().to_string()),
                }],
            }),
        }))
    }

    pub async fn delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> GatewayResult<S3Response<DeleteBucketOwnershipControlsOutput>> {
        let (e, _) = self.bucket_access(&req.input.bucket).await?;
        self.filer
            .set_extended(&e.path, Vec::new(), Some(vec![OWNERSHIP_KEY.to_string()]))
            .await?;
        Ok(S3Response::new(
            DeleteBucketOwnershipControlsOutput::default(),
        ))
    }

    pub async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> GatewayResult<S3Response<PutPublicAccessBlockOutput>> {
        let i = &req.input;
        let (e, _) = self.bucket_access(&i.bucket).await?;
        let c = &i.public_access_block_configuration;
        let pab = PublicAccessBlock {
            block_public_acls: c.block_public_acls.unwrap_or(false),
            ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
            block_public_policy: c.block_public_policy.unwrap_or(false),
            restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
        };
        let json = serde_json::to_vec(&pab).map_err(|e| GatewayError::Internal(e.to_string()))?;
        self.filer
            .set_extended(&e.path, vec![(PAB_KEY.to_string(), json)], None)
            .await?;
        Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
    }

    pub async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> GatewayResult<S3Response<GetPublicAccessBlockOutput>> {
        let b = &req.input.bucket;
        let (_, a) = self.bucket_access(b).await?;
        let p = a.pab.ok_or_else(|| GatewayError::NotConfigured {
            code: "NoSuchPublicAccessBlockConfiguration",
            msg: format!("the bucket {b} has no public access block"),
        })?;
        Ok(S3Response::new(GetPublicAccessBlockOutput {
            public_access_block_configuration: Some(PublicAccessBlockConfiguration {
                block_public_acls: Some(p.block_public_acls),
                ignore_public_acls: Some(p.ignore_public_acls),
                block_public_policy: Some(p.block_public_policy),
                restrict_public_buckets: Some(p.restrict_public_buckets),
            }),
        }))
    }

    pub async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> GatewayResult<S3Response<DeletePublicAccessBlockOutput>> {
        let (e, _) = self.bucket_access(&req.input.bucket).await?;
        self.filer
            .set_extended(&e.path, Vec::new(), Some(vec![PAB_KEY.to_string()]))
            .await?;
        Ok(S3Response::new(DeletePublicAccessBlockOutput::default()))
    }
}
