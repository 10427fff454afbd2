//! The 8-byte superblock at the start of every `.dat`: version, placement, TTL, compaction revision.

use kelp_proto::{ReplicaPlacement, Ttl};

use crate::error::{Result, VolumeError};
use crate::needle::Version;

pub const SUPERBLOCK_SIZE: usize = 8;

/// `version u8 | placement u8 | ttl [count, unit] | compaction revision u16 | extra size u16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuperBlock {
    pub version: Version,
    pub placement: ReplicaPlacement,
    pub ttl: Ttl,
    /// Incremented by every vacuum.
    pub compaction_revision: u16,
}

impl SuperBlock {
    pub fn new(placement: ReplicaPlacement, ttl: Ttl) -> SuperBlock {
        SuperBlock {
            version: Version::CURRENT,
            placement,
            ttl,
            compaction_revision: 0,
        }
    }

    pub fn to_bytes(&self) -> [u8; SUPERBLOCK_SIZE] {
        let ttl = self.ttl.to_bytes();
        let rev = self.compaction_revision.to_be_bytes();
        [
            self.version.as_u8(),
            self.placement.to_byte(),
            ttl[0],
            ttl[1],
            rev[0],
            rev[1],
            0,
            0,
        ]
    }

    /// Parses the first 8 bytes of a `.dat`. A non-zero extra size is refused: SeaweedFS
    /// never reads the extra block either, and always writes 0.
    pub fn parse(b: &[u8]) -> Result<SuperBlock> {
        let what = "superblock";
        let b: &[u8; SUPERBLOCK_SIZE] = b
            .get(..SUPERBLOCK_SIZE)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| VolumeError::corrupt(what, "shorter than 8 bytes"))?;
        let version = Version::from_u8(b[0])
            .ok_or_else(|| VolumeError::corrupt(what, format!("unknown version {}", b[0])))?;
        let ttl =
            Ttl::from_bytes([b[2], b[3]]).map_err(|e| VolumeError::corrupt(what, e.to_string()))?;
        let extra = u16::from_be_bytes([b[6], b[7]]);
        if extra != 0 {
            return Err(VolumeError::corrupt(
                what,
                format!("extra size is {extra}, only 0 is supported"),
            ));
        }
        Ok(SuperBlock {
            version,
            placement: ReplicaPlacement::from_byte(b[1]),
            ttl,
            compaction_revision: u16::from_be_bytes([b[4], b[5]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_bytes() {
        let sb = SuperBlock::new(ReplicaPlacement::default(), Ttl::EMPTY);
        assert_eq!(sb.to_bytes(), [3, 0, 0, 0, 0, 0, 0, 0]);
        let mut after_vacuum = sb;
        after_vacuum.compaction_revision = 1;
        assert_eq!(after_vacuum.to_bytes(), [3, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn round_trip() {
        let sb = SuperBlock {
            version: Version::V3,
            placement: "010".parse().unwrap(),
            ttl: "3d".parse().unwrap(),
            compaction_revision: 0x0102,
        };
        let b = sb.to_bytes();
        assert_eq!(b[1], 0x0a);
        assert_eq!(&b[2..4], &[3, 3]);
        assert_eq!(SuperBlock::parse(&b).unwrap(), sb);
    }

    #[test]
    fn bad_superblocks_are_refused() {
        assert!(SuperBlock::parse(&[3, 0, 0]).is_err());
        assert!(SuperBlock::parse(&[9, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(SuperBlock::parse(&[3, 0, 0, 0, 0, 0, 0, 4]).is_err());
    }
}
