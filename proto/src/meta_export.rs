//! The metadata export container (version 1, `docs/formats/filer-store.md#metadata-export`):
//! what `GET <dir>?op=meta.export` on a filer sends and `fs.meta.save` keeps, and what
//! `POST /?op=meta.import` takes. Records carry store keys and values as opaque bytes;
//! a trailer holds the record count and a SHA-256 over everything before it, so a
//! truncated or damaged file is refused before anything of it is applied.

use sha2_11::{Digest, Sha256};

/// The first bytes of every export.
pub const MAGIC: &[u8; 8] = b"KELPMETA";
/// The container version this build writes and reads.
pub const VERSION: u32 = 1;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An entry: its path and its encoded value (the filer store's entry encoding).
    Entry = 1,
    /// A key of the store's key-value space and its value.
    Kv = 2,
}

/// One record of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub kind: Kind,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Why an export cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("not a kelp metadata export (no KELPMETA header)")]
    NotAnExport,
    #[error("metadata export version {0} is not readable by this build (it reads {VERSION})")]
    Version(u32),
    #[error("metadata export is truncated at byte {0}")]
    Truncated(usize),
    #[error("metadata export has an unknown record kind {kind} at byte {at}")]
    BadKind { kind: u8, at: usize },
    #[error("metadata export checksum mismatch: the file is damaged")]
    Checksum,
    #[error("metadata export says {said} records but holds {held}")]
    Count { said: u64, held: u64 },
    #[error("metadata export has {0} bytes after its trailer")]
    TrailingBytes(usize),
}

/// Writes an export piece by piece, hashing as it goes.
#[derive(Debug, Default)]
pub struct Writer {
    hash: Sha256,
    count: u64,
}

impl Writer {
    /// The header (to send first).
    pub fn header(&mut self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        self.hash.update(&out);
        out
    }

    /// One record.
    pub fn record(&mut self, kind: Kind, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + key.len() + value.len());
        out.push(kind as u8);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
        self.hash.update(&out);
        self.count += 1;
        out
    }

    /// The trailer (to send last): kind 0, the record count, the SHA-256.
    pub fn trailer(mut self) -> Vec<u8> {
        let mut out = vec![0u8];
        out.extend_from_slice(&self.count.to_le_bytes());
        self.hash.update(&out);
        out.extend_from_slice(&self.hash.finalize());
        out
    }

    /// Records written so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

fn take<'a>(b: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], ExportError> {
    let end = at
        .checked_add(n)
        .filter(|&e| e <= b.len())
        .ok_or(ExportError::Truncated(*at))?;
    let s = &b[*at..end];
    *at = end;
    Ok(s)
}

fn u32_at(b: &[u8], at: &mut usize) -> Result<u32, ExportError> {
    let s = take(b, at, 4)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Checks a whole export (header, every record's framing, count and checksum) and
/// returns its records.
pub fn read(b: &[u8]) -> Result<Vec<Record<'_>>, ExportError> {
    let mut at = 0;
    if take(b, &mut at, 8).map_err(|_| ExportError::NotAnExport)? != MAGIC {
        return Err(ExportError::NotAnExport);
    }
    let v = u32_at(b, &mut at)?;
    if v != VERSION {
        return Err(ExportError::Version(v));
    }
    let mut records = Vec::new();
    loop {
        let start = at;
        let kind = take(b, &mut at, 1)?[0];
        let kind = match kind {
            0 => {
                let count = take(b, &mut at, 8)?;
                let said =
                    u64::from_le_bytes(count.try_into().map_err(|_| ExportError::Truncated(at))?);
                let hashed_end = at;
                let sum = take(b, &mut at, 32)?;
                if Sha256::digest(&b[..hashed_end]).as_slice() != sum {
                    return Err(ExportError::Checksum);
                }
                if said != records.len() as u64 {
                    return Err(ExportError::Count {
                        said,
                        held: records.len() as u64,
                    });
                }
                if at != b.len() {
                    return Err(ExportError::TrailingBytes(b.len() - at));
                }
                return Ok(records);
            }
            1 => Kind::Entry,
            2 => Kind::Kv,
            k => return Err(ExportError::BadKind { kind: k, at: start }),
        };
        let klen = u32_at(b, &mut at)? as usize;
        let key = take(b, &mut at, klen)?;
        let vlen = u32_at(b, &mut at)? as usize;
        let value = take(b, &mut at, vlen)?;
        records.push(Record { kind, key, value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = Writer::default();
        let mut out = w.header();
        out.extend(w.record(Kind::Entry, b"/a", b"\x01value"));
        out.extend(w.record(Kind::Kv, b"k", b""));
        out.extend(w.trailer());
        out
    }

    #[test]
    fn round_trip_and_every_damage_refused() {
        let b = sample();
        let r = read(&b).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].kind, r[0].key, r[0].value),
            (Kind::Entry, &b"/a"[..], &b"\x01value"[..])
        );
        assert_eq!(
            (r[1].kind, r[1].key, r[1].value),
            (Kind::Kv, &b"k"[..], &b""[..])
        );
        // Any flipped byte, any cut and any extra byte is an error, never a panic.
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x40;
            assert!(read(&d).is_err(), "flip at {i}");
            assert!(read(&b[..i]).is_err(), "cut at {i}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(read(&longer), Err(ExportError::TrailingBytes(1)));
        assert_eq!(read(b"nope"), Err(ExportError::NotAnExport));
    }
}
