//! The filer's namespace operations over a `FilerStore` and the blob store: create,
//! write, append, read, list, rename, copy, delete.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kelp_proto::client::{MasterClient, VolumeClient};
use tokio::sync::Notify;

use crate::chunks::{self, WriteTarget};
use crate::entry::Entry;
use crate::error::FilerError;
use crate::path;
use crate::store::{FilerStore, ListOptions, Mutation};

/// How a filer stores data.
#[derive(Debug, Clone)]
pub struct FilerConfig {
    /// Masters, any of which answers.
    pub masters: Vec<String>,
    /// Uploads are cut into chunks of this many bytes.
    pub chunk_size: usize,
    /// Chunk uploads in flight per request.
    pub upload_parallel: usize,
    /// Default collection and replication of new chunks.
    pub collection: String,
    pub replication: String,
    /// Listing page size when the client names none.
    pub dir_list_limit: usize,
    /// An entry holds at most this many data chunks; each full batch is folded into
    /// one manifest chunk (see `manifest.rs`).
    pub manifest_batch: usize,
    /// Idle timeout and connection cap of the REST listener.
    pub limits: kelp_proto::server::Limits,
    /// Change-log events older than this are trimmed (`None`: kept for ever).
    pub meta_retain: Option<std::time::Duration>,
    /// How long this filer's liveness lease lasts between renewals: the unfinished
    /// uploads of a filer that died are reclaimed this long after its last renewal.
    pub alive_ttl: std::time::Duration,
}

impl FilerConfig {
    /// Documented default of `-port` (`-filer.port` of `kelp server`).
    pub const DEFAULT_PORT: u16 = 8888;
    /// Documented default of `-maxMB` (`-filer.maxMB`): the chunk size in MiB.
    pub const DEFAULT_MAX_MB: u64 = 8;
    /// Documented default of `-manifestBatch` (`-filer.manifestBatch`).
    pub const DEFAULT_MANIFEST_BATCH: usize = 1000;
    /// Documented default of `-meta.retainHours` (`-filer.meta.retainHours`): a week.
    pub const DEFAULT_META_RETAIN_HOURS: u64 = 168;
    /// Documented default of `-aliveSeconds` (`-filer.aliveSeconds`).
    pub const DEFAULT_ALIVE_SECS: u64 = 60;

    /// The retention of `-meta.retainHours=N` (0: for ever).
    pub fn retain_hours(n: u64) -> Option<std::time::Duration> {
        (n > 0).then(|| std::time::Duration::from_secs(n.saturating_mul(3600)))
    }
}

impl Default for FilerConfig {
    fn default() -> Self {
        FilerConfig {
            masters: vec!["127.0.0.1:9333".into()],
            chunk_size: (Self::DEFAULT_MAX_MB << 20) as usize,
            upload_parallel: 4,
            collection: String::new(),
            replication: String::new(),
            dir_list_limit: 1000,
            manifest_batch: Self::DEFAULT_MANIFEST_BATCH,
            limits: kelp_proto::server::Limits::default(),
            meta_retain: Self::retain_hours(Self::DEFAULT_META_RETAIN_HOURS),
            alive_ttl: std::time::Duration::from_secs(Self::DEFAULT_ALIVE_SECS),
        }
    }
}

/// Options of one file write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub mime: String,
    pub mode: Option<u32>,
    pub ttl_sec: u32,
    pub target: WriteTarget,
    /// Extended attributes to set (`Seaweed-*` headers and the like).
    pub extended: Vec<(String, Vec<u8>)>,
    /// Content-MD5 the client promised (16 bytes): checked before the entry is written.
    pub expect_md5: Option<Vec<u8>>,
    /// Content-Length, to size file id batches.
    pub size_hint: Option<u64>,
    /// Extended attributes known only once the body has been read (an S3 checksum sent
    /// as an `aws-chunked` trailer): the body stream fills it before it ends, and the
    /// write sets them after `extended`.
    pub late_extended: Option<LateExtended>,
    /// What the replaced entry must be for the write to land (checked atomically with
    /// the write; a failure stores nothing and is [`FilerError::PreconditionFailed`]).
    pub precondition: Option<Precondition>,
    /// The caller keeps the entry this write replaces (S3 versioning moves it under
    /// `.versions` in the batch that commits the new one), so a locked one is no
    /// obstacle. Only for [`Filer::upload_new`], whose caller commits.
    pub keeps_replaced: bool,
}

/// What a conditional write or delete requires of the entry at its path, checked in
/// the same store transaction as the change itself (a compare-and-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No entry there (S3 `If-None-Match: *`).
    Absent,
    /// Still exactly this entry, as the caller read it (S3 `If-Match`, after the caller
    /// compared the ETag of what it read).
    Unchanged(Box<Entry>),
}

impl Precondition {
    fn mutation(&self, path: &str) -> Mutation {
        Mutation::Expect {
            path: path.to_string(),
            entry: match self {
                Precondition::Absent => None,
                Precondition::Unchanged(e) => Some(e.as_ref().clone()),
            },
        }
    }

    /// Whether `current` (what is there now) satisfies it: lets a write that is bound
    /// to fail stop before it uploads anything.
    pub fn holds(&self, current: Option<&Entry>) -> bool {
        match self {
            Precondition::Absent => current.is_none(),
            Precondition::Unchanged(e) => current == Some(e.as_ref()),
        }
    }
}

/// See [`WriteOptions::late_extended`].
pub type LateExtended = Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// The attributes a body stream left in `opts.late_extended`.
pub(crate) fn late_attrs(opts: &WriteOptions) -> Vec<(String, Vec<u8>)> {
    opts.late_extended
        .as_ref()
        .and_then(|l| l.lock().ok().map(|mut v| std::mem::take(&mut *v)))
        .unwrap_or_default()
}

pub struct Filer {
    pub store: Arc<dyn FilerStore>,
    pub master: Arc<MasterClient>,
    pub volumes: VolumeClient,
    pub cfg: FilerConfig,
    /// Wakes the chunk collector after deletes and overwrites.
    pub gc_wake: Notify,
    /// Uploads in flight, recorded so a crash never leaks their chunks.
    pub pending: crate::pending::Pending,
    /// File ids assigned and recorded ahead for small uploads.
    pub(crate) reservoir: chunks::Reservoir,
    /// Directories read lately, for creates that need not read first.
    pub(crate) dirs: crate::write::DirCache,
    /// Store call latencies (the store above is wrapped to measure them).
    pub store_timings: crate::store::measured::Timings,
    /// Chunks the collector deleted, and unfinished uploads' chunks it reclaimed.
    pub collected: std::sync::atomic::AtomicU64,
    pub reclaimed: std::sync::atomic::AtomicU64,
    /// Chunks waiting in the collection queue, as the collector last counted them.
    pub gc_queued: std::sync::atomic::AtomicU64,
}

/// Where the chunks of a write go: the request's collection and replication, else the filer's.
pub(crate) fn target_of(opts: &WriteOptions, cfg: &FilerConfig) -> WriteTarget {
    let mut target = opts.target.clone();
    if target.collection.is_empty() {
        target.collection = cfg.collection.clone();
    }
    if target.replication.is_empty() {
        target.replication = cfg.replication.clone();
    }
    target
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Filer {
    pub fn new(store: Arc<dyn FilerStore>, cfg: FilerConfig) -> Filer {
        let http = kelp_proto::client::http_client();
        let store_timings = crate::store::measured::Timings::default();
        let store: Arc<dyn FilerStore> = Arc::new(crate::store::measured::Measured::new(
            store,
            store_timings.clone(),
        ));
        Filer {
            store_timings,
            collected: Default::default(),
            reclaimed: Default::default(),
            gc_queued: Default::default(),
            pending: crate::pending::Pending::new(store.clone(), cfg.alive_ttl),
            store,
            master: Arc::new(MasterClient::with_http(cfg.masters.clone(), http.clone())),
            volumes: VolumeClient::new(http),
            cfg,
            gc_wake: Notify::new(),
            reservoir: chunks::Reservoir::default(),
            dirs: Default::default(),
        }
    }

    /// Applies a batch that may name chunks this filer just uploaded: it lands only if
    /// none of those uploads was reclaimed meanwhile (see [`crate::pending`]).
    pub(crate) async fn commit(&self, mut muts: Vec<Mutation>) -> Result<(), FilerError> {
        let fids = self.pending.fence(&mut muts);
        match self.store.apply(muts).await {
            Ok(()) => {
                self.pending.forget(fids.iter().map(String::as_str));
                Ok(())
            }
            Err(e) if crate::pending::Pending::was_reclaimed(&e) => Err(FilerError::Unavailable(
                "an upload of this request was reclaimed before its entry was stored \
                 (this filer lost the store for too long); retry the request"
                    .into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The live entry at `path` (expired TTL entries count as absent).
    pub async fn find(&self, p: &str) -> Result<Option<Entry>, FilerError> {
        let p = path::normalize(p)?;
        match self.store.find(&p).await? {
            Some(e) if e.is_expired(now_secs()) => {
                self.collect_expired(vec![e]).await;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// Deletes expired files met by a lookup or a listing, so their chunks are collected.
    async fn collect_expired(&self, expired: Vec<Entry>) {
        let muts: Vec<Mutation> = expired
            .into_iter()
            .filter(|e| !e.is_directory)
            .map(|e| Mutation::Delete(e.path))
            .collect();
        if muts.is_empty() {
            return;
        }
        for m in muts {
            // One at a time: a file rewritten meanwhile must not make the others fail.
            if let Err(e) = self.store.apply(vec![m]).await {
                tracing::debug!(error = %e, "collecting an expired entry");
            }
        }
        self.gc_wake.notify_one();
    }

    /// Mutations creating every missing ancestor directory of `p`.
    pub(crate) async fn parents(&self, p: &str) -> Result<Vec<Mutation>, FilerError> {
        self.parents_from(p, None).await
    }

    /// The entry at `p` and the mutations creating its missing ancestors, reading `p`
    /// and its parent in one store call (the usual case needs nothing more).
    pub(crate) async fn find_with_parents(
        &self,
        p: &str,
    ) -> Result<(Option<Entry>, Vec<Mutation>), FilerError> {
        let Some(dir) = path::parent(p) else {
            return Ok((self.store.find(p).await?, Vec::new()));
        };
        let mut found = self.store.find_many(&[p, dir]).await?.into_iter();
        let (here, parent) = (found.next().flatten(), found.next().flatten());
        if let Some(d) = &parent {
            self.dirs.remember(d);
        }
        Ok((here, self.parents_from(p, Some(parent)).await?))
    }

    /// [`Filer::parents`], given what is at the parent of `p` when already read.
    async fn parents_from(
        &self,
        p: &str,
        mut parent: Option<Option<Entry>>,
    ) -> Result<Vec<Mutation>, FilerError> {
        let mut missing = Vec::new();
        let mut cur = path::parent(p);
        while let Some(dir) = cur {
            let found = match parent.take() {
                Some(known) => known,
                None => self.store.find(dir).await?,
            };
            match found {
                Some(e) if e.is_directory => break,
                Some(_) => {
                    return Err(FilerError::Conflict(format!(
                        "{dir} is a file, not a directory"
                    )));
                }
                None => missing.push(dir.to_string()),
            }
            cur = path::parent(dir);
        }
        let now = now_secs();
        Ok(missing
            .into_iter()
            .rev()
            .map(|d| Mutation::Put(Entry::new_dir(&d, now)))
            .collect())
    }

    /// Creates a directory (and its parents). Existing directories are fine.
    pub async fn mkdir(&self, p: &str) -> Result<Entry, FilerError> {
        let p = path::normalize(p)?;
        if let Some(e) = self.store.find(&p).await? {
            return if e.is_directory {
                Ok(e)
            } else {
                Err(FilerError::Conflict(format!("{p} is a file")))
            };
        }
        let mut muts = self.parents(&p).await?;
        let e = Entry::new_dir(&p, now_secs());
        muts.push(Mutation::Put(e.clone()));
        self.store.apply(muts).await?;
        Ok(e)
    }

    /// Deletes `p`; a non-empty directory needs `recursive`. A missing path is not an error.
    pub async fn delete(&self, p: &str, recursive: bool) -> Result<(), FilerError> {
        self.delete_if(p, recursive, None).await
    }

    /// [`Filer::delete`] that happens only if `pre` holds at the moment of the delete.
    pub async fn delete_if(
        &self,
        p: &str,
        recursive: bool,
        pre: Option<&Precondition>,
    ) -> Result<(), FilerError> {
        let p = path::normalize(p)?;
        if p == "/" {
            return Err(FilerError::BadRequest(
                "cannot delete the root directory".into(),
            ));
        }
        let found = self.store.find(&p).await?;
        if let Some(pre) = pre
            && !pre.holds(found.as_ref())
        {
            return Err(precondition_failed(&p));
        }
        let Some(e) = found else {
            return Ok(());
        };
        if recursive {
            self.check_tree_unlocked(&e).await?;
        } else {
            crate::lock::check_unlocked(&e)?;
        }
        let mut muts: Vec<Mutation> = pre.iter().map(|c| c.mutation(&p)).collect();
        muts.push(if e.is_directory && recursive {
            Mutation::DeleteTree(p)
        } else {
            Mutation::Delete(p)
        });
        self.store.apply(muts).await?;
        self.gc_wake.notify_one();
        Ok(())
    }

    /// Moves `from` to `to` atomically. When `to` is an existing directory the entry
    /// moves into it. A file may replace a file; a directory never replaces a file.
    pub async fn rename(&self, from: &str, to: &str) -> Result<String, FilerError> {
        let from = path::normalize(from)?;
        let mut to = path::normalize(to)?;
        let src = self
            .store
            .find(&from)
            .await?
            .ok_or_else(|| FilerError::NotFound(from.clone()))?;
        if from == "/" {
            return Err(FilerError::BadRequest(
                "cannot move the root directory".into(),
            ));
        }
        if let Some(t) = self.store.find(&to).await?
            && t.is_directory
            && to != from
        {
            to = path::join(&to, path::name(&from));
        }
        if to == from {
            return Ok(to);
        }
        if src.is_directory && (to.starts_with(&format!("{from}/"))) {
            return Err(FilerError::BadRequest(format!(
                "cannot move {from} into itself ({to})"
            )));
        }
        // A locked entry keeps its path: moving it would hide it from its owner.
        self.check_tree_unlocked(&src).await?;
        let mut muts = self.parents(&to).await?;
        if let Some(t) = self.store.find(&to).await? {
            match (src.is_directory, t.is_directory) {
                (false, false) => {
                    crate::lock::check_unlocked(&t)?;
                    muts.push(Mutation::Delete(to.clone()));
                }
                (true, false) => {
                    return Err(FilerError::Conflict(format!(
                        "cannot overwrite file {to} with directory {from}"
                    )));
                }
                (_, true) => return Err(FilerError::Conflict(format!("{to} already exists"))),
            }
        }
        muts.push(Mutation::Rename {
            from,
            to: to.clone(),
        });
        self.store.apply(muts).await?;
        self.gc_wake.notify_one();
        Ok(to)
    }

    /// Copies a file by reference: the new entry shares the source's chunks.
    pub async fn copy(&self, from: &str, to: &str) -> Result<Entry, FilerError> {
        let from = path::normalize(from)?;
        let mut to = path::normalize(to)?;
        let src = self
            .find(&from)
            .await?
            .ok_or_else(|| FilerError::NotFound(from.clone()))?;
        if src.is_directory {
            return Err(FilerError::BadRequest(format!(
                "{from} is a directory; only files can be copied"
            )));
        }
        if let Some(t) = self.store.find(&to).await?
            && t.is_directory
        {
            to = path::join(&to, path::name(&from));
        }
        if let Some(t) = self.store.find(&to).await? {
            crate::lock::check_unlocked(&t)?;
        }
        let mut e = src.clone();
        e.path = to.clone();
        // A copy is a new file: the source's lock does not come with it.
        e.extended.remove(crate::entry::RETAIN_UNTIL_KEY);
        e.extended.remove(crate::entry::LEGAL_HOLD_KEY);
        let now = now_secs();
        e.attr.crtime = now;
        e.attr.mtime = now;
        let mut muts = self.parents(&to).await?;
        muts.push(Mutation::Put(e.clone()));
        self.store.apply(muts).await?;
        self.gc_wake.notify_one();
        Ok(e)
    }

    /// Lists a directory page.
    pub async fn list(&self, dir: &str, opts: &ListOptions) -> Result<Vec<Entry>, FilerError> {
        let dir = path::normalize(dir)?;
        let now = now_secs();
        let (expired, live): (Vec<Entry>, Vec<Entry>) = self
            .store
            .list(&dir, opts)
            .await?
            .into_iter()
            .partition(|e| e.is_expired(now));
        if !expired.is_empty() {
            self.collect_expired(expired).await;
        }
        Ok(live)
    }

    /// Changes an entry's extended attributes: removes the `remove` keys (only those),
    /// then sets `set`. True when anything changed.
    pub async fn set_extended(
        &self,
        p: &str,
        set: Vec<(String, Vec<u8>)>,
        remove: Option<Vec<String>>,
    ) -> Result<bool, FilerError> {
        let p = path::normalize(p)?;
        let mut e = self
            .store
            .find(&p)
            .await?
            .ok_or_else(|| FilerError::NotFound(p.clone()))?;
        let before = e.extended.clone();
        for k in remove.unwrap_or_default() {
            e.extended.remove(&k);
        }
        for (k, v) in set {
            e.extended.insert(k, v);
        }
        let changed = before != e.extended;
        if changed {
            self.store.apply(vec![Mutation::Put(e)]).await?;
        }
        Ok(changed)
    }

    /// Puts `entry` as it is at `entry.path` (normalized first), creating missing parent
    /// directories. For entries built from other entries' chunks (S3
    /// CompleteMultipartUpload, CopyObject): they share those chunks through the store's
    /// reference counts, so no data is copied. A file never replaces a directory.
    pub async fn put_entry(&self, entry: Entry) -> Result<Entry, FilerError> {
        self.put_entry_if(entry, None).await
    }

    /// [`Filer::put_entry`] that lands only if `pre` holds for the entry it replaces.
    pub async fn put_entry_if(
        &self,
        mut entry: Entry,
        pre: Option<&Precondition>,
    ) -> Result<Entry, FilerError> {
        entry.path = path::normalize(&entry.path)?;
        if entry.path == "/" {
            return Err(FilerError::BadRequest(
                "cannot replace the root directory".into(),
            ));
        }
        if !entry.is_directory
            && let Some(old) = self.store.find(&entry.path).await?
        {
            if old.is_directory {
                return Err(FilerError::Conflict(format!(
                    "{} is a directory",
                    entry.path
                )));
            }
            crate::lock::check_unlocked(&old)?;
        }
        let mut muts = self.parents(&entry.path).await?;
        muts.extend(pre.map(|c| c.mutation(&entry.path)));
        muts.push(Mutation::Put(entry.clone()));
        self.commit(muts).await?;
        // A concurrent delete of an ancestor that was empty when `parents` looked may have
        // removed it before our put landed: put the chain back (the entry now keeps it).
        if let Some(dir) = path::parent(&entry.path)
            && dir != "/"
            && self.store.find(dir).await?.is_none()
        {
            self.mkdir(dir).await?;
        }
        self.gc_wake.notify_one();
        Ok(entry)
    }
}

pub(crate) fn precondition_failed(p: &str) -> FilerError {
    FilerError::PreconditionFailed(format!(
        "{p}: the precondition of the request does not hold"
    ))
}
