//! Volume ids, needle keys, cookies and the `FileId` string (`3,01637037d6`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A volume's number, unique in the cluster. Printed in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VolumeId(pub u32);

/// A needle's key inside a volume (SeaweedFS `NeedleId`). Printed in hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NeedleKey(pub u64);

/// The random per-needle number that makes file ids unguessable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cookie(pub u32);

impl fmt::Display for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for NeedleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl fmt::Display for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl FromStr for VolumeId {
    type Err = FileIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_volume_id(s)
    }
}

impl Cookie {
    /// A fresh random cookie.
    pub fn random() -> Self {
        Cookie(rand::random())
    }
}

/// Why a file id (or a volume id) string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileIdError {
    #[error("file id {0:?} has no comma between volume id and key")]
    MissingComma(String),
    #[error("volume id {0:?} is not a decimal number below 2^32")]
    BadVolumeId(String),
    #[error("key and cookie {0:?} must be 9 to 24 hex digits")]
    BadLength(String),
    #[error("key and cookie {0:?} are not hexadecimal")]
    NotHex(String),
    #[error("delta {0:?} after '_' is not a decimal number")]
    BadDelta(String),
    #[error("key plus delta overflows 64 bits in {0:?}")]
    Overflow(String),
}

fn parse_volume_id(s: &str) -> Result<VolumeId, FileIdError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FileIdError::BadVolumeId(s.to_string()));
    }
    s.parse::<u32>()
        .map(VolumeId)
        .map_err(|_| FileIdError::BadVolumeId(s.to_string()))
}

fn parse_hex_u64(s: &str, whole: &str) -> Result<u64, FileIdError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FileIdError::NotHex(whole.to_string()));
    }
    u64::from_str_radix(s, 16).map_err(|_| FileIdError::NotHex(whole.to_string()))
}

/// Parses the part after the comma: `<key hex><cookie 8 hex>[_<delta>]`.
///
/// The key may have an odd number of digits; the `_N` delta is added to the key.
pub fn parse_key_cookie(s: &str) -> Result<(NeedleKey, Cookie), FileIdError> {
    let (hex, delta) = match s.rfind('_') {
        Some(i) => {
            let d = &s[i + 1..];
            if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FileIdError::BadDelta(s.to_string()));
            }
            let d: u64 = d
                .parse()
                .map_err(|_| FileIdError::BadDelta(s.to_string()))?;
            (&s[..i], d)
        }
        None => (s, 0),
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FileIdError::NotHex(s.to_string()));
    }
    if hex.len() <= 8 || hex.len() > 24 {
        return Err(FileIdError::BadLength(s.to_string()));
    }
    let split = hex.len() - 8;
    let key = parse_hex_u64(&hex[..split], s)?;
    let cookie = parse_hex_u64(&hex[split..], s)? as u32;
    let key = key
        .checked_add(delta)
        .ok_or_else(|| FileIdError::Overflow(s.to_string()))?;
    Ok((NeedleKey(key), Cookie(cookie)))
}

/// Formats key and cookie as SeaweedFS does: 8 key bytes and 4 cookie bytes,
/// big-endian, with the key's leading zero *bytes* stripped, in lowercase hex.
pub fn format_key_cookie(key: NeedleKey, cookie: Cookie) -> String {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&key.0.to_be_bytes());
    bytes[8..].copy_from_slice(&cookie.0.to_be_bytes());
    let start = bytes[..8].iter().take_while(|b| **b == 0).count();
    let mut out = String::with_capacity(24);
    for b in &bytes[start..] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A file id: which volume, which needle, and the cookie that proves the
/// caller was given the id. Written `3,01637037d6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub volume: VolumeId,
    pub key: NeedleKey,
    pub cookie: Cookie,
}

impl FileId {
    pub fn new(volume: VolumeId, key: NeedleKey, cookie: Cookie) -> Self {
        FileId {
            volume,
            key,
            cookie,
        }
    }

    /// The id of the `n`th file of a batch assigned with `count`: same cookie, key + n.
    pub fn with_delta(&self, n: u64) -> Option<FileId> {
        Some(FileId {
            key: NeedleKey(self.key.0.checked_add(n)?),
            ..*self
        })
    }

    /// The part after the comma.
    pub fn key_cookie(&self) -> String {
        format_key_cookie(self.key, self.cookie)
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.volume, self.key_cookie())
    }
}

impl FromStr for FileId {
    type Err = FileIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let comma = match s.find(',') {
            Some(i) if i > 0 => i,
            _ => return Err(FileIdError::MissingComma(s.to_string())),
        };
        let volume = parse_volume_id(&s[..comma])?;
        let (key, cookie) = parse_key_cookie(&s[comma + 1..])?;
        Ok(FileId {
            volume,
            key,
            cookie,
        })
    }
}

impl Serialize for FileId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FileId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fid(s: &str) -> Result<FileId, FileIdError> {
        s.parse()
    }

    #[test]
    fn facts_sheet_examples() {
        let f = fid("3,01637037d6").unwrap();
        assert_eq!(f.volume, VolumeId(3));
        assert_eq!(f.key, NeedleKey(1));
        assert_eq!(f.cookie, Cookie(0x637037d6));
        assert_eq!(f.to_string(), "3,01637037d6");

        // `_N` delta: `4,02a105935c_1` is the same needle as `4,03a105935c`.
        assert_eq!(fid("4,02a105935c_1").unwrap(), fid("4,03a105935c").unwrap());
        assert_eq!(fid("4,02a105935c_1").unwrap().to_string(), "4,03a105935c");
        let base = fid("4,02a105935c").unwrap();
        assert_eq!(base.with_delta(1).unwrap().to_string(), "4,03a105935c");
    }

    #[test]
    fn formatting_strips_zero_bytes_not_digits() {
        let f = FileId::new(VolumeId(7), NeedleKey(0x1ab), Cookie(0x0000_0001));
        // 0x01ab is two bytes: "01ab", the leading zero nibble stays.
        assert_eq!(f.to_string(), "7,01ab00000001");
        let f = FileId::new(VolumeId(1), NeedleKey(u64::MAX), Cookie(u32::MAX));
        assert_eq!(f.to_string(), "1,ffffffffffffffffffffffff");
        let f = FileId::new(VolumeId(1), NeedleKey(0x100), Cookie(5));
        assert_eq!(f.to_string(), "1,010000000005");
    }

    #[test]
    fn parsing_accepts_odd_length_keys_and_uppercase() {
        let f = fid("5,1ab00000001").unwrap();
        assert_eq!(f.key, NeedleKey(0x1ab));
        assert_eq!(f.cookie, Cookie(1));
        assert_eq!(fid("5,1AB00000001").unwrap(), f);
    }

    #[test]
    fn malformed_ids_are_typed_errors() {
        use FileIdError::*;
        type Check = fn(&FileIdError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, MissingComma(_))),
            ("301637037d6", |e| matches!(e, MissingComma(_))),
            (",01637037d6", |e| matches!(e, MissingComma(_))),
            ("x,01637037d6", |e| matches!(e, BadVolumeId(_))),
            ("-1,01637037d6", |e| matches!(e, BadVolumeId(_))),
            ("4294967296,01637037d6", |e| matches!(e, BadVolumeId(_))),
            ("3,637037d6", |e| matches!(e, BadLength(_))),
            ("3,", |e| matches!(e, BadLength(_))),
            ("3,0102030405060708090a0b0c0d", |e| {
                matches!(e, BadLength(_))
            }),
            ("3,0g637037d6", |e| matches!(e, NotHex(_))),
            ("3,01637037zz", |e| matches!(e, NotHex(_))),
            ("3,+1637037d6", |e| matches!(e, NotHex(_))),
            ("3,01637037d6_", |e| matches!(e, BadDelta(_))),
            ("3,01637037d6_x", |e| matches!(e, BadDelta(_))),
            ("3,01637037d6_99999999999999999999", |e| {
                matches!(e, BadDelta(_))
            }),
            ("3,ffffffffffffffff637037d6_1", |e| matches!(e, Overflow(_))),
            ("3,01637037d6,", |e| matches!(e, NotHex(_))),
            ("3,é1637037d6", |e| matches!(e, NotHex(_))),
            ("3,0é637037d6", |e| matches!(e, NotHex(_))),
        ];
        for (s, ok) in cases {
            let err = fid(s).expect_err(s);
            assert!(ok(&err), "{s:?} gave {err:?}");
            assert!(!err.to_string().is_empty());
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(v in any::<u32>(), k in 1u64.., c in any::<u32>()) {
            let f = FileId::new(VolumeId(v), NeedleKey(k), Cookie(c));
            let s = f.to_string();
            prop_assert_eq!(fid(&s).unwrap(), f);
            prop_assert_eq!(s.len() % 2, (v.to_string().len() + 1) % 2);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = fid(&s);
        }

        #[test]
        fn canonical_strings_round_trip(v in any::<u32>(), k in 1u64.., c in any::<u32>()) {
            let s = FileId::new(VolumeId(v), NeedleKey(k), Cookie(c)).to_string();
            prop_assert_eq!(fid(&s).unwrap().to_string(), s);
        }
    }
}
