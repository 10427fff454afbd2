//! Needle format tests, anchored on the fact sheet's `hello.txt` example.

use super::*;

/// The `hello.txt` needle of the fact sheet (§2.3), as weed 4.48 wrote it.
const HELLO: &[u8] = &[
    0xd3, 0x91, 0x7f, 0xc0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x2b, // header
    0, 0, 0, 0x0c, b'h', b'e', b'l', b'l', b'o', b' ', b'w', b'o', b'r', b'l', b'd', b'\n', 0x0e,
    0x09, b'h', b'e', b'l', b'l', b'o', b'.', b't', b'x', b't', 0x0a, b't', b'e', b'x', b't', b'/',
    b'p', b'l', b'a', b'i', b'n', 0x00, 0x6b, 0x01, 0xb3, 0x07, // lastmod
    0xf0, 0xff, 0x72, 0x92, 0x18, 0xea, 0x17, 0xb7, 0xa6, 0x83, 0x62, 0x5a, 0x00,
];

fn hello() -> Needle {
    let mut n = Needle::new(NeedleKey(1), Cookie(0xd391_7fc0), &b"hello world\n"[..]);
    n.name = Some(b"hello.txt".to_vec());
    n.mime = Some(b"text/plain".to_vec());
    n.last_modified = Some(0x6b01_b307);
    n.append_at_ns = 0x18ea_17b7_a683_625a;
    n
}

#[test]
fn hello_encodes_to_the_fact_sheet_bytes() {
    let n = hello();
    assert_eq!(n.etag(), "f0ff7292");
    assert_eq!(n.size_field(Version::V3).unwrap(), 43);
    assert_eq!(n.encode(Version::V3).unwrap(), HELLO);
    assert_eq!(actual_size(43, Version::V3), 72);
}

#[test]
fn hello_decodes_back() {
    let n = Needle::decode(HELLO, Version::V3).unwrap();
    let mut expect = hello();
    expect.flags = 0x0e;
    assert_eq!(n, expect);
    assert_eq!(n.meta().size, 43);
}

#[test]
fn padding_is_one_to_eight() {
    for size in 0..64u32 {
        for v in [Version::V1, Version::V2, Version::V3] {
            let p = padding_len(size, v);
            assert!((1..=8).contains(&p), "size {size} pad {p}");
            assert_eq!(actual_size(size, v) % 8, 0);
        }
    }
    // 16 + 4 + 4 = 24 is aligned in v2, so it gets a full 8 bytes.
    assert_eq!(padding_len(4, Version::V2), 8);
}

#[test]
fn padding_bytes_match_seaweedfs() {
    // weed pads with the Size bytes of its reused header buffer, then zeros.
    let n = Needle::new(NeedleKey(3), Cookie(1), vec![7u8; 15]);
    let b = n.encode(Version::V3).unwrap();
    let size = n.size_field(Version::V3).unwrap();
    assert_eq!(size, 20);
    assert_eq!(&b[b.len() - 8..], &[0, 0, 0, 20, 0, 0, 0, 0]);
}

#[test]
fn tombstone_is_32_bytes_and_keeps_the_old_crc() {
    let t = Needle::tombstone(NeedleKey(9), Cookie(5), 0xdead_beef);
    let b = t.encode(Version::V3).unwrap();
    assert_eq!(b.len(), 32);
    assert_eq!(&b[12..16], &[0, 0, 0, 0]);
    assert_eq!(&b[16..20], &0xdead_beefu32.to_be_bytes());
    let back = Needle::decode(&b, Version::V3).unwrap();
    assert_eq!(back.checksum, 0xdead_beef);
    assert!(back.data.is_empty());
}

#[test]
fn all_fields_round_trip_in_v2_and_v3() {
    let mut n = Needle::new(NeedleKey(0xabcdef), Cookie(42), vec![1u8, 2, 3, 4, 5]);
    n.flags = FLAG_GZIP | FLAG_CHUNK_MANIFEST;
    n.name = Some(Vec::new());
    n.mime = Some(b"application/json".to_vec());
    n.last_modified = Some(1_700_000_000);
    n.ttl = Some("3d".parse().unwrap());
    n.pairs = Some(br#"{"Color":"blue"}"#.to_vec());
    for v in [Version::V2, Version::V3] {
        let mut expect = n.clone();
        if v == Version::V2 {
            expect.append_at_ns = 0;
        } else {
            expect.append_at_ns = 77;
        }
        let b = expect.encode(v).unwrap();
        assert_eq!(b.len() as u64 % 8, 0);
        let mut back = Needle::decode(&b, v).unwrap();
        assert_eq!(back.flags, n.stored_flags());
        back.flags = expect.flags;
        assert_eq!(back, expect);
    }
}

#[test]
fn v1_round_trips() {
    let n = Needle::new(NeedleKey(1), Cookie(2), &b"abc"[..]);
    let b = n.encode(Version::V1).unwrap();
    assert_eq!(b.len(), 16 + 3 + 4 + 1);
    assert_eq!(Needle::decode(&b, Version::V1).unwrap(), n);
}

#[test]
fn legacy_masked_crc_is_accepted() {
    let mut n = hello();
    let plain = n.checksum;
    n.checksum = legacy_masked(plain);
    let b = n.encode(Version::V3).unwrap();
    let back = Needle::decode(&b, Version::V3).unwrap();
    assert_eq!(back.checksum, plain);
}

#[test]
fn corrupt_data_is_refused() {
    let mut b = HELLO.to_vec();
    b[22] ^= 0xff;
    assert!(matches!(
        Needle::decode(&b, Version::V3),
        Err(VolumeError::CrcMismatch { .. })
    ));
    assert!(Needle::decode(&HELLO[..40], Version::V3).is_err());
    // A DataSize larger than Size.
    let mut b = HELLO.to_vec();
    b[19] = 0xff;
    assert!(matches!(
        Needle::decode(&b, Version::V3),
        Err(VolumeError::Corrupt { .. })
    ));
}

#[test]
fn oversized_fields_are_invalid() {
    let mut n = hello();
    n.name = Some(vec![b'a'; 256]);
    assert!(matches!(
        n.encode(Version::V3),
        Err(VolumeError::InvalidNeedle(_))
    ));
}
