//! Writing files: uploading a body as chunks and committing the entry that names them,
//! and the cache of directories that lets a new file be created in one store call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;

use crate::chunks::{self, WriteTarget};
use crate::entry::{Entry, FileChunk};
use crate::error::FilerError;
use crate::filer::{Filer, WriteOptions, late_attrs, now_secs, target_of};
use crate::path;
use crate::store::Mutation;

/// Directories remembered at most; the cache starts over when full.
const DIR_CACHE_MAX: usize = 4096;
/// Directories looked up before a longer upload are looked up again before the commit.
const PARENTS_FRESH: Duration = Duration::from_secs(1);

/// Directory entries this filer read lately, by path. An entry here is never trusted
/// on its own: a create that relies on it expects it, unchanged, in the store
/// transaction that commits the file ([`Mutation::Expect`]), so a stale one (the
/// directory was changed or deleted, by this filer or another) only costs the create
/// a second try that reads the store. That is why it needs no invalidation.
#[derive(Default)]
pub(crate) struct DirCache(Mutex<HashMap<String, Entry>>);

impl DirCache {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, dir: &str) -> Option<Entry> {
        self.map().get(dir).cloned()
    }

    /// Remembers `e` if it is a directory.
    pub(crate) fn remember(&self, e: &Entry) {
        if !e.is_directory {
            return;
        }
        let mut map = self.map();
        if map.len() >= DIR_CACHE_MAX && !map.contains_key(&e.path) {
            map.clear();
        }
        map.insert(e.path.clone(), e.clone());
    }

    pub(crate) fn forget(&self, dir: &str) {
        self.map().remove(dir);
    }
}

/// `p` normalized, refusing the root: the path of a file to write.
pub(crate) fn file_path(p: &str) -> Result<String, FilerError> {
    let p = path::normalize(p)?;
    if p == "/" {
        return Err(FilerError::BadRequest(
            "cannot write to the root directory".into(),
        ));
    }
    Ok(p)
}

impl Filer {
    /// Writes `body` as the whole content of the file at `p` (replacing it), or appends
    /// it when `append` is set. Chunks are uploaded before the entry is written; the
    /// replaced chunks go to the collector in the same store transaction.
    ///
    /// A whole-file write into a directory in [`DirCache`] skips the read before the
    /// upload: it assumes a new file and commits it expecting the directory unchanged
    /// and the path free. When that does not hold, it reads the path and its parent and
    /// commits again with what it found (the uploaded chunks are kept), as a write that
    /// read first would have.
    pub async fn write<S, E>(
        &self,
        p: &str,
        body: S,
        opts: WriteOptions,
        append: bool,
    ) -> Result<Entry, FilerError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let p = file_path(p)?;
        let parent = path::parent(&p).unwrap_or("/").to_string();
        let guard = if append || parent == "/" {
            None
        } else {
            self.dirs.get(&parent)
        };
        let started = Instant::now();
        let found = match guard {
            Some(_) => None,
            None => Some(self.write_target(&p, append).await?),
        };
        let base = match (&found, append) {
            (Some((Some(e), _)), true) => e.attr.file_size,
            _ => 0,
        };
        let target = target_of(&opts, &self.cfg);
        let up = self.upload_checked(&target, body, base, &opts).await?;
        let uploaded = up.chunks.clone();
        // Fold only the chunks this write uploaded: nothing else references them, so the
        // manifest becomes their only owner. Chunks an entry already holds are never
        // folded: dropping the entry's direct reference would queue them for deletion
        // while the new manifest still points at them.
        let (new_chunks, manifests) = self.fold_manifests(up.chunks, &target).await?;
        let folded: Vec<FileChunk> = if manifests.is_empty() {
            Vec::new()
        } else {
            uploaded
                .iter()
                .filter(|c| !new_chunks.iter().any(|k| k.fid == c.fid))
                .cloned()
                .collect()
        };
        let late = late_attrs(&opts);
        let compose = |existing: Option<Entry>| {
            compose_entry(
                &p,
                existing,
                append,
                new_chunks.clone(),
                (base, up.size, &up.md5),
                &opts,
                &late,
            )
        };
        let tail = |entry: &Entry| {
            let mut muts = vec![Mutation::Put(entry.clone())];
            muts.extend(
                manifests
                    .iter()
                    .map(|fid| Mutation::KvPut(crate::manifest::marker(fid), Vec::new())),
            );
            muts.extend(self.pending.settle_folded(&folded));
            muts
        };
        if let Some(dir) = guard {
            let entry = compose(None);
            let mut muts = vec![
                Mutation::Expect {
                    path: parent.clone(),
                    entry: Some(dir),
                },
                Mutation::Expect {
                    path: p.clone(),
                    entry: None,
                },
            ];
            muts.extend(tail(&entry));
            match self.commit(muts).await {
                Ok(()) => return Ok(self.written(entry, &folded, false)),
                Err(FilerError::PreconditionFailed(_)) => self.dirs.forget(&parent),
                Err(e) => {
                    self.discard(&uploaded).await;
                    return Err(e);
                }
            }
        }
        let looked = match found {
            Some(f) if started.elapsed() < PARENTS_FRESH => Ok(f),
            Some((existing, _)) => self.parents(&p).await.map(|m| (existing, m)),
            None => self.write_target(&p, append).await,
        };
        let (existing, parents) = match looked {
            Ok(l) => l,
            Err(e) => {
                self.discard(&uploaded).await;
                return Err(e);
            }
        };
        let replaces = existing.is_some();
        let entry = compose(existing);
        let mut muts = parents;
        muts.extend(tail(&entry));
        if let Err(e) = self.commit(muts).await {
            // Harmless for any chunk an entry does reference: those are never queued.
            self.discard(&uploaded).await;
            return Err(e);
        }
        Ok(self.written(entry, &folded, replaces))
    }

    /// What a write finds at `p` before it uploads: the live entry there and the
    /// mutations creating its missing parents, refusing a directory, a locked file and
    /// an append to an encrypted one.
    async fn write_target(
        &self,
        p: &str,
        append: bool,
    ) -> Result<(Option<Entry>, Vec<Mutation>), FilerError> {
        let (existing, parents) = self.find_with_parents(p).await?;
        let existing = existing.filter(|e| !e.is_expired(now_secs()));
        if existing.as_ref().is_some_and(|e| e.is_directory) {
            return Err(FilerError::Conflict(format!("{p} is a directory")));
        }
        if let Some(e) = &existing {
            crate::lock::check_unlocked(e)?;
            if append {
                crate::entry::check_unsealed(e)?;
            }
        }
        Ok((existing, parents))
    }

    /// After a write's commit: ends the folded chunks' records and wakes the collector
    /// if the write left it anything (a replaced file's chunks, folded chunks).
    fn written(&self, entry: Entry, folded: &[FileChunk], replaced: bool) -> Entry {
        self.pending.forget(folded.iter().map(|c| c.fid.as_str()));
        if replaced || !folded.is_empty() {
            self.gc_wake.notify_one();
        }
        entry
    }

    /// Uploads `body` and checks it against the Content-MD5 the client promised; on a
    /// mismatch the stored chunks are queued for deletion and nothing else happens.
    pub(crate) async fn upload_checked<S, E>(
        &self,
        target: &WriteTarget,
        body: S,
        base: u64,
        opts: &WriteOptions,
    ) -> Result<chunks::Uploaded, FilerError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let up = self
            .upload(target.clone(), body, base, opts.size_hint)
            .await?;
        if let Some(want) = &opts.expect_md5
            && want.as_slice() != up.md5
        {
            self.discard(&up.chunks).await;
            return Err(FilerError::BadRequest(
                "Content-MD5 does not match the body: nothing was stored".into(),
            ));
        }
        Ok(up)
    }

    /// Stores `body` as chunks (offsets from `base`). When the upload fails midway the
    /// chunks it already stored are queued for deletion, so nothing leaks.
    pub(crate) async fn upload<S, E>(
        &self,
        target: WriteTarget,
        body: S,
        base: u64,
        size_hint: Option<u64>,
    ) -> Result<chunks::Uploaded, FilerError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let r = chunks::upload_stream(
            self.master.clone(),
            self.volumes.clone(),
            target,
            body,
            self.cfg.chunk_size,
            self.cfg.upload_parallel,
            base,
            size_hint,
            &self.pending,
            &self.reservoir,
        )
        .await;
        match r {
            Ok(up) => Ok(up),
            Err(chunks::UploadError { error, stored }) => {
                if !stored.is_empty() {
                    self.discard(&stored).await;
                }
                Err(error)
            }
        }
    }

    /// Queues chunks no entry references (an upload that was refused).
    pub async fn discard(&self, chunks: &[FileChunk]) {
        // A throwaway entry that is put then deleted in one transaction leaves exactly
        // these chunks in the store's collection queue.
        let tmp = format!("/.kelp-discard-{}", chunks::now_ns());
        let mut e = Entry::new_file(&tmp, now_secs());
        e.chunks = chunks.to_vec();
        let r = self
            .store
            .apply(vec![Mutation::Put(e), Mutation::Delete(tmp)])
            .await;
        match r {
            Ok(()) => self.pending.forget(chunks.iter().map(|c| c.fid.as_str())),
            Err(e) => tracing::warn!(error = %e, "could not queue discarded chunks"),
        }
        self.gc_wake.notify_one();
    }
}

/// The entry a write commits at `p`: the `existing` one with the new chunks appended,
/// or a new one (keeping a replaced file's creation time and the attributes that do
/// not describe its content). `sizes` is the append base, the uploaded size and MD5.
fn compose_entry(
    p: &str,
    existing: Option<Entry>,
    append: bool,
    new_chunks: Vec<FileChunk>,
    (base, size, md5): (u64, u64, &[u8]),
    opts: &WriteOptions,
    late: &[(String, Vec<u8>)],
) -> Entry {
    let now = now_secs();
    let mut entry = match (append, existing) {
        (true, Some(mut e)) => {
            e.chunks.extend(new_chunks);
            e.attr.file_size = base + size;
            e.attr.md5.clear();
            e
        }
        (_, old) => {
            let mut e = Entry::new_file(p, now);
            if let Some(old) = old {
                e.attr.crtime = old.attr.crtime;
                // Attributes that describe the old content (S3's ETag, part table,
                // checksums, version) would lie about the new bytes.
                e.extended = old.extended;
                e.extended
                    .retain(|k, _| !crate::entry::describes_content(k));
            }
            e.chunks = new_chunks;
            e.attr.file_size = size;
            e.attr.md5 = md5.to_vec();
            e
        }
    };
    entry.attr.mtime = now;
    if !opts.mime.is_empty() {
        entry.attr.mime = opts.mime.clone();
    }
    if let Some(m) = opts.mode {
        entry.attr.mode = m;
    }
    entry.attr.ttl_sec = opts.ttl_sec;
    for (k, v) in opts.extended.iter().chain(late) {
        entry.extended.insert(k.clone(), v.clone());
    }
    entry
}
