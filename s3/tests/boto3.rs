//! The S3 gateway driven by boto3 (`tests/py/s3_checks.py`): listing order and
//! pagination over 2,500 keys, objects (metadata, conditionals, ranges, Content-MD5,
//! awkward keys, directory markers, copies), DeleteObjects, multipart rules and errors,
//! additional checksums (headers and trailers), authorization with an s3.json,
//! server-side encryption (SSE-C, SSE-S3, SSE-KMS, bucket defaults) and lifecycle rules.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn boto3_listing_order_and_pagination() {
    let s = Stack::open();
    println!("{}", s.python("listing", &["ANY", "KEY"]));
}

/// Object semantics, signed. Many of its requests are refused before their body is
/// read; this once desynchronised keep-alive connections (fixed in `server.rs`).
#[test]
fn boto3_objects_signed() {
    let s = Stack::with_auth();
    s.python("objects", &[AK, SK]);
}

/// The same object semantics with no identities configured.
#[test]
fn boto3_objects_open() {
    let s = Stack::open();
    s.python("objects", &["ANY", "KEY"]);
}

/// Versioning, ACLs, CORS, policy, lifecycle, encryption, bucket tags, object lock:
/// answered as for a bucket that never had them; signed, so the auth mapping is used.
#[test]
fn boto3_bucket_settings() {
    let s = Stack::with_auth();
    s.python("bucket_settings", &[AK, SK]);
}

/// If-None-Match / If-Match on PutObject and CompleteMultipartUpload and conditional
/// DeleteObject, atomic: of 20 racing `If-None-Match: *` writers exactly one wins.
#[test]
fn boto3_conditional_writes() {
    let s = Stack::with_auth();
    s.python("conditional_writes", &[AK, SK]);
}

/// GetObjectAttributes: ETag, checksum, size, storage class, parts with paging.
#[test]
fn boto3_object_attributes() {
    let s = Stack::with_auth();
    s.python("object_attributes", &[AK, SK]);
}

/// Bucket versioning: version lifecycles, delete markers, the null version of a
/// suspended bucket, versioned copies, tagging and DeleteObjects by version.
#[test]
fn boto3_versioning() {
    let s = Stack::with_auth();
    s.python("versioning", &[AK, SK]);
}

/// Object lock: default retention, GOVERNANCE with an admin's bypass, COMPLIANCE,
/// legal holds, and the filer REST API refusing to remove locked data.
#[test]
fn boto3_object_lock() {
    let s = Stack::with_auth();
    let filer = s.filer_endpoint.clone();
    s.python("object_lock", &[AK, SK, &filer]);
}

/// A filer REST overwrite of a multipart object with checksums drops its S3-only
/// attributes: no part table or checksum lies about the new bytes.
#[test]
fn boto3_rest_overwrite_clears_s3_attributes() {
    let s = Stack::with_auth();
    let filer = s.filer_endpoint.clone();
    s.python("rest_overwrite", &[AK, SK, &filer]);
}

/// ListObjectVersions paging over 2,000 versions of three keys, with a delete marker.
#[test]
fn boto3_version_paging() {
    let s = Stack::open();
    s.python("version_paging", &["ANY", "KEY"]);
}

/// Unicode metadata (RFC 2047), max-keys=0, empty delimiters, fetch-owner.
#[test]
fn boto3_details() {
    let s = Stack::with_auth();
    s.python("details", &[AK, SK]);
}

/// ACLs (canned, grant headers, bodies), owners, ownership controls, public access block.
#[test]
fn boto3_acls() {
    let s = Stack::with_auth();
    s.python("acls", &[AK, SK]);
}

/// Bucket policies: public prefix, Deny over a user's rights, IP and TLS conditions.
#[test]
fn boto3_policies() {
    let s = Stack::with_auth();
    s.python("policies", &[AK, SK]);
}

/// Bucket CORS rules, preflights from them, headers on actual answers.
#[test]
fn boto3_cors() {
    let s = Stack::with_auth();
    s.python("cors", &[AK, SK]);
}

#[test]
fn boto3_delete_objects() {
    let s = Stack::open();
    s.python("delete_objects", &["ANY", "KEY"]);
}

#[test]
fn boto3_multipart_signed() {
    let s = Stack::with_auth();
    s.python("multipart", &[AK, SK]);
}

#[test]
fn boto3_auth_identities() {
    let s = Stack::with_auth();
    s.python("auth", &[AK, SK]);
}

/// `x-amz-checksum-*`: verified, stored, echoed; multipart COMPOSITE and FULL_OBJECT;
/// checksums in aws-chunked trailers, signed (s3s decodes) and open (the gateway does).
#[test]
fn boto3_checksums() {
    let s = Stack::with_auth();
    s.python("checksums", &[AK, SK]);
    s.python("trailers", &[AK, SK]);
    drop(s);
    let s = Stack::open();
    s.python("trailers", &["ANY", "KEY"]);
}

/// Browser POST-form uploads with a presigned policy: accepted within the policy,
/// refused outside it or with a forged signature.
#[test]
fn boto3_post_form_upload() {
    let s = Stack::with_auth();
    s.python("post_form", &[AK, SK]);
}

/// Virtual-hosted-style requests (`-s3.domainName`), signed, next to path style.
#[test]
fn boto3_virtual_host_addressing() {
    let s = Stack::with_auth();
    s.python("virtual_host", &[AK, SK]);
}

#[test]
fn streaming_signature_bodies() {
    // Signed: s3s verifies every chunk signature; a tampered chunk stores nothing.
    let s = Stack::with_auth();
    s.python("streaming", &[AK, SK, "verifies"]);
    drop(s);
    // Open: the gateway unwraps aws-chunked itself.
    let s = Stack::open();
    s.python("streaming", &["ANY", "KEY", "open"]);
}

/// SSE-C: a 40 MiB object read whole and in ranges inside and across its 8 MiB chunks,
/// missing and wrong keys refused (400, 403), copies between keys and to and from
/// plain, multipart (with a part copy) under one key.
#[test]
fn boto3_sse_c() {
    let s = Stack::with_auth();
    s.python("sse_c", &[AK, SK]);
}

/// SSE-C over plain HTTP is refused unless the gateway allows it.
#[test]
fn boto3_sse_c_needs_tls() {
    let ids = kelp_s3::Identities::from_json(&identities_json()).unwrap();
    let s = Stack::start_with(ids, |c| c.allow_insecure_sse = false);
    s.python("sse_c_needs_tls", &[AK, SK]);
}

/// SSE-S3 and SSE-KMS (default key, a named key by name, alias and ARN, an encryption
/// context, an unknown key), copies, multipart, default bucket encryption; then the
/// key is rotated in the key file and what its old version sealed still reads.
#[test]
fn boto3_sse_s3_kms_and_rotation() {
    use kelp_s3::sse::kms::KeyFile;
    let s = Stack::with_auth();
    let file = s.dir.path().join("filer").join("s3-keys.json");
    let mut keys = KeyFile::read(&file).unwrap();
    keys.create("app").unwrap();
    keys.write(&file).unwrap();
    s.python("sse_s3_kms", &[AK, SK]);
    let mut keys = KeyFile::read(&file).unwrap();
    assert_eq!(keys.rotate("app").unwrap(), 2);
    keys.write(&file).unwrap();
    s.python("rotated_keys_still_read", &[AK, SK]);
}

/// No byte of an encrypted object's plaintext is in the volume server's files (and a
/// plain object's is: the scan works).
#[test]
fn boto3_sse_no_plaintext_at_rest() {
    let s = Stack::with_auth();
    let volumes = s.dir.path().join("volume");
    s.python("no_plaintext_at_rest", &[AK, SK, volumes.to_str().unwrap()]);
}

/// A stack whose lifecycle "day" is 2 seconds.
fn lifecycle_stack() -> Stack {
    let ids = kelp_s3::Identities::from_json(&identities_json()).unwrap();
    Stack::start_with(ids, |c| c.lifecycle_day_secs = 2)
}

/// Lifecycle expiration by prefix, tag and size (`And`), `x-amz-expiration` on PUT,
/// GET and HEAD, and expired bytes really gone: the chunk deleted, the volume
/// vacuumed smaller.
#[test]
fn boto3_lifecycle_expiration() {
    let s = lifecycle_stack();
    let (filer, master) = (s.filer_endpoint.clone(), s.master_endpoint.clone());
    s.python("expiration", &[AK, SK, &filer, &master]);
}

/// NoncurrentVersionExpiration with NewerNoncurrentVersions, and lone delete markers
/// removed (ExpiredObjectDeleteMarker).
#[test]
fn boto3_lifecycle_versions() {
    let s = lifecycle_stack();
    s.python("versions", &[AK, SK]);
}

/// AbortIncompleteMultipartUpload: a stale upload under the prefix goes, another stays.
#[test]
fn boto3_lifecycle_aborts() {
    let s = lifecycle_stack();
    s.python("aborts", &[AK, SK]);
}
