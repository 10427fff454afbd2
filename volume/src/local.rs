//! The volume server as seen from its own process: chunk writes and reads for the
//! filer of a `kelp server`, without HTTP (see `kelp_proto::client::LocalVolumes`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use kelp_proto::client::{LocalVolumes, UploadOptions};
use kelp_proto::id::FileId;
use kelp_proto::ttl::Ttl;
use kelp_proto::volume_api::UploadResult;
use md5::{Digest, Md5};

use crate::needle::Needle;
use crate::store::Store;
use crate::volume::ReadOptions;

/// The volume server at `url` (its `host:port`), served from its store.
#[derive(Debug)]
pub struct LocalStore {
    store: Arc<Store>,
    url: String,
    /// The server's `-fsync`: every write is synced before it is acknowledged.
    fsync: bool,
    /// The server's largest accepted needle.
    file_size_limit: u64,
}

impl LocalStore {
    pub fn new(store: Arc<Store>, url: String, fsync: bool, file_size_limit: u64) -> LocalStore {
        LocalStore {
            store,
            url,
            fsync,
            file_size_limit,
        }
    }
}

impl LocalVolumes for LocalStore {
    /// Declines what the HTTP upload does more for: replicated volumes (the copies go
    /// out over HTTP), replica copies, gzip bodies, `Seaweed-*` pairs; and any failure,
    /// so that HTTP answers it with its usual status.
    fn write(
        &self,
        server: &str,
        fid: &FileId,
        data: &Bytes,
        opts: &UploadOptions,
    ) -> Option<UploadResult> {
        if server != self.url
            || opts.replicate
            || opts.gzip
            || !opts.pairs.is_empty()
            || data.len() as u64 > self.file_size_limit
        {
            return None;
        }
        let vol = self.store.volume(fid.volume)?;
        if vol.placement().copy_count() > 1 {
            return None;
        }
        let ttl: Option<Ttl> = match opts.ttl.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => Some(t.parse().ok()?),
            None => None,
        };
        let mut needle = Needle::new(fid.key, fid.cookie, data.clone());
        needle.name = opts
            .name
            .clone()
            .filter(|n| !n.is_empty() && n.len() < 256)
            .map(String::into_bytes);
        needle.mime = crate::http::storable_mime(opts.mime.as_deref())
            .filter(|m| m.len() < 256)
            .map(String::into_bytes);
        needle.last_modified = Some(opts.ts.unwrap_or_else(now_secs));
        needle.ttl = ttl;
        needle.validate().ok()?;
        let outcome = vol.write(needle, opts.fsync || self.fsync).ok()?;
        let content_md5 = if opts.skip_md5 {
            String::new()
        } else {
            base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
        };
        Some(UploadResult {
            name: opts.name.clone().unwrap_or_default(),
            size: data.len() as u64,
            etag: outcome.etag(),
            mime: opts.mime.clone().unwrap_or_default(),
            error: String::new(),
            content_md5,
        })
    }

    /// Reads the whole data (one positioned read, CRC-checked) and cuts the span out.
    /// Declines gzip-stored needles (HTTP inflates them), spans past the end, and
    /// anything that fails.
    fn read(&self, server: &str, fid: &FileId, offset: u64, len: u64) -> Option<Bytes> {
        if server != self.url {
            return None;
        }
        let vol = self.store.volume(fid.volume)?;
        let mut h = vol
            .open_needle_with(fid.key, fid.cookie, ReadOptions::default())
            .ok()?;
        if h.is_gzip() || offset >= h.data_len() {
            return None;
        }
        let all = h.read_all().ok()?;
        let end = offset.saturating_add(len).min(all.len() as u64);
        Some(all.slice(offset as usize..end as usize))
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
