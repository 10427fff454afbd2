//! [`Measured`]: a [`FilerStore`] that times every call of the store it wraps, by
//! operation, for the filer's metrics (`kelp_filer_store_duration_seconds`).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{FilerStore, GcItem, ListOptions, LogBounds, LogPage, Mutation, StoreError};
use crate::entry::Entry;

/// Call latencies by store operation, shared with the metrics registry.
pub type Timings = kelp_proto::metrics::LabeledHistograms;

/// The wrapped store and its timings.
pub struct Measured {
    inner: Arc<dyn FilerStore>,
    timings: Timings,
}

impl Measured {
    pub fn new(inner: Arc<dyn FilerStore>, timings: Timings) -> Measured {
        Measured { inner, timings }
    }

    async fn timed<T>(&self, op: &'static str, f: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let r = f.await;
        self.timings.observe(op, start.elapsed());
        r
    }
}

#[async_trait]
impl FilerStore for Measured {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn find(&self, path: &str) -> Result<Option<Entry>, StoreError> {
        self.timed("find", self.inner.find(path)).await
    }

    async fn find_many(&self, paths: &[&str]) -> Result<Vec<Option<Entry>>, StoreError> {
        self.timed("find_many", self.inner.find_many(paths)).await
    }

    async fn list(&self, dir: &str, opts: &ListOptions) -> Result<Vec<Entry>, StoreError> {
        self.timed("list", self.inner.list(dir, opts)).await
    }

    async fn apply(&self, muts: Vec<Mutation>) -> Result<(), StoreError> {
        self.timed("apply", self.inner.apply(muts)).await
    }

    async fn kv_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.timed("kv_get", self.inner.kv_get(key)).await
    }

    async fn kv_scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        max: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.timed("kv_scan", self.inner.kv_scan(prefix, start_after, max))
            .await
    }

    async fn gc_pending(&self, max: usize) -> Result<Vec<GcItem>, StoreError> {
        self.timed("gc_pending", self.inner.gc_pending(max)).await
    }

    async fn gc_queue_len(&self) -> Result<u64, StoreError> {
        self.timed("gc_queue_len", self.inner.gc_queue_len()).await
    }

    async fn gc_done(&self, seqs: &[u64]) -> Result<(), StoreError> {
        self.timed("gc_done", self.inner.gc_done(seqs)).await
    }

    async fn chunk_refs(&self, fid: &str) -> Result<u64, StoreError> {
        self.timed("chunk_refs", self.inner.chunk_refs(fid)).await
    }

    async fn log_read(&self, since: u64, max: usize) -> Result<LogPage, StoreError> {
        self.timed("log_read", self.inner.log_read(since, max))
            .await
    }

    async fn log_bounds(&self) -> Result<LogBounds, StoreError> {
        self.timed("log_bounds", self.inner.log_bounds()).await
    }

    async fn log_trim(&self, before_ns: i64) -> Result<u64, StoreError> {
        self.timed("log_trim", self.inner.log_trim(before_ns)).await
    }
}
