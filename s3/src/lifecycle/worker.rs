//! The lifecycle worker: once per lifecycle day (at each day boundary, UTC midnight by
//! default) it walks every bucket that has rules and expires current objects, removes
//! noncurrent versions and lone delete markers, and aborts stale multipart uploads.
//! Work goes in batches with a checkpoint in the filer store after each, so a restarted
//! filer resumes the run where it stopped; the store's `s3-lifecycle` lease lets one
//! gateway at a time run it when several share a store. What it removes goes the way of
//! any delete: its chunks are queued for the collector.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kelp_filer::Precondition;
use kelp_filer::entry::Entry;
use kelp_filer::lease::Lease;
use kelp_filer::store::{ListOptions, Mutation};
use serde::{Deserialize, Serialize};

use super::config_of;
use super::rules::{Config, Expiration};
use crate::error::GatewayResult;
use crate::gateway::Gateway;
use crate::keys::VERSION_SEP;
use crate::meta::{self, UPLOAD_KEY};
use crate::versions::{self, State};
use crate::walk::{Bound, Item, Walker};

/// Where the current run stands (the store's key-value space).
const STATE_KEY: &[u8] = b"s3/lifecycle/state";
/// Items between checkpoints.
pub const BATCH: usize = 500;

/// The phases of one bucket, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    Current,
    Versions,
    Uploads,
}

/// A run's progress, saved after every batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Progress {
    /// When the run started (unix seconds).
    started: i64,
    done: bool,
    /// The bucket being worked on, and how far: the last key (or upload) finished.
    bucket: Option<String>,
    phase: Phase,
    after: Option<String>,
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub expired: u64,
    pub noncurrent: u64,
    pub markers: u64,
    pub aborted: u64,
    /// Due, but refused (object lock) or failed; tried again next run.
    pub skipped: u64,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Why a run ends before its end.
#[derive(Debug)]
enum Halt {
    /// The lease went to another gateway: it goes on from the checkpoint.
    LostLease,
    Failed(crate::error::GatewayError),
}

impl From<crate::error::GatewayError> for Halt {
    fn from(e: crate::error::GatewayError) -> Halt {
        Halt::Failed(e)
    }
}

impl From<kelp_filer::FilerError> for Halt {
    fn from(e: kelp_filer::FilerError) -> Halt {
        Halt::Failed(e.into())
    }
}

/// What the walking steps of a run return.
type Step = Result<(), Halt>;

/// A run in progress: its checkpoint and the lease it runs under.
struct Run<'a> {
    progress: Progress,
    lease: &'a Lease,
    since_checkpoint: usize,
    /// Failpoint for the restart test: abort the process at the first checkpoint of
    /// a fresh (not resumed) run that has expired this many objects.
    crash_after: Option<u64>,
    resumed: bool,
    tally: Tally,
    day: u64,
}

impl Run<'_> {
    /// Counts one finished item; every [`BATCH`] items saves the progress and renews
    /// the lease.
    async fn step(&mut self, gw: &Gateway, after: Option<String>) -> Step {
        self.progress.after = after;
        self.since_checkpoint += 1;
        if self.since_checkpoint >= BATCH {
            self.checkpoint(gw).await?;
        }
        Ok(())
    }

    async fn checkpoint(&mut self, gw: &Gateway) -> Step {
        self.since_checkpoint = 0;
        save(gw, &self.progress).await;
        tracing::debug!(bucket = ?self.progress.bucket, phase = ?self.progress.phase, after = ?self.progress.after, "lifecycle checkpoint");
        if !self.resumed
            && let Some(n) = self.crash_after
            && self.tally.expired >= n
        {
            tracing::error!(
                expired = self.tally.expired,
                "lifecycle failpoint: aborting the process (-s3.lifecycle.crashAfter)"
            );
            std::process::abort();
        }
        if !self.lease.acquire().await {
            return Err(Halt::LostLease);
        }
        Ok(())
    }
}

async fn load(gw: &Gateway) -> Option<Progress> {
    let v = gw.filer.store.kv_get(STATE_KEY).await.ok()??;
    serde_json::from_slice(&v).ok()
}

async fn save(gw: &Gateway, p: &Progress) {
    let Ok(v) = serde_json::to_vec(p) else {
        return;
    };
    if let Err(e) = gw
        .filer
        .store
        .apply(vec![Mutation::KvPut(STATE_KEY.to_vec(), v)])
        .await
    {
        tracing::warn!(error = %e, "saving the lifecycle checkpoint failed");
    }
}

/// Runs the worker until the task is dropped: a run at each `day` boundary, resumed
/// after a restart.
pub async fn run(gw: Gateway, day: u64, crash_after: Option<u64>) {
    let day = day.max(1);
    let lease = Lease::new(
        gw.filer.store.clone(),
        "s3-lifecycle",
        Lease::unique_holder("s3-lifecycle"),
        Duration::from_secs(60),
    );
    let idle = Duration::from_secs(day.min(30));
    loop {
        if lease.acquire().await {
            match gw.lifecycle_run(&lease, day, crash_after).await {
                Ok(Some(t)) => tracing::info!(
                    expired = t.expired,
                    noncurrent = t.noncurrent,
                    delete_markers = t.markers,
                    aborted_uploads = t.aborted,
                    skipped = t.skipped,
                    "lifecycle run finished"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "lifecycle run failed; retried later"),
            }
        }
        // Sleep to the next day boundary, waking at least every `idle` to check the
        // lease (another gateway may have died mid-run).
        let now = now_secs().max(0) as u64;
        let next = (now / day + 1) * day;
        tokio::time::sleep(Duration::from_secs(next - now).min(idle)).await;
    }
}

impl Gateway {
    /// One run of the rules, if one is due (a day boundary passed since the last one
    /// started) or unfinished. `Ok(None)`: nothing was due, or the run stopped early
    /// (it resumes later). `crash_after`: see [`Run`].
    pub async fn lifecycle_run(
        &self,
        lease: &Lease,
        day: u64,
        crash_after: Option<u64>,
    ) -> GatewayResult<Option<Tally>> {
        let now = now_secs();
        let day_i = i64::try_from(day).unwrap_or(i64::MAX);
        let stored = load(self).await;
        let resumed = stored.as_ref().is_some_and(|p| !p.done);
        let progress = match stored {
            Some(p) if !p.done => {
                tracing::info!(bucket = ?p.bucket, phase = ?p.phase, after = ?p.after, "resuming the lifecycle run");
                p
            }
            Some(p) if now.div_euclid(day_i) <= p.started.div_euclid(day_i) => return Ok(None),
            _ => Progress {
                started: now,
                done: false,
                bucket: None,
                phase: Phase::Current,
                after: None,
            },
        };
        let mut run = Run {
            progress,
            lease,
            since_checkpoint: 0,
            crash_after,
            resumed,
            tally: Tally::default(),
            day,
        };
        match self.run_buckets(&mut run).await {
            Ok(()) => {}
            Err(Halt::LostLease) => {
                tracing::info!(
                    "lifecycle run stopped before its end: another gateway holds the lease"
                );
                return Ok(None);
            }
            Err(Halt::Failed(e)) => {
                save(self, &run.progress).await;
                return Err(e);
            }
        }
        run.progress.done = true;
        run.progress.bucket = None;
        run.progress.after = None;
        save(self, &run.progress).await;
        Ok(Some(run.tally))
    }

    async fn run_buckets(&self, run: &mut Run<'_>) -> Step {
        let root = self.paths.root().to_string();
        let mut after = run.progress.bucket.clone();
        // A resumed run starts again in the bucket it stopped in.
        let mut first = after.is_some();
        loop {
            let opts = ListOptions {
                start_after: after.clone(),
                inclusive: std::mem::take(&mut first),
                limit: 100,
                prefix: None,
            };
            let page = self.filer.list(&root, &opts).await?;
            let full = page.len() == opts.limit;
            for b in &page {
                let name = b.name().to_string();
                after = Some(name.clone());
                if !b.is_directory {
                    continue;
                }
                if run.progress.bucket.as_deref() != Some(name.as_str()) {
                    run.progress.bucket = Some(name.clone());
                    run.progress.phase = Phase::Current;
                    run.progress.after = None;
                }
                let Some(cfg) = config_of(b) else {
                    continue;
                };
                self.run_bucket(run, &name, b, &cfg).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn run_bucket(
        &self,
        run: &mut Run<'_>,
        bucket: &str,
        entry: &Entry,
        cfg: &Config,
    ) -> Step {
        let state = State::of(entry);
        if run.progress.phase == Phase::Current {
            self.expire_current(run, bucket, state, cfg).await?;
            run.progress.phase = Phase::Versions;
            run.progress.after = None;
            run.checkpoint(self).await?;
        }
        if run.progress.phase == Phase::Versions {
            self.expire_versions(run, bucket, state, cfg).await?;
            run.progress.phase = Phase::Uploads;
            run.progress.after = None;
            run.checkpoint(self).await?;
        }
        self.abort_uploads(run, bucket, cfg).await
    }

    /// Expiration (Days, Date) of current objects: removed in an unversioned bucket
    /// (only if unchanged since read), a delete marker on top in a versioned one.
    async fn expire_current(
        &self,
        run: &mut Run<'_>,
        bucket: &str,
        state: State,
        cfg: &Config,
    ) -> Step {
        if !cfg.rules.iter().any(|r| {
            r.enabled
                && matches!(
                    r.expiration,
                    Some(Expiration::Days(_) | Expiration::Date(_))
                )
        }) {
            return Ok(());
        }
        let root = self.paths.bucket(bucket);
        let bound = run.progress.after.as_deref().map(Bound::after);
        let mut w = Walker::new(
            self.filer.clone(),
            root.clone(),
            root,
            String::new(),
            None,
            bound,
            false,
        );
        let now = now_secs();
        while let Some(item) = w.next().await? {
            let (key, e) = match item {
                Item::Dir { key, entry } => {
                    w.enter(key, entry);
                    continue;
                }
                Item::Object { key, entry } => (key, entry),
            };
            let tags = meta::tags(&e);
            let due = cfg.rules.iter().any(|r| {
                r.enabled
                    && r.filter.matches(&key, meta::size(&e), &tags)
                    && r.current_due(e.attr.mtime, now, run.day)
            });
            if due {
                let done = if state.is_versioned() {
                    self.delete_any(bucket, state, &key, None, false)
                        .await
                        .map(|_| ())
                } else {
                    self.expire_unchanged(bucket, &key, e).await
                };
                match done {
                    Ok(()) => run.tally.expired += 1,
                    Err(err) => {
                        run.tally.skipped += 1;
                        tracing::debug!(%bucket, %key, error = %err, "lifecycle could not expire an object");
                    }
                }
            }
            run.step(self, Some(key)).await?;
        }
        Ok(())
    }

    /// Removes `e` at `key` if it is still the object there.
    async fn expire_unchanged(&self, bucket: &str, key: &str, e: Entry) -> GatewayResult<()> {
        let op = self.paths.object(bucket, key)?;
        if op.dir_marker {
            return self.delete_key(bucket, &op).await;
        }
        let path = e.path.clone();
        self.filer
            .delete_if(&path, false, Some(&Precondition::Unchanged(Box::new(e))))
            .await?;
        self.prune(bucket, &path).await
    }

    /// NoncurrentVersionExpiration and ExpiredObjectDeleteMarker, key by key over the
    /// `.versions` tree.
    async fn expire_versions(
        &self,
        run: &mut Run<'_>,
        bucket: &str,
        state: State,
        cfg: &Config,
    ) -> Step {
        let wanted = cfg.rules.iter().any(|r| {
            r.enabled
                && (r.noncurrent.is_some()
                    || matches!(r.expiration, Some(Expiration::ExpiredObjectDeleteMarker)))
        });
        if !wanted {
            return Ok(());
        }
        let root = self.paths.versions(bucket);
        let bound = run.progress.after.as_deref().map(Bound::after);
        let mut w = Walker::new(
            self.filer.clone(),
            self.paths.bucket(bucket),
            root,
            String::new(),
            None,
            bound,
            false,
        );
        // The archived versions of one key (consecutive in the walk), newest first.
        let mut group: Vec<Entry> = Vec::new();
        let mut group_key = String::new();
        let mut last_raw = String::new();
        loop {
            let next = match w.next().await {
                Ok(n) => n,
                Err(crate::error::GatewayError::Filer(kelp_filer::FilerError::NotFound(_))) => None,
                Err(e) => return Err(e.into()),
            };
            let item = match next {
                Some(Item::Dir { key, entry }) => {
                    w.enter(key, entry);
                    continue;
                }
                Some(Item::Object { key, entry }) => Some((key, entry)),
                None => None,
            };
            let key_of = |raw: &str| raw.rfind(VERSION_SEP).map(|i| raw[..i].to_string());
            let this_key = item.as_ref().and_then(|(raw, _)| key_of(raw));
            if !group.is_empty() && this_key.as_deref() != Some(group_key.as_str()) {
                let versions = std::mem::take(&mut group);
                self.expire_key_versions(run, bucket, state, cfg, &group_key, versions)
                    .await;
                run.step(self, Some(last_raw.clone())).await?;
            }
            let Some((raw, entry)) = item else {
                return Ok(());
            };
            let Some(k) = this_key else {
                continue;
            };
            group_key = k;
            last_raw = raw;
            group.push(entry);
        }
    }

    /// Applies the version rules to one key: `archived` are its versions under
    /// `.versions`, newest first.
    async fn expire_key_versions(
        &self,
        run: &mut Run<'_>,
        bucket: &str,
        state: State,
        cfg: &Config,
        key: &str,
        archived: Vec<Entry>,
    ) {
        let now = now_secs();
        let current = match self.paths.object(bucket, key) {
            Ok(op) => self.find_object(&op).await.ok().flatten(),
            Err(_) => return,
        };
        // Every version newest first; the first is the latest, the rest noncurrent.
        let mut all: Vec<Entry> = current.into_iter().collect();
        all.extend(archived);
        let mut kept: Vec<&Entry> = all.iter().take(1).collect();
        let mut newer_noncurrent = 0usize;
        for j in 1..all.len() {
            let v = &all[j];
            let became = all[j - 1].attr.mtime;
            let marker = versions::is_delete_marker(v);
            let (size, tags) = if marker {
                (0, Vec::new())
            } else {
                (meta::size(v), meta::tags(v))
            };
            let due = cfg.rules.iter().any(|r| {
                r.enabled
                    && r.filter.matches(key, size, &tags)
                    && r.noncurrent_due(became, newer_noncurrent, now, run.day)
            });
            if due {
                let id = versions::id_of(v);
                match self.delete_any(bucket, state, key, Some(&id), false).await {
                    Ok(_) => {
                        run.tally.noncurrent += 1;
                        continue;
                    }
                    Err(err) => {
                        run.tally.skipped += 1;
                        tracing::debug!(%bucket, %key, version = %id, error = %err, "lifecycle could not remove a noncurrent version");
                    }
                }
            }
            newer_noncurrent += 1;
            kept.push(v);
        }
        // A delete marker that is all that is left of a key has nothing to hide.
        if let [only] = kept.as_slice()
            && versions::is_delete_marker(only)
            && cfg.rules.iter().any(|r| {
                r.enabled
                    && matches!(r.expiration, Some(Expiration::ExpiredObjectDeleteMarker))
                    && r.filter.tags.is_empty()
                    && r.filter.matches(key, 0, &[])
            })
        {
            let id = versions::id_of(only);
            match self.delete_any(bucket, state, key, Some(&id), false).await {
                Ok(_) => run.tally.markers += 1,
                Err(err) => {
                    run.tally.skipped += 1;
                    tracing::debug!(%bucket, %key, error = %err, "lifecycle could not remove a delete marker");
                }
            }
        }
    }

    /// AbortIncompleteMultipartUpload: uploads older than the rule's days go, with
    /// their parts.
    async fn abort_uploads(&self, run: &mut Run<'_>, bucket: &str, cfg: &Config) -> Step {
        if !cfg
            .rules
            .iter()
            .any(|r| r.enabled && r.abort_incomplete_days.is_some())
        {
            return Ok(());
        }
        let dir = self.paths.uploads(bucket);
        let now = now_secs();
        loop {
            let opts = ListOptions {
                start_after: run.progress.after.clone(),
                limit: 100,
                ..ListOptions::default()
            };
            let page = match self.filer.list(&dir, &opts).await {
                Ok(p) => p,
                Err(kelp_filer::FilerError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let full = page.len() == opts.limit;
            for u in page {
                let key = u
                    .extended
                    .get(UPLOAD_KEY)
                    .map(|k| String::from_utf8_lossy(k).into_owned());
                let started = if u.attr.crtime > 0 {
                    u.attr.crtime
                } else {
                    u.attr.mtime
                };
                if let Some(key) = key
                    && u.is_directory
                    && cfg.rules.iter().any(|r| {
                        r.filter.matches(&key, 0, &[]) && r.abort_due(started, now, run.day)
                    })
                {
                    match self.filer.delete(&u.path, true).await {
                        Ok(()) => run.tally.aborted += 1,
                        Err(err) => {
                            run.tally.skipped += 1;
                            tracing::debug!(%bucket, upload = %u.path, error = %err, "lifecycle could not abort an upload");
                        }
                    }
                }
                run.step(self, Some(u.name().to_string())).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// [`Gateway::expiration_of`] for the object `e` read at `bucket`/`key`: only a
    /// current version expires. The bucket's rules come from the gateway's cache.
    pub async fn current_expiration(&self, bucket: &str, key: &str, e: &Entry) -> Option<String> {
        let path = self.paths.object(bucket, key).ok()?.path;
        if e.path != path {
            return None;
        }
        let cfg = self.lifecycle_cache.get(self, bucket).await?;
        expiration_by(&cfg, key, e, self.lifecycle_day)
    }

    /// The `x-amz-expiration` of an object, when a rule of its bucket expires it.
    pub async fn expiration_of(&self, bucket: &Entry, key: &str, e: &Entry) -> Option<String> {
        expiration_by(&config_of(bucket)?, key, e, self.lifecycle_day)
    }
}

/// The `x-amz-expiration` value `cfg` gives the current object `e` at `key`.
fn expiration_by(cfg: &Config, key: &str, e: &Entry, day: u64) -> Option<String> {
    let (at, rule) = cfg.current_expiry(key, meta::size(e), &meta::tags(e), e.attr.mtime, day)?;
    Some(super::rules::expiration_header(at, &rule))
}
