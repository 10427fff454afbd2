//! Stripe geometry (where a `.dat` byte lives in the shards) and the EC file names.

use std::path::{Path, PathBuf};

use crate::error::{Result, VolumeError};

use super::{
    DEFAULT_BLOCK_SIZE, DEFAULT_CHUNK_SIZE, DEFAULT_DATA_SHARDS, DEFAULT_PARITY_SHARDS, MAX_SHARDS,
};

/// Alignment the RS coder needs for a sub-range of a block to code like the whole block.
pub(crate) const RS_ALIGN: u32 = 64;

/// The coding parameters of one EC volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcConfig {
    pub data_shards: u8,
    pub parity_shards: u8,
    /// Bytes of one block (one shard's share of a stripe). A multiple of `chunk_size`.
    pub block_size: u32,
    /// Checksum granularity: one CRC32-C per this many shard bytes. A multiple of 64.
    pub chunk_size: u32,
}

impl Default for EcConfig {
    fn default() -> Self {
        EcConfig {
            data_shards: DEFAULT_DATA_SHARDS,
            parity_shards: DEFAULT_PARITY_SHARDS,
            block_size: DEFAULT_BLOCK_SIZE,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

impl EcConfig {
    /// `data_shards` + `parity_shards`.
    pub fn total_shards(&self) -> usize {
        self.data_shards as usize + self.parity_shards as usize
    }

    /// Checks the parameters: 1..=32 shards in all, at least one of each kind, the chunk
    /// a multiple of 64 (so it is even and codes like the whole block), the block a
    /// multiple of the chunk.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(VolumeError::EcInvalid(m));
        if self.data_shards == 0 || self.parity_shards == 0 {
            return bad(format!(
                "{} data + {} parity shards: at least one of each is needed",
                self.data_shards, self.parity_shards
            ));
        }
        if self.total_shards() > MAX_SHARDS {
            return bad(format!(
                "{} shards in all, at most {MAX_SHARDS} are supported",
                self.total_shards()
            ));
        }
        if self.chunk_size == 0 || !self.chunk_size.is_multiple_of(RS_ALIGN) {
            return bad(format!(
                "checksum chunk of {} bytes is not a positive multiple of {RS_ALIGN}",
                self.chunk_size
            ));
        }
        if !self.block_size.is_multiple_of(self.chunk_size) || self.block_size == 0 {
            return bad(format!(
                "block size {} is not a positive multiple of the checksum chunk {}",
                self.block_size, self.chunk_size
            ));
        }
        Ok(())
    }
}

/// One contiguous piece of a `.dat` byte range that lives in a single block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub stripe: u64,
    /// Data shard holding it.
    pub shard: u8,
    /// Offset inside the block.
    pub in_block: u64,
    pub len: u64,
}

/// A config plus the size of the `.dat` it encodes: everything offsets follow from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub config: EcConfig,
    pub dat_size: u64,
}

impl Geometry {
    pub fn block(&self) -> u64 {
        self.config.block_size as u64
    }

    pub fn chunk(&self) -> u64 {
        self.config.chunk_size as u64
    }

    pub fn data_shards(&self) -> usize {
        self.config.data_shards as usize
    }

    pub fn total_shards(&self) -> usize {
        self.config.total_shards()
    }

    /// `.dat` bytes per stripe.
    pub fn stripe_bytes(&self) -> u64 {
        self.block() * self.data_shards() as u64
    }

    /// Number of stripes (the last one zero-padded); at least one.
    pub fn stripes(&self) -> u64 {
        self.dat_size.div_ceil(self.stripe_bytes()).max(1)
    }

    /// Bytes of data in every shard file (the checksum trailer not counted).
    pub fn shard_len(&self) -> u64 {
        self.stripes() * self.block()
    }

    /// Checksum chunks per shard.
    pub fn chunks_per_shard(&self) -> u64 {
        self.shard_len() / self.chunk()
    }

    /// Shard offset of a piece.
    pub fn shard_offset(&self, p: &Piece) -> u64 {
        p.stripe * self.block() + p.in_block
    }

    /// Where `.dat` byte `off` lives: (data shard, offset in that shard).
    pub fn locate(&self, off: u64) -> (u8, u64) {
        let p = self.pieces(off, 1)[0];
        (p.shard, self.shard_offset(&p))
    }

    /// Cuts `[off, off + len)` of the `.dat` into per-block pieces, in order.
    pub fn pieces(&self, off: u64, len: u64) -> Vec<Piece> {
        let (b, sb) = (self.block(), self.stripe_bytes());
        let mut out = Vec::new();
        let mut pos = off;
        let end = off + len;
        while pos < end || out.is_empty() {
            let within = pos % sb;
            let in_block = within % b;
            let n = (b - in_block).min(end.saturating_sub(pos));
            out.push(Piece {
                stripe: pos / sb,
                shard: (within / b) as u8,
                in_block,
                len: n,
            });
            if n == 0 {
                break;
            }
            pos += n;
        }
        out
    }

    /// `[start, end)` inside a block widened to whole checksum chunks.
    pub fn chunk_align(&self, start: u64, end: u64) -> (u64, u64) {
        let c = self.chunk();
        (
            start / c * c,
            end.div_ceil(c).saturating_mul(c).min(self.block()),
        )
    }
}

/// `<dir>/<base><ext>`.
pub fn ec_path(dir: &Path, base: &str, ext: &str) -> PathBuf {
    dir.join(format!("{base}{ext}"))
}

/// `<dir>/<base>.ecNN` (two digits).
pub fn shard_path(dir: &Path, base: &str, shard: u8) -> PathBuf {
    dir.join(format!("{base}.ec{shard:02}"))
}

/// `path` with `suffix` appended (`x.ec00` → `x.ec00.tmp`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The collection of a base name `<collection>_<vid>` (empty for a bare `<vid>`).
pub fn collection_of(base: &str) -> &str {
    match base.rsplit_once('_') {
        Some((c, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => c,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(dat_size: u64) -> Geometry {
        Geometry {
            config: EcConfig {
                data_shards: 3,
                parity_shards: 2,
                block_size: 256,
                chunk_size: 64,
            },
            dat_size,
        }
    }

    #[test]
    fn stripes_pad_the_last_one() {
        assert_eq!(geo(8).stripes(), 1);
        assert_eq!(geo(768).stripes(), 1);
        assert_eq!(geo(769).stripes(), 2);
        assert_eq!(geo(769).shard_len(), 512);
        assert_eq!(geo(769).chunks_per_shard(), 8);
    }

    #[test]
    fn pieces_cross_blocks_and_stripes() {
        let g = geo(10_000);
        assert_eq!(g.locate(0), (0, 0));
        assert_eq!(g.locate(256), (1, 0));
        assert_eq!(g.locate(770), (0, 258));
        let p = g.pieces(200, 700);
        let lens: Vec<_> = p
            .iter()
            .map(|p| (p.stripe, p.shard, p.in_block, p.len))
            .collect();
        assert_eq!(
            lens,
            vec![
                (0, 0, 200, 56),
                (0, 1, 0, 256),
                (0, 2, 0, 256),
                (1, 0, 0, 132)
            ]
        );
        assert_eq!(p.iter().map(|p| p.len).sum::<u64>(), 700);
        assert_eq!(g.pieces(5, 0).len(), 1);
    }

    #[test]
    fn chunk_alignment_and_validation() {
        let g = geo(1000);
        assert_eq!(g.chunk_align(65, 130), (64, 192));
        assert_eq!(g.chunk_align(250, 256), (192, 256));
        assert!(EcConfig::default().validate().is_ok());
        let bad = [
            EcConfig {
                chunk_size: 100,
                ..EcConfig::default()
            },
            EcConfig {
                block_size: (16 << 10) * 3 + 64,
                chunk_size: 16 << 10,
                ..EcConfig::default()
            },
            EcConfig {
                parity_shards: 30,
                ..EcConfig::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn names() {
        let d = Path::new("/d");
        assert_eq!(shard_path(d, "pics_7", 3), Path::new("/d/pics_7.ec03"));
        assert_eq!(shard_path(d, "7", 13), Path::new("/d/7.ec13"));
        assert_eq!(collection_of("pics_7"), "pics");
        assert_eq!(collection_of("my_pics_12"), "my_pics");
        assert_eq!(collection_of("7"), "");
        assert_eq!(collection_of("odd_name"), "");
    }
}
