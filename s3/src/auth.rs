//! Identities and authorization, SeaweedFS style: `s3.json` identities with access keys
//! and actions (`Admin`, `Read`, `Write`, `List`, `Tagging`, … optionally scoped as
//! `Action:bucket` or `Action:bucket/prefix*`), an `anonymous` identity for unsigned
//! requests, and an admin from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. s3s checks
//! signatures with the secret keys ([`IamAuth`]); [`IamAccess`] decides what a checked
//! caller may do and hands the caller to the operations as a [`Caller`] extension.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{S3Request, S3Result};
use serde::Deserialize;

use crate::acl::{Acl, Perm};
use crate::error::{GatewayError, GatewayResult};
use crate::ownership::BucketAccess;
use crate::policy::bucket::{
    POLICY_KEY, PolicyCache, context as bucket_policy_context, iam_action,
};
use crate::policy::{Context, Decision, Policy, Principal};

/// What a request does, for authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Admin,
    Read,
    Write,
    List,
    Tagging,
    ReadAcp,
    WriteAcp,
    DeleteBucket,
    /// Anything at all on the bucket (HeadBucket, GetBucketLocation, ListBuckets).
    Any,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "Admin" => Action::Admin,
            "Read" => Action::Read,
            "Write" => Action::Write,
            "List" => Action::List,
            "Tagging" => Action::Tagging,
            "ReadAcp" => Action::ReadAcp,
            "WriteAcp" => Action::WriteAcp,
            "DeleteBucket" => Action::DeleteBucket,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
struct Grant {
    action: Action,
    /// `bucket` or `bucket/key-pattern` (with `*` and `?`); `None` for every bucket.
    resource: Option<String>,
}

/// `*` matches any run of characters, `?` any one character.
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Grant {
    fn covers(&self, action: Action, bucket: &str, key: Option<&str>) -> bool {
        let permits =
            self.action == Action::Admin || action == Action::Any || self.action == action;
        permits
            && match &self.resource {
                None => true,
                Some(r) => match r.split_once('/') {
                    None => glob(r, bucket),
                    Some((b, kp)) => {
                        glob(b, bucket)
                            && (action == Action::Any || key.is_some_and(|k| glob(kp, k)))
                    }
                },
            }
    }
}

/// One identity of `s3.json`.
#[derive(Debug)]
pub struct Identity {
    pub name: String,
    /// Its account id (`account.id` in `s3.json`; else its own name): what bucket
    /// policies name as `arn:aws:iam::<account>:root`.
    pub account: String,
    grants: Vec<Grant>,
}

impl Identity {
    /// May this identity do `action` on `bucket` (and `key`, for object operations)?
    pub fn allows(&self, action: Action, bucket: &str, key: Option<&str>) -> bool {
        self.grants.iter().any(|g| g.covers(action, bucket, key))
    }

    /// May this identity do `action` on some keys of `bucket`? (Per-key checks follow.)
    pub fn allows_some(&self, action: Action, bucket: &str) -> bool {
        self.grants.iter().any(|g| {
            (g.action == action || g.action == Action::Admin) && g.covers(Action::Any, bucket, None)
        })
    }

    fn may_admin_everything(&self) -> bool {
        self.grants
            .iter()
            .any(|g| g.action == Action::Admin && g.resource.is_none())
    }
}

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

// Unknown keys are refused, so a misspelt one cannot quietly drop an identity. The
// keys SeaweedFS's s3.json has beyond ours (accounts, a credential's status) are
// accepted and not used yet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct S3Json {
    #[serde(default)]
    identities: Vec<IdentityJson>,
    #[serde(default)]
    #[allow(dead_code)]
    accounts: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityJson {
    name: String,
    #[serde(default)]
    credentials: Vec<CredentialJson>,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    account: Option<AccountJson>,
}

/// SeaweedFS's account block of an identity.
#[derive(Deserialize)]
struct AccountJson {
    id: String,
    #[serde(default, rename = "displayName")]
    #[allow(dead_code)]
    display_name: Option<String>,
    #[serde(default, rename = "emailAddress")]
    #[allow(dead_code)]
    email_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialJson {
    #[serde(rename = "accessKey", alias = "access_key")]
    access_key: String,
    #[serde(rename = "secretKey", alias = "secret_key")]
    secret_key: String,
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<String>,
}

/// Every identity the gateway knows. None at all means the gateway is open.
#[derive(Debug, Default)]
pub struct Identities {
    all: Vec<Arc<Identity>>,
    keys: HashMap<String, (Arc<Identity>, String)>,
    anonymous: Option<Arc<Identity>>,
}

impl Identities {
    /// No identities: the gateway accepts every request, signed with any key or not.
    pub fn open() -> Identities {
        Identities::default()
    }

    /// True when no identity is configured.
    pub fn is_open(&self) -> bool {
        self.all.is_empty()
    }

    /// Parses SeaweedFS's `s3.json`.
    pub fn from_json(text: &str) -> GatewayResult<Identities> {
        let doc: S3Json = serde_json::from_str(text)
            .map_err(|e| GatewayError::Config(format!("the identities file is not valid: {e}")))?;
        let mut ids = Identities::default();
        for i in doc.identities.into_iter().filter(|i| !i.disabled) {
            let mut grants = Vec::new();
            for a in &i.actions {
                let (name, resource) = match a.split_once(':') {
                    Some((n, r)) => (n, Some(r.to_string()).filter(|r| !r.is_empty() && r != "*")),
                    None => (a.as_str(), None),
                };
                match Action::parse(name) {
                    Some(action) => grants.push(Grant { action, resource }),
                    None => {
                        tracing::warn!(identity = %i.name, action = %a, "unknown S3 action ignored")
                    }
                }
            }
            let id = Arc::new(Identity {
                account: i
                    .account
                    .as_ref()
                    .map_or_else(|| i.name.clone(), |a| a.id.clone()),
                name: i.name.clone(),
                grants,
            });
            if i.name == "anonymous" {
                ids.anonymous = Some(id.clone());
            }
            for c in i.credentials {
                ids.add_key(&id, c.access_key, c.secret_key)?;
            }
            ids.all.push(id);
        }
        Ok(ids)
    }

    fn add_key(&mut self, id: &Arc<Identity>, access: String, secret: String) -> GatewayResult<()> {
        if access.is_empty() || secret.is_empty() {
            return Err(GatewayError::Config(format!(
                "identity {}: access and secret keys must not be empty",
                id.name
            )));
        }
        if self.keys.contains_key(&access) {
            return Err(GatewayError::Config(format!(
                "access key {access} is given to two identities"
            )));
        }
        self.keys.insert(access, (id.clone(), secret));
        Ok(())
    }

    /// Adds an identity allowed everything, unless the access key is already known.
    pub fn with_admin(
        mut self,
        name: &str,
        access: &str,
        secret: &str,
    ) -> GatewayResult<Identities> {
        if self.keys.contains_key(access) {
            return Ok(self);
        }
        let id = Arc::new(Identity {
            name: name.to_string(),
            account: name.to_string(),
            grants: vec![Grant {
                action: Action::Admin,
                resource: None,
            }],
        });
        self.add_key(&id, access.to_string(), secret.to_string())?;
        self.all.push(id);
        Ok(self)
    }

    /// Reads `file` (if any), then adds an admin from the `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` environment variables when both are set. A file that
    /// yields no usable identity is refused: asking for identities and getting an open
    /// gateway would fail open.
    pub fn load(file: Option<&Path>) -> GatewayResult<Identities> {
        let ids = match file {
            Some(f) => {
                let text = std::fs::read_to_string(f).map_err(|e| {
                    GatewayError::Config(format!(
                        "cannot read the identities file {}: {e}",
                        f.display()
                    ))
                })?;
                let ids = Identities::from_json(&text)
                    .map_err(|e| GatewayError::Config(format!("{}: {e}", f.display())))?;
                if ids.is_open() {
                    return Err(GatewayError::Config(format!(
                        "{} defines no usable identity (none, or all disabled): refusing to \
                         start an S3 gateway open to anyone; leave -s3.config out for that",
                        f.display()
                    )));
                }
                ids
            }
            None => Identities::open(),
        };
        match (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Ok(a), Ok(s)) if !a.is_empty() && !s.is_empty() => ids.with_admin("env-admin", &a, &s),
            _ => Ok(ids),
        }
    }

    /// How many identities are configured, and whether one may administer everything.
    pub fn summary(&self) -> (usize, bool) {
        (
            self.all.len(),
            self.all.iter().any(|i| i.may_admin_everything()),
        )
    }

    /// The secret key of an access key.
    pub(crate) fn secret_of(&self, access: &str) -> Option<&str> {
        self.keys.get(access).map(|(_, s)| s.as_str())
    }

    fn by_key(&self, access: &str) -> Option<&Arc<Identity>> {
        self.keys.get(access).map(|(i, _)| i)
    }
}

/// Secret keys for s3s's signature checks.
pub struct IamAuth(pub Arc<Identities>);

#[async_trait::async_trait]
impl S3Auth for IamAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.keys.get(access_key) {
            Some((_, secret)) => Ok(SecretKey::from(secret.as_str())),
            None => Err(GatewayError::InvalidAccessKeyId(format!(
                "the access key {access_key} does not exist"
            ))
            .into()),
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
            None => Ok(self.ids.anonymous.clone().unwrap_or_else(|| {
                Arc::new(Identity {
                    name: "anonymous".into(),
                    account: String::new(),
                    grants: Vec::new(),
                })
            })),
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

#[async_trait::async_trait]
impl S3Access for IamAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
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
        let mut ctx = bucket_policy_context(cx);
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

    const JSON: &str = r#"{"identities":[
        {"name":"anonymous","actions":["Read:public"]},
        {"name":"admin","credentials":[{"accessKey":"AK1","secretKey":"SK1"}],"actions":["Admin"]},
        {"name":"u2","credentials":[{"accessKey":"AK2","secretKey":"SK2"}],
         "actions":["Read:b1","Write:b1/up/*","List:b1","Tagging:b*","Bogus"]},
        {"name":"off","disabled":true,"credentials":[{"accessKey":"AK3","secretKey":"SK3"}],"actions":["Admin"]}
    ]}"#;

    #[test]
    fn globs() {
        assert!(glob("a*", "abc"));
        assert!(glob("a?c", "abc"));
        assert!(glob("*", ""));
        assert!(glob("up/*", "up/x/y"));
        assert!(!glob("up/*", "upx"));
        assert!(glob("*.jpg", "a/b.jpg"));
        assert!(!glob("a", "ab"));
    }

    #[test]
    fn parses_and_scopes() {
        let ids = Identities::from_json(JSON).unwrap();
        assert!(!ids.is_open());
        assert_eq!(ids.summary(), (3, true));
        assert!(ids.by_key("AK3").is_none());
        let u2 = ids.by_key("AK2").unwrap();
        assert!(u2.allows(Action::Read, "b1", Some("any")));
        assert!(!u2.allows(Action::Read, "b2", Some("any")));
        assert!(u2.allows(Action::Write, "b1", Some("up/file")));
        assert!(!u2.allows(Action::Write, "b1", Some("other")));
        assert!(!u2.allows(Action::Write, "b1", None));
        assert!(u2.allows(Action::Tagging, "b9", Some("k")));
        assert!(!u2.allows(Action::Tagging, "c9", Some("k")));
        assert!(u2.allows(Action::Any, "b1", None));
        assert!(!u2.allows(Action::Any, "c2", None));
        assert!(!u2.allows(Action::Admin, "b1", None));
        assert!(u2.allows_some(Action::Write, "b1"));
        assert!(!u2.allows_some(Action::Write, "c1"));
        assert!(!u2.allows_some(Action::Admin, "b1"));
        let admin = ids.by_key("AK1").unwrap();
        assert!(admin.allows(Action::DeleteBucket, "x", None));
        let anon = ids.anonymous.clone().unwrap();
        assert!(anon.allows(Action::Read, "public", Some("k")));
        assert!(!anon.allows(Action::Write, "public", Some("k")));
    }

    #[test]
    fn env_style_admin_and_errors() {
        let ids = Identities::open().with_admin("env", "A", "S").unwrap();
        assert!(!ids.is_open());
        assert!(ids.by_key("A").unwrap().allows(Action::Admin, "b", None));
        assert!(Identities::from_json("{").is_err());
        let dup = r#"{"identities":[{"name":"a","credentials":[{"accessKey":"K","secretKey":"S"}]},
                                   {"name":"b","credentials":[{"accessKey":"K","secretKey":"T"}]}]}"#;
        assert!(Identities::from_json(dup).is_err());
        assert!(
            Identities::from_json(r#"{"identities":[]}"#)
                .unwrap()
                .is_open()
        );
        // A misspelt key is an error, not a silently missing identity.
        assert!(Identities::from_json(r#"{"identites":[]}"#).is_err());
        assert!(
            Identities::from_json(
                r#"{"identities":[{"name":"a","credential":[{"accessKey":"K","secretKey":"S"}]}]}"#
            )
            .is_err()
        );
        // SeaweedFS's extra keys are accepted.
        let sw = r#"{"identities":[{"name":"a","account":{"id":"x"},
            "credentials":[{"accessKey":"K","secretKey":"S","status":"Active"}],"actions":["Read"]}],
            "accounts":[{"id":"x","displayName":"X"}]}"#;
        assert!(!Identities::from_json(sw).unwrap().is_open());
    }

    #[test]
    fn a_file_without_usable_identities_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        for (i, text) in [
            "{}",
            r#"{"identities":[]}"#,
            r#"{"identities":[{"name":"a","disabled":true,"credentials":[{"accessKey":"K","secretKey":"S"}]}]}"#,
        ]
        .iter()
        .enumerate()
        {
            let f = dir.path().join(format!("s3-{i}.json"));
            std::fs::write(&f, text).unwrap();
            let e = Identities::load(Some(&f)).unwrap_err();
            assert!(e.to_string().contains("no usable identity"), "{e}");
        }
        let f = dir.path().join("typo.json");
        std::fs::write(&f, r#"{"identites":[]}"#).unwrap();
        assert!(Identities::load(Some(&f)).is_err());
    }

    #[test]
    fn query_prefixes() {
        let u: http::Uri = "/b?list-type=2&prefix=a%2Fb+c&max-keys=1".parse().unwrap();
        assert_eq!(query_prefix(&u).as_deref(), Some("a/b c"));
        let u: http::Uri = "/b?list-type=2".parse().unwrap();
        assert_eq!(query_prefix(&u), None);
    }
}
