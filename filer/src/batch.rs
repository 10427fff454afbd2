//! Writes whose entry lands in a batch the caller composes: [`Filer::upload_new`] stores
//! a body as chunks and returns the entry without committing it, and
//! [`Filer::apply_with_parents`] commits a batch of mutations (creating the parents of
//! every entry it puts) in one store transaction. S3 versioning archives the replaced
//! version and puts the new one this way; [`Filer::write_fresh`] is the plain case.

use bytes::Bytes;
use futures::Stream;

use crate::entry::Entry;
use crate::error::FilerError;
use crate::filer::{Filer, WriteOptions, late_attrs, now_secs, precondition_failed, target_of};
use crate::store::Mutation;
use crate::write::file_path;

impl Filer {
    /// Writes `body` as the whole content of a new file at `p`, replacing any file there
    /// together with its extended attributes: the new entry's are exactly `opts.extended`
    /// (S3 PUT semantics; [`Filer::write`] keeps the old ones). With `opts.expect_md5` a
    /// mismatch stores nothing; chunks of a failed write are queued for deletion.
    pub async fn write_fresh<S, E>(
        &self,
        p: &str,
        body: S,
        opts: WriteOptions,
    ) -> Result<Entry, FilerError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let pre = opts.precondition.clone();
        let e = self.upload_new(p, body, opts).await?;
        let stored = e.chunks.clone();
        match self.put_entry_if(e, pre.as_ref()).await {
            Ok(e) => Ok(e),
            Err(err) => {
                // Harmless if the entry did land: a referenced chunk is never queued.
                self.discard(&stored).await;
                Err(err)
            }
        }
    }

    /// Stores `body` as chunks and returns the file entry for `p` that would hold them,
    /// without putting it in the store: the caller commits it (or [`Filer::discard`]s
    /// its chunks). Checks what `write_fresh` checks before any upload: `p` is no
    /// directory, no ancestor is a file, and `opts.precondition` holds now.
    pub async fn upload_new<S, E>(
        &self,
        p: &str,
        body: S,
        opts: WriteOptions,
    ) -> Result<Entry, FilerError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let p = file_path(p)?;
        let found = self.store.find(&p).await?;
        if let Some(e) = &found {
            if e.is_directory {
                return Err(FilerError::Conflict(format!("{p} is a directory")));
            }
            if !opts.keeps_replaced {
                crate::lock::check_unlocked(e)?;
            }
        }
        if let Some(pre) = &opts.precondition
            && !pre.holds(found.as_ref())
        {
            return Err(precondition_failed(&p));
        }
        // Fails before any upload when an ancestor is a file.
        self.parents(&p).await?;
        let up = self
            .upload_checked(&target_of(&opts, &self.cfg), body, 0, &opts)
            .await?;
        let late = late_attrs(&opts);
        let mut e = Entry::new_file(&p, now_secs());
        e.chunks = up.chunks;
        e.attr.file_size = up.size;
        e.attr.md5 = up.md5.to_vec();
        e.attr.mime = opts.mime;
        if let Some(m) = opts.mode {
            e.attr.mode = m;
        }
        e.attr.ttl_sec = opts.ttl_sec;
        e.extended = opts.extended.into_iter().chain(late).collect();
        Ok(e)
    }

    /// Applies `muts` in one store transaction, after the directories missing above
    /// every entry they put (a file in the way is [`FilerError::Conflict`]). Paths must
    /// be normalized. A failed [`Mutation::Expect`] is [`FilerError::PreconditionFailed`].
    pub async fn apply_with_parents(&self, muts: Vec<Mutation>) -> Result<(), FilerError> {
        let mut batch: Vec<Mutation> = Vec::with_capacity(muts.len() + 2);
        let mut made: Vec<String> = Vec::new();
        for m in &muts {
            if let Mutation::Put(e) = m {
                for dir in self.parents(&e.path).await? {
                    if let Mutation::Put(d) = &dir
                        && !made.contains(&d.path)
                    {
                        made.push(d.path.clone());
                        batch.push(dir);
                    }
                }
            }
        }
        batch.extend(muts);
        self.commit(batch).await?;
        self.gc_wake.notify_one();
        Ok(())
    }
}
