//! In-process volume access: a volume server running in the same process (`kelp
//! server`) serves the filer's chunk writes and reads without a loopback HTTP round trip.

use bytes::Bytes;

use super::UploadOptions;
use crate::id::FileId;
use crate::volume_api::UploadResult;

/// A volume server reachable in this process. Every method may decline (`None`), and
/// the caller then goes over HTTP, which also reports any error properly: so an
/// implementation declines whatever it does not handle exactly as its HTTP API would.
/// An implementation keeps disk waits off the async runtime itself (it alone knows
/// which needles are small and which writes fsync).
#[async_trait::async_trait]
pub trait LocalVolumes: Send + Sync + std::fmt::Debug {
    /// Stores `data` as the needle `fid` if `server` (`host:port`) is this process's
    /// volume server and it holds the volume.
    async fn write(
        &self,
        server: &str,
        fid: &FileId,
        data: &Bytes,
        opts: &UploadOptions,
    ) -> Option<UploadResult>;

    /// Bytes `offset..offset + len` (cut at the end of the data) of the needle `fid`,
    /// CRC-checked, if `server` is this process's volume server and it holds the volume.
    async fn read(&self, server: &str, fid: &FileId, offset: u64, len: u64) -> Option<Bytes>;
}
