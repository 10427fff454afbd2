//! `.idx` entries: `key u64 | offset (4 or 5 bytes, in 8-byte units) | size i32`, big-endian.
//!
//! In 5-byte mode the extra high offset byte is stored *after* the four low bytes, as the
//! SeaweedFS "large disk" builds do. A size of `0xFFFFFFFF` (any negative size) or a zero
//! offset records a delete.

use kelp_proto::NeedleKey;

use crate::needle::{NEEDLE_ALIGN, be_u32, be_u64};

/// The `Size` written to the `.idx` for a delete (-1 as an `i32`).
pub const TOMBSTONE_SIZE: u32 = 0xFFFF_FFFF;

/// How many bytes an offset takes in the `.idx` (and so how large a volume may grow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OffsetWidth {
    /// 16-byte entries, volumes up to 32 GiB (SeaweedFS default builds).
    Four,
    /// 17-byte entries, volumes up to 8 TiB (SeaweedFS "large disk" builds, kelp's default).
    #[default]
    Five,
}

impl OffsetWidth {
    /// 4 or 5 (the `.vif` `bytesOffset` value).
    pub fn bytes(self) -> u8 {
        match self {
            OffsetWidth::Four => 4,
            OffsetWidth::Five => 5,
        }
    }

    pub fn from_bytes(n: u32) -> Option<OffsetWidth> {
        match n {
            4 => Some(OffsetWidth::Four),
            5 => Some(OffsetWidth::Five),
            _ => None,
        }
    }

    pub fn other(self) -> OffsetWidth {
        match self {
            OffsetWidth::Four => OffsetWidth::Five,
            OffsetWidth::Five => OffsetWidth::Four,
        }
    }

    /// Bytes per `.idx` entry: 16 or 17.
    pub fn entry_size(self) -> usize {
        8 + self.bytes() as usize + 4
    }

    /// The largest storable offset, in 8-byte units.
    pub fn max_offset_units(self) -> u64 {
        (1u64 << (8 * self.bytes() as u32)) - 1
    }

    /// The largest `.dat` this width can address (32 GiB or 8 TiB).
    pub fn max_volume_size(self) -> u64 {
        (self.max_offset_units() + 1) * NEEDLE_ALIGN
    }
}

/// One `.idx` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxEntry {
    pub key: NeedleKey,
    /// In 8-byte units.
    pub offset: u64,
    /// The needle's `Size` field, or [`TOMBSTONE_SIZE`].
    pub size: u32,
}

impl IdxEntry {
    /// True for an entry that makes the key live (non-zero offset, non-negative size).
    pub fn is_put(&self) -> bool {
        self.offset != 0 && (self.size as i32) >= 0
    }

    pub fn byte_offset(&self) -> u64 {
        self.offset * NEEDLE_ALIGN
    }

    /// Encodes into `out`, which must hold `width.entry_size()` bytes.
    pub fn encode_into(&self, width: OffsetWidth, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.key.0.to_be_bytes());
        out[8..12].copy_from_slice(&(self.offset as u32).to_be_bytes());
        let s = match width {
            OffsetWidth::Four => 12,
            OffsetWidth::Five => {
                out[12] = (self.offset >> 32) as u8;
                13
            }
        };
        out[s..s + 4].copy_from_slice(&self.size.to_be_bytes());
    }

    pub fn to_vec(&self, width: OffsetWidth) -> Vec<u8> {
        let mut v = vec![0u8; width.entry_size()];
        self.encode_into(width, &mut v);
        v
    }

    /// Decodes one entry; `b` must hold `width.entry_size()` bytes.
    pub fn decode(b: &[u8], width: OffsetWidth) -> IdxEntry {
        let key = NeedleKey(be_u64(&b[0..8]));
        let low = be_u32(&b[8..12]) as u64;
        let (offset, s) = match width {
            OffsetWidth::Four => (low, 12),
            OffsetWidth::Five => (low | (b[12] as u64) << 32, 13),
        };
        IdxEntry {
            key,
            offset,
            size: be_u32(&b[s..s + 4]),
        }
    }
}

/// Decodes every whole entry of an `.idx` image; a partial entry at the end is ignored
/// (its length is `bytes.len() % width.entry_size()`).
pub fn entries(bytes: &[u8], width: OffsetWidth) -> impl Iterator<Item = IdxEntry> + '_ {
    bytes
        .chunks_exact(width.entry_size())
        .map(move |c| IdxEntry::decode(c, width))
}

/// Encodes entries back to back.
pub fn encode_all(list: &[IdxEntry], width: OffsetWidth) -> Vec<u8> {
    let es = width.entry_size();
    let mut out = vec![0u8; list.len() * es];
    for (e, chunk) in list.iter().zip(out.chunks_exact_mut(es)) {
        e.encode_into(width, chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_byte_layout_puts_the_high_byte_after() {
        let e = IdxEntry {
            key: NeedleKey(1),
            offset: 1,
            size: 43,
        };
        assert_eq!(
            e.to_vec(OffsetWidth::Five),
            [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0x2b]
        );
        let big = IdxEntry {
            key: NeedleKey(0x0102),
            offset: 0xAB_1234_5678,
            size: TOMBSTONE_SIZE,
        };
        let b = big.to_vec(OffsetWidth::Five);
        assert_eq!(&b[8..13], &[0x12, 0x34, 0x56, 0x78, 0xAB]);
        assert_eq!(IdxEntry::decode(&b, OffsetWidth::Five), big);
        assert!(!big.is_put());
    }

    #[test]
    fn four_byte_round_trip_and_limits() {
        let e = IdxEntry {
            key: NeedleKey(u64::MAX),
            offset: 0xFFFF_FFFF,
            size: 7,
        };
        let b = e.to_vec(OffsetWidth::Four);
        assert_eq!(b.len(), 16);
        assert_eq!(IdxEntry::decode(&b, OffsetWidth::Four), e);
        assert_eq!(OffsetWidth::Four.max_volume_size(), 32 << 30);
        assert_eq!(OffsetWidth::Five.max_volume_size(), 8 << 40);
        assert_eq!(OffsetWidth::default(), OffsetWidth::Five);
    }

    #[test]
    fn put_and_delete_rules() {
        let e = |offset, size| IdxEntry {
            key: NeedleKey(1),
            offset,
            size,
        };
        assert!(e(1, 10).is_put());
        assert!(e(1, 0).is_put(), "empty needle is live");
        assert!(!e(0, 10).is_put());
        assert!(!e(1, TOMBSTONE_SIZE).is_put());
        assert!(!e(1, 0x8000_0000).is_put());
    }

    #[test]
    fn partial_tail_is_ignored() {
        let list = [
            IdxEntry {
                key: NeedleKey(1),
                offset: 1,
                size: 5,
            },
            IdxEntry {
                key: NeedleKey(2),
                offset: 5,
                size: 6,
            },
        ];
        let mut bytes = encode_all(&list, OffsetWidth::Five);
        bytes.extend_from_slice(&[1, 2, 3]);
        let back: Vec<_> = entries(&bytes, OffsetWidth::Five).collect();
        assert_eq!(back, list);
    }
}
