//! Server-side copies without copying bytes: CopyObject puts a new entry sharing the
//! source's chunks (metadata directive COPY or REPLACE, tagging directive COPY or
//! REPLACE; a requested checksum algorithm is computed over the shared bytes), and
//! [`reference_chunks`] gives UploadPartCopy the chunks of a byte range
//! when the range starts on chunk boundaries.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kelp_filer::cipher::ChunkKey;
use kelp_filer::entry::{Entry, FileChunk, visible_intervals};
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Request, S3Response};

use crate::checksum;
use crate::conditional::Conditions;
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::meta::{self, ContentHeaders, ObjectMeta, TAG_PREFIX};
use crate::retention::LockRequest;

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `(bucket, key, version id)` of a copy source.
pub fn source(src: &CopySource) -> GatewayResult<(&str, &str, Option<&str>)> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((bucket, key, version_id.as_deref())),
        _ => Err(GatewayError::NotImplemented(
            "access point copy sources are not supported".into(),
        )),
    }
}

/// Chunks that present bytes `[start, end)` of `src` as a file of `end - start` bytes,
/// sharing `src`'s needles. `None` when a piece would start inside a chunk (a chunk
/// cannot be referenced from an offset; it can be cut short) or `src` holds manifest
/// chunks (their children belong to the manifest and go when it goes): the caller then
/// copies the bytes.
pub fn reference_chunks(src: &Entry, start: u64, end: u64) -> Option<Vec<FileChunk>> {
    if !src.content.is_empty() || src.chunks.iter().any(|c| c.is_manifest) {
        return None;
    }
    let mut out = Vec::new();
    for iv in visible_intervals(&src.chunks) {
        if iv.stop <= start || iv.start >= end {
            continue;
        }
        let (s, t) = (iv.start.max(start), iv.stop.min(end));
        if iv.chunk_offset + (s - iv.start) != 0 {
            return None;
        }
        let size = t - s;
        let etag = src
            .chunks
            .iter()
            .find(|c| c.fid == iv.fid && c.size == size)
            .map(|c| c.etag.clone())
            .unwrap_or_default();
        out.push(FileChunk {
            fid: iv.fid.clone(),
            offset: s - start,
            size,
            modified_ts_ns: iv.modified_ts_ns,
            etag,
            is_manifest: false,
        });
    }
    Some(out)
}

/// A stable stand-in MD5 for bytes shared by reference (they are never re-read).
pub fn reference_md5(chunks: &[FileChunk]) -> Vec<u8> {
    let mut h = Md5::new();
    for c in chunks {
        h.update(c.fid.as_bytes());
        h.update(c.offset.to_le_bytes());
        h.update(c.size.to_le_bytes());
    }
    h.finalize().to_vec()
}

impl Gateway {
    /// The copy source's entry, after its conditions (any failure is 412).
    pub async fn copy_source_entry(
        &self,
        src: &CopySource,
        cond: Conditions<'_>,
    ) -> GatewayResult<Entry> {
        let (b, k, version) = source(src)?;
        let e = match version {
            Some(id) => self.version_entry(b, k, id).await?,
            None => self.object_entry(b, k).await?,
        };
        if e.is_directory {
            return Err(GatewayError::InvalidRequest(
                "directory marker objects cannot be copied".into(),
            ));
        }
        cond.check(&meta::etag(&e), e.attr.mtime, false)?;
        Ok(e)
    }

    /// `x-amz-checksum-algorithm` on a copy: the new object carries that algorithm's
    /// checksum. The source's is kept when it has one of that algorithm; otherwise it is
    /// computed over the source's bytes (which are still shared, not copied).
    async fn recompute_checksum(
        &self,
        src: &Entry,
        src_key: Option<Arc<ChunkKey>>,
        dst: &mut Entry,
        alg: &ChecksumAlgorithm,
    ) -> GatewayResult<()> {
        let algo = checksum::Algo::parse(alg.as_str())?;
        if checksum::stored(src).is_some_and(|(c, _)| algo.field(&c).is_some()) {
            return Ok(());
        }
        let bytes = self
            .filer
            .read_stream_with(src.clone(), 0, meta::size(src), src_key);
        let value = checksum::compute_over(algo, Box::pin(bytes)).await?;
        let full = ChecksumType::from(ChecksumType::FULL_OBJECT.to_owned());
        checksum::replace(dst, algo, value, &full);
        Ok(())
    }

    pub async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> GatewayResult<S3Response<CopyObjectOutput>> {
        let i = &req.input;
        let cond = Conditions {
            if_match: i.copy_source_if_match.as_ref(),
            if_none_match: i.copy_source_if_none_match.as_ref(),
            if_modified_since: i.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
        };
        let src = self.copy_source_entry(&i.copy_source, cond).await?;
        let dst = self.paths.object(&i.bucket, &i.key)?;
        if dst.dir_marker {
            return Err(GatewayError::InvalidRequest(
                "cannot copy an object onto a directory marker key".into(),
            ));
        }
        let bucket = self.bucket_entry(&i.bucket).await?;
        let state = crate::versions::State::of(&bucket);
        let replace_meta = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let replace_tags = i
            .tagging_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
        let asked = crate::sse::asked_of!(i);
        let reencrypt = asked.sse.is_some() || asked.customer_key.is_some();
        if src.path == dst.path && !replace_meta && !replace_tags && !reencrypt {
            return Err(GatewayError::InvalidRequest(
                "this copy request is illegal because it is trying to copy an object to itself \
                 without changing the object's metadata"
                    .into(),
            ));
        }
        let mut e = src.clone();
        e.path = dst.path.clone();
        // A copy is a new version: the source's version and lock do not come along.
        for k in crate::retention::VERSION_ATTRS {
            e.extended.remove(*k);
        }
        e.extended.extend(
            LockRequest {
                mode: i.object_lock_mode.as_ref(),
                until: i.object_lock_retain_until_date.as_ref(),
                legal_hold: i.object_lock_legal_hold_status.as_ref(),
            }
            .attrs(&bucket, true)?,
        );
        // The copy is the copier's, with the ACL the request asks for (not the source's).
        let (k, v) = self
            .request_acl(
                &req.extensions,
                Some(&crate::ownership::BucketAccess::of(&bucket)),
                crate::ownership::object_acl_of!(i),
            )?
            .to_attr();
        e.extended.insert(k, v);
        if replace_meta {
            let m = ObjectMeta::new(
                i.content_type.as_deref(),
                ContentHeaders {
                    cache_control: i.cache_control.as_deref(),
                    content_disposition: i.content_disposition.as_deref(),
                    content_encoding: i.content_encoding.as_deref(),
                    content_language: i.content_language.as_deref(),
                    expires: None,
                },
                i.metadata.as_ref(),
                None,
            )?;
            e.extended.retain(|k, _| !meta::is_replaceable_meta(k));
            e.extended.extend(m.extended());
            e.attr.mime = m.content_type.unwrap_or_default();
        }
        if replace_tags {
            let tags = match i.tagging.as_deref() {
                Some(t) => meta::parse_tagging_header(t)?,
                None => Vec::new(),
            };
            e.extended.retain(|k, _| !k.starts_with(TAG_PREFIX));
            e.extended.extend(
                tags.into_iter()
                    .map(|(k, v)| (format!("{TAG_PREFIX}{k}"), v.into_bytes())),
            );
        }
        let (src_key, _) = self
            .opening(&src, crate::sse::customer_of!(i, copy)?.as_ref())
            .await?;
        let sealing = self.seal_new(&self.wanted(&asked, &bucket)?).await?;
        crate::sse::strip(&mut e.extended);
        e.extended.extend(sealing.attrs.iter().cloned());
        if let Some(alg) = &i.checksum_algorithm {
            self.recompute_checksum(&src, src_key.clone(), &mut e, alg)
                .await?;
        }
        // Sealed bytes on either side are copied: opened with the source's key, sealed
        // with the copy's own.
        let copied = if src_key.is_some() || sealing.key.is_some() {
            let bytes = self
                .filer
                .read_stream_with(src.clone(), 0, meta::size(&src), src_key);
            let opts = kelp_filer::WriteOptions {
                size_hint: Some(meta::size(&src)),
                keeps_replaced: state.is_versioned(),
                target: kelp_filer::chunks::WriteTarget {
                    cipher: sealing.key.clone(),
                    ..Default::default()
                },
                ..Default::default()
            };
            let up = self
                .filer
                .upload_new(&dst.path, Box::pin(bytes), opts)
                .await?;
            e.chunks = up.chunks.clone();
            e.attr.file_size = up.attr.file_size;
            e.attr.md5 = up.attr.md5;
            e.content.clear();
            Some(up.chunks)
        } else {
            None
        };
        let now = now_secs();
        e.attr.mtime = now;
        e.attr.crtime = now;
        let committed = self
            .commit_object(&i.bucket, state, &i.key, &dst, e, None)
            .await;
        let (e, version_id) = match committed {
            Ok(done) => done,
            Err(err) => {
                if let Some(chunks) = copied {
                    self.filer.discard(&chunks).await;
                }
                return Err(err);
            }
        };
        let mut result = CopyObjectResult {
            e_tag: Some(meta::etag_dto(&e)),
            last_modified: Some(meta::last_modified(&e)),
            ..Default::default()
        };
        // The bytes are the source's, so is their checksum (unless one was asked for).
        if let Some((c, t)) = checksum::stored(&e) {
            checksum::set_checksums!(result, c);
            result.checksum_type = Some(t);
        }
        let mut out = CopyObjectOutput {
            copy_object_result: Some(result),
            version_id,
            copy_source_version_id: crate::versions::shown_id(&src),
            ssekms_encryption_context: sealing.echo.context.clone(),
            ..Default::default()
        };
        crate::sse::echo_into!(out, &sealing.echo);
        Ok(S3Response::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(fid: &str, offset: u64, size: u64) -> FileChunk {
        FileChunk {
            fid: fid.into(),
            offset,
            size,
            modified_ts_ns: 1,
            etag: format!("e-{fid}"),
            is_manifest: false,
        }
    }

    #[test]
    fn ranges_on_chunk_boundaries_are_shared() {
        let mut src = Entry::new_file("/b/k", 0);
        src.chunks = vec![ch("1,a", 0, 10), ch("1,b", 10, 10), ch("1,c", 20, 5)];
        src.attr.file_size = 25;
        let all = reference_chunks(&src, 0, 25).unwrap();
        assert_eq!(all, src.chunks);
        let tail = reference_chunks(&src, 10, 25).unwrap();
        assert_eq!(tail.len(), 2);
        assert_eq!(
            (tail[0].offset, tail[0].size, tail[0].fid.as_str()),
            (0, 10, "1,b")
        );
        assert_eq!((tail[1].offset, tail[1].size), (10, 5));
        // Cut short at the end: allowed (the etag no longer describes the piece).
        let head = reference_chunks(&src, 0, 15).unwrap();
        assert_eq!((head[1].size, head[1].etag.as_str()), (5, ""));
        // Starting inside a chunk cannot be expressed.
        assert!(reference_chunks(&src, 5, 25).is_none());
        assert_eq!(reference_md5(&all).len(), 16);
        assert_ne!(reference_md5(&all), reference_md5(&tail));
        // A manifest's children are owned by the manifest (collected with it, whatever
        // else points at them): never share them, copy the bytes instead.
        src.chunks[1].is_manifest = true;
        assert!(reference_chunks(&src, 0, 25).is_none());
        assert!(reference_chunks(&src, 20, 25).is_none());
    }

    #[test]
    fn copy_sources() {
        let s = CopySource::Bucket {
            bucket: "b".into(),
            key: "k/x".into(),
            version_id: None,
        };
        assert_eq!(source(&s).unwrap(), ("b", "k/x", None));
    }
}
