//! Bucket policies on the gateway: Put/Get/DeleteBucketPolicy and
//! GetBucketPolicyStatus (the text kept verbatim in the bucket entry's
//! `X-Kelp-S3-Policy`), the parsed policies cached per bucket, and what a request
//! contributes to policy evaluation: its IAM action name, resource ARN and condition
//! keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use s3s::S3Request;
use s3s::S3Response;
use s3s::access::S3AccessContext;
use s3s::dto::{
    DeleteBucketPolicyInput, DeleteBucketPolicyOutput, GetBucketPolicyInput, GetBucketPolicyOutput,
    GetBucketPolicyStatusInput, GetBucketPolicyStatusOutput, PolicyStatus, PutBucketPolicyInput,
    PutBucketPolicyOutput,
};

use super::{Context, Policy};
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;

/// The bucket attribute holding the policy text.
pub const POLICY_KEY: &str = "X-Kelp-S3-Policy";
/// S3's limit on a bucket policy's size.
const MAX_POLICY: usize = 20 * 1024;

impl Gateway {
    pub async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> GatewayResult<S3Response<PutBucketPolicyOutput>> {
        let i = req.input;
        let bucket = self.bucket_entry(&i.bucket).await?;
        if i.policy.len() > MAX_POLICY {
            return Err(GatewayError::MalformedPolicy(format!(
                "the policy is {} bytes; at most {MAX_POLICY} are allowed",
                i.policy.len()
            )));
        }
        let parsed = Policy::parse(&i.policy, &i.bucket).map_err(GatewayError::MalformedPolicy)?;
        let pab = crate::ownership::BucketAccess::of(&bucket).pab();
        if pab.block_public_policy && parsed.is_public() {
            return Err(GatewayError::AccessDenied(
                "the bucket's public access block forbids public policies".into(),
            ));
        }
        self.filer
            .set_extended(
                &bucket.path,
                vec![(POLICY_KEY.to_string(), i.policy.into_bytes())],
                None,
            )
            .await?;
        Ok(S3Response::new(PutBucketPolicyOutput::default()))
    }

    pub async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> GatewayResult<S3Response<GetBucketPolicyOutput>> {
        let bucket = self.bucket_entry(&req.input.bucket).await?;
        let text = bucket
            .extended
            .get(POLICY_KEY)
            .ok_or_else(|| GatewayError::NoSuchBucketPolicy(req.input.bucket.clone()))?;
        Ok(S3Response::new(GetBucketPolicyOutput {
            policy: Some(String::from_utf8_lossy(text).into_owned()),
        }))
    }

    pub async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> GatewayResult<S3Response<DeleteBucketPolicyOutput>> {
        let bucket = self.bucket_entry(&req.input.bucket).await?;
        self.filer
            .set_extended(&bucket.path, Vec::new(), Some(vec![POLICY_KEY.to_string()]))
            .await?;
        Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
    }

    pub async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> GatewayResult<S3Response<GetBucketPolicyStatusOutput>> {
        let b = &req.input.bucket;
        let bucket = self.bucket_entry(b).await?;
        let text = bucket
            .extended
            .get(POLICY_KEY)
            .ok_or_else(|| GatewayError::NoSuchBucketPolicy(b.clone()))?;
        let public = Policy::parse(&String::from_utf8_lossy(text), b)
            .map(|p| p.is_public())
            .unwrap_or(false);
        Ok(S3Response::new(GetBucketPolicyStatusOutput {
            policy_status: Some(PolicyStatus {
                is_public: Some(public),
            }),
        }))
    }
}

/// A policy's stored text and its parse.
type Parsed = (Vec<u8>, Arc<Policy>);

/// Parsed policies by bucket, re-parsed only when a bucket's text changes.
#[derive(Default)]
pub struct PolicyCache {
    parsed: Mutex<HashMap<String, Parsed>>,
}

impl PolicyCache {
    /// The policy of `bucket` whose stored text is `text`.
    pub fn get(&self, bucket: &str, text: &[u8]) -> Option<Arc<Policy>> {
        let mut map = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, p)) = map.get(bucket)
            && t == text
        {
            return Some(p.clone());
        }
        let p = Arc::new(Policy::parse(&String::from_utf8_lossy(text), bucket).ok()?);
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(bucket.to_string(), (text.to_vec(), p.clone()));
        Some(p)
    }
}

/// The IAM action of an S3 operation (`GetObject` → `s3:GetObject`); `versioned`
/// when the request names a `versionId`.
pub fn iam_action(op: &str, versioned: bool) -> String {
    let name = match op {
        "HeadObject" | "GetObjectAttributes" | "GetObject" if versioned => "GetObjectVersion",
        "HeadObject" | "GetObjectAttributes" => "GetObject",
        "DeleteObject" if versioned => "DeleteObjectVersion",
        "GetObjectTagging" if versioned => "GetObjectVersionTagging",
        "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "PostObject" => "PutObject",
        "AbortMultipartUpload" => "AbortMultipartUpload",
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => "ListBucket",
        "ListObjectVersions" => "ListBucketVersions",
        "ListMultipartUploads" => "ListBucketMultipartUploads",
        "ListParts" => "ListMultipartUploadParts",
        "ListBuckets" => "ListAllMyBuckets",
        "DeleteObjects" => "DeleteObject",
        "DeleteBucketPolicy" => "DeleteBucketPolicy",
        "PutBucketCors" | "DeleteBucketCors" => "PutBucketCORS",
        "GetBucketCors" => "GetBucketCORS",
        "GetObjectLockConfiguration" => "GetBucketObjectLockConfiguration",
        "PutObjectLockConfiguration" => "PutBucketObjectLockConfiguration",
        "GetBucketLifecycleConfiguration" => "GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => "PutLifecycleConfiguration",
        "GetBucketEncryption" => "GetEncryptionConfiguration",
        "PutBucketEncryption" | "DeleteBucketEncryption" => "PutEncryptionConfiguration",
        other => other,
    };
    format!("s3:{name}")
}

/// The condition keys of a request.
pub fn context(cx: &mut S3AccessContext<'_>) -> Context {
    let mut c = Context::default();
    let h = cx.headers();
    let text = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    for (key, header) in [
        ("aws:UserAgent", "user-agent"),
        ("aws:Referer", "referer"),
        ("s3:x-amz-acl", "x-amz-acl"),
        (
            "s3:x-amz-server-side-encryption",
            "x-amz-server-side-encryption",
        ),
        ("s3:x-amz-storage-class", "x-amz-storage-class"),
        ("s3:x-amz-content-sha256", "x-amz-content-sha256"),
    ] {
        if let Some(v) = text(header) {
            c.set(key, v);
        }
    }
    if let Some(tags) = text("x-amz-tagging") {
        for pair in tags.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            c.set(&format!("s3:RequestObjectTag/{}", dec(k)), dec(v));
            c.set("s3:RequestObjectTagKeys", dec(k));
        }
    }
    let auth = text("authorization").unwrap_or_default();
    let query = cx.uri().query().unwrap_or("").to_string();
    let (auth_type, sig) = if !auth.is_empty() {
        let v = if auth.starts_with("AWS4-") {
            "AWS4-HMAC-SHA256"
        } else {
            "AWS"
        };
        ("REST-HEADER", Some(v))
    } else if query.contains("X-Amz-Signature=") {
        ("REST-QUERY-STRING", Some("AWS4-HMAC-SHA256"))
    } else if query.contains("Signature=") {
        ("REST-QUERY-STRING", Some("AWS"))
    } else {
        ("", None)
    };
    if !auth_type.is_empty() {
        c.set("s3:authType", auth_type);
    }
    if let Some(s) = sig {
        c.set("s3:signatureversion", s);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if matches!(k, "prefix" | "delimiter" | "max-keys" | "versionId") {
            let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            let key = match k {
                "versionId" => "s3:versionid".to_string(),
                other => format!("s3:{other}"),
            };
            c.set(&key, v);
        }
    }
    let now = time::OffsetDateTime::now_utc();
    if let Ok(t) = now.format(&time::format_description::well_known::Rfc3339) {
        c.set("aws:CurrentTime", t);
    }
    c.set("aws:EpochTime", now.unix_timestamp().to_string());
    if let Some(conn) = cx
        .extensions_mut()
        .get::<kelp_proto::server::ConnInfo>()
        .copied()
    {
        c.set("aws:SourceIp", conn.peer.ip().to_canonical().to_string());
        c.set("aws:SecureTransport", conn.tls.to_string());
    }
    c
}
