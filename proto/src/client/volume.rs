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
    AllocateVolumeRequest, DeleteResult, ReadonlyRequest, UploadResult, VacuumCheck, VolumeRequest,
    VolumeServerStatus,
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
        let url = format!("{}/admin/{path}", base_url(server));
        let resp = self
            .http
            .post(&url)
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

    pub async fn status(&self, server: &str) -> Result<VolumeServerStatus, ClientError> {
        let url = format!("{}/status", base_url(server));
        json_reply(&url, self.http.get(&url).admin().send().await).await
    }
}
