//! The volume server client: upload, read, delete needles, and the admin calls.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::local::LocalVolumes;
use super::{ClientError, base_url, check, json_reply};
use crate::VolumeId;
use crate::id::FileId;
use crate::master_api::DeleteCollectionRequest;
use crate::security::Authorize;
use crate::volume_api::{
    AllocateVolumeRequest, DeleteResult, NeedleDeleted, NeedleList, NeedleRawStored, NeedleRequest,
    NeedlesRequest, ReadonlyRequest, UploadResult, VacuumCheck, VolumeCopied, VolumeCopyRequest,
    VolumeFileRequest, VolumeRequest, VolumeServerStatus, VolumeSizes,
};

/// The query of the admin calls that name one volume.
pub(super) fn one(vid: u32) -> VolumeRequest {
    VolumeRequest {
        volume: VolumeId(vid),
    }
}

/// Options of one upload.
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    pub name: Option<String>,
    pub mime: Option<String>,
    pub ttl: Option<String>,
    pub fsync: bool,
    /// Internal: a replica copy from another volume server (no further fan-out).
    pub replicate: bool,
    /// Unix seconds to store as the last-modified time.
    pub ts: Option<u64>,
    /// `Seaweed-*` pairs, without the prefix.
    pub pairs: Vec<(String, String)>,
    /// The body is gzip data, to be stored as is.
    pub gzip: bool,
    /// Do not compute the data's MD5 (`md5=false`): the answer then has no
    /// `contentMd5`. For callers that hash the bytes themselves.
    pub skip_md5: bool,
    /// The write token the master assigned with the fid (`auth`); without one, kelp's
    /// servers present their admin credential.
    pub jwt: Option<String>,
}

/// Calls volume servers by address (`host:port`).
#[derive(Debug, Clone)]
pub struct VolumeClient {
    pub(super) http: reqwest::Client,
    /// The volume server in this process, if any.
    local: Option<Arc<dyn LocalVolumes>>,
}

impl VolumeClient {
    pub fn new(http: reqwest::Client) -> VolumeClient {
        VolumeClient { http, local: None }
    }

    /// Serves calls to the volume server in this process through `local`.
    pub fn with_local(mut self, local: Arc<dyn LocalVolumes>) -> VolumeClient {
        self.local = Some(local);
        self
    }

    /// [`Self::upload`] of bytes in memory: by the in-process volume server when
    /// `server` is it, else over HTTP.
    pub async fn upload_bytes(
        &self,
        server: &str,
        fid: &FileId,
        data: Bytes,
        opts: &UploadOptions,
    ) -> Result<UploadResult, ClientError> {
        if let Some(local) = &self.local
            && let Some(r) = local.write(server, fid, &data, opts).await
        {
            return Ok(r);
        }
        self.upload(server, fid, data, opts).await
    }

    /// Bytes `offset..offset + len` of `fid` from the in-process volume server, if
    /// `server` is it and it can serve them; `None`: ask over HTTP.
    pub async fn read_local(
        &self,
        server: &str,
        fid: &FileId,
        offset: u64,
        len: u64,
    ) -> Option<Bytes> {
        self.local.as_ref()?.read(server, fid, offset, len).await
    }

    /// `PUT /<fid>` with a raw body.
    pub async fn upload(
        &self,
        server: &str,
        fid: &FileId,
        body: impl Into<reqwest::Body>,
        opts: &UploadOptions,
    ) -> Result<UploadResult, ClientError> {
        let url = format!("{}/{fid}", base_url(server));
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(t) = &opts.ttl {
            q.push(("ttl", t.clone()));
        }
        if opts.fsync {
            q.push(("fsync", "true".into()));
        }
        if opts.replicate {
            q.push(("type", "replicate".into()));
        }
        if let Some(ts) = opts.ts {
            q.push(("ts", ts.to_string()));
        }
        if let Some(n) = &opts.name {
            q.push(("name", n.clone()));
        }
        if opts.skip_md5 {
            q.push(("md5", "false".into()));
        }
        let mut req = self
            .http
            .put(&url)
            .query(&q)
            .body(body)
            .token_or_admin(opts.jwt.as_deref());
        req = req.header(
            "Content-Type",
            opts.mime
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
        );
        if opts.gzip {
            req = req.header("Content-Encoding", "gzip");
        }
        for (k, v) in &opts.pairs {
            req = req.header(format!("Seaweed-{k}"), v);
        }
        json_reply(&url, req.send().await).await
    }

    /// `GET /<fid>`, optionally with a `Range` header value; the body streams.
    pub async fn get(
        &self,
        server: &str,
        fid: &FileId,
        range: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}/{fid}", base_url(server));
        let mut req = self.http.get(&url).admin();
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        check(&url, req.send().await).await
    }

    /// `DELETE /<fid>`.
    pub async fn delete(
        &self,
        server: &str,
        fid: &FileId,
        replicate: bool,
    ) -> Result<DeleteResult, ClientError> {
        let url = format!("{}/{fid}", base_url(server));
        let mut req = self.http.delete(&url).admin();
        if replicate {
            req = req.query(&[("type", "replicate")]);
        }
        json_reply(&url, req.send().await).await
    }

    /// `POST /admin/<path>?<query>` on `server`, the JSON answer.
    pub(super) async fn admin<T: serde::de::DeserializeOwned, Q: serde::Serialize + ?Sized>(
        &self,
        server: &str,
        path: &str,
        query: &Q,
    ) -> Result<T, ClientError> {
        self.admin_json(reqwest::Method::POST, server, path, query)
            .await
    }

    /// `GET /admin/<path>?<query>` on `server`, the JSON answer.
    async fn admin_get<T: serde::de::DeserializeOwned, Q: serde::Serialize + ?Sized>(
        &self,
        server: &str,
        path: &str,
        query: &Q,
    ) -> Result<T, ClientError> {
        self.admin_json(reqwest::Method::GET, server, path, query)
            .await
    }

    async fn admin_json<T: serde::de::DeserializeOwned, Q: serde::Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        server: &str,
        path: &str,
        query: &Q,
    ) -> Result<T, ClientError> {
        let url = format!("{}/admin/{path}", base_url(server));
        let resp = self
            .http
            .request(method, &url)
            .admin()
            .query(query)
            .timeout(Duration::from_secs(600))
            .send()
            .await;
        json_reply(&url, resp).await
    }

    /// Creates an empty volume on the server.
    pub async fn allocate_volume(
        &self,
        server: &str,
        req: &AllocateVolumeRequest,
    ) -> Result<(), ClientError> {
        let url = format!("{}/admin/volume/allocate", base_url(server));
        let resp = self
            .http
            .post(&url)
            .admin()
            .query(req)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        json_reply::<serde_json::Value>(&url, resp)
            .await
            .map(|_| ())
    }

    pub async fn delete_volume(&self, server: &str, vid: u32) -> Result<(), ClientError> {
        self.admin::<serde_json::Value, _>(server, "volume/delete", &one(vid))
            .await
            .map(|_| ())
    }

    pub async fn mark_readonly(
        &self,
        server: &str,
        vid: u32,
        readonly: bool,
    ) -> Result<(), ClientError> {
        self.admin::<serde_json::Value, _>(
            server,
            "volume/readonly",
            &ReadonlyRequest {
                volume: VolumeId(vid),
                readonly: Some(readonly),
            },
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_collection(
        &self,
        server: &str,
        collection: &str,
    ) -> Result<(), ClientError> {
        self.admin::<serde_json::Value, _>(
            server,
            "collection/delete",
            &DeleteCollectionRequest {
                collection: collection.to_string(),
            },
        )
        .await
        .map(|_| ())
    }

    pub async fn vacuum_check(&self, server: &str, vid: u32) -> Result<VacuumCheck, ClientError> {
        self.admin(server, "vacuum/check", &one(vid)).await
    }

    pub async fn vacuum_compact(&self, server: &str, vid: u32) -> Result<(), ClientError> {
        self.admin::<serde_json::Value, _>(server, "vacuum/compact", &one(vid))
            .await
            .map(|_| ())
    }

    pub async fn vacuum_commit(&self, server: &str, vid: u32) -> Result<(), ClientError> {
        self.admin::<serde_json::Value, _>(server, "vacuum/commit", &one(vid))
            .await
            .map(|_| ())
    }

    pub async fn vacuum_cleanup(&self, server: &str, vid: u32) -> Result<(), ClientError> {
        self.admin::<serde_json::Value, _>(server, "vacuum/cleanup", &one(vid))
            .await
            .map(|_| ())
    }

    /// A consistent snapshot of the sizes of normal volume `vid`'s `.idx` and `.dat` on
    /// `server`, for copying it.
    pub async fn volume_sizes(&self, server: &str, vid: u32) -> Result<VolumeSizes, ClientError> {
        self.admin_get(server, "volume/sizes", &one(vid)).await
    }

    /// The first `upto` bytes (all when `None`) of the `ext` file (`.dat`, `.idx`,
    /// `.vif`) of normal volume `vid` on `server`, its body not yet read: copies stream
    /// it to disk.
    pub async fn volume_file(
        &self,
        server: &str,
        vid: u32,
        ext: &str,
        upto: Option<u64>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}/admin/volume/file", base_url(server));
        let query = VolumeFileRequest {
            volume: VolumeId(vid),
            ext: ext.to_string(),
            upto,
        };
        check(&url, self.http.get(&url).admin().query(&query).send().await).await
    }

    /// Makes `server` pull normal volume `vid` of `collection` from `from` (a volume
    /// server the masters know), at most `max_mbps` MiB/s (0: unlimited), verify it and
    /// mount it. No timeout: a large volume takes as long as it takes.
    pub async fn volume_copy(
        &self,
        server: &str,
        vid: u32,
        collection: &str,
        from: &str,
        max_mbps: u64,
    ) -> Result<VolumeCopied, ClientError> {
        let url = format!("{}/admin/volume/copy", base_url(server));
        let query = VolumeCopyRequest {
            volume: VolumeId(vid),
            collection: collection.to_string(),
            from: from.to_string(),
            max_mbps: (max_mbps > 0).then_some(max_mbps),
        };
        let resp = self.http.post(&url).admin().query(&query).send().await;
        json_reply(&url, resp).await
    }

    /// Every live key (with its `Size` field) and every deleted key of normal volume
    /// `vid` on `server`.
    pub async fn volume_needles(&self, server: &str, vid: u32) -> Result<NeedleList, ClientError> {
        self.admin_get(server, "volume/needles", &one(vid)).await
    }

    /// [`Self::volume_needles`] with the append time of each live needle
    /// ([`NeedleList::times`]; one small read per needle on the server).
    pub async fn volume_needles_timed(
        &self,
        server: &str,
        vid: u32,
    ) -> Result<NeedleList, ClientError> {
        let query = NeedlesRequest {
            volume: VolumeId(vid),
            times: true,
        };
        self.admin_get(server, "volume/needles", &query).await
    }

    /// The raw record of live needle `key` of volume `vid` on `server`, exactly as stored
    /// in its `.dat` (header, body, checksum, timestamp, padding).
    pub async fn needle_raw(&self, server: &str, vid: u32, key: u64) -> Result<Bytes, ClientError> {
        let query = NeedleRequest {
            volume: VolumeId(vid),
            key,
        };
        self.get_bytes(server, "volume/needle", &query, Duration::from_secs(600))
            .await
    }

    /// Appends a raw record (as [`Self::needle_raw`] returns it) to volume `vid` on
    /// `server` only: CRC-checked there, stored as is, not replicated. A 409 when the
    /// key is live there already.
    pub async fn needle_put_raw(
        &self,
        server: &str,
        vid: u32,
        record: Bytes,
    ) -> Result<NeedleRawStored, ClientError> {
        let url = format!("{}/admin/volume/needle", base_url(server));
        let resp = self
            .http
            .post(&url)
            .admin()
            .query(&one(vid))
            .header("Content-Type", "application/octet-stream")
            .body(record)
            .timeout(Duration::from_secs(600))
            .send()
            .await;
        json_reply(&url, resp).await
    }

    /// Deletes needle `key` of volume `vid` on `server` only (a tombstone; no cookie
    /// check, no replication). `false` when it was not live there.
    pub async fn needle_delete_local(
        &self,
        server: &str,
        vid: u32,
        key: u64,
    ) -> Result<bool, ClientError> {
        let query = NeedleRequest {
            volume: VolumeId(vid),
            key,
        };
        self.admin::<NeedleDeleted, _>(server, "volume/needle/delete", &query)
            .await
            .map(|d| d.deleted)
    }

    pub async fn status(&self, server: &str) -> Result<VolumeServerStatus, ClientError> {
        let url = format!("{}/status", base_url(server));
        json_reply(&url, self.http.get(&url).admin().send().await).await
    }
}
