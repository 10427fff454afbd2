//! The data path: cut an upload stream into chunks and store them on volume servers
//! (bounded parallelism, ids assigned in batches), and read byte ranges back.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use kelp_proto::FileId;
use kelp_proto::buffers;
use kelp_proto::client::{ClientError, MasterClient, UploadOptions, VolumeClient};
use kelp_proto::master_api::AssignRequest;
use md5::{Digest, Md5};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::entry::FileChunk;
use crate::error::FilerError;

/// Where and how chunks are written.
#[derive(Debug, Clone, Default)]
pub struct WriteTarget {
    pub collection: String,
    pub replication: String,
    pub ttl: String,
    pub fsync: bool,
    /// Seal every chunk with this key before it leaves the filer (encryption at rest;
    /// see `cipher`). Chunk sizes and offsets stay those of the plaintext.
    pub cipher: Option<Arc<crate::cipher::ChunkKey>>,
}

/// What an upload produced.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub chunks: Vec<FileChunk>,
    pub size: u64,
    pub md5: [u8; 16],
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Where one chunk goes: its fid, the volume server, and the batch's write token.
struct Slot {
    fid: FileId,
    url: String,
    jwt: Option<String>,
}

/// File ids assigned ahead for one-chunk uploads, already recorded as uploads in
/// flight: one `/dir/assign` and one store write serve [`RESERVE`] small files. Kept
/// only without a security setup (write tokens expire) and for [`RESERVE_MAX_AGE`].
#[derive(Default)]
pub struct Reservoir {
    slots: std::sync::Mutex<HashMap<TargetKey, VecDeque<(Slot, Instant)>>>,
}

/// A write target's collection, replication and TTL.
type TargetKey = (String, String, String);

/// Fids one assign reserves for small uploads.
const RESERVE: u64 = 16;
/// Reserved fids unused for this long are given back.
const RESERVE_MAX_AGE: Duration = Duration::from_secs(5);

impl Reservoir {
    fn key(t: &WriteTarget) -> TargetKey {
        (t.collection.clone(), t.replication.clone(), t.ttl.clone())
    }

    /// A reserved fid for `t`, and the fids that waited too long (to give back).
    fn take(&self, t: &WriteTarget) -> (Option<Slot>, Vec<String>) {
        let mut all = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let Some(q) = all.get_mut(&Self::key(t)) else {
            return (None, Vec::new());
        };
        let mut stale = Vec::new();
        while let Some((slot, at)) = q.pop_front() {
            if at.elapsed() < RESERVE_MAX_AGE {
                return (Some(slot), stale);
            }
            stale.push(slot.fid.to_string());
        }
        (None, stale)
    }

    fn put(&self, t: &WriteTarget, slots: impl IntoIterator<Item = Slot>) {
        let now = Instant::now();
        let mut all = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(Self::key(t))
            .or_default()
            .extend(slots.into_iter().map(|s| (s, now)));
    }
}

/// Hands out file ids from `/dir/assign?count=N` batches, each recorded as an upload
/// in flight before it is handed out.
struct FidPool<'a> {
    master: Arc<MasterClient>,
    target: WriteTarget,
    ready: VecDeque<Slot>,
    pending: &'a crate::pending::Pending,
    reservoir: &'a Reservoir,
}

impl FidPool<'_> {
    async fn next(&mut self, want: u64) -> Result<Slot, FilerError> {
        if let Some(f) = self.ready.pop_front() {
            return Ok(f);
        }
        let reserve = want <= 1 && !kelp_proto::security::current().enabled();
        if reserve {
            let (slot, stale) = self.reservoir.take(&self.target);
            if !stale.is_empty() {
                self.pending.give_back(&stale).await;
            }
            if let Some(s) = slot {
                return Ok(s);
            }
        }
        let count = if reserve { RESERVE } else { want.clamp(1, 64) };
        let req = AssignRequest {
            count: Some(count),
            collection: Some(self.target.collection.clone()).filter(|c| !c.is_empty()),
            replication: Some(self.target.replication.clone()).filter(|c| !c.is_empty()),
            ttl: Some(self.target.ttl.clone()).filter(|c| !c.is_empty()),
            ..Default::default()
        };
        let a = self
            .master
            .assign(&req)
            .await
            .map_err(FilerError::from_assign)?;
        let first: FileId = a.fid.parse().map_err(|e| {
            FilerError::Internal(format!("master assigned a bad file id {:?}: {e}", a.fid))
        })?;
        let jwt = Some(a.auth).filter(|t| !t.is_empty());
        let fids: Vec<FileId> = (0..a.count.max(1))
            .filter_map(|i| first.with_delta(i))
            .collect();
        let names: Vec<String> = fids.iter().map(ToString::to_string).collect();
        self.pending.record(&names).await?;
        let mut slots = fids.into_iter().map(|fid| Slot {
            fid,
            url: a.url.clone(),
            jwt: jwt.clone(),
        });
        if reserve {
            let first = slots.next();
            self.reservoir.put(&self.target, slots);
            return first.ok_or_else(|| FilerError::Internal("master assigned no file id".into()));
        }
        self.ready.extend(slots);
        self.ready
            .pop_front()
            .ok_or_else(|| FilerError::Internal("master assigned no file id".into()))
    }
}

/// Stores one chunk's bytes; returns its chunk record.
async fn put_chunk(
    volumes: VolumeClient,
    Slot { fid, url, jwt }: Slot,
    offset: u64,
    data: Bytes,
    target: WriteTarget,
) -> Result<FileChunk, FilerError> {
    let size = data.len() as u64;
    let data = match &target.cipher {
        None => data,
        Some(key) => Bytes::from(seal(key.clone(), data).await?),
    };
    let opts = UploadOptions {
        ttl: Some(target.ttl.clone()).filter(|t| !t.is_empty()),
        fsync: target.fsync,
        jwt,
        // `upload_stream` hashes the whole body once; a second MD5 per chunk on the
        // volume server would double the cost of hashing.
        skip_md5: true,
        ..Default::default()
    };
    let stored = volumes
        .upload_bytes(&url, &fid, data, &opts)
        .await
        .map_err(|e| FilerError::Unavailable(format!("storing chunk {fid} on {url}: {e}")))?;
    // The chunk's etag is the volume server's (of its CRC); `upload_stream` replaces it
    // with the MD5 when the chunk holds the whole body.
    let etag = md5_hex_of_base64(&stored.content_md5).unwrap_or(stored.etag);
    Ok(FileChunk {
        fid: fid.to_string(),
        offset,
        size,
        modified_ts_ns: now_ns(),
        etag,
        is_manifest: false,
    })
}

/// Seals a chunk; off the async threads when it is big enough to take a while.
async fn seal(key: Arc<crate::cipher::ChunkKey>, data: Bytes) -> Result<Vec<u8>, FilerError> {
    if data.len() < 256 << 10 {
        return key.seal(&data);
    }
    tokio::task::spawn_blocking(move || key.seal(&data))
        .await
        .map_err(|e| FilerError::Internal(format!("sealing task: {e}")))?
}

/// A `contentMd5` value (base64 of 16 bytes) as lower-case hex; `None` if malformed or
/// absent.
fn md5_hex_of_base64(b64: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    (raw.len() == 16).then(|| hex(&raw))
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads `body` to its end, storing every `chunk_size` bytes as one chunk (at most
/// `parallel` uploads in flight, so memory stays at about `(parallel + 1) * chunk_size`).
/// Chunk offsets start at `base_offset`. `size_hint` (Content-Length) sizes id batches.
/// A failed upload, with the chunks it had already stored (no entry references them;
/// the caller queues them for deletion).
#[derive(Debug)]
pub struct UploadError {
    pub error: FilerError,
    pub stored: Vec<FileChunk>,
}

#[allow(clippy::too_many_arguments)]
pub async fn upload_stream<S, E>(
    master: Arc<MasterClient>,
    volumes: VolumeClient,
    target: WriteTarget,
    mut body: S,
    chunk_size: usize,
    parallel: usize,
    base_offset: u64,
    size_hint: Option<u64>,
    pending: &crate::pending::Pending,
    reservoir: &Reservoir,
) -> Result<Uploaded, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let chunk_size = chunk_size.max(1);
    let mut pool = FidPool {
        master,
        target: target.clone(),
        ready: VecDeque::new(),
        pending,
        reservoir,
    };
    let expected_chunks = size_hint
        .map(|n| n.div_ceil(chunk_size as u64))
        .unwrap_or(1);
    let sem = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks: JoinSet<Result<FileChunk, FilerError>> = JoinSet::new();
    let mut md5 = Md5::new();
    // Each chunk's buffer is taken once at the size it will reach when the body's
    // length is known, rather than grown (and copied) by doubling; full-size ones come
    // back to the pool (`kelp_proto::buffers`) once stored.
    let chunk_capacity = |consumed: u64| match size_hint {
        Some(n) => (n.saturating_sub(consumed) as usize).clamp(1, chunk_size),
        None => chunk_size.min(1 << 20),
    };
    let mut buf = buffers::take(chunk_capacity(0));
    let mut carry = Bytes::new();
    let mut offset = base_offset;
    let mut total = 0u64;
    let mut chunks = Vec::new();
    let mut failed: Option<FilerError> = None;
    let mut done = false;
    'read: while !done {
        match body.next().await {
            Some(Ok(b)) => {
                md5.update(&b);
                total += b.len() as u64;
                // Fill the buffer up to the chunk size only; the rest waits in `carry`,
                // so a full buffer is never grown.
                let room = chunk_size.saturating_sub(buf.len()).min(b.len());
                buf.extend_from_slice(&b[..room]);
                carry = b.slice(room..);
            }
            Some(Err(e)) => {
                failed = Some(FilerError::BadRequest(format!(
                    "reading the request body: {e}"
                )));
                break 'read;
            }
            None => done = true,
        }
        // The buffer never holds more than a chunk: it is sent whole.
        while buf.len() >= chunk_size || (done && !buf.is_empty()) {
            let dispatched = total - carry.len() as u64;
            let data = buffers::share(std::mem::replace(
                &mut buf,
                buffers::take(chunk_capacity(dispatched)),
            ));
            let room = chunk_size.saturating_sub(buf.len()).min(carry.len());
            buf.extend_from_slice(&carry[..room]);
            carry = carry.slice(room..);
            let Ok(permit) = sem.clone().acquire_owned().await else {
                failed = Some(FilerError::Internal("upload semaphore closed".into()));
                break 'read;
            };
            // Collect finished uploads as we go, failing fast.
            while let Some(r) = tasks.try_join_next() {
                match r {
                    Ok(Ok(c)) => chunks.push(c),
                    Ok(Err(e)) => failed = Some(e),
                    Err(e) => failed = Some(FilerError::Internal(e.to_string())),
                }
            }
            if failed.is_some() {
                break 'read;
            }
            let want = expected_chunks.saturating_sub(chunks.len() as u64 + tasks.len() as u64);
            let slot = match pool.next(want.max(1)).await {
                Ok(f) => f,
                Err(e) => {
                    failed = Some(e);
                    break 'read;
                }
            };
            let (volumes, target) = (volumes.clone(), target.clone());
            let at = offset;
            offset += data.len() as u64;
            tasks.spawn(async move {
                let r = put_chunk(volumes, slot, at, data, target).await;
                drop(permit);
                r
            });
        }
    }
    // Let uploads in flight finish either way, so every stored chunk is accounted for.
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(c)) => chunks.push(c),
            Ok(Err(e)) => {
                failed.get_or_insert(e);
            }
            Err(e) => {
                failed.get_or_insert(FilerError::Internal(e.to_string()));
            }
        }
    }
    if let Some(error) = failed {
        return Err(UploadError {
            error,
            stored: chunks,
        });
    }
    chunks.sort_by_key(|c| c.offset);
    let md5: [u8; 16] = md5.finalize().into();
    if let [only] = chunks.as_mut_slice() {
        only.etag = hex(&md5);
    }
    Ok(Uploaded {
        chunks,
        size: total,
        md5,
    })
}

/// The bytes of one chunk read: in memory from the volume server in this process, or
/// streaming from a remote one.
#[derive(Debug)]
pub enum ChunkBody {
    Local(Option<Bytes>),
    Remote(reqwest::Response),
}

impl ChunkBody {
    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            ChunkBody::Local(b) => Ok(b.take()),
            ChunkBody::Remote(r) => r.chunk().await.map_err(|e| e.to_string()),
        }
    }

    /// The whole (rest of the) body.
    pub async fn bytes(self) -> Result<Bytes, String> {
        match self {
            ChunkBody::Local(b) => Ok(b.unwrap_or_default()),
            ChunkBody::Remote(r) => r.bytes().await.map_err(|e| e.to_string()),
        }
    }
}

/// A [`read_chunk_range`] length meaning "to the end of the chunk".
pub const WHOLE: u64 = u64::MAX;

/// Fetches `len` bytes at `offset` of chunk `fid` ([`WHOLE`]: the rest of it), trying
/// each server holding it (the one in this process without HTTP).
pub async fn read_chunk_range(
    master: &MasterClient,
    volumes: &VolumeClient,
    fid: &str,
    offset: u64,
    len: u64,
) -> Result<ChunkBody, FilerError> {
    let fid: FileId = fid
        .parse()
        .map_err(|e| FilerError::Internal(format!("entry holds a bad chunk id {fid:?}: {e}")))?;
    let range = if len == WHOLE {
        format!("bytes={offset}-")
    } else {
        format!("bytes={}-{}", offset, offset.saturating_add(len.max(1)) - 1)
    };
    let mut last: Option<ClientError> = None;
    for attempt in 0..2 {
        let locations = match master.lookup(fid.volume).await {
            // Replicas not reconciled since their server came back may lack deletes:
            // read them only when nothing else holds the volume.
            Ok(l) if l.iter().any(|x| !x.stale) => l.into_iter().filter(|x| !x.stale).collect(),
            Ok(l) => l,
            Err(e) => {
                last = Some(e);
                master.forget(fid.volume);
                continue;
            }
        };
        for loc in &locations {
            if let Some(b) = volumes.read_local(&loc.url, &fid, offset, len).await {
                return Ok(ChunkBody::Local(Some(b)));
            }
        }
        for loc in &locations {
            match volumes.get(&loc.url, &fid, Some(&range)).await {
                Ok(r) => return Ok(ChunkBody::Remote(r)),
                Err(e) => {
                    tracing::debug!(%fid, server = %loc.url, error = %e, attempt, "chunk read failed; trying another copy");
                    last = Some(e);
                }
            }
        }
        master.forget(fid.volume);
    }
    Err(FilerError::Unavailable(format!(
        "no server could serve chunk {fid}: {}",
        last.map(|e| e.to_string())
            .unwrap_or_else(|| "no location".into())
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_md5_values_become_hex_etags() {
        // MD5("hello") in base64 and in hex.
        assert_eq!(
            md5_hex_of_base64("XUFAKrxLKna5cZ2REBfFkg==").as_deref(),
            Some("5d41402abc4b2a76b9719d911017c592")
        );
        assert_eq!(md5_hex_of_base64("not base64!"), None);
        assert_eq!(md5_hex_of_base64("aGVsbG8="), None, "not 16 bytes");
        assert_eq!(md5_hex_of_base64(""), None, "a server that sends none");
    }
}
