//! Object operations: PutObject (streamed into the filer, never buffered), GetObject and
//! HeadObject (conditionals, ranges, part numbers, versions, streamed from the filer),
//! and object tagging. Deletes live in `delete.rs`.

use bytes::Bytes;
use kelp_filer::entry::Entry;
use kelp_filer::{FilerError, Precondition, WriteOptions};
use s3s::dto::*;
use s3s::{S3Request, S3Response};

use crate::checksum::{self, Trailers, checksums_of, set_checksums};
use crate::conditional::{Conditions, byte_range};
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::keys::ObjectPath;
use crate::meta::{self, ContentHeaders, DIR_MARKER_KEY, ObjectMeta, TAG_PREFIX};
use crate::retention::{LockRequest, LockView};
use crate::versions;

/// S3's largest single PUT.
const MAX_PUT: i64 = 5 << 30;

/// The 16 bytes of a `Content-MD5` header.
pub fn decode_md5(v: &str) -> GatewayResult<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .ok()
        .filter(|b| b.len() == 16)
        .ok_or_else(|| {
            GatewayError::InvalidDigest(format!("Content-MD5 {v:?} is not a base64 MD5"))
        })
}

/// Maps a failed filer write: a Content-MD5 mismatch is BadDigest.
pub fn write_error(e: FilerError, md5_given: bool) -> GatewayError {
    match e {
        FilerError::BadRequest(m) if md5_given && m.contains("Content-MD5") => {
            GatewayError::BadDigest(
                "the Content-MD5 you specified did not match what was received".into(),
            )
        }
        other => GatewayError::Filer(other),
    }
}

fn format_http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// The stored checksum a GET or HEAD returns: only when asked (`x-amz-checksum-mode:
/// ENABLED`) and for the whole object, as S3 does (a range has no stored checksum).
fn returned_checksum(
    e: &Entry,
    v: &ObjectView,
    mode: Option<&ChecksumMode>,
) -> Option<(Checksum, ChecksumType)> {
    let enabled = mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED));
    if !enabled || v.range.is_some() || v.parts_count.is_some() {
        return None;
    }
    checksum::stored(e)
}

/// What GetObject and HeadObject answer for one entry.
struct ObjectView {
    size: u64,
    range: Option<(u64, u64)>,
    parts_count: Option<i32>,
}

impl Gateway {
    /// The object stored under `op`, if any (a directory only counts as the marker key).
    pub async fn find_object(&self, op: &ObjectPath) -> GatewayResult<Option<Entry>> {
        Ok(match self.filer.find(&op.path).await? {
            Some(e) if op.dir_marker => {
                (e.is_directory && e.extended.contains_key(DIR_MARKER_KEY)).then_some(e)
            }
            Some(e) if !e.is_directory => Some(e),
            _ => None,
        })
    }

    /// Checks a write's `If-Match` / `If-None-Match` against the object at `op` now, and
    /// returns the precondition under which the filer lands the write: so the check and
    /// the write are one atomic step, and of racing conditional writers one wins.
    pub async fn write_precondition(
        &self,
        op: &ObjectPath,
        key: &str,
        if_match: Option<&ETagCondition>,
        if_none_match: Option<&ETagCondition>,
    ) -> GatewayResult<Option<Precondition>> {
        if if_match.is_none() && if_none_match.is_none() {
            return Ok(None);
        }
        if if_none_match.is_some_and(|c| !matches!(c, ETagCondition::Any)) {
            return Err(GatewayError::NotImplemented(
                "If-None-Match on a write takes only *".into(),
            ));
        }
        let found = self.find_object(op).await?;
        match (if_match, found) {
            (Some(_), None) => Err(GatewayError::NoSuchKey(key.to_string())),
            (Some(m), Some(e)) => {
                let c = Conditions {
                    if_match: Some(m),
                    if_none_match,
                    ..Conditions::default()
                };
                c.check(&meta::etag(&e), e.attr.mtime, false)?;
                Ok(Some(Precondition::Unchanged(Box::new(e))))
            }
            (None, Some(_)) => Err(GatewayError::PreconditionFailed),
            (None, None) => Ok(Some(Precondition::Absent)),
        }
    }

    /// NoSuchBucket if the bucket is missing, else NoSuchKey.
    /// In a versioned bucket whose latest version of `key` is a delete marker, the
    /// marker's 404 (with `x-amz-delete-marker`).
    pub async fn missing(&self, bucket: &str, key: &str) -> GatewayError {
        match self.bucket_entry(bucket).await {
            Err(e) => e,
            Ok(b) if versions::State::of(&b).is_versioned() => {
                match self.latest_marker(bucket, key).await {
                    Ok(Some(m)) => GatewayError::DeleteMarker {
                        key: key.to_string(),
                        version_id: versions::id_of(&m),
                        last_modified: m.attr.mtime,
                        by_id: false,
                    },
                    Ok(None) => GatewayError::NoSuchKey(key.to_string()),
                    Err(e) => e,
                }
            }
            Ok(_) => GatewayError::NoSuchKey(key.to_string()),
        }
    }

    pub async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> GatewayResult<S3Response<PutObjectOutput>> {
        let trailers = Trailers::of(&req);
        let i = req.input;
        let op = self.paths.object(&i.bucket, &i.key)?;
        let bucket = self.bucket_entry(&i.bucket).await?;
        let state = versions::State::of(&bucket);
        let given = checksums_of!(i);
        let want = checksum::requested(&given, i.checksum_algorithm.as_ref(), &req.headers)?;
        let integrity = i.content_md5.is_some() || want.is_some();
        let lock = LockRequest {
            mode: i.object_lock_mode.as_ref(),
            until: i.object_lock_retain_until_date.as_ref(),
            legal_hold: i.object_lock_legal_hold_status.as_ref(),
        }
        .attrs(&bucket, integrity)?;
        if i.content_length.is_some_and(|n| n > MAX_PUT) {
            return Err(GatewayError::EntityTooLarge(
                "a single PUT holds at most 5 GiB: use a multipart upload".into(),
            ));
        }
        let mut meta = ObjectMeta::new(
            i.content_type.as_deref(),
            ContentHeaders {
                cache_control: i.cache_control.as_deref(),
                content_disposition: i.content_disposition.as_deref(),
                content_encoding: i.content_encoding.as_deref(),
                content_language: i.content_language.as_deref(),
                expires: i.expires.as_ref().and_then(format_http_date),
            },
            i.metadata.as_ref(),
            i.tagging.as_deref(),
        )?;
        meta.acl = Some(self.request_acl(
            &req.extensions,
            Some(&crate::ownership::BucketAccess::of(&bucket)),
            crate::ownership::object_acl_of!(i),
        )?);
        let expect_md5 = i.content_md5.as_deref().map(decode_md5).transpose()?;
        let precondition = if op.dir_marker {
            None
        } else {
            self.write_precondition(&op, &i.key, i.if_match.as_ref(), i.if_none_match.as_ref())
                .await?
        };
        let (body, late) = match want {
            Some(w) if !op.dir_marker => {
                let (b, late) = checksum::check_body(i.body, w, trailers);
                (Some(b), Some(late))
            }
            _ => (i.body, None),
        };
        if op.dir_marker {
            let e = self.put_dir_marker(&op.path, body, meta).await?;
            return Ok(S3Response::new(PutObjectOutput {
                e_tag: Some(meta::etag_dto(&e)),
                ..Default::default()
            }));
        }
        let wanted = self.wanted(&crate::sse::asked_of!(i), &bucket)?;
        let sealing = self.seal_new(&wanted).await?;
        let mut extended = meta.extended();
        extended.extend(lock);
        extended.extend(sealing.attrs);
        let opts = WriteOptions {
            mime: meta.content_type.clone().unwrap_or_default(),
            extended,
            expect_md5,
            size_hint: i.content_length.and_then(|n| u64::try_from(n).ok()),
            late_extended: late,
            precondition,
            keeps_replaced: state.is_versioned(),
            target: kelp_filer::chunks::WriteTarget {
                cipher: sealing.key,
                ..Default::default()
            },
            ..WriteOptions::default()
        };
        let (e, version_id) = if state.is_versioned() {
            let pre = opts.precondition.clone();
            let e = self.upload_body(&op.path, body, opts).await?;
            let stored = e.chunks.clone();
            match self
                .commit_object(&i.bucket, state, &i.key, &op, e, pre)
                .await
            {
                Ok(done) => done,
                Err(err) => {
                    self.filer.discard(&stored).await;
                    return Err(err);
                }
            }
        } else {
            (self.write_body(&op.path, body, opts).await?, None)
        };
        let mut out = PutObjectOutput {
            e_tag: Some(meta::etag_dto(&e)),
            size: i64::try_from(e.attr.file_size).ok(),
            version_id,
            ssekms_encryption_context: sealing.echo.context.clone(),
            expiration: self.expiration_of(&bucket, &i.key, &e).await,
            ..Default::default()
        };
        crate::sse::echo_into!(out, &sealing.echo);
        if let Some((c, t)) = checksum::stored(&e) {
            set_checksums!(out, c);
            out.checksum_type = Some(t);
        }
        Ok(S3Response::new(out))
    }

    /// Streams a request body into a new file at `path` (see `Filer::write_fresh`);
    /// a failure of the body itself is reported as such.
    pub async fn write_body(
        &self,
        path: &str,
        body: Option<StreamingBlob>,
        opts: WriteOptions,
    ) -> GatewayResult<Entry> {
        self.stream_body(path, body, opts, false).await
    }

    /// Stores a request body as chunks and returns the entry that would hold them,
    /// uncommitted (see `Filer::upload_new`): the caller commits it or discards them.
    pub async fn upload_body(
        &self,
        path: &str,
        body: Option<StreamingBlob>,
        opts: WriteOptions,
    ) -> GatewayResult<Entry> {
        self.stream_body(path, body, opts, true).await
    }

    async fn stream_body(
        &self,
        path: &str,
        body: Option<StreamingBlob>,
        opts: WriteOptions,
        uncommitted: bool,
    ) -> GatewayResult<Entry> {
        let md5_given = opts.expect_md5.is_some();
        let written = match body {
            Some(b) => {
                let (b, errors) = crate::body::watch(b);
                let r = if uncommitted {
                    self.filer.upload_new(path, b, opts).await
                } else {
                    self.filer.write_fresh(path, b, opts).await
                };
                if r.is_err()
                    && let Some(e) = errors.classify()
                {
                    return Err(e);
                }
                r
            }
            None => {
                let empty = futures::stream::empty::<Result<Bytes, std::io::Error>>();
                if uncommitted {
                    self.filer.upload_new(path, empty, opts).await
                } else {
                    self.filer.write_fresh(path, empty, opts).await
                }
            }
        };
        written.map_err(|e| write_error(e, md5_given))
    }

    /// `PUT <dir>/`: the directory carries the marker (and the object's metadata).
    async fn put_dir_marker(
        &self,
        dir: &str,
        body: Option<StreamingBlob>,
        meta: ObjectMeta,
    ) -> GatewayResult<Entry> {
        if let Some(mut b) = body {
            use futures::StreamExt;
            while let Some(chunk) = b.next().await {
                let chunk = chunk
                    .map_err(|e| GatewayError::InvalidRequest(format!("reading the body: {e}")))?;
                if !chunk.is_empty() {
                    return Err(GatewayError::InvalidRequest(
                        "a key ending in '/' is a directory marker and cannot hold data".into(),
                    ));
                }
            }
        }
        let mut e = match self.filer.find(dir).await? {
            Some(e) if e.is_directory => e,
            Some(_) => {
                return Err(GatewayError::Conflict(format!(
                    "an object already holds the directory name {dir}"
                )));
            }
            None => Entry::new_dir(dir, 0),
        };
        e.extended
            .retain(|k, _| !meta::is_replaceable_meta(k) && !k.starts_with(TAG_PREFIX));
        e.extended.extend(meta.extended());
        e.extended.insert(DIR_MARKER_KEY.into(), b"1".to_vec());
        e.attr.mime = meta.content_type.unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        e.attr.mtime = now;
        if e.attr.crtime == 0 {
            e.attr.crtime = now;
        }
        Ok(self.filer.put_entry(e).await?)
    }

    #[allow(clippy::too_many_arguments)]
    async fn view(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        cond: Conditions<'_>,
        range: Option<&Range>,
        part_number: Option<i32>,
    ) -> GatewayResult<(Entry, ObjectView)> {
        let e = match version_id {
            Some(id) => self.version_entry(bucket, key, id).await?,
            None => {
                let op = self.paths.object(bucket, key)?;
                match self.find_object(&op).await? {
                    Some(e) => e,
                    None => return Err(self.missing(bucket, key).await),
                }
            }
        };
        cond.check(&meta::etag(&e), e.attr.mtime, true)?;
        let size = meta::size(&e);
        let (range, parts_count) = match part_number {
            None => (byte_range(range, size)?, None),
            Some(n) => part_range(&e, n)?,
        };
        Ok((
            e,
            ObjectView {
                size,
                range,
                parts_count,
            },
        ))
    }

    pub async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> GatewayResult<S3Response<GetObjectOutput>> {
        let i = &req.input;
        let cond = Conditions {
            if_match: i.if_match.as_ref(),
            if_none_match: i.if_none_match.as_ref(),
            if_modified_since: i.if_modified_since.as_ref(),
            if_unmodified_since: i.if_unmodified_since.as_ref(),
        };
        let (e, v) = self
            .view(
                &i.bucket,
                &i.key,
                i.version_id.as_deref(),
                cond,
                i.range.as_ref(),
                i.part_number,
            )
            .await?;
        let (key, echo) = self
            .opening(&e, crate::sse::customer_of!(i)?.as_ref())
            .await?;
        let (start, end) = v.range.unwrap_or((0, v.size));
        let lock = LockView::of(&e);
        let body = (end > start)
            .then(|| StreamingBlob::wrap(self.filer.read_stream_with(e.clone(), start, end, key)));
        let mut out = GetObjectOutput {
            body,
            content_length: i64::try_from(end - start).ok(),
            content_range: v
                .range
                .map(|(s, t)| format!("bytes {s}-{}/{}", t.saturating_sub(1), v.size)),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(meta::etag_dto(&e)),
            last_modified: Some(meta::last_modified(&e)),
            content_type: Some(meta::content_type(&e)),
            cache_control: meta::header(&e, "Cache-Control"),
            content_disposition: meta::header(&e, "Content-Disposition"),
            content_encoding: meta::header(&e, "Content-Encoding"),
            content_language: meta::header(&e, "Content-Language"),
            metadata: meta::user_metadata(&e),
            tag_count: tag_count(&e),
            parts_count: v.parts_count,
            version_id: versions::shown_id(&e),
            object_lock_mode: lock.mode,
            object_lock_retain_until_date: lock.until,
            object_lock_legal_hold_status: lock.legal_hold,
            ..Default::default()
        };
        crate::sse::echo_into!(out, &echo);
        out.expiration = self.current_expiration(&i.bucket, &i.key, &e).await;
        if let Some((c, t)) = returned_checksum(&e, &v, i.checksum_mode.as_ref()) {
            set_checksums!(out, c);
            out.checksum_type = Some(t);
        }
        Ok(with_expires(S3Response::new(out), &e))
    }

    pub async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> GatewayResult<S3Response<HeadObjectOutput>> {
        let i = &req.input;
        let cond = Conditions {
            if_match: i.if_match.as_ref(),
            if_none_match: i.if_none_match.as_ref(),
            if_modified_since: i.if_modified_since.as_ref(),
            if_unmodified_since: i.if_unmodified_since.as_ref(),
        };
        let (e, v) = self
            .view(
                &i.bucket,
                &i.key,
                i.version_id.as_deref(),
                cond,
                i.range.as_ref(),
                i.part_number,
            )
            .await?;
        let (_, echo) = self
            .opening(&e, crate::sse::customer_of!(i)?.as_ref())
            .await?;
        let (start, end) = v.range.unwrap_or((0, v.size));
        let lock = LockView::of(&e);
        let mut out = HeadObjectOutput {
            version_id: versions::shown_id(&e),
            object_lock_mode: lock.mode,
            object_lock_retain_until_date: lock.until,
            object_lock_legal_hold_status: lock.legal_hold,
            content_length: i64::try_from(end - start).ok(),
            content_range: v
                .range
                .map(|(s, t)| format!("bytes {s}-{}/{}", t.saturating_sub(1), v.size)),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(meta::etag_dto(&e)),
            last_modified: Some(meta::last_modified(&e)),
            content_type: Some(meta::content_type(&e)),
            cache_control: meta::header(&e, "Cache-Control"),
            content_disposition: meta::header(&e, "Content-Disposition"),
            content_encoding: meta::header(&e, "Content-Encoding"),
            content_language: meta::header(&e, "Content-Language"),
            metadata: meta::user_metadata(&e),
            parts_count: v.parts_count,
            ..Default::default()
        };
        crate::sse::echo_into!(out, &echo);
        out.expiration = self.current_expiration(&i.bucket, &i.key, &e).await;
        if let Some((c, t)) = returned_checksum(&e, &v, i.checksum_mode.as_ref()) {
            set_checksums!(out, c);
            out.checksum_type = Some(t);
        }
        let mut resp = with_expires(S3Response::new(out), &e);
        if v.range.is_some() {
            resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
        }
        Ok(resp)
    }

    pub async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> GatewayResult<S3Response<GetObjectTaggingOutput>> {
        let i = &req.input;
        let e = self
            .object_or_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        let tag_set = meta::tags(&e)
            .into_iter()
            .map(|(k, v)| Tag {
                key: Some(k),
                value: Some(v),
            })
            .collect();
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set,
            version_id: versions::shown_id(&e),
        }))
    }

    pub async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> GatewayResult<S3Response<PutObjectTaggingOutput>> {
        let i = &req.input;
        let tags: Vec<(String, String)> = i
            .tagging
            .tag_set
            .iter()
            .map(|t| {
                (
                    t.key.clone().unwrap_or_default(),
                    t.value.clone().unwrap_or_default(),
                )
            })
            .collect();
        meta::check_tags(&tags)?;
        let e = self
            .object_or_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        let set = tags
            .into_iter()
            .map(|(k, v)| (format!("{TAG_PREFIX}{k}"), v.into_bytes()))
            .collect();
        self.filer
            .set_extended(&e.path, set, Some(tag_keys(&e)))
            .await?;
        Ok(S3Response::new(PutObjectTaggingOutput::default()))
    }

    pub async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> GatewayResult<S3Response<DeleteObjectTaggingOutput>> {
        let i = &req.input;
        let e = self
            .object_or_version(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        let keys = tag_keys(&e);
        if !keys.is_empty() {
            self.filer.set_extended(&e.path, vec![], Some(keys)).await?;
        }
        Ok(S3Response::with_status(
            DeleteObjectTaggingOutput::default(),
            http::StatusCode::NO_CONTENT,
        ))
    }

    /// The object's entry, or NoSuchBucket / NoSuchKey.
    pub async fn object_entry(&self, bucket: &str, key: &str) -> GatewayResult<Entry> {
        let op = self.paths.object(bucket, key)?;
        match self.find_object(&op).await? {
            Some(e) => Ok(e),
            None => Err(self.missing(bucket, key).await),
        }
    }
}

fn tag_keys(e: &Entry) -> Vec<String> {
    e.extended
        .keys()
        .filter(|k| k.starts_with(TAG_PREFIX))
        .cloned()
        .collect()
}

fn tag_count(e: &Entry) -> Option<i32> {
    let n = e
        .extended
        .keys()
        .filter(|k| k.starts_with(TAG_PREFIX))
        .count();
    (n > 0).then(|| i32::try_from(n).unwrap_or(i32::MAX))
}

fn with_expires<T>(mut resp: S3Response<T>, e: &Entry) -> S3Response<T> {
    if let Some(v) = meta::header(e, "Expires")
        && let Ok(v) = http::HeaderValue::from_str(&v)
    {
        resp.headers.insert(http::header::EXPIRES, v);
    }
    resp
}

/// The byte range (if not the whole object) and the parts count of a multipart object.
type PartView = (Option<(u64, u64)>, Option<i32>);

/// The byte range of part `n` (1-based) of a multipart object.
fn part_range(e: &Entry, n: i32) -> GatewayResult<PartView> {
    let bad = || GatewayError::InvalidPartNumber(format!("the object has no part {n}"));
    let idx = usize::try_from(n)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(bad)?
        - 1;
    match meta::part_sizes(e) {
        Some(sizes) => {
            let len = *sizes.get(idx).ok_or_else(bad)?;
            let start: u64 = sizes[..idx].iter().sum();
            let count = i32::try_from(sizes.len()).unwrap_or(i32::MAX);
            if len == 0 {
                return Ok((None, Some(count)));
            }
            Ok((Some((start, start + len)), Some(count)))
        }
        None if idx == 0 => Ok((None, None)),
        None => Err(bad()),
    }
}
