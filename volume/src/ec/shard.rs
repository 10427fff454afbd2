//! Shard files: the shard's data, then one CRC32-C per chunk, then a 40-byte footer.
//!
//! Footer (big-endian): `magic "KECS" | format 1 u8 | shard id u8 | data shards u8 |
//! parity shards u8 | block size u32 | chunk size u32 | data length u64 | dat size u64 |
//! compaction revision u16 | reserved u16 | CRC32-C of (table + footer[0..36]) u32`.
//! A file whose footer or table does not check out, or does not match the volume's `.vif`,
//! is treated as missing; a chunk whose CRC does not match is treated as missing.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result, VolumeError};
use crate::needle::{be_u32, be_u64};

use super::layout::Geometry;

pub(crate) const FOOTER_LEN: u64 = 40;
const MAGIC: &[u8; 4] = b"KECS";
const FORMAT: u8 = 1;

/// What a shard's footer records; compared with what the `.vif` implies on open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub shard: u8,
    pub geometry: Geometry,
    pub revision: u16,
}

impl Footer {
    fn encode(&self) -> [u8; FOOTER_LEN as usize] {
        let g = &self.geometry;
        let mut b = [0u8; FOOTER_LEN as usize];
        b[0..4].copy_from_slice(MAGIC);
        b[4] = FORMAT;
        b[5] = self.shard;
        b[6] = g.config.data_shards;
        b[7] = g.config.parity_shards;
        b[8..12].copy_from_slice(&g.config.block_size.to_be_bytes());
        b[12..16].copy_from_slice(&g.config.chunk_size.to_be_bytes());
        b[16..24].copy_from_slice(&g.shard_len().to_be_bytes());
        b[24..32].copy_from_slice(&g.dat_size.to_be_bytes());
        b[32..34].copy_from_slice(&self.revision.to_be_bytes());
        b
    }
}

/// The trailer bytes (CRC table + footer) for `crcs`.
fn trailer(footer: &Footer, crcs: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(crcs.len() * 4 + FOOTER_LEN as usize);
    for c in crcs {
        out.extend_from_slice(&c.to_be_bytes());
    }
    let f = footer.encode();
    out.extend_from_slice(&f[..36]);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An open, trailer-checked shard file. Reads verify the chunks they touch.
#[derive(Debug)]
pub(crate) struct ShardFile {
    file: File,
    path: PathBuf,
    chunk: u64,
    data_len: u64,
}

impl ShardFile {
    /// Opens `path` and checks its trailer against `want`. Any mismatch is `Corrupt`.
    pub fn open(path: &Path, want: &Footer) -> Result<ShardFile> {
        let bad = |reason: String| VolumeError::corrupt(path.display().to_string(), reason);
        let file = File::open(path).ctx(|| format!("opening {}", path.display()))?;
        let len = file
            .metadata()
            .ctx(|| format!("stat of {}", path.display()))?
            .len();
        let g = &want.geometry;
        let table = g.chunks_per_shard() * 4;
        let expect = g.shard_len() + table + FOOTER_LEN;
        if len != expect {
            return Err(bad(format!(
                "{len} bytes, a shard of this volume has {expect}"
            )));
        }
        let mut t = vec![0u8; (table + FOOTER_LEN) as usize];
        file.read_exact_at(&mut t, g.shard_len())
            .ctx(|| format!("reading the trailer of {}", path.display()))?;
        let body = t.len() - 4;
        if crc32c::crc32c(&t[..body]) != be_u32(&t[body..]) {
            return Err(bad("checksum table does not match its CRC".into()));
        }
        let f = &t[table as usize..];
        if &f[0..4] != MAGIC || f[4] != FORMAT {
            return Err(bad("not a kelp shard file (format 1)".into()));
        }
        let found = want.encode();
        if f[..36] != found[..36] {
            return Err(bad(format!(
                "footer (shard {}, {}+{} shards, block {}, chunk {}, {} data bytes, dat {}, revision {}) \
                 does not match the volume's .vif",
                f[5],
                f[6],
                f[7],
                be_u32(&f[8..12]),
                be_u32(&f[12..16]),
                be_u64(&f[16..24]),
                be_u64(&f[24..32]),
                u16::from_be_bytes([f[32], f[33]])
            )));
        }
        Ok(ShardFile {
            file,
            path: path.to_path_buf(),
            chunk: g.chunk(),
            data_len: g.shard_len(),
        })
    }

    /// Reads `[off, off + len)`, verifying every chunk it touches.
    pub fn read_verified(&self, off: u64, len: usize) -> Result<Vec<u8>> {
        let end = off + len as u64;
        if end > self.data_len {
            return Err(VolumeError::EcInvalid(format!(
                "range {off}..{end} is past the end of {} ({} data bytes)",
                self.path.display(),
                self.data_len
            )));
        }
        let c = self.chunk;
        let (a, b) = (off / c * c, end.div_ceil(c) * c);
        let mut buf = vec![0u8; (b - a) as usize];
        self.file
            .read_exact_at(&mut buf, a)
            .ctx(|| format!("reading {} at offset {a}", self.path.display()))?;
        self.verify(a, &buf)?;
        if a == off && buf.len() == len {
            return Ok(buf);
        }
        Ok(buf[(off - a) as usize..(off - a) as usize + len].to_vec())
    }

    /// The table entries of chunks `first..first + n`, read on demand (the table is not
    /// kept in memory; its own CRC was checked on open).
    fn table(&self, first: u64, n: usize) -> Result<Vec<u32>> {
        let mut b = vec![0u8; n * 4];
        let at = self.data_len + first * 4;
        self.file
            .read_exact_at(&mut b, at)
            .ctx(|| format!("reading the checksum table of {}", self.path.display()))?;
        Ok(b.chunks_exact(4).map(be_u32).collect())
    }

    /// The first chunk of `buf` (read from chunk-aligned offset `at`) that fails its CRC.
    fn first_bad(&self, at: u64, buf: &[u8]) -> Result<Option<u64>> {
        let first = at / self.chunk;
        let table = self.table(first, buf.len().div_ceil(self.chunk as usize))?;
        Ok(buf
            .chunks(self.chunk as usize)
            .zip(table)
            .position(|(piece, want)| crc32c::crc32c(piece) != want)
            .map(|i| first + i as u64))
    }

    /// Checks `buf`, read from chunk-aligned offset `at`, against the table.
    fn verify(&self, at: u64, buf: &[u8]) -> Result<()> {
        match self.first_bad(at, buf)? {
            None => Ok(()),
            Some(n) => Err(VolumeError::corrupt(
                format!("{} chunk {n}", self.path.display()),
                "data does not match its CRC32-C",
            )),
        }
    }

    /// Reads the whole shard and checks every chunk; returns the first bad one.
    pub fn verify_all(&self) -> Result<Option<u64>> {
        let step = (self.chunk * (4u64 << 20).div_ceil(self.chunk)).min(self.data_len);
        let mut buf = vec![0u8; step as usize];
        let mut at = 0;
        while at < self.data_len {
            let n = step.min(self.data_len - at) as usize;
            self.file
                .read_exact_at(&mut buf[..n], at)
                .ctx(|| format!("reading {} at offset {at}", self.path.display()))?;
            if let Some(bad) = self.first_bad(at, &buf[..n])? {
                return Ok(Some(bad));
            }
            at += n as u64;
        }
        Ok(None)
    }
}

/// Writes one shard file: blocks appended in order, the trailer on [`ShardWriter::finish`].
#[derive(Debug)]
pub(crate) struct ShardWriter {
    file: File,
    path: PathBuf,
    chunk: usize,
    crcs: Vec<u32>,
    written: u64,
}

impl ShardWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path, chunk: u32) -> Result<ShardWriter> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .ctx(|| format!("creating {}", path.display()))?;
        Ok(ShardWriter {
            file,
            path: path.to_path_buf(),
            chunk: chunk as usize,
            crcs: Vec::new(),
            written: 0,
        })
    }

    /// Appends a block (a whole number of chunks).
    pub fn write_block(&mut self, block: &[u8]) -> Result<()> {
        if !block.len().is_multiple_of(self.chunk) {
            return Err(VolumeError::EcInvalid(format!(
                "block of {} bytes is not whole chunks of {}",
                block.len(),
                self.chunk
            )));
        }
        self.crcs
            .extend(block.chunks(self.chunk).map(crc32c::crc32c));
        self.file
            .write_all(block)
            .ctx(|| format!("writing {}", self.path.display()))?;
        self.written += block.len() as u64;
        Ok(())
    }

    /// Writes the checksum table and footer, fsyncs, and returns the path written.
    pub fn finish(mut self, footer: &Footer) -> Result<PathBuf> {
        if self.written != footer.geometry.shard_len() {
            return Err(VolumeError::EcInvalid(format!(
                "{}: {} bytes written, the shard should have {}",
                self.path.display(),
                self.written,
                footer.geometry.shard_len()
            )));
        }
        let t = trailer(footer, &self.crcs);
        self.file
            .write_all(&t)
            .and_then(|()| self.file.sync_all())
            .ctx(|| format!("writing {}", self.path.display()))?;
        Ok(self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec::layout::EcConfig;

    fn footer(shard: u8) -> Footer {
        Footer {
            shard,
            geometry: Geometry {
                config: EcConfig {
                    data_shards: 2,
                    parity_shards: 1,
                    block_size: 256,
                    chunk_size: 64,
                },
                dat_size: 700,
            },
            revision: 3,
        }
    }

    #[test]
    fn write_open_read_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1.ec01");
        let f = footer(1);
        let mut w = ShardWriter::create(&p, 64).unwrap();
        let data: Vec<u8> = (0..f.geometry.shard_len()).map(|i| (i * 3) as u8).collect();
        for b in data.chunks(256) {
            w.write_block(b).unwrap();
        }
        w.finish(&f).unwrap();
        let s = ShardFile::open(&p, &f).unwrap();
        assert_eq!(s.read_verified(70, 100).unwrap(), data[70..170]);
        assert_eq!(s.read_verified(0, 512).unwrap(), data);
        assert!(s.read_verified(500, 20).is_err());
        assert_eq!(s.verify_all().unwrap(), None);
        assert!(ShardFile::open(&p, &footer(0)).is_err(), "wrong shard id");

        // Flip a byte in chunk 5: reads touching it fail, others succeed.
        let file = OpenOptions::new().write(true).open(&p).unwrap();
        file.write_all_at(&[data[330] ^ 1], 330).unwrap();
        let s = ShardFile::open(&p, &f).unwrap();
        assert!(s.read_verified(320, 4).is_err());
        assert_eq!(s.read_verified(0, 320).unwrap(), data[..320]);
        assert_eq!(s.verify_all().unwrap(), Some(5));

        // A damaged table makes the whole file unusable.
        file.write_all_at(&[0xff], 512).unwrap();
        assert!(ShardFile::open(&p, &f).is_err());
    }
}
