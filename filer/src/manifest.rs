//! Manifest chunks keep an entry's metadata bounded: every `manifest_batch` data chunks
//! are folded into one blob on the volume servers (a JSON list of those chunks), and
//! the entry keeps a single chunk with `is_manifest` in their place.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream;
use serde::{Deserialize, Serialize};

use crate::chunks::{self, WriteTarget};
use crate::entry::FileChunk;
use crate::error::FilerError;
use crate::filer::Filer;

/// The blob a manifest chunk points at (format version 1).
#[derive(Debug, Serialize, Deserialize)]
struct ManifestBlob {
    version: u32,
    chunks: Vec<FileChunk>,
}

/// KV key marking a fid as a manifest, so the collector expands it before deleting.
pub fn marker(fid: &str) -> Vec<u8> {
    format!("manifest:{fid}").into_bytes()
}

impl Filer {
    /// Folds data chunks into manifests while there are more than `manifest_batch` of
    /// them. Returns the new chunk list and the fids of the manifests it created.
    pub async fn fold_manifests(
        &self,
        chunks: Vec<FileChunk>,
        target: &WriteTarget,
    ) -> Result<(Vec<FileChunk>, Vec<String>), FilerError> {
        let batch = self.cfg.manifest_batch.max(2);
        let (mut manifests, mut data): (Vec<FileChunk>, Vec<FileChunk>) =
            chunks.into_iter().partition(|c| c.is_manifest);
        if data.len() <= batch {
            manifests.extend(data);
            manifests.sort_by_key(|c| c.offset);
            return Ok((manifests, Vec::new()));
        }
        data.sort_by_key(|c| (c.offset, c.modified_ts_ns));
        let mut created = Vec::new();
        let full = data.len() / batch * batch;
        let rest = data.split_off(full);
        for group in data.chunks(batch) {
            let blob = serde_json::to_vec(&ManifestBlob {
                version: 1,
                chunks: group.to_vec(),
            })
            .map_err(|e| FilerError::Internal(format!("encoding a manifest: {e}")))?;
            let start = group.iter().map(|c| c.offset).min().unwrap_or(0);
            let stop = group
                .iter()
                .map(|c| c.offset + c.size)
                .max()
                .unwrap_or(start);
            let newest = group.iter().map(|c| c.modified_ts_ns).max().unwrap_or(0);
            // Manifests list chunk ids, not content: they are never sealed.
            let plain = WriteTarget {
                cipher: None,
                ..target.clone()
            };
            let up = self
                .upload(
                    plain,
                    stream::iter([Ok::<Bytes, std::io::Error>(Bytes::from(blob))]),
                    0,
                    Some(1),
                )
                .await?;
            if up.chunks.len() != 1 {
                self.discard(&up.chunks).await;
                return Err(FilerError::Internal(
                    "a manifest blob must fit in one chunk: lower -manifestBatch or raise -maxMB"
                        .into(),
                ));
            }
            let Some(stored) = up.chunks.into_iter().next() else {
                return Err(FilerError::Internal(
                    "manifest upload stored nothing".into(),
                ));
            };
            created.push(stored.fid.clone());
            manifests.push(FileChunk {
                fid: stored.fid,
                offset: start,
                size: stop - start,
                modified_ts_ns: newest,
                etag: stored.etag,
                is_manifest: true,
            });
        }
        manifests.extend(rest);
        manifests.sort_by_key(|c| c.offset);
        Ok((manifests, created))
    }

    /// Reads a manifest blob's chunk list.
    pub async fn load_manifest(&self, fid: &str) -> Result<Vec<FileChunk>, FilerError> {
        let resp =
            chunks::read_chunk_range(&self.master, &self.volumes, fid, 0, u64::MAX / 2).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| FilerError::Unavailable(format!("reading manifest {fid}: {e}")))?;
        let blob: ManifestBlob = serde_json::from_slice(&bytes)
            .map_err(|e| FilerError::Internal(format!("manifest {fid} does not parse: {e}")))?;
        Ok(blob.chunks)
    }

    /// Replaces the manifests overlapping `start..end` by their data chunks (recursively);
    /// manifests outside the range are dropped, they cannot hold bytes of it.
    pub async fn expand_manifests(
        self: &Arc<Self>,
        chunks: &[FileChunk],
        start: u64,
        end: u64,
    ) -> Result<Vec<FileChunk>, FilerError> {
        let mut out = Vec::with_capacity(chunks.len());
        let mut todo: Vec<FileChunk> = chunks.to_vec();
        let mut rounds = 0;
        while !todo.is_empty() {
            rounds += 1;
            if rounds > 8 {
                return Err(FilerError::Internal("manifests nest too deeply".into()));
            }
            let mut next = Vec::new();
            for c in todo {
                if !c.is_manifest {
                    out.push(c);
                } else if c.offset < end && c.offset + c.size > start {
                    next.extend(self.load_manifest(&c.fid).await?);
                }
            }
            todo = next;
        }
        out.sort_by_key(|c| c.offset);
        Ok(out)
    }
}
