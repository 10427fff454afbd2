//! The Reed-Solomon coder (`reed-solomon-simd`): parity of a stripe, restoring lost shards.
//!
//! The library works on 64-byte pieces independently, so any 64-byte aligned sub-range of
//! a block codes exactly like that range of the whole block: reads reconstruct only the
//! chunks they need. Shard lengths must be even (ours are multiples of 64). The coder never
//! recomputes parity on its own: callers re-encode it from the data shards.

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::error::{Result, VolumeError};

fn rs_err(e: reed_solomon_simd::Error) -> VolumeError {
    VolumeError::EcInvalid(format!("reed-solomon: {e}"))
}

/// An encoder and a decoder for one shard count, reused across calls (they keep their
/// work space as long as the shard length stays the same).
pub(crate) struct Codec {
    data: usize,
    parity: usize,
    enc: Option<(usize, ReedSolomonEncoder)>,
    dec: Option<(usize, ReedSolomonDecoder)>,
}

impl Codec {
    pub fn new(data: usize, parity: usize) -> Codec {
        Codec {
            data,
            parity,
            enc: None,
            dec: None,
        }
    }

    /// The shard length the decoder is set up for (reusing it at that length is cheapest).
    pub fn decode_len(&self) -> Option<usize> {
        self.dec.as_ref().map(|(l, _)| *l)
    }

    fn encoder(&mut self, len: usize) -> Result<&mut ReedSolomonEncoder> {
        match &mut self.enc {
            Some((l, e)) if *l != len => {
                e.reset(self.data, self.parity, len).map_err(rs_err)?;
                *l = len;
            }
            Some(_) => {}
            None => {
                let e = ReedSolomonEncoder::new(self.data, self.parity, len).map_err(rs_err)?;
                self.enc = Some((len, e));
            }
        }
        self.enc
            .as_mut()
            .map(|(_, e)| e)
            .ok_or_else(|| VolumeError::EcInvalid("no encoder".into()))
    }

    fn decoder(&mut self, len: usize) -> Result<&mut ReedSolomonDecoder> {
        match &mut self.dec {
            Some((l, d)) if *l != len => {
                d.reset(self.data, self.parity, len).map_err(rs_err)?;
                *l = len;
            }
            Some(_) => {}
            None => {
                let d = ReedSolomonDecoder::new(self.data, self.parity, len).map_err(rs_err)?;
                self.dec = Some((len, d));
            }
        }
        self.dec
            .as_mut()
            .map(|(_, d)| d)
            .ok_or_else(|| VolumeError::EcInvalid("no decoder".into()))
    }

    /// Computes the parity of `data` (`data_shards` slices of one even length) into
    /// `parity` (`parity_shards` buffers, overwritten).
    pub fn encode(&mut self, data: &[&[u8]], parity: &mut [Vec<u8>]) -> Result<()> {
        let len = data.first().map_or(0, |d| d.len());
        let (d, p) = (self.data, self.parity);
        if data.len() != d || parity.len() != p {
            return Err(VolumeError::EcInvalid(format!(
                "encode wants {d} data and {p} parity buffers, got {} and {}",
                data.len(),
                parity.len()
            )));
        }
        let enc = self.encoder(len)?;
        for s in data {
            enc.add_original_shard(s).map_err(rs_err)?;
        }
        let out = enc.encode().map_err(rs_err)?;
        for (dst, src) in parity.iter_mut().zip(out.recovery_iter()) {
            dst.clear();
            dst.extend_from_slice(src);
        }
        Ok(())
    }

    /// Restores the data shards `want` (indexes below `data_shards`) from `have`: at least
    /// `data_shards` pairs of (shard index, bytes), parity shards indexed from
    /// `data_shards` up. Returns the wanted shards in the order asked.
    pub fn reconstruct(&mut self, have: &[(usize, &[u8])], want: &[usize]) -> Result<Vec<Vec<u8>>> {
        let d = self.data;
        let len = have.first().map_or(0, |(_, s)| s.len());
        let given = |i: usize| have.iter().find(|(j, _)| *j == i).map(|(_, s)| *s);
        if want.iter().all(|&w| given(w).is_some()) {
            return Ok(want
                .iter()
                .filter_map(|&w| given(w))
                .map(<[u8]>::to_vec)
                .collect());
        }
        if have.len() < d {
            return Err(VolumeError::EcInvalid(format!(
                "{} shards given, {d} needed to reconstruct",
                have.len()
            )));
        }
        let dec = self.decoder(len)?;
        for &(i, s) in have.iter().take(d) {
            if i < d {
                dec.add_original_shard(i, s).map_err(rs_err)?;
            } else {
                dec.add_recovery_shard(i - d, s).map_err(rs_err)?;
            }
        }
        let res = dec.decode().map_err(rs_err)?;
        want.iter()
            .map(|&w| {
                have.iter()
                    .take(d)
                    .find(|(j, _)| *j == w)
                    .map(|(_, s)| *s)
                    .or_else(|| res.restored_original(w))
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| VolumeError::EcInvalid(format!("shard {w} was not restored")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(d: usize, len: usize) -> Vec<Vec<u8>> {
        (0..d)
            .map(|i| {
                (0..len)
                    .map(|j| ((i * 131 + j * 7 + j / 251) % 256) as u8)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn sub_ranges_code_like_the_whole_block() {
        let (d, p, len) = (10, 4, 4096);
        let data = shards(d, len);
        let mut c = Codec::new(d, p);
        let refs: Vec<&[u8]> = data.iter().map(|s| s.as_slice()).collect();
        let mut parity = vec![Vec::new(); p];
        c.encode(&refs, &mut parity).unwrap();

        let (a, b) = (640, 640 + 1024);
        let sub: Vec<&[u8]> = data.iter().map(|s| &s[a..b]).collect();
        let mut sub_parity = vec![Vec::new(); p];
        c.encode(&sub, &mut sub_parity).unwrap();
        for (sp, full) in sub_parity.iter().zip(&parity) {
            assert_eq!(sp[..], full[a..b]);
        }

        // Lose data shards 0, 3, 4 and 9; rebuild them from the rest over [a, b).
        let mut have: Vec<(usize, &[u8])> = Vec::new();
        for i in [1, 2, 5, 6, 7, 8] {
            have.push((i, &data[i][a..b]));
        }
        for (k, par) in parity.iter().enumerate() {
            have.push((d + k, &par[a..b]));
        }
        let got = c.reconstruct(&have, &[0, 3, 4, 9, 5]).unwrap();
        for (g, w) in got.iter().zip([0, 3, 4, 9, 5]) {
            assert_eq!(g[..], data[w][a..b]);
        }
        // And the whole block with a fresh length.
        let mut have: Vec<(usize, &[u8])> = Vec::new();
        for (k, par) in parity.iter().enumerate() {
            have.push((d + k, par));
        }
        for (i, s) in data.iter().enumerate().skip(4) {
            have.push((i, s));
        }
        let got = c.reconstruct(&have, &[0, 1, 2, 3]).unwrap();
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g, &data[i]);
        }
    }

    #[test]
    fn too_few_shards_is_an_error() {
        let mut c = Codec::new(3, 2);
        let x = [0u8; 64];
        assert!(c.reconstruct(&[(1, &x[..]), (3, &x[..])], &[0]).is_err());
    }
}
