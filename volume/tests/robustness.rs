//! Bytes from disk or the network never panic the parsers: arbitrary input to the
//! needle, header, superblock and `.vif` parsers gives a value or an error.

use kelp_volume::needle::{self, Needle, Version};
use kelp_volume::superblock::SuperBlock;
use kelp_volume::vif::VolumeInfo;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn needles_from_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for v in [Version::V1, Version::V2, Version::V3] {
            let _ = Needle::decode(&bytes, v);
        }
        let _ = needle::parse_header(&bytes);
    }

    #[test]
    fn needles_with_a_plausible_header(
        key in any::<u64>(),
        cookie in any::<u32>(),
        size in 0u32..600,
        tail in proptest::collection::vec(any::<u8>(), 0..700),
    ) {
        // A header that names a size, then whatever bytes: the body parser must check
        // every length field against what is there.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&cookie.to_be_bytes());
        bytes.extend_from_slice(&key.to_be_bytes());
        bytes.extend_from_slice(&size.to_be_bytes());
        bytes.extend_from_slice(&tail);
        for v in [Version::V1, Version::V2, Version::V3] {
            let _ = Needle::decode(&bytes, v);
        }
    }

    #[test]
    fn superblocks_from_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = SuperBlock::parse(&bytes);
    }

    #[test]
    fn vif_from_any_text(text in ".{0,200}") {
        let _ = VolumeInfo::parse(&text);
    }
}
