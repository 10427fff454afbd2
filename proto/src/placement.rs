//! Replica placement `xyz`: extra copies in other data centers, other racks, other servers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How many extra copies a volume keeps, and where: `x` in other data centers,
/// `y` on other racks of the same data center, `z` on other servers of the same rack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReplicaPlacement {
    pub diff_dc: u8,
    pub diff_rack: u8,
    pub same_rack: u8,
}

/// Why a placement string or byte was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementParseError {
    #[error("replication {0:?} must be up to three digits, like \"010\"")]
    Malformed(String),
    #[error("replication {0:?} does not fit in one byte (x*100+y*10+z must be at most 255)")]
    TooLarge(String),
}

impl ReplicaPlacement {
    /// Total number of copies, the original included.
    pub fn copy_count(&self) -> usize {
        self.diff_dc as usize + self.diff_rack as usize + self.same_rack as usize + 1
    }

    /// The superblock byte: `x*100 + y*10 + z`.
    pub fn to_byte(&self) -> u8 {
        // Construction guarantees the value fits.
        (self.diff_dc as u16 * 100 + self.diff_rack as u16 * 10 + self.same_rack as u16) as u8
    }

    pub fn from_byte(b: u8) -> Self {
        ReplicaPlacement {
            diff_dc: b / 100,
            diff_rack: (b / 10) % 10,
            same_rack: b % 10,
        }
    }
}

impl FromStr for ReplicaPlacement {
    type Err = PlacementParseError;

    /// Parses `"010"`; shorter strings are left-padded (`"1"` is `001`), `""` is `000`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PlacementParseError::Malformed(s.to_string()));
        }
        let padded = format!("{s:0>3}");
        let d: Vec<u8> = padded.bytes().map(|b| b - b'0').collect();
        if d[0] as u16 * 100 + d[1] as u16 * 10 + d[2] as u16 > 255 {
            return Err(PlacementParseError::TooLarge(s.to_string()));
        }
        Ok(ReplicaPlacement {
            diff_dc: d[0],
            diff_rack: d[1],
            same_rack: d[2],
        })
    }
}

impl fmt::Display for ReplicaPlacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.diff_dc, self.diff_rack, self.same_rack)
    }
}

impl Serialize for ReplicaPlacement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ReplicaPlacement {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_sheet_examples() {
        let rp: ReplicaPlacement = "010".parse().unwrap();
        assert_eq!(rp.to_byte(), 0x0a);
        assert_eq!(rp.copy_count(), 2);
        let rp: ReplicaPlacement = "200".parse().unwrap();
        assert_eq!(rp.to_byte(), 0xc8);
        assert_eq!(rp.copy_count(), 3);
        assert_eq!("1".parse::<ReplicaPlacement>().unwrap().to_string(), "001");
        assert_eq!("".parse::<ReplicaPlacement>().unwrap().to_string(), "000");
        assert_eq!("".parse::<ReplicaPlacement>().unwrap().copy_count(), 1);
        assert_eq!(ReplicaPlacement::from_byte(0x0a).to_string(), "010");
        assert_eq!(ReplicaPlacement::from_byte(0xc8).to_string(), "200");
    }

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=255u8 {
            let rp = ReplicaPlacement::from_byte(b);
            assert_eq!(rp.to_byte(), b);
            assert_eq!(rp.to_string().parse::<ReplicaPlacement>().unwrap(), rp);
        }
    }

    #[test]
    fn malformed() {
        for s in ["0100", "x", "01a", "-1", " 01", "1.0"] {
            assert!(
                matches!(
                    s.parse::<ReplicaPlacement>(),
                    Err(PlacementParseError::Malformed(_))
                ),
                "{s}"
            );
        }
        for s in ["300", "999", "260"] {
            assert!(
                matches!(
                    s.parse::<ReplicaPlacement>(),
                    Err(PlacementParseError::TooLarge(_))
                ),
                "{s}"
            );
        }
        assert!("255".parse::<ReplicaPlacement>().is_ok());
    }
}
