//! The needle record: SeaweedFS needle versions 1-3 byte for byte (encode, decode, CRC, padding).
//!
//! Layout of a version 3 needle (all integers big-endian):
//! `cookie u32 | key u64 | Size u32 | [DataSize u32 | data | flags u8 | optional fields] |
//! CRC32-C u32 | AppendAtNs u64 | padding 1..=8`. `Size` covers the bracketed body and is 0
//! for an empty needle or a tombstone. Version 2 has no AppendAtNs; version 1 stores the raw
//! data as the body. See `docs/formats/volume.md`.

use bytes::Bytes;
use kelp_proto::{Cookie, NeedleKey, Ttl};

use crate::error::{Result, VolumeError};

pub const FLAG_GZIP: u8 = 0x01;
pub const FLAG_HAS_NAME: u8 = 0x02;
pub const FLAG_HAS_MIME: u8 = 0x04;
pub const FLAG_HAS_LAST_MODIFIED: u8 = 0x08;
pub const FLAG_HAS_TTL: u8 = 0x10;
pub const FLAG_HAS_PAIRS: u8 = 0x20;
pub const FLAG_CHUNK_MANIFEST: u8 = 0x80;
/// The flag bits that say which optional fields follow; derived from the fields on encode.
const PRESENCE_FLAGS: u8 =
    FLAG_HAS_NAME | FLAG_HAS_MIME | FLAG_HAS_LAST_MODIFIED | FLAG_HAS_TTL | FLAG_HAS_PAIRS;

/// Cookie + key + Size.
pub const HEADER_SIZE: usize = 16;
pub const CHECKSUM_SIZE: usize = 4;
pub const TIMESTAMP_SIZE: usize = 8;
/// Needles start on multiples of this; offsets are stored in these units.
pub const NEEDLE_ALIGN: u64 = 8;
const LAST_MODIFIED_BYTES: usize = 5;
/// The largest `Size` we write: the field is an `i32` for SeaweedFS.
pub const MAX_SIZE_FIELD: u32 = i32::MAX as u32 - 64;

/// The needle format version, byte 0 of the superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V1 = 1,
    V2 = 2,
    V3 = 3,
}

impl Version {
    pub const CURRENT: Version = Version::V3;

    pub fn from_u8(b: u8) -> Option<Version> {
        match b {
            1 => Some(Version::V1),
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }

    pub fn as_u8(self) -> u8 {
        self as u8
    }

    fn tail_fixed(self) -> u64 {
        match self {
            Version::V3 => (CHECKSUM_SIZE + TIMESTAMP_SIZE) as u64,
            _ => CHECKSUM_SIZE as u64,
        }
    }
}

/// Padding after a needle with this `Size`: `8 - (len % 8)`, so 1..=8 and never 0.
pub fn padding_len(size: u32, version: Version) -> u64 {
    let unpadded = HEADER_SIZE as u64 + size as u64 + version.tail_fixed();
    NEEDLE_ALIGN - unpadded % NEEDLE_ALIGN
}

/// Total bytes a needle with this `Size` takes on disk (always a multiple of 8).
pub fn actual_size(size: u32, version: Version) -> u64 {
    HEADER_SIZE as u64 + size as u64 + version.tail_fixed() + padding_len(size, version)
}

/// CRC32-C (Castagnoli) of the data, unmasked: what SeaweedFS stores since 3.09.
pub fn crc(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// The masked form older SeaweedFS servers stored: `rotr(crc, 15) + 0xa282ead8`.
pub fn legacy_masked(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// True if `stored` is `computed` in either the current or the legacy masked form.
pub fn checksum_matches(stored: u32, computed: u32) -> bool {
    stored == computed || stored == legacy_masked(computed)
}

/// The ETag SeaweedFS serves: the CRC as 8 lowercase hex digits.
pub fn etag(checksum: u32) -> String {
    format!("{checksum:08x}")
}

/// The 16 bytes every needle starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedleHeader {
    pub cookie: Cookie,
    pub key: NeedleKey,
    /// The `Size` field: body length, 0 for tombstones and empty needles.
    pub size: u32,
}

impl NeedleHeader {
    pub fn parse(b: &[u8; HEADER_SIZE]) -> NeedleHeader {
        NeedleHeader {
            cookie: Cookie(be_u32(&b[0..4])),
            key: NeedleKey(be_u64(&b[4..12])),
            size: be_u32(&b[12..16]),
        }
    }

    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&self.cookie.0.to_be_bytes());
        b[4..12].copy_from_slice(&self.key.0.to_be_bytes());
        b[12..16].copy_from_slice(&self.size.to_be_bytes());
        b
    }
}

/// A needle's metadata: everything but the data bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedleMeta {
    pub cookie: Cookie,
    pub key: NeedleKey,
    /// The on-disk `Size` field (what a delete reports back).
    pub size: u32,
    /// Length of the stored data (gzip bytes if `is_gzip`).
    pub data_len: u64,
    /// The stored flag byte.
    pub flags: u8,
    pub name: Option<Vec<u8>>,
    pub mime: Option<Vec<u8>>,
    /// Unix seconds.
    pub last_modified: Option<u64>,
    pub ttl: Option<Ttl>,
    /// A JSON object of extra headers (`Seaweed-*` with the prefix stripped).
    pub pairs: Option<Vec<u8>>,
    /// CRC32-C of the data (for tombstones: the deleted needle's CRC).
    pub checksum: u32,
    /// Unix nanoseconds of the append (0 for version 1 and 2 needles).
    pub append_at_ns: u64,
}

impl NeedleMeta {
    pub fn is_gzip(&self) -> bool {
        self.flags & FLAG_GZIP != 0
    }

    pub fn is_chunk_manifest(&self) -> bool {
        self.flags & FLAG_CHUNK_MANIFEST != 0
    }

    pub fn etag(&self) -> String {
        etag(self.checksum)
    }
}

/// One needle, data included. Build with [`Needle::new`] and set the optional fields;
/// which optional fields are written follows from which are `Some`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle {
    pub cookie: Cookie,
    pub key: NeedleKey,
    /// The stored bytes (already gzip-compressed if `flags` has [`FLAG_GZIP`]).
    pub data: Bytes,
    /// On decode: the stored byte. On encode only the gzip, manifest and unknown bits are
    /// taken from here; the presence bits are derived from the optional fields.
    pub flags: u8,
    pub name: Option<Vec<u8>>,
    pub mime: Option<Vec<u8>>,
    pub last_modified: Option<u64>,
    pub ttl: Option<Ttl>,
    pub pairs: Option<Vec<u8>>,
    /// CRC32-C of `data`; for a tombstone the deleted needle's CRC. [`Needle::new`] sets it.
    pub checksum: u32,
    pub append_at_ns: u64,
}

impl Needle {
    /// A needle with data and no optional fields; the checksum is computed.
    pub fn new(key: NeedleKey, cookie: Cookie, data: impl Into<Bytes>) -> Needle {
        let data = data.into();
        Needle {
            cookie,
            key,
            checksum: crc(&data),
            data,
            flags: 0,
            name: None,
            mime: None,
            last_modified: None,
            ttl: None,
            pairs: None,
            append_at_ns: 0,
        }
    }

    /// The record a delete appends: `Size` 0, carrying the deleted needle's CRC.
    pub fn tombstone(key: NeedleKey, cookie: Cookie, old_checksum: u32) -> Needle {
        let mut n = Needle::new(key, cookie, Bytes::new());
        n.checksum = old_checksum;
        n
    }

    pub fn is_gzip(&self) -> bool {
        self.flags & FLAG_GZIP != 0
    }

    pub fn is_chunk_manifest(&self) -> bool {
        self.flags & FLAG_CHUNK_MANIFEST != 0
    }

    pub fn etag(&self) -> String {
        etag(self.checksum)
    }

    /// The flag byte as it will be written.
    pub fn stored_flags(&self) -> u8 {
        let mut f = self.flags & !PRESENCE_FLAGS;
        if self.name.is_some() {
            f |= FLAG_HAS_NAME;
        }
        if self.mime.is_some() {
            f |= FLAG_HAS_MIME;
        }
        if self.last_modified.is_some() {
            f |= FLAG_HAS_LAST_MODIFIED;
        }
        if self.ttl.is_some() {
            f |= FLAG_HAS_TTL;
        }
        if self.pairs.is_some() {
            f |= FLAG_HAS_PAIRS;
        }
        f
    }

    /// Checks the field limits of the format (name and mime < 256 bytes, pairs < 64 KiB).
    pub fn validate(&self) -> Result<()> {
        let too_long = |what: &str, len: usize, max: usize| {
            VolumeError::InvalidNeedle(format!("{what} is {len} bytes, at most {max} allowed"))
        };
        if let Some(n) = &self.name
            && n.len() > 255
        {
            return Err(too_long("name", n.len(), 255));
        }
        if let Some(m) = &self.mime
            && m.len() > 255
        {
            return Err(too_long("mime type", m.len(), 255));
        }
        if let Some(p) = &self.pairs
            && p.len() > u16::MAX as usize
        {
            return Err(too_long("pairs JSON", p.len(), u16::MAX as usize));
        }
        if self.last_modified.is_some_and(|t| t >= 1 << 40) {
            return Err(VolumeError::InvalidNeedle(
                "last modified does not fit in 5 bytes".into(),
            ));
        }
        let size = self.body_len(Version::V3);
        if size > MAX_SIZE_FIELD as u64 {
            return Err(too_long("needle", size as usize, MAX_SIZE_FIELD as usize));
        }
        Ok(())
    }

    fn body_len(&self, version: Version) -> u64 {
        if version == Version::V1 {
            return self.data.len() as u64;
        }
        if self.data.is_empty() {
            return 0;
        }
        let mut size = 4 + self.data.len() as u64 + 1;
        if let Some(n) = &self.name {
            size += 1 + n.len() as u64;
        }
        if let Some(m) = &self.mime {
            size += 1 + m.len() as u64;
        }
        if self.last_modified.is_some() {
            size += LAST_MODIFIED_BYTES as u64;
        }
        if self.ttl.is_some() {
            size += 2;
        }
        if let Some(p) = &self.pairs {
            size += 2 + p.len() as u64;
        }
        size
    }

    /// The `Size` field this needle gets in `version`.
    pub fn size_field(&self, version: Version) -> Result<u32> {
        self.validate()?;
        Ok(self.body_len(version) as u32)
    }

    /// The exact on-disk bytes. The checksum field is written as is (see [`Needle::checksum`]).
    pub fn encode(&self, version: Version) -> Result<Vec<u8>> {
        let (head, tail) = self.encode_around_data(version)?;
        let mut out = Vec::with_capacity(head.len() + self.data.len() + tail.len());
        out.extend_from_slice(&head);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&tail);
        Ok(out)
    }

    /// The on-disk bytes before and after the data (an empty needle's record is
    /// `head + tail`): written around [`Needle::data`] with one vectored write, the
    /// data is never copied into a record buffer.
    pub fn encode_around_data(&self, version: Version) -> Result<(Vec<u8>, Vec<u8>)> {
        let size = self.size_field(version)?;
        let total = actual_size(size, version) as usize;
        let mut head = Vec::with_capacity(HEADER_SIZE + 4);
        head.extend_from_slice(
            &NeedleHeader {
                cookie: self.cookie,
                key: self.key,
                size,
            }
            .to_bytes(),
        );
        let mut tail = Vec::with_capacity(64);
        if version != Version::V1 && size > 0 {
            head.extend_from_slice(&(self.data.len() as u32).to_be_bytes());
            tail.push(self.stored_flags());
            if let Some(n) = &self.name {
                tail.push(n.len() as u8);
                tail.extend_from_slice(n);
            }
            if let Some(m) = &self.mime {
                tail.push(m.len() as u8);
                tail.extend_from_slice(m);
            }
            if let Some(t) = self.last_modified {
                tail.extend_from_slice(&t.to_be_bytes()[8 - LAST_MODIFIED_BYTES..]);
            }
            if let Some(ttl) = &self.ttl {
                tail.extend_from_slice(&ttl.to_bytes());
            }
            if let Some(p) = &self.pairs {
                tail.extend_from_slice(&(p.len() as u16).to_be_bytes());
                tail.extend_from_slice(p);
            }
        }
        tail.extend_from_slice(&self.checksum.to_be_bytes());
        if version == Version::V3 {
            tail.extend_from_slice(&self.append_at_ns.to_be_bytes());
        }
        // SeaweedFS writes its reused header buffer as padding: the Size bytes, then zeros.
        let mut pad = [0u8; 8];
        pad[..4].copy_from_slice(&size.to_be_bytes());
        tail.extend_from_slice(&pad[..padding_len(size, version) as usize]);
        // A needle of Size 0 has no data (`body_len`), so the data always fits between.
        debug_assert_eq!(head.len() + self.data.len() + tail.len(), total);
        Ok((head, tail))
    }

    /// Decodes one whole record (`bytes` may be longer). The data's CRC is verified
    /// (either the plain or the legacy masked form); `checksum` is set to the plain CRC.
    pub fn decode(bytes: &[u8], version: Version) -> Result<Needle> {
        let header = parse_header(bytes)?;
        let total = actual_size(header.size, version);
        if (bytes.len() as u64) < total {
            return Err(VolumeError::corrupt(
                "needle",
                format!(
                    "record of {total} bytes is cut short at {} bytes",
                    bytes.len()
                ),
            ));
        }
        let body_end = HEADER_SIZE + header.size as usize;
        let body = &bytes[HEADER_SIZE..body_end];
        let mut n = Needle::new(header.key, header.cookie, Bytes::new());
        match version {
            Version::V1 => n.data = Bytes::copy_from_slice(body),
            Version::V2 | Version::V3 => {
                if body.len() >= 4 {
                    let data_len = be_u32(&body[0..4]) as usize;
                    let data = body.get(4..4 + data_len).ok_or_else(|| {
                        VolumeError::corrupt(
                            "needle",
                            format!("DataSize {data_len} does not fit in Size {}", header.size),
                        )
                    })?;
                    n.data = Bytes::copy_from_slice(data);
                    parse_meta_into(&body[4 + data_len..], &mut n)?;
                } else if !body.is_empty() {
                    return Err(VolumeError::corrupt(
                        "needle",
                        format!("Size {} is too small for a DataSize field", header.size),
                    ));
                }
            }
        }
        let (stored, append_at_ns) = parse_tail(&bytes[body_end..], version);
        n.append_at_ns = append_at_ns;
        n.checksum = stored;
        if !n.data.is_empty() {
            let computed = crc(&n.data);
            if !checksum_matches(stored, computed) {
                return Err(VolumeError::CrcMismatch {
                    key: n.key,
                    stored,
                    computed,
                });
            }
            n.checksum = computed;
        }
        Ok(n)
    }

    pub fn meta(&self) -> NeedleMeta {
        NeedleMeta {
            cookie: self.cookie,
            key: self.key,
            size: self.body_len(Version::V3) as u32,
            data_len: self.data.len() as u64,
            flags: self.stored_flags(),
            name: self.name.clone(),
            mime: self.mime.clone(),
            last_modified: self.last_modified,
            ttl: self.ttl,
            pairs: self.pairs.clone(),
            checksum: self.checksum,
            append_at_ns: self.append_at_ns,
        }
    }
}

/// Parses the 16-byte header at the start of `bytes`.
pub fn parse_header(bytes: &[u8]) -> Result<NeedleHeader> {
    let h: &[u8; HEADER_SIZE] = bytes
        .get(..HEADER_SIZE)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| VolumeError::corrupt("needle", "shorter than its 16-byte header"))?;
    Ok(NeedleHeader::parse(h))
}

/// Reads the checksum and (v3) AppendAtNs that follow the body. `tail` must hold them.
pub(crate) fn parse_tail(tail: &[u8], version: Version) -> (u32, u64) {
    let stored = tail.get(0..4).map(be_u32).unwrap_or(0);
    let ts = match version {
        Version::V3 => tail.get(4..12).map(be_u64).unwrap_or(0),
        _ => 0,
    };
    (stored, ts)
}

/// The optional fields after the data, parsed as leniently as SeaweedFS does: a field whose
/// flag is set but that starts past the end of the body is absent; one cut short is corrupt.
#[derive(Debug, Default)]
pub(crate) struct MetaFields {
    pub flags: u8,
    pub name: Option<Vec<u8>>,
    pub mime: Option<Vec<u8>>,
    pub last_modified: Option<u64>,
    pub ttl: Option<Ttl>,
    pub pairs: Option<Vec<u8>>,
}

pub(crate) fn parse_meta(b: &[u8]) -> Result<MetaFields> {
    let short = |field: &str| VolumeError::corrupt("needle", format!("{field} runs past Size"));
    let mut m = MetaFields::default();
    let mut i = 0usize;
    if i < b.len() {
        m.flags = b[i];
        i += 1;
    }
    let take = |i: &mut usize, len: usize, field: &str| -> Result<Vec<u8>> {
        let v = b.get(*i..*i + len).ok_or_else(|| short(field))?.to_vec();
        *i += len;
        Ok(v)
    };
    if i < b.len() && m.flags & FLAG_HAS_NAME != 0 {
        let len = b[i] as usize;
        i += 1;
        m.name = Some(take(&mut i, len, "name")?);
    }
    if i < b.len() && m.flags & FLAG_HAS_MIME != 0 {
        let len = b[i] as usize;
        i += 1;
        m.mime = Some(take(&mut i, len, "mime")?);
    }
    if i < b.len() && m.flags & FLAG_HAS_LAST_MODIFIED != 0 {
        let v = take(&mut i, LAST_MODIFIED_BYTES, "last modified")?;
        m.last_modified = Some(v.iter().fold(0u64, |acc, &x| acc << 8 | x as u64));
    }
    if i < b.len() && m.flags & FLAG_HAS_TTL != 0 {
        let v = take(&mut i, 2, "ttl")?;
        let ttl = Ttl::from_bytes([v[0], v[1]])
            .map_err(|e| VolumeError::corrupt("needle", e.to_string()))?;
        m.ttl = Some(ttl);
    }
    if i < b.len() && m.flags & FLAG_HAS_PAIRS != 0 {
        let v = take(&mut i, 2, "pairs size")?;
        let len = u16::from_be_bytes([v[0], v[1]]) as usize;
        m.pairs = Some(take(&mut i, len, "pairs")?);
    }
    Ok(m)
}

fn parse_meta_into(b: &[u8], n: &mut Needle) -> Result<()> {
    let m = parse_meta(b)?;
    n.flags = m.flags;
    n.name = m.name;
    n.mime = m.mime;
    n.last_modified = m.last_modified;
    n.ttl = m.ttl;
    n.pairs = m.pairs;
    Ok(())
}

pub(crate) fn be_u32(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0u32, |acc, &x| acc << 8 | x as u32)
}

pub(crate) fn be_u64(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0u64, |acc, &x| acc << 8 | x as u64)
}

#[cfg(test)]
mod tests;
