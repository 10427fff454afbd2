//! Encoding: stream a `.dat` stripe by stripe into shard files, write `.ecx`, `.ecj`, `.vif`.
//!
//! Memory is bounded by one stripe (`data_shards + parity_shards` blocks). Every file is
//! written to a temporary name, fsynced and renamed; the `.vif` goes last, so a crash
//! leaves either no EC volume or a whole one (plus ignorable temporary files).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{IoContext, Result, VolumeError};
use crate::fsutil::{remove_if_exists, sync_dir, write_atomic};
use crate::idx::{IdxEntry, OffsetWidth, encode_all};
use crate::needle::{HEADER_SIZE, NeedleHeader, actual_size};
use crate::needle_map::NeedleMap;
use crate::superblock::{SUPERBLOCK_SIZE, SuperBlock};
use crate::vif::VolumeInfo;
use crate::volume::now_ns;

use super::MAX_SHARDS;
use super::codec::Codec;
use super::info::EcInfo;
use super::layout::{EcConfig, Geometry, collection_of, ec_path, shard_path, with_suffix};
use super::shard::{Footer, ShardWriter};

/// What an encode did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EcReport {
    /// Bytes of the `.dat` encoded.
    pub dat_bytes: u64,
    /// Data bytes in each shard file (the checksum trailer not counted).
    pub shard_bytes: u64,
    /// Number of shard files written.
    pub shards: usize,
    /// Live needles in the `.ecx`.
    pub needles: u64,
    pub seconds: f64,
    /// `.dat` megabytes (10^6) per second.
    pub mb_per_sec: f64,
}

/// Parity is computed this many bytes of each block at a time: `reed-solomon-simd`
/// encodes 64 KiB slices ~1.7x faster than 1 MiB ones (the working set stays in cache),
/// and any 64-byte aligned slice codes exactly like that part of the whole block.
pub(crate) const CODING_SLICE: usize = 64 << 10;

/// Streams bytes into stripes and stripes into shard files.
pub(crate) struct StripeEncoder {
    geo: Geometry,
    revision: u16,
    codec: Codec,
    stripe: Vec<u8>,
    fill: usize,
    parity: Vec<Vec<u8>>,
    writers: Vec<ShardWriter>,
    stripes_done: u64,
    fed: u64,
}

impl StripeEncoder {
    /// Creates one shard file per path (`geo.total_shards()` of them, in shard order).
    pub fn create(paths: &[PathBuf], c: EcConfig, revision: u16) -> Result<StripeEncoder> {
        let geo = Geometry {
            config: c,
            dat_size: 0,
        };
        let writers = paths
            .iter()
            .map(|p| ShardWriter::create(p, c.chunk_size))
            .collect::<Result<Vec<_>>>()?;
        Ok(StripeEncoder {
            geo,
            revision,
            codec: Codec::new(c.data_shards as usize, c.parity_shards as usize),
            stripe: vec![0u8; geo.stripe_bytes() as usize],
            fill: 0,
            parity: vec![Vec::new(); c.parity_shards as usize],
            writers,
            stripes_done: 0,
            fed: 0,
        })
    }

    /// Appends bytes of the encoded stream; full stripes are written out.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let n = (self.stripe.len() - self.fill).min(bytes.len());
            self.stripe[self.fill..self.fill + n].copy_from_slice(&bytes[..n]);
            self.fill += n;
            self.fed += n as u64;
            bytes = &bytes[n..];
            if self.fill == self.stripe.len() {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Reads `len` bytes (at most one stripe) of `src` at `at` straight into the empty
    /// stripe buffer; call [`Self::flush`] after looking at [`Self::pending`].
    pub fn fill_from(&mut self, src: &File, path: &Path, at: u64, len: usize) -> Result<()> {
        if self.fill != 0 || len > self.stripe.len() {
            return Err(VolumeError::EcInvalid(
                "fill_from needs an empty stripe".into(),
            ));
        }
        src.read_exact_at(&mut self.stripe[..len], at)
            .ctx(|| format!("reading {} at offset {at}", path.display()))?;
        self.fill = len;
        self.fed += len as u64;
        Ok(())
    }

    /// The bytes of the stripe not written out yet.
    pub fn pending(&self) -> &[u8] {
        &self.stripe[..self.fill]
    }

    /// Zero-pads the current stripe, computes its parity and appends every block. The
    /// parity is computed in slices of [`CODING_SLICE`] bytes (see the module docs).
    pub fn flush(&mut self) -> Result<()> {
        self.stripe[self.fill..].fill(0);
        let b = self.geo.block() as usize;
        let data: Vec<&[u8]> = self.stripe.chunks(b).collect();
        let slice = CODING_SLICE.min(b);
        for p in &mut self.parity {
            p.resize(b, 0);
        }
        let mut out = vec![Vec::new(); self.parity.len()];
        for o in (0..b).step_by(slice) {
            let e = (o + slice).min(b);
            let part: Vec<&[u8]> = data.iter().map(|d| &d[o..e]).collect();
            self.codec.encode(&part, &mut out)?;
            for (dst, src) in self.parity.iter_mut().zip(&out) {
                dst[o..e].copy_from_slice(src);
            }
        }
        let d = data.len();
        for (j, w) in self.writers.iter_mut().enumerate() {
            if j < d {
                w.write_block(data[j])?;
            } else {
                w.write_block(&self.parity[j - d])?;
            }
        }
        self.fill = 0;
        self.stripes_done += 1;
        Ok(())
    }

    /// Flushes the last (partial) stripe, writes every trailer and fsyncs. The stream's
    /// length is the encoded `.dat` size; returns the geometry it gives.
    pub fn finish(mut self) -> Result<Geometry> {
        if self.fill > 0 || self.stripes_done == 0 {
            self.flush()?;
        }
        let geo = Geometry {
            config: self.geo.config,
            dat_size: self.fed,
        };
        let revision = self.revision;
        for (i, w) in self.writers.into_iter().enumerate() {
            w.finish(&Footer {
                shard: i as u8,
                geometry: geo,
                revision,
            })?;
        }
        Ok(geo)
    }
}

/// Encodes `<dir>/<base>.dat` with `data_shards + parity_shards` shards of `block_size`
/// blocks (checksum chunks of [`super::DEFAULT_CHUNK_SIZE`], or the block if smaller).
pub fn encode_volume(
    dir: &Path,
    base: &str,
    data_shards: u8,
    parity_shards: u8,
    block_size: u32,
) -> Result<EcReport> {
    let config = EcConfig {
        data_shards,
        parity_shards,
        block_size,
        chunk_size: super::DEFAULT_CHUNK_SIZE.min(block_size),
    };
    encode_volume_with(dir, base, &config)
}

/// Checks that each entry whose header starts in `[pos, pos + buf.len())` names a needle
/// with its key and size (headers cut by the stripe end are read from the file).
fn check_headers(
    buf: &[u8],
    pos: u64,
    by_offset: &[IdxEntry],
    next: &mut usize,
    dat: &File,
    dat_path: &Path,
) -> Result<()> {
    let end = pos + buf.len() as u64;
    while let Some(e) = by_offset.get(*next) {
        let at = e.byte_offset();
        if at >= end {
            break;
        }
        let mut hb = [0u8; HEADER_SIZE];
        let rel = (at - pos) as usize;
        if rel + HEADER_SIZE <= buf.len() {
            hb.copy_from_slice(&buf[rel..rel + HEADER_SIZE]);
        } else {
            dat.read_exact_at(&mut hb, at)
                .ctx(|| format!("reading {} at offset {at}", dat_path.display()))?;
        }
        let h = NeedleHeader::parse(&hb);
        if h.key != e.key || h.size != e.size {
            return Err(VolumeError::corrupt(
                format!("{} at offset {at}", dat_path.display()),
                format!(
                    "the .idx says key {} size {} but the record holds key {} size {}",
                    e.key, e.size, h.key, h.size
                ),
            ));
        }
        *next += 1;
    }
    Ok(())
}

/// [`encode_volume`] with every parameter given. The volume must be quiet (read-only):
/// its `.dat` and `.idx` are read as they are. They are left in place; the `.vif` is
/// rewritten with the EC fields (and `readOnly`), which `Volume::open` ignores.
pub fn encode_volume_with(dir: &Path, base: &str, config: &EcConfig) -> Result<EcReport> {
    let start = Instant::now();
    config.validate()?;
    let dat_path = ec_path(dir, base, ".dat");
    let dat = File::open(&dat_path).ctx(|| format!("opening {}", dat_path.display()))?;
    let dat_size = dat
        .metadata()
        .ctx(|| format!("stat of {}", dat_path.display()))?
        .len();
    let mut sb = [0u8; SUPERBLOCK_SIZE];
    dat.read_exact_at(&mut sb, 0)
        .ctx(|| format!("reading the superblock of {}", dat_path.display()))?;
    let sb = SuperBlock::parse(&sb).map_err(|e| e.at(&dat_path, 0))?;
    let vif_path = ec_path(dir, base, ".vif");
    let mut vi = VolumeInfo::load(&vif_path)?.unwrap_or_default();
    let width = match vi.bytes_offset {
        0 => OffsetWidth::default(),
        n => OffsetWidth::from_bytes(n).ok_or_else(|| {
            VolumeError::corrupt(vif_path.display().to_string(), format!("bytesOffset {n}"))
        })?,
    };

    let idx_path = ec_path(dir, base, ".idx");
    let idx = std::fs::read(&idx_path).ctx(|| format!("reading {}", idx_path.display()))?;
    let live = NeedleMap::load(&idx, width).live_entries();
    drop(idx);
    for e in &live {
        let end = e.byte_offset() + actual_size(e.size, sb.version);
        if e.byte_offset() < SUPERBLOCK_SIZE as u64 || end > dat_size {
            return Err(VolumeError::corrupt(
                idx_path.display().to_string(),
                format!(
                    "needle {} at {}..{end} lies outside the .dat ({dat_size} bytes)",
                    e.key,
                    e.byte_offset()
                ),
            ));
        }
    }
    let mut by_offset = live.clone();
    by_offset.sort_unstable_by_key(|e| e.offset);

    let geo = Geometry {
        config: *config,
        dat_size,
    };
    let finals: Vec<PathBuf> = (0..geo.total_shards())
        .map(|i| shard_path(dir, base, i as u8))
        .collect();
    let tmps: Vec<PathBuf> = finals.iter().map(|p| with_suffix(p, ".tmp")).collect();
    let mut enc = StripeEncoder::create(&tmps, *config, sb.compaction_revision)?;
    let (mut pos, mut next) = (0u64, 0usize);
    while pos < dat_size {
        let n = geo.stripe_bytes().min(dat_size - pos) as usize;
        enc.fill_from(&dat, &dat_path, pos, n)?;
        check_headers(enc.pending(), pos, &by_offset, &mut next, &dat, &dat_path)?;
        enc.flush()?;
        pos += n as u64;
    }
    if enc.finish()? != geo {
        return Err(VolumeError::EcInvalid(format!(
            "{} changed size while it was being encoded",
            dat_path.display()
        )));
    }
    for (t, f) in tmps.iter().zip(&finals) {
        std::fs::rename(t, f).ctx(|| format!("renaming {} to {}", t.display(), f.display()))?;
    }
    for stale in geo.total_shards()..MAX_SHARDS {
        remove_if_exists(&shard_path(dir, base, stale as u8))?;
    }
    write_atomic(&ec_path(dir, base, ".ecx"), &encode_all(&live, width))?;
    write_atomic(&ec_path(dir, base, ".ecj"), &[])?;
    let info = EcInfo {
        config: *config,
        dat_size,
        version: sb.version,
        offset_width: width,
        collection: collection_of(base).to_string(),
        replication: sb.placement.to_string(),
        ttl: sb.ttl,
        compaction_revision: sb.compaction_revision,
        encode_ts_ns: now_ns(),
    };
    info.apply_to(&mut vi);
    vi.save(&vif_path)?;
    sync_dir(dir)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(EcReport {
        dat_bytes: dat_size,
        shard_bytes: geo.shard_len(),
        shards: geo.total_shards(),
        needles: live.len() as u64,
        seconds,
        mb_per_sec: dat_size as f64 / 1e6 / seconds.max(1e-9),
    })
}
