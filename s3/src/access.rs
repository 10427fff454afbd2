//! Per-request authorization of the S3 gateway: [`IamAccess`], the s3s access hook that
//! turns a request's verified credentials into a [`Caller`] (identity, principal, the
//! bucket's policy and ACL state, the request's condition keys) and judges the
//! operation with [`Caller::may`], the one rule every operation goes through; object
//! ACLs and copy sources are read here, where the store is at hand.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::{CopyObjectInput, CopySource, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{S3Request, S3Result};

use crate::acl::{Acl, Perm};
use crate::auth::{Action, Identities, Identity};
use crate::error::GatewayError;
use crate::ownership::BucketAccess;
use crate::policy::bucket::{
    POLICY_KEY, PolicyCache, context as bucket_policy_context, iam_action,
};
use crate::policy::{Context, Decision, Policy, Principal};

/// The checked caller of a request (a request extension): its identity, and what the
/// bucket policy needs to judge further steps of the same request (the keys of a
/// DeleteObjects, a governance bypass).
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: Arc<Identity>,
    pub principal: Principal,
    pub policy: Option<Arc<Policy>>,
    pub ctx: Arc<Context>,
    /// The bucket's ACL, ownership mode and public access block.
    pub bucket: Option<Arc<BucketAccess>>,
}

impl Caller {
    /// The one authorization rule: an explicit Deny of the bucket policy wins; then the
    /// identity's own actions or an Allow of the policy permit; else no.
    /// Then the bucket's ACL may permit (object ACLs are read by [`IamAccess`], which
    /// has the store at hand).
    pub fn may(&self, action: Action, iam_action: &str, bucket: &str, key: Option<&str>) -> bool {
        match self.policy_says(iam_action, bucket, key) {
            Decision::Deny => false,
            Decision::Allow => true,
            Decision::Silent => {
                self.id.allows(action, bucket, key) || self.bucket_acl_allows(action, key)
            }
        }
    }

    /// Does the bucket ACL grant what `action` needs? Objects are written and deleted
    /// under the bucket's WRITE; listing needs its READ.
    fn bucket_acl_allows(&self, action: Action, key: Option<&str>) -> bool {
        let Some(b) = self.bucket.as_deref().filter(|b| b.acls_enabled()) else {
            return false;
        };
        let perm = match (action, key) {
            (Action::List | Action::Any, _) => Perm::Read,
            (Action::Write, _) => Perm::Write,
            (Action::ReadAcp, None) => Perm::ReadAcp,
            (Action::WriteAcp, None) => Perm::WriteAcp,
            _ => return false,
        };
        b.acl
            .allows(&self.principal, perm, b.pab().ignore_public_acls)
    }

    /// Is the caller of the bucket owner's account?
    fn owns_bucket(&self) -> bool {
        match (&self.principal, &self.bucket) {
            (Principal::User { account, .. }, Some(b)) => *account == b.acl.owner.id,
            _ => false,
        }
    }

    /// What the bucket policy alone says (Silent without one). Under
    /// RestrictPublicBuckets a public policy allows only the bucket owner's account.
    fn policy_says(&self, iam_action: &str, bucket: &str, key: Option<&str>) -> Decision {
        let Some(p) = &self.policy else {
            return Decision::Silent;
        };
        let restricted = self
            .bucket
            .as_deref()
            .is_some_and(|b| b.pab().restrict_public_buckets)
            && p.is_public()
            && !self.owns_bucket();
        let resource = match key {
            Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
            None => format!("arn:aws:s3:::{bucket}"),
        };
        match p.evaluate(&self.principal, iam_action, &resource, &self.ctx) {
            Decision::Allow if restricted => Decision::Silent,
            d => d,
        }
    }
}

/// Per-request authorization: the identities, and the bucket policies (read through
/// the filer, parsed once per change).
pub struct IamAccess {
    pub ids: Arc<Identities>,
    pub filer: Arc<kelp_filer::Filer>,
    pub paths: crate::keys::Paths,
    pub policies: Arc<PolicyCache>,
}

/// The action an operation needs; `None` for those every identity may call.
fn action_of(op: &str) -> Option<Action> {
    Some(match op {
        "ListBuckets" => return None,
        "GetObject"
        | "HeadObject"
        | "GetObjectAttributes"
        | "GetObjectRetention"
        | "GetObjectLegalHold"
        | "SelectObjectContent" => Action::Read,
        "GetObjectAcl" | "GetBucketAcl" => Action::ReadAcp,
        "PutObjectAcl" | "PutBucketAcl" => Action::WriteAcp,
        "PutObject"
        | "CopyObject"
        | "DeleteObject"
        | "DeleteObjects"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "ListParts"
        | "PutObjectRetention"
        | "PutObjectLegalHold"
        | "PostObject" => Action::Write,
        "ListObjects" | "ListObjectsV2" | "ListMultipartUploads" | "ListObjectVersions" => {
            Action::List
        }
        "GetObjectTagging" | "PutObjectTagging" | "DeleteObjectTagging" => Action::Tagging,
        "HeadBucket" | "GetBucketLocation" => Action::Any,
        // Bucket settings: readable by bucket listers, changed by admins.
        "GetBucketVersioning"
        | "GetBucketCors"
        | "GetBucketPolicy"
        | "GetBucketLifecycleConfiguration"
        | "GetBucketEncryption"
        | "GetBucketTagging"
        | "GetObjectLockConfiguration" => Action::List,
        "DeleteBucket" => Action::DeleteBucket,
        _ => Action::Admin,
    })
}

/// The `prefix` query parameter of a listing.
fn query_prefix(uri: &http::Uri) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let v = kv.strip_prefix("prefix=")?.replace('+', " ");
        percent_encoding::percent_decode_str(&v)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    })
}

fn denied(who: &str, what: &str) -> s3s::S3Error {
    GatewayError::AccessDenied(format!("{who} may not {what}")).into()
}

impl IamAccess {
    /// The identity behind `creds`; an unsigned request is the `anonymous` identity,
    /// or one with no actions of its own (bucket policies may still allow it).
    fn caller(&self, creds: Option<&s3s::auth::Credentials>) -> S3Result<Arc<Identity>> {
        match creds {
            Some(c) => self.ids.by_key(&c.access_key).cloned().ok_or_else(|| {
                GatewayError::InvalidAccessKeyId(format!(
                    "the access key {} does not exist",
                    c.access_key
                ))
                .into()
            }),
            None => Ok(self.ids.anonymous().unwrap_or_else(Identity::nobody)),
        }
    }

    /// The bucket's policy and access state (`None`: no such bucket).
    async fn bucket_state(&self, bucket: &str) -> Option<(Option<Arc<Policy>>, BucketAccess)> {
        let e = self.filer.find(&self.paths.bucket(bucket)).await.ok()??;
        let policy = e
            .extended
            .get(POLICY_KEY)
            .and_then(|text| self.policies.get(bucket, text));
        Some((policy, BucketAccess::of(&e)))
    }

    /// Does the ACL of `bucket/key` (its current version, or `version`) grant `perm`?
    async fn object_acl_allows(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        perm: Perm,
    ) -> bool {
        let Some(b) = caller.bucket.as_deref().filter(|b| b.acls_enabled()) else {
            return false;
        };
        let Ok(path) = self.paths.object(bucket, key) else {
            return false;
        };
        let acl = match self.filer.find(&path.path).await {
            Ok(Some(e)) => Acl::of(&e).unwrap_or_else(|| Acl::private(b.acl.owner.clone())),
            _ => return false,
        };
        acl.allows(&caller.principal, perm, b.pab().ignore_public_acls)
    }

    /// Adds the tags of `bucket/key` as `s3:ExistingObjectTag/<k>` keys.
    async fn add_object_tags(&self, ctx: &mut Context, bucket: &str, key: &str) {
        let Ok(path) = self.paths.object(bucket, key) else {
            return;
        };
        if let Ok(Some(e)) = self.filer.find(&path.path).await {
            for (k, v) in &e.extended {
                if let Some(tag) = k.strip_prefix(crate::meta::TAG_PREFIX) {
                    ctx.set(
                        &format!("s3:ExistingObjectTag/{tag}"),
                        String::from_utf8_lossy(v).into_owned(),
                    );
                }
            }
        }
    }

    /// May the caller read a copy source? Judged under the source bucket's policy and
    /// ACLs, and the source object's ACL.
    async fn check_source<T>(&self, req: &S3Request<T>, src: &CopySource) -> S3Result<()> {
        let Some(caller) = req.extensions.get::<Caller>() else {
            return Err(denied("an unchecked caller", "copy"));
        };
        let CopySource::Bucket { bucket, key, .. } = src else {
            return Err(GatewayError::NotImplemented(
                "access point copy sources are not supported".into(),
            )
            .into());
        };
        let mut c = caller.clone();
        (c.policy, c.bucket) = match self.bucket_state(bucket).await {
            Some((p, a)) => (p, Some(Arc::new(a))),
            None => (None, None),
        };
        let ok = c.may(Action::Read, "s3:GetObject", bucket, Some(key))
            || (c.policy_says("s3:GetObject", bucket, Some(key)) != Decision::Deny
                && self.object_acl_allows(&c, bucket, key, Perm::Read).await);
        if ok {
            Ok(())
        } else {
            Err(denied(
                &c.id.name,
                &format!("read the copy source {bucket}/{key}"),
            ))
        }
    }
}

/// Names the request's S3 operation for the metrics (see `kelp_proto::metrics::OpName`).
fn name_op(cx: &mut S3AccessContext<'_>) {
    let name = kelp_proto::metrics::intern(cx.s3_op().name());
    if let Some(n) = cx.extensions_mut().get::<kelp_proto::metrics::OpName>() {
        n.set(name);
    }
}

#[async_trait::async_trait]
impl S3Access for IamAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        name_op(cx);
        // A request the outer service verified and re-dispatched (range.rs).
        let verified = cx
            .extensions_mut()
            .get::<crate::range::VerifiedCaller>()
            .map(|v| v.0.clone());
        let creds = verified.as_ref().or(cx.credentials()).cloned();
        let id = self.caller(creds.as_ref())?;
        let principal = match &creds {
            Some(_) => Principal::User {
                account: id.account.clone(),
                name: id.name.clone(),
            },
            None => Principal::Anonymous,
        };
        let op = cx.s3_op().name().to_string();
        if op == "ListBuckets" && creds.is_none() {
            return Err(denied("an anonymous caller", "list buckets"));
        }
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let (policy, access) = match &bucket {
            Some(b) => match self.bucket_state(b).await {
                Some((p, a)) => (p, Some(Arc::new(a))),
                None => (None, None),
            },
            None => (None, None),
        };
        // The condition keys only matter to a policy: this bucket's, or (ListBuckets,
        // on the root) those of the buckets it lists.
        let mut ctx = if policy.is_some() || bucket.is_none() {
            bucket_policy_context(cx)
        } else {
            Context::default()
        };
        if let (Some(p), Some(b), Some(k)) = (&policy, &bucket, &key)
            && p.needs_object_tags()
        {
            self.add_object_tags(&mut ctx, b, k).await;
        }
        let caller = Caller {
            id,
            principal,
            policy,
            ctx: Arc::new(ctx),
            bucket: access,
        };
        if let Some(action) = action_of(&op) {
            let versioned = cx
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("versionId=")));
            let iam = iam_action(&op, versioned);
            let ok = match (&bucket, &key) {
                (None, _) => action == Action::Any || caller.id.allows(Action::Admin, "", None),
                // The keys are in the body: the operation checks each.
                (Some(b), None) if op == "DeleteObjects" => {
                    caller.id.allows_some(action, b) || caller.policy.is_some()
                }
                (Some(b), None) => match caller.policy_says(&iam, b, None) {
                    Decision::Deny => false,
                    Decision::Allow => true,
                    Decision::Silent => {
                        // A listing scoped to a prefix the identity may list.
                        let prefix = (action == Action::List)
                            .then(|| query_prefix(cx.uri()))
                            .flatten();
                        caller.id.allows(action, b, prefix.as_deref())
                            || caller.bucket_acl_allows(action, None)
                    }
                },
                (Some(b), Some(k)) => {
                    let object_perm = match action {
                        Action::Read => Some(Perm::Read),
                        Action::ReadAcp => Some(Perm::ReadAcp),
                        Action::WriteAcp => Some(Perm::WriteAcp),
                        _ => None,
                    };
                    caller.may(action, &iam, b, Some(k))
                        || (op == "GetObjectTagging"
                            && caller.may(Action::Read, "s3:GetObject", b, Some(k)))
                        || match object_perm {
                            // Not denied by the policy, and the object's ACL grants it.
                            Some(p) if caller.policy_says(&iam, b, Some(k)) != Decision::Deny => {
                                self.object_acl_allows(&caller, b, k, p).await
                            }
                            _ => false,
                        }
                }
            };
            if !ok {
                return Err(denied(&caller.id.name, &format!("call {op} here")));
            }
        }
        cx.extensions_mut().insert(caller);
        Ok(())
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.check_source(req, &req.input.copy_source).await
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.check_source(req, &req.input.copy_source).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_prefixes() {
        let u: http::Uri = "/b?list-type=2&prefix=a%2Fb+c&max-keys=1".parse().unwrap();
        assert_eq!(query_prefix(&u).as_deref(), Some("a/b c"));
        let u: http::Uri = "/b?list-type=2".parse().unwrap();
        assert_eq!(query_prefix(&u), None);
    }
}
