//! The S3 operation a request asks for, named as AWS names it, for the metrics of a
//! request the access check did not name (an open gateway has no access check, and a
//! refused signature stops before it). Path-style addressing; a virtual-hosted request
//! is named by its path alone.

use http::{Method, Request};

/// The operation's name (`PutObject`, `ListObjectsV2`, …), or `Unidentified`.
pub fn of<B>(req: &Request<B>) -> &'static str {
    let path = req.uri().path().trim_start_matches('/');
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) => (b, k),
        None => (path, ""),
    };
    let q: Vec<&str> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
        .collect();
    let has = |k: &str| q.contains(&k);
    let copy = req.headers().contains_key("x-amz-copy-source");
    let m = req.method();
    if *m == Method::OPTIONS {
        return "Preflight";
    }
    if bucket.is_empty() {
        return if *m == Method::GET {
            "ListBuckets"
        } else {
            "Unidentified"
        };
    }
    let sub = [
        ("versioning", "BucketVersioning"),
        ("policy", "BucketPolicy"),
        ("cors", "BucketCors"),
        ("acl", "BucketAcl"),
        ("tagging", "BucketTagging"),
        ("lifecycle", "BucketLifecycleConfiguration"),
        ("encryption", "BucketEncryption"),
        ("object-lock", "ObjectLockConfiguration"),
        ("ownershipControls", "BucketOwnershipControls"),
    ]
    .into_iter()
    .find(|(k, _)| has(k))
    .map(|(_, v)| v);
    if key.is_empty() {
        return match (m, sub) {
            (&Method::GET, Some(s)) => crate::opname::get(s),
            (&Method::PUT, Some(s)) => crate::opname::put(s),
            (&Method::DELETE, Some(s)) => crate::opname::delete(s),
            (&Method::GET, None) if has("uploads") => "ListMultipartUploads",
            (&Method::GET, None) if has("versions") => "ListObjectVersions",
            (&Method::GET, None) if has("location") => "GetBucketLocation",
            (&Method::GET, None) if has("list-type") => "ListObjectsV2",
            (&Method::GET, None) => "ListObjects",
            (&Method::HEAD, _) => "HeadBucket",
            (&Method::PUT, None) => "CreateBucket",
            (&Method::DELETE, None) => "DeleteBucket",
            (&Method::POST, _) if has("delete") => "DeleteObjects",
            (&Method::POST, _) => "PostObject",
            _ => "Unidentified",
        };
    }
    match *m {
        Method::GET if has("uploadId") => "ListParts",
        Method::GET if has("tagging") => "GetObjectTagging",
        Method::GET if has("acl") => "GetObjectAcl",
        Method::GET if has("retention") => "GetObjectRetention",
        Method::GET if has("legal-hold") => "GetObjectLegalHold",
        Method::GET if has("attributes") => "GetObjectAttributes",
        Method::GET => "GetObject",
        Method::HEAD => "HeadObject",
        Method::PUT if has("uploadId") && copy => "UploadPartCopy",
        Method::PUT if has("uploadId") => "UploadPart",
        Method::PUT if has("tagging") => "PutObjectTagging",
        Method::PUT if has("acl") => "PutObjectAcl",
        Method::PUT if has("retention") => "PutObjectRetention",
        Method::PUT if has("legal-hold") => "PutObjectLegalHold",
        Method::PUT if copy => "CopyObject",
        Method::PUT => "PutObject",
        Method::DELETE if has("uploadId") => "AbortMultipartUpload",
        Method::DELETE if has("tagging") => "DeleteObjectTagging",
        Method::DELETE => "DeleteObject",
        Method::POST if has("uploads") => "CreateMultipartUpload",
        Method::POST if has("uploadId") => "CompleteMultipartUpload",
        Method::POST if has("restore") => "RestoreObject",
        _ => "Unidentified",
    }
}

fn get(sub: &'static str) -> &'static str {
    crate::opname::named("Get", sub)
}

fn put(sub: &'static str) -> &'static str {
    crate::opname::named("Put", sub)
}

fn delete(sub: &'static str) -> &'static str {
    crate::opname::named("Delete", sub)
}

fn named(verb: &str, sub: &str) -> &'static str {
    kelp_proto::metrics::intern(&format!("{verb}{sub}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    fn name(method: &str, uri: &str, copy: bool) -> &'static str {
        let mut b = http::Request::builder().method(method).uri(uri);
        if copy {
            b = b.header("x-amz-copy-source", "/b/src");
        }
        super::of(&b.body(()).unwrap())
    }

    #[test]
    fn names_the_common_operations() {
        assert_eq!(name("GET", "/", false), "ListBuckets");
        assert_eq!(name("PUT", "/b", false), "CreateBucket");
        assert_eq!(
            name("GET", "/b?list-type=2&prefix=a", false),
            "ListObjectsV2"
        );
        assert_eq!(name("GET", "/b?versioning", false), "GetBucketVersioning");
        assert_eq!(name("PUT", "/b?policy", false), "PutBucketPolicy");
        assert_eq!(name("POST", "/b?delete", false), "DeleteObjects");
        assert_eq!(name("PUT", "/b/k/x", false), "PutObject");
        assert_eq!(name("PUT", "/b/k", true), "CopyObject");
        assert_eq!(
            name("PUT", "/b/k?partNumber=1&uploadId=u", false),
            "UploadPart"
        );
        assert_eq!(name("POST", "/b/k?uploads", false), "CreateMultipartUpload");
        assert_eq!(
            name("POST", "/b/k?uploadId=u", false),
            "CompleteMultipartUpload"
        );
        assert_eq!(
            name("DELETE", "/b/k?uploadId=u", false),
            "AbortMultipartUpload"
        );
        assert_eq!(name("HEAD", "/b/k", false), "HeadObject");
        assert_eq!(name("GET", "/b/k?tagging", false), "GetObjectTagging");
    }
}
