//! Rebuilding lost shards: every missing or corrupt shard file (data and parity) is
//! regenerated from any `data_shards` healthy local ones, stripe by stripe.

use std::path::Path;

use crate::error::{IoContext, Result, VolumeError};
use crate::fsutil::sync_dir;

use super::layout::{shard_path, with_suffix};
use super::shard::{Footer, ShardWriter};
use super::volume::{EcVolume, LocalOnly};

/// Regenerates the shards of `<dir>/<base>` that are missing, have a damaged trailer or
/// hold any chunk that fails its CRC. Data shards are decoded, parity shards re-encoded
/// from the data; each new file is written to a temporary name, fsynced and renamed.
/// Returns the ids rebuilt (empty when all shards were healthy).
pub fn rebuild_missing(dir: &Path, base: &str) -> Result<Vec<u8>> {
    let v = EcVolume::open(dir, base)?;
    let geo = v.geometry();
    let total = geo.total_shards();
    let mut bad = vec![false; total];
    for (i, b) in bad.iter_mut().enumerate() {
        *b = match v.local(i) {
            None => true,
            Some(f) => match f.verify_all()? {
                Some(chunk) => {
                    tracing::warn!(
                        volume = base,
                        shard = i,
                        chunk,
                        "ec shard has a corrupt chunk; rebuilding it"
                    );
                    true
                }
                None => false,
            },
        };
    }
    let want: Vec<usize> = (0..total).filter(|&i| bad[i]).collect();
    if want.is_empty() {
        return Ok(Vec::new());
    }
    let healthy = total - want.len();
    if healthy < geo.data_shards() {
        return Err(VolumeError::EcUnrecoverable {
            base: base.to_string(),
            stripe: 0,
            available: healthy,
            needed: geo.data_shards(),
        });
    }
    let finals: Vec<_> = want
        .iter()
        .map(|&i| shard_path(dir, base, i as u8))
        .collect();
    let tmps: Vec<_> = finals.iter().map(|p| with_suffix(p, ".tmp")).collect();
    let mut writers = tmps
        .iter()
        .map(|p| ShardWriter::create(p, geo.config.chunk_size))
        .collect::<Result<Vec<_>>>()?;
    for s in 0..geo.stripes() {
        let blocks = v.gather(s, 0, geo.block(), &want, &LocalOnly, &bad)?;
        for (w, b) in writers.iter_mut().zip(&blocks) {
            w.write_block(b)?;
        }
    }
    let revision = v.info().compaction_revision;
    for (w, &i) in writers.into_iter().zip(&want) {
        w.finish(&Footer {
            shard: i as u8,
            geometry: geo,
            revision,
        })?;
    }
    for (t, f) in tmps.iter().zip(&finals) {
        std::fs::rename(t, f).ctx(|| format!("renaming {} to {}", t.display(), f.display()))?;
    }
    sync_dir(dir)?;
    Ok(want.into_iter().map(|i| i as u8).collect())
}
