//! Multipart uploads. An upload is the directory `<bucket>/.uploads/<uploadId>` (its
//! extended attributes hold the key and the object's metadata); part N is the file
//! `<uploadId>/<NNNN>`, written like any object. Completing writes one entry whose chunk
//! list is the parts' chunks with rebased offsets (no byte is copied; the store's chunk
//! reference counts keep them alive when the upload directory goes).

use std::collections::BTreeMap;

use kelp_filer::WriteOptions;
use kelp_filer::entry::Entry;
use kelp_filer::store::ListOptions;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Request, S3Response};

use crate::checksum::{
    self, RequestedChecksum, Trailers, UPLOAD_CHECKSUM_KEY, checksums_of, set_checksums,
};
use crate::conditional::{Conditions, copy_source_range};
use crate::copy::{now_secs, reference_chunks, reference_md5};
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::{Gateway, owner};
use crate::list::url_encode;
use crate::meta::{self, ContentHeaders, ETAG_KEY, ObjectMeta, PARTS_KEY, UPLOAD_KEY, hex, unhex};
use crate::object::decode_md5;
use crate::retention::{LockRequest, PENDING_LOCK_PREFIX};

/// Every part but the last must be at least this big.
pub const MIN_PART_SIZE: u64 = 5 << 20;
const MAX_PART_NUMBER: i32 = 10_000;

fn check_part_number(n: i32) -> GatewayResult<()> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(GatewayError::InvalidArgument(format!(
            "part number {n} is not between 1 and {MAX_PART_NUMBER}"
        )))
    }
}

impl Gateway {
    /// The upload directory of `id`, if it is an upload of `key` in `bucket`.
    async fn upload_dir(&self, bucket: &str, key: &str, id: &str) -> GatewayResult<Entry> {
        let dir = self.paths.upload(bucket, id)?;
        match self.filer.find(&dir).await? {
            Some(e)
                if e.is_directory
                    && e.extended.get(UPLOAD_KEY).map(Vec::as_slice) == Some(key.as_bytes()) =>
            {
                Ok(e)
            }
            _ => {
                self.bucket_entry(bucket).await?;
                Err(GatewayError::NoSuchUpload(id.to_string()))
            }
        }
    }

    /// Every stored part of an upload, by part number.
    async fn parts(&self, dir: &str) -> GatewayResult<BTreeMap<i32, Entry>> {
        let mut out = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let opts = ListOptions {
                start_after: after.clone(),
                limit: 1000,
                ..ListOptions::default()
            };
            let page = self.filer.list(dir, &opts).await?;
            let full = page.len() == opts.limit;
            after = page.last().map(|e| e.name().to_string());
            for e in page {
                if let Ok(n) = e.name().parse::<i32>()
                    && !e.is_directory
                {
                    out.insert(n, e);
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }

    pub async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> GatewayResult<S3Response<CreateMultipartUploadOutput>> {
        let i = &req.input;
        let op = self.paths.object(&i.bucket, &i.key)?;
        if op.dir_marker {
            return Err(GatewayError::InvalidRequest(
                "a key ending in '/' is a directory marker and cannot be uploaded in parts".into(),
            ));
        }
        let bucket = self.bucket_entry(&i.bucket).await?;
        // The object lock the request asks for, kept aside until the upload completes
        // (on the upload's directory it would lock the directory itself).
        let explicit = LockRequest {
            mode: i.object_lock_mode.as_ref(),
            until: i.object_lock_retain_until_date.as_ref(),
            legal_hold: i.object_lock_legal_hold_status.as_ref(),
        };
        let lock = if explicit.given() {
            explicit.attrs(&bucket, true)?
        } else {
            Vec::new()
        };
        let mut m = ObjectMeta::new(
            i.content_type.as_deref(),
            ContentHeaders {
                cache_control: i.cache_control.as_deref(),
                content_disposition: i.content_disposition.as_deref(),
                content_encoding: i.content_encoding.as_deref(),
                content_language: i.content_language.as_deref(),
                expires: None,
            },
            i.metadata.as_ref(),
            i.tagging.as_deref(),
        )?;
        m.acl = Some(self.request_acl(
            &req.extensions,
            Some(&crate::ownership::BucketAccess::of(&bucket)),
            crate::ownership::object_acl_of!(i),
        )?);
        let sum =
            checksum::upload_checksum(i.checksum_algorithm.as_ref(), i.checksum_type.as_ref())?;
        let sealing = self
            .seal_new(&self.wanted(&crate::sse::asked_of!(i), &bucket)?)
            .await?;
        let id = format!("{:032x}", rand::random::<u128>());
        let mut e = Entry::new_dir(self.paths.upload(&i.bucket, &id)?, now_secs());
        e.attr.mime = m.content_type.clone().unwrap_or_default();
        e.extended = m.extended().into_iter().collect();
        e.extended
            .insert(UPLOAD_KEY.into(), i.key.clone().into_bytes());
        e.extended.extend(
            lock.into_iter()
                .map(|(k, v)| (format!("{PENDING_LOCK_PREFIX}{k}"), v)),
        );
        if let Some((a, t)) = &sum {
            e.extended.insert(
                UPLOAD_CHECKSUM_KEY.into(),
                checksum::encode_upload_checksum(*a, t),
            );
        }
        // The upload keeps how its parts are sealed; the object inherits it.
        e.extended.extend(sealing.attrs);
        self.filer.put_entry(e).await?;
        let mut out = CreateMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            upload_id: Some(id),
            checksum_algorithm: sum
                .as_ref()
                .map(|(a, _)| ChecksumAlgorithm::from_static(a.name())),
            checksum_type: sum.map(|(_, t)| t),
            ssekms_encryption_context: sealing.echo.context.clone(),
            ..Default::default()
        };
        crate::sse::echo_into!(out, &sealing.echo);
        Ok(S3Response::new(out))
    }

    pub async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> GatewayResult<S3Response<UploadPartOutput>> {
        let trailers = Trailers::of(&req);
        let i = req.input;
        check_part_number(i.part_number)?;
        let dir = self.upload_dir(&i.bucket, &i.key, &i.upload_id).await?;
        // Every part is sealed with the upload's data key (SSE-C: the same customer key).
        let (key, echo) = self
            .opening(&dir, crate::sse::customer_of!(i)?.as_ref())
            .await?;
        let expect_md5 = i.content_md5.as_deref().map(decode_md5).transpose()?;
        let given = checksums_of!(i);
        let mut want = checksum::requested(&given, i.checksum_algorithm.as_ref(), &req.headers)?;
        // An upload created with an algorithm checksums every part with it.
        if let Some((algo, _)) = checksum::decode_upload_checksum(&dir) {
            match &want {
                None => want = Some(RequestedChecksum::compute(algo)),
                Some(w) if w.algo != algo => {
                    return Err(GatewayError::InvalidRequest(format!(
                        "the upload was created with the {} checksum; this part carries {}",
                        algo.name(),
                        w.algo.name()
                    )));
                }
                Some(_) => {}
            }
        }
        let (body, late) = match want {
            Some(w) => {
                let (b, late) = checksum::check_body(i.body, w, trailers);
                (Some(b), Some(late))
            }
            None => (i.body, None),
        };
        let opts = WriteOptions {
            expect_md5,
            size_hint: i.content_length.and_then(|n| u64::try_from(n).ok()),
            late_extended: late,
            extended: crate::sse::part_marker(&dir).into_iter().collect(),
            target: kelp_filer::chunks::WriteTarget {
                cipher: key,
                ..Default::default()
            },
            ..WriteOptions::default()
        };
        let path = format!("{}/{:04}", dir.path, i.part_number);
        let e = self.write_body(&path, body, opts).await?;
        let mut out = UploadPartOutput {
            e_tag: Some(meta::etag_dto(&e)),
            ..Default::default()
        };
        crate::sse::echo_into!(out, &echo);
        if let Some((c, _)) = checksum::stored(&e) {
            set_checksums!(out, c);
        }
        Ok(S3Response::new(out))
    }

    pub async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> GatewayResult<S3Response<UploadPartCopyOutput>> {
        let i = &req.input;
        check_part_number(i.part_number)?;
        let dir = self.upload_dir(&i.bucket, &i.key, &i.upload_id).await?;
        let cond = Conditions {
            if_match: i.copy_source_if_match.as_ref(),
            if_none_match: i.copy_source_if_none_match.as_ref(),
            if_modified_since: i.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
        };
        let src = self.copy_source_entry(&i.copy_source, cond).await?;
        let size = meta::size(&src);
        let (start, end) = match i.copy_source_range.as_deref() {
            Some(r) => copy_source_range(r, size)?,
            None => (0, size),
        };
        let path = format!("{}/{:04}", dir.path, i.part_number);
        let (src_key, _) = self
            .opening(&src, crate::sse::customer_of!(i, copy)?.as_ref())
            .await?;
        let (key, echo) = self
            .opening(&dir, crate::sse::customer_of!(i)?.as_ref())
            .await?;
        let shared = if src_key.is_none() && key.is_none() {
            reference_chunks(&src, start, end)
        } else {
            None
        };
        let e = match shared {
            Some(chunks) => {
                let mut e = Entry::new_file(path, now_secs());
                e.attr.md5 = if (start, end) == (0, size) && src.attr.md5.len() == 16 {
                    src.attr.md5.clone()
                } else {
                    reference_md5(&chunks)
                };
                e.chunks = chunks;
                e.attr.file_size = end - start;
                self.filer.put_entry(e).await?
            }
            None => {
                // The range starts inside a chunk, or bytes are sealed on either side:
                // copy them (opened with the source's key, sealed with the upload's).
                let body = self.filer.read_stream_with(src, start, end, src_key);
                let opts = WriteOptions {
                    size_hint: Some(end - start),
                    extended: crate::sse::part_marker(&dir).into_iter().collect(),
                    target: kelp_filer::chunks::WriteTarget {
                        cipher: key,
                        ..Default::default()
                    },
                    ..WriteOptions::default()
                };
                self.filer.write_fresh(&path, Box::pin(body), opts).await?
            }
        };
        let mut out = UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(meta::etag_dto(&e)),
                last_modified: Some(meta::last_modified(&e)),
                ..Default::default()
            }),
            ..Default::default()
        };
        crate::sse::echo_into!(out, &echo);
        Ok(S3Response::new(out))
    }

    pub async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> GatewayResult<S3Response<CompleteMultipartUploadOutput>> {
        let i = &req.input;
        let op = self.paths.object(&i.bucket, &i.key)?;
        let dir = self.upload_dir(&i.bucket, &i.key, &i.upload_id).await?;
        let asked = i
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_ref())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                GatewayError::MalformedXml("you must specify at least one part".into())
            })?;
        let stored = self.parts(&dir.path).await?;
        let mut used: Vec<(&Entry, u64)> = Vec::with_capacity(asked.len());
        let mut chunks = Vec::new();
        let mut sizes = Vec::new();
        let mut digests = Md5::new();
        let mut offset = 0u64;
        let mut prev = 0;
        for (idx, p) in asked.iter().enumerate() {
            let n = p
                .part_number
                .ok_or_else(|| GatewayError::MalformedXml("a part has no PartNumber".into()))?;
            if n <= prev {
                return Err(GatewayError::InvalidPartOrder);
            }
            prev = n;
            let e = stored.get(&n).ok_or_else(|| {
                GatewayError::InvalidPart(format!("part {n} was not uploaded (or was aborted)"))
            })?;
            let etag = meta::etag(e);
            if let Some(t) = &p.e_tag
                && t.value().trim_matches('"') != etag
            {
                return Err(GatewayError::InvalidPart(format!(
                    "part {n} has ETag {etag}, not {}",
                    t.value()
                )));
            }
            let listed = checksums_of!(p);
            checksum::check_listed_part(n, &listed, e)?;
            let size = e.attr.file_size;
            used.push((e, size));
            if idx + 1 < asked.len() && size < MIN_PART_SIZE {
                return Err(GatewayError::EntityTooSmall { part: n, size });
            }
            if !e.content.is_empty() {
                return Err(GatewayError::Internal(format!(
                    "part {n} is stored inline and cannot be shared"
                )));
            }
            let digest = unhex(&etag)
                .filter(|d| d.len() == 16)
                .ok_or_else(|| GatewayError::Internal(format!("part {n} has no MD5")))?;
            digests.update(&digest);
            chunks.extend(e.chunks.iter().map(|c| {
                let mut c = c.clone();
                c.offset += offset;
                c
            }));
            offset += size;
            sizes.push(size.to_string());
        }
        let etag = format!("{}-{}", hex(&digests.finalize()), asked.len());
        let object_sum = match checksum::decode_upload_checksum(&dir) {
            Some((algo, t)) => checksum::combine_parts(algo, &t, &used).map(|v| (algo, v, t)),
            None => None,
        };
        let claimed = checksums_of!(i);
        // A COMPOSITE value may be given with or without its `-N`.
        let bare = |v: &str| v.trim().split('-').next().unwrap_or("").to_string();
        if let Some((algo, v, _)) = &object_sum
            && let Some(c) = algo.field(&claimed)
            && bare(c) != bare(v)
        {
            return Err(GatewayError::BadDigest(format!(
                "the object's {} is {v}, not {c}",
                algo.name()
            )));
        }
        let precondition = self
            .write_precondition(&op, &i.key, i.if_match.as_ref(), i.if_none_match.as_ref())
            .await?;
        let bucket = self.bucket_entry(&i.bucket).await?;
        let mut e = Entry::new_file(op.path.clone(), now_secs());
        e.chunks = chunks;
        e.attr.file_size = offset;
        e.attr.mime = dir.attr.mime.clone();
        e.extended = dir.extended.clone();
        e.extended.remove(UPLOAD_KEY);
        e.extended.remove(UPLOAD_CHECKSUM_KEY);
        let pending: Vec<(String, Vec<u8>)> = e
            .extended
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(PENDING_LOCK_PREFIX)
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        e.extended
            .retain(|k, _| !k.starts_with(PENDING_LOCK_PREFIX));
        if pending.is_empty() {
            // No lock of its own: the bucket's default retention, from now.
            let none = LockRequest {
                mode: None,
                until: None,
                legal_hold: None,
            };
            e.extended.extend(none.attrs(&bucket, true)?);
        } else {
            e.extended.extend(pending);
        }
        if let Some((algo, v, t)) = &object_sum {
            e.extended.extend(checksum::attrs(*algo, v.clone(), t));
        }
        e.extended
            .insert(ETAG_KEY.into(), etag.clone().into_bytes());
        e.extended
            .insert(PARTS_KEY.into(), sizes.join(",").into_bytes());
        let state = crate::versions::State::of(&bucket);
        let (_, version_id) = self
            .commit_object(&i.bucket, state, &i.key, &op, e, precondition)
            .await?;
        // The object now references the parts' chunks: dropping the parts frees nothing
        // it uses, and frees the parts that were left out.
        self.filer.delete(&dir.path, true).await?;
        let mut out = CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            e_tag: Some(ETag::Strong(etag)),
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            version_id,
            ..Default::default()
        };
        let echo = crate::sse::stored_echo(&dir);
        out.server_side_encryption = echo.sse;
        out.ssekms_key_id = echo.kms_key_id;
        out.bucket_key_enabled = echo.bucket_key;
        if let Some((algo, v, t)) = object_sum {
            set_checksums!(out, checksum::one(algo, v));
            out.checksum_type = Some(t);
        }
        Ok(S3Response::new(out))
    }

    pub async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> GatewayResult<S3Response<AbortMultipartUploadOutput>> {
        let i = &req.input;
        let dir = self.upload_dir(&i.bucket, &i.key, &i.upload_id).await?;
        self.filer.delete(&dir.path, true).await?;
        Ok(S3Response::with_status(
            AbortMultipartUploadOutput::default(),
            http::StatusCode::NO_CONTENT,
        ))
    }

    pub async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> GatewayResult<S3Response<ListPartsOutput>> {
        let i = &req.input;
        let dir = self.upload_dir(&i.bucket, &i.key, &i.upload_id).await?;
        let marker = i.part_number_marker.unwrap_or(0);
        let max = usize::try_from(i.max_parts.unwrap_or(1000))
            .unwrap_or(1000)
            .min(1000);
        let stored = self.parts(&dir.path).await?;
        let mut after = stored.range(marker + 1..);
        let parts: Vec<Part> = after
            .by_ref()
            .take(max)
            .map(|(n, e)| {
                let mut p = Part {
                    part_number: Some(*n),
                    e_tag: Some(meta::etag_dto(e)),
                    size: i64::try_from(e.attr.file_size).ok(),
                    last_modified: Some(meta::last_modified(e)),
                    ..Default::default()
                };
                if let Some((c, _)) = checksum::stored(e) {
                    set_checksums!(p, c);
                }
                p
            })
            .collect();
        let truncated = after.next().is_some();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            upload_id: Some(i.upload_id.clone()),
            part_number_marker: i.part_number_marker,
            next_part_number_marker: parts
                .last()
                .and_then(|p| p.part_number)
                .filter(|_| truncated),
            max_parts: i32::try_from(max).ok(),
            is_truncated: Some(truncated),
            initiator: Some(Initiator {
                display_name: Some("kelp".into()),
                id: Some("kelp".into()),
            }),
            owner: Some(owner()),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    pub async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> GatewayResult<S3Response<ListMultipartUploadsOutput>> {
        let i = &req.input;
        self.bucket_entry(&i.bucket).await?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let mut uploads: Vec<(String, i64, String)> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let opts = ListOptions {
                start_after: after.clone(),
                limit: 1000,
                ..ListOptions::default()
            };
            let page = self
                .filer
                .list(&self.paths.uploads(&i.bucket), &opts)
                .await?;
            let full = page.len() == opts.limit;
            after = page.last().map(|e| e.name().to_string());
            for e in page {
                if let Some(k) = e.extended.get(UPLOAD_KEY)
                    && let Ok(k) = String::from_utf8(k.clone())
                    && k.starts_with(&prefix)
                {
                    uploads.push((k, e.attr.crtime, e.name().to_string()));
                }
            }
            if !full {
                break;
            }
        }
        uploads.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
        let key_marker = i.key_marker.clone().unwrap_or_default();
        let id_marker = i.upload_id_marker.clone();
        let max = usize::try_from(i.max_uploads.unwrap_or(1000))
            .unwrap_or(1000)
            .min(1000);
        let enc = |s: &str| match &i.encoding_type {
            Some(t) if t.as_str() == EncodingType::URL => url_encode(s),
            _ => s.to_string(),
        };
        let delim = i.delimiter.clone().filter(|d| !d.is_empty());
        let (mut out, mut prefixes) = (Vec::new(), Vec::<String>::new());
        let mut truncated = false;
        let (mut next_key, mut next_id) = (None, None);
        for (k, t, id) in uploads {
            let past_marker = key_marker.is_empty()
                || k > key_marker
                || (k == key_marker && id_marker.as_ref().is_some_and(|m| id > *m));
            if !past_marker {
                continue;
            }
            let cp = delim.as_deref().and_then(|d| {
                k[prefix.len()..]
                    .find(d)
                    .map(|j| k[..prefix.len() + j + d.len()].to_string())
            });
            if let Some(cp) = &cp
                && prefixes.last() == Some(cp)
            {
                continue;
            }
            if out.len() + prefixes.len() == max {
                truncated = true;
                break;
            }
            next_key = Some(k.clone());
            next_id = Some(id.clone());
            match cp {
                Some(cp) => prefixes.push(cp),
                None => out.push(MultipartUpload {
                    key: Some(enc(&k)),
                    upload_id: Some(id),
                    initiated: Some(meta::last_modified(&Entry {
                        attr: kelp_filer::entry::Attributes {
                            mtime: t,
                            ..Default::default()
                        },
                        ..Default::default()
                    })),
                    initiator: Some(Initiator {
                        display_name: Some("kelp".into()),
                        id: Some("kelp".into()),
                    }),
                    owner: Some(owner()),
                    storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                    ..Default::default()
                }),
            }
        }
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket.clone()),
            prefix: Some(enc(&prefix)),
            delimiter: i.delimiter.as_deref().map(enc),
            key_marker: Some(enc(&key_marker)),
            upload_id_marker: i.upload_id_marker.clone(),
            next_key_marker: next_key.filter(|_| truncated).map(|k| enc(&k)),
            next_upload_id_marker: next_id.filter(|_| truncated),
            max_uploads: i32::try_from(max).ok(),
            is_truncated: Some(truncated),
            encoding_type: i.encoding_type.clone(),
            uploads: Some(out),
            common_prefixes: Some(
                prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(&p)),
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }
}
