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

#[async_trait::async_trait]
impl LocalVolumes for LocalStore {
    /// Declines what the HTTP upload does more for: replicated volumes (the copies go
    /// out over HTTP), replica copies, gzip bodies, `Seaweed-*` pairs; and any failure,
    /// so that HTTP answers it with its usual status. Like the HTTP upload, a small
    /// unsynced append runs here and anything else on the blocking pool.
    async fn write(
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
        let fsync = opts.fsync || self.fsync || vol.fsync_always();
        let outcome = if !fsync && data.len() <= crate::http::INLINE_WRITE_MAX {
            vol.write(needle, false).ok()?
        } else {
            tokio::task::spawn_blocking(move || vol.write(needle, fsync))
                .await
                .ok()?
                .ok()?
        };
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

    /// Reads the whole data (one positioned read, CRC-checked) and cuts the span out:
    /// here for a small needle (read with its header), on the blocking pool for a large
    /// one. Declines gzip-stored needles (HTTP inflates them), spans past the end, and
    /// anything that fails.
    async fn read(&self, server: &str, fid: &FileId, offset: u64, len: u64) -> Option<Bytes> {
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
        let all = if h.is_loaded() {
            h.read_all().ok()?
        } else {
            tokio::task::spawn_blocking(move || h.read_all())
                .await
                .ok()?
                .ok()?
        };
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::FileExt;

    use kelp_proto::{Cookie, NeedleKey, ReplicaPlacement, Ttl, VolumeId};

    use super::*;
    use crate::store::{DiskLocation, StoreOptions};

    const ME: &str = "127.0.0.1:18080";

    fn local(dir: &std::path::Path, placement: &str) -> (LocalStore, Arc<Store>) {
        let store = Arc::new(
            Store::open(vec![DiskLocation::new(dir, 4)], StoreOptions::default()).unwrap(),
        );
        store
            .allocate_volume(
                VolumeId(1),
                "",
                placement.parse::<ReplicaPlacement>().unwrap(),
                Ttl::EMPTY,
            )
            .unwrap();
        (
            LocalStore::new(store.clone(), ME.into(), false, 1 << 30),
            store,
        )
    }

    fn fid(key: u64) -> FileId {
        FileId {
            volume: VolumeId(1),
            key: NeedleKey(key),
            cookie: Cookie(0x1234),
        }
    }

    #[tokio::test]
    async fn writes_and_reads_spans_checked_by_crc() {
        let dir = tempfile::tempdir().unwrap();
        let (l, store) = local(dir.path(), "000");
        let data = Bytes::from((0..300_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        let opts = UploadOptions {
            skip_md5: true,
            ..Default::default()
        };
        let r = l.write(ME, &fid(7), &data, &opts).await.unwrap();
        assert_eq!((r.size, r.content_md5.as_str()), (300_000, ""));
        let with_md5 = l
            .write(ME, &fid(8), &data, &UploadOptions::default())
            .await
            .unwrap();
        assert_eq!(with_md5.content_md5.len(), 24);
        // Another server, or a volume this one lacks: declined, so HTTP decides.
        assert!(
            l.write("127.0.0.1:1", &fid(9), &data, &opts)
                .await
                .is_none()
        );
        assert!(l.read("127.0.0.1:1", &fid(7), 0, 10).await.is_none());
        let other = FileId {
            volume: VolumeId(2),
            ..fid(7)
        };
        assert!(l.read(ME, &other, 0, 10).await.is_none());

        assert_eq!(l.read(ME, &fid(7), 0, 1 << 30).await.unwrap(), data);
        assert_eq!(
            l.read(ME, &fid(7), 1000, 10).await.unwrap(),
            data.slice(1000..1010)
        );
        assert!(
            l.read(ME, &fid(7), 300_000, 1).await.is_none(),
            "past the end"
        );
        let wrong_cookie = FileId {
            cookie: Cookie(1),
            ..fid(7)
        };
        assert!(l.read(ME, &wrong_cookie, 0, 10).await.is_none());

        // A flipped byte on disk: never served.
        let v = store.volume(VolumeId(1)).unwrap();
        let h = v.open_needle(NeedleKey(7), Cookie(0x1234)).unwrap();
        let (at, _) = h.record_span();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(v.dat_path())
            .unwrap();
        f.write_all_at(&[0xee], at + 40 + 200_000).unwrap();
        assert!(l.read(ME, &fid(7), 0, 10).await.is_none());
        assert_eq!(l.read(ME, &fid(8), 0, 4).await.unwrap(), data.slice(0..4));

        // Small needles: an unsynced append and a read served on the task, an fsynced
        // append on the blocking pool; the same bytes come back either way.
        let small = Bytes::from_static(b"a small needle");
        let synced = UploadOptions {
            fsync: true,
            ..Default::default()
        };
        assert!(l.write(ME, &fid(20), &small, &opts).await.is_some());
        assert!(l.write(ME, &fid(21), &small, &synced).await.is_some());
        assert_eq!(l.read(ME, &fid(20), 2, 5).await.unwrap(), small.slice(2..7));
        assert_eq!(l.read(ME, &fid(21), 0, 100).await.unwrap(), small);
    }

    #[tokio::test]
    async fn replicated_volumes_go_over_http() {
        let dir = tempfile::tempdir().unwrap();
        let (l, _) = local(dir.path(), "001");
        assert!(
            l.write(
                ME,
                &fid(1),
                &Bytes::from_static(b"x"),
                &UploadOptions::default()
            )
            .await
            .is_none()
        );
    }
}
