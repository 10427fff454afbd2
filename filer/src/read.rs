//! Streaming a file's bytes from its chunks: holes read as zeros, and the next chunk is
//! requested while the current one streams, so a volume server's lookup and CRC check
//! of chunk N+1 overlap the transfer of chunk N.

use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;

use crate::chunks;
use crate::cipher::ChunkKey;
use crate::entry::{Entry, visible_intervals};
use crate::error::FilerError;
use crate::filer::Filer;

type Item = Result<Bytes, std::io::Error>;

/// Items buffered between the chunk reader and the response body.
const STREAM_DEPTH: usize = 4;

/// One stretch of a read, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// A hole: this many zero bytes.
    Zeros(u64),
    /// `len` bytes of chunk `fid` from `offset` within it.
    Chunk { fid: String, offset: u64, len: u64 },
}

/// The pieces that make up bytes `start..end` of `e` (manifests already expanded).
fn plan(e: &Entry, start: u64, end: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut pos = start;
    for iv in visible_intervals(&e.chunks) {
        if iv.stop <= pos || pos >= end {
            continue;
        }
        if iv.start >= end {
            break;
        }
        if iv.start > pos {
            out.push(Piece::Zeros(iv.start - pos));
            pos = iv.start;
        }
        let stop = iv.stop.min(end);
        out.push(Piece::Chunk {
            fid: iv.fid.clone(),
            offset: iv.chunk_offset + (pos - iv.start),
            len: stop - pos,
        });
        pos = stop;
    }
    if pos < end {
        out.push(Piece::Zeros(end - pos));
    }
    out
}

/// A chunk request running ahead of the stream; aborted if the reader goes away first.
struct Ahead {
    index: usize,
    task: JoinHandle<Result<chunks::ChunkBody, FilerError>>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Ahead {
    fn start(r: &Reader, index: usize, fid: &str, offset: u64, len: u64) -> Ahead {
        let (r, fid) = (r.clone(), fid.to_string());
        let task = tokio::spawn(async move { r.fetch(&fid, offset, len).await });
        Ahead { index, task }
    }

    async fn response(mut self) -> Result<chunks::ChunkBody, FilerError> {
        (&mut self.task)
            .await
            .map_err(|e| FilerError::Internal(format!("chunk read task: {e}")))?
    }
}

/// Where a read's chunks come from, and the key that opens them if they are sealed.
#[derive(Clone)]
struct Reader {
    filer: Arc<Filer>,
    key: Option<Arc<ChunkKey>>,
}

impl Reader {
    /// `len` bytes at `offset` of chunk `fid`. A sealed chunk is fetched whole, opened
    /// (which checks it) and cut to the range: no unauthenticated byte is served.
    async fn fetch(
        &self,
        fid: &str,
        offset: u64,
        len: u64,
    ) -> Result<chunks::ChunkBody, FilerError> {
        let f = &self.filer;
        let Some(key) = &self.key else {
            return chunks::read_chunk_range(&f.master, &f.volumes, fid, offset, len).await;
        };
        let sealed = chunks::read_chunk_range(&f.master, &f.volumes, fid, 0, chunks::WHOLE)
            .await?
            .bytes()
            .await
            .map_err(|e| FilerError::Unavailable(format!("reading chunk {fid}: {e}")))?;
        let key = key.clone();
        let plain = if sealed.len() < 256 << 10 {
            key.open(&sealed)
        } else {
            tokio::task::spawn_blocking(move || key.open(&sealed))
                .await
                .map_err(|e| FilerError::Internal(format!("opening task: {e}")))?
        }
        .map_err(|e| FilerError::Internal(format!("chunk {fid}: {e}")))?;
        let s = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(plain.len());
        let t = usize::try_from(offset.saturating_add(len))
            .unwrap_or(usize::MAX)
            .min(plain.len());
        Ok(chunks::ChunkBody::Local(Some(plain.slice(s..t))))
    }
}

impl Filer {
    /// Streams bytes `start..end` of a file from its chunks (holes read as zeros). The
    /// stream ends with an error item if a chunk cannot be read from any copy.
    pub fn read_stream(
        self: &Arc<Self>,
        e: Entry,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Item> + Send + 'static {
        self.read_stream_with(e, start, end, None)
    }

    /// [`Filer::read_stream`] of a file whose chunks were sealed with `key` (`None`:
    /// plain chunks).
    pub fn read_stream_with(
        self: &Arc<Self>,
        e: Entry,
        start: u64,
        end: u64,
        key: Option<Arc<ChunkKey>>,
    ) -> impl Stream<Item = Item> + Send + 'static {
        let filer = self.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Item>(STREAM_DEPTH);
        if !e.content.is_empty() {
            let c = match &key {
                None => Ok(Bytes::from(e.content)),
                Some(k) => k.open(&e.content),
            };
            let item = c
                .map(|c| {
                    let s = (start as usize).min(c.len());
                    let t = (end as usize).min(c.len());
                    c.slice(s..t)
                })
                .map_err(|err| std::io::Error::other(err.to_string()));
            let _ = tx.try_send(item);
        } else {
            tokio::spawn(async move {
                let mut e = e;
                if e.chunks.iter().any(|c| c.is_manifest) {
                    match filer.expand_manifests(&e.chunks, start, end).await {
                        Ok(c) => e.chunks = c,
                        Err(err) => {
                            let _ = tx.send(Err(std::io::Error::other(err.to_string()))).await;
                            return;
                        }
                    }
                }
                let reader = Reader { filer, key };
                stream_pieces(&reader, &plan(&e, start, end), &tx).await
            });
        }
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }
}

/// The first chunk piece at or after `from`.
fn next_chunk(pieces: &[Piece], from: usize) -> Option<(usize, &str, u64, u64)> {
    pieces
        .iter()
        .enumerate()
        .skip(from)
        .find_map(|(i, p)| match p {
            Piece::Chunk { fid, offset, len } => Some((i, fid.as_str(), *offset, *len)),
            Piece::Zeros(_) => None,
        })
}

async fn stream_pieces(reader: &Reader, pieces: &[Piece], tx: &Sender<Item>) {
    let mut ahead: Option<Ahead> = None;
    for (i, piece) in pieces.iter().enumerate() {
        let (fid, offset, len) = match piece {
            Piece::Zeros(n) => {
                if !send_zeros(tx, *n).await {
                    return;
                }
                continue;
            }
            Piece::Chunk { fid, offset, len } => (fid, *offset, *len),
        };
        let resp = match ahead.take() {
            Some(a) if a.index == i => a.response().await,
            _ => reader.fetch(fid, offset, len).await,
        };
        ahead = next_chunk(pieces, i + 1).map(|(j, f, o, l)| Ahead::start(reader, j, f, o, l));
        let mut resp = match resp {
            Ok(r) => r,
            Err(err) => {
                let _ = tx.send(Err(std::io::Error::other(err.to_string()))).await;
                return;
            }
        };
        let mut got = 0u64;
        loop {
            match resp.chunk().await {
                Ok(Some(b)) => {
                    got += b.len() as u64;
                    if tx.send(Ok(b)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    let _ = tx.send(Err(std::io::Error::other(err.to_string()))).await;
                    return;
                }
            }
        }
        if got != len {
            let msg = format!("chunk {fid} returned {got} of {len} bytes");
            let _ = tx.send(Err(std::io::Error::other(msg))).await;
            return;
        }
    }
}

async fn send_zeros(tx: &Sender<Item>, mut n: u64) -> bool {
    while n > 0 {
        let k = n.min(1 << 20);
        if tx
            .send(Ok(Bytes::from(vec![0u8; k as usize])))
            .await
            .is_err()
        {
            return false;
        }
        n -= k;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::FileChunk;

    fn ch(fid: &str, offset: u64, size: u64, ts: i64) -> FileChunk {
        FileChunk::sample(fid, offset, size, ts)
    }

    fn chunk(fid: &str, offset: u64, len: u64) -> Piece {
        Piece::Chunk {
            fid: fid.into(),
            offset,
            len,
        }
    }

    #[test]
    fn plans_cover_the_range_in_pieces() {
        let mut e = Entry::new_file("/f", 0);
        // [0,10) chunk a, hole [10,20), [20,30) chunk b, then the file runs to 40.
        e.chunks = vec![ch("1,a", 0, 10, 1), ch("1,b", 20, 10, 2)];
        e.attr.file_size = 40;
        assert_eq!(
            plan(&e, 0, 40),
            vec![
                chunk("1,a", 0, 10),
                Piece::Zeros(10),
                chunk("1,b", 0, 10),
                Piece::Zeros(10)
            ]
        );
        assert_eq!(
            plan(&e, 5, 25),
            vec![chunk("1,a", 5, 5), Piece::Zeros(10), chunk("1,b", 0, 5)]
        );
        assert_eq!(plan(&e, 12, 18), vec![Piece::Zeros(6)]);
        assert_eq!(plan(&e, 10, 10), vec![]);
        let pieces = plan(&e, 0, 40);
        assert_eq!(next_chunk(&pieces, 1), Some((2, "1,b", 0, 10)));
        assert_eq!(next_chunk(&pieces, 3), None);

        // Later chunks shadow earlier ones.
        e.chunks = vec![ch("1,old", 0, 20, 1), ch("1,new", 5, 5, 2)];
        e.attr.file_size = 20;
        let (old, new) = (|o, l| chunk("1,old", o, l), chunk("1,new", 0, 5));
        assert_eq!(plan(&e, 0, 20), [old(0, 5), new, old(10, 10)]);
    }
}
