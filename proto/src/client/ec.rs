//! The volume server's erasure-coding admin calls (`/admin/ec/*`), used by `kelp shell`
//! and by volume servers fetching shards from each other.

use crate::security::Authorize;
use std::time::Duration;

use super::volume::{VolumeClient, one};
use super::{ClientError, base_url, check};
use crate::VolumeId;
use crate::volume_api::{
    EcCopyRequest, EcDeleteShardsRequest, EcEncodeRequest, EcFileRequest, EcRebuildRequest,
    EcShardReadRequest, EcShardsReadRequest, EcVolumeStatus,
};

impl VolumeClient {
    /// Encodes the local volume `vid` into `data` + `parity` shards next to it (the
    /// `.dat` stays).
    pub async fn ec_encode(
        &self,
        server: &str,
        vid: u32,
        data: u8,
        parity: u8,
    ) -> Result<EcVolumeStatus, ClientError> {
        self.admin(
            server,
            "ec/encode",
            &EcEncodeRequest {
                volume: VolumeId(vid),
                data_shards: Some(data),
                parity_shards: Some(parity),
            },
        )
        .await
    }

    /// Makes `server` pull `shards` of EC volume `vid` from `from`, then mount them.
    /// Without `replace`, `.ecx`/`.ecj`/`.vif` are pulled only if `server` has none; with
    /// it, they are pulled too and `server`'s whole EC set becomes exactly `shards` of
    /// `from`'s encoding, swapped in crash-safely (after an EC vacuum on `from`).
    pub async fn ec_copy(
        &self,
        server: &str,
        vid: u32,
        collection: &str,
        shards: &[u8],
        from: &str,
        replace: bool,
    ) -> Result<EcVolumeStatus, ClientError> {
        self.admin(
            server,
            "ec/copy",
            &EcCopyRequest {
                volume: VolumeId(vid),
                collection: collection.to_string(),
                shards: shards.into(),
                from: from.to_string(),
                replace,
            },
        )
        .await
    }

    /// Drops the deleted needles of EC volume `vid` on `server` (which must hold at least
    /// `data_shards` of its shards): every shard is rewritten there.
    pub async fn ec_vacuum(&self, server: &str, vid: u32) -> Result<EcVolumeStatus, ClientError> {
        self.admin(server, "ec/vacuum", &one(vid)).await
    }

    /// What `server` holds of EC volume `vid`.
    pub async fn ec_info(&self, server: &str, vid: u32) -> Result<EcVolumeStatus, ClientError> {
        let url = format!("{}/admin/ec/info", base_url(server));
        let resp = self
            .http
            .get(&url)
            .admin()
            .query(&one(vid))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        super::json_reply(&url, resp).await
    }

    /// A verified byte range of one shard held by `server`.
    pub async fn ec_shard_read(
        &self,
        server: &str,
        vid: u32,
        shard: u8,
        offset: u64,
        size: usize,
        timeout: Duration,
    ) -> Result<bytes::Bytes, ClientError> {
        let query = EcShardReadRequest {
            volume: VolumeId(vid),
            shard,
            offset,
            size: size as u64,
        };
        self.get_bytes(server, "ec/shard", &query, timeout).await
    }

    /// The deleted needle keys in `server`'s `.ecj` of EC volume `vid`.
    pub async fn ec_journal(&self, server: &str, vid: u32) -> Result<Vec<u64>, ClientError> {
        let query = EcFileRequest {
            volume: VolumeId(vid),
            ext: ".ecj".to_string(),
        };
        let b = self
            .get_bytes(server, "ec/file", &query, Duration::from_secs(30))
            .await?;
        // A torn last entry (a write in progress) is not a key yet.
        Ok(b.chunks_exact(8)
            .map(|c| c.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)))
            .collect())
    }

    /// One EC file of volume `vid` on `server` (`ext` as in [`EcFileRequest`]), its body
    /// not yet read: for copies, which stream it to disk.
    pub async fn ec_file(
        &self,
        server: &str,
        vid: u32,
        ext: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}/admin/ec/file", base_url(server));
        let query = EcFileRequest {
            volume: VolumeId(vid),
            ext: ext.to_string(),
        };
        check(&url, self.http.get(&url).admin().query(&query).send().await).await
    }

    /// `GET /admin/<path>?<query>` on `server`, the whole body.
    pub(super) async fn get_bytes<Q: serde::Serialize + ?Sized>(
        &self,
        server: &str,
        path: &str,
        query: &Q,
        timeout: Duration,
    ) -> Result<bytes::Bytes, ClientError> {
        let url = format!("{}/admin/{path}", base_url(server));
        let resp = self
            .http
            .get(&url)
            .admin()
            .query(query)
            .timeout(timeout)
            .send()
            .await;
        let resp = check(&url, resp).await?;
        resp.bytes().await.map_err(|e| ClientError::Transport {
            url,
            message: e.to_string(),
        })
    }

    /// The same verified byte range of several shards held by `server`, concatenated.
    pub async fn ec_shards_read(
        &self,
        server: &str,
        vid: u32,
        shards: &[u8],
        offset: u64,
        size: usize,
        timeout: Duration,
    ) -> Result<bytes::Bytes, ClientError> {
        let query = EcShardsReadRequest {
            volume: VolumeId(vid),
            shards: shards.into(),
            offset,
            size: size as u64,
        };
        self.get_bytes(server, "ec/shards", &query, timeout).await
    }

    /// Deletes `shards` of EC volume `vid` on `server` (all its EC files when none remain).
    pub async fn ec_delete_shards(
        &self,
        server: &str,
        vid: u32,
        shards: &[u8],
    ) -> Result<EcVolumeStatus, ClientError> {
        self.admin(
            server,
            "ec/delete-shards",
            &EcDeleteShardsRequest {
                volume: VolumeId(vid),
                shards: shards.into(),
            },
        )
        .await
    }

    /// (Re)opens EC volume `vid` from the files on `server`'s disks.
    pub async fn ec_mount(&self, server: &str, vid: u32) -> Result<EcVolumeStatus, ClientError> {
        self.admin(server, "ec/mount", &one(vid)).await
    }

    /// Stops serving EC volume `vid` on `server` (files stay).
    pub async fn ec_unmount(&self, server: &str, vid: u32) -> Result<(), ClientError> {
        self.admin::<serde_json::Value, _>(server, "ec/unmount", &one(vid))
            .await
            .map(|_| ())
    }

    /// Regenerates `missing` shards of EC volume `vid` on `server`, fetching enough
    /// shards from the other holders first.
    pub async fn ec_rebuild(
        &self,
        server: &str,
        vid: u32,
        missing: &[u8],
    ) -> Result<EcVolumeStatus, ClientError> {
        self.admin(
            server,
            "ec/rebuild",
            &EcRebuildRequest {
                volume: VolumeId(vid),
                missing: missing.into(),
            },
        )
        .await
    }

    /// Decodes EC volume `vid` (≥ data shards must be on `server`) into a normal volume,
    /// mounts it and removes the local EC files.
    pub async fn ec_decode(&self, server: &str, vid: u32) -> Result<(), ClientError> {
        self.admin::<serde_json::Value, _>(server, "ec/decode", &one(vid))
            .await
            .map(|_| ())
    }
}
