//! Time-to-live strings (`3m 4h 5d 6w 7M 8y`) and their 2-byte stored form `[count, unit]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The unit byte of a stored TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TtlUnit {
    Empty = 0,
    Minute = 1,
    Hour = 2,
    Day = 3,
    Week = 4,
    Month = 5,
    Year = 6,
}

impl TtlUnit {
    fn seconds(self) -> u64 {
        match self {
            TtlUnit::Empty => 0,
            TtlUnit::Minute => 60,
            TtlUnit::Hour => 3600,
            TtlUnit::Day => 86_400,
            TtlUnit::Week => 7 * 86_400,
            TtlUnit::Month => 30 * 86_400,
            TtlUnit::Year => 365 * 86_400,
        }
    }

    fn letter(self) -> &'static str {
        match self {
            TtlUnit::Empty => "",
            TtlUnit::Minute => "m",
            TtlUnit::Hour => "h",
            TtlUnit::Day => "d",
            TtlUnit::Week => "w",
            TtlUnit::Month => "M",
            TtlUnit::Year => "y",
        }
    }

    fn from_letter(c: char) -> Option<TtlUnit> {
        Some(match c {
            'm' => TtlUnit::Minute,
            'h' => TtlUnit::Hour,
            'd' => TtlUnit::Day,
            'w' => TtlUnit::Week,
            'M' => TtlUnit::Month,
            'y' => TtlUnit::Year,
            _ => return None,
        })
    }

    fn from_code(b: u8) -> Option<TtlUnit> {
        Some(match b {
            0 => TtlUnit::Empty,
            1 => TtlUnit::Minute,
            2 => TtlUnit::Hour,
            3 => TtlUnit::Day,
            4 => TtlUnit::Week,
            5 => TtlUnit::Month,
            6 => TtlUnit::Year,
            _ => return None,
        })
    }
}

/// A needle's or volume's time to live. The empty TTL means "forever".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ttl {
    pub count: u8,
    pub unit: TtlUnit,
}

/// Why a TTL string or stored pair was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    #[error("ttl {0:?} must be a number followed by one of m, h, d, w, M, y (like \"3d\")")]
    Malformed(String),
    #[error("ttl {0:?} is longer than 255 years")]
    TooLong(String),
    #[error("stored ttl bytes {0:02x} {1:02x} have an unknown unit")]
    BadBytes(u8, u8),
}

impl Default for Ttl {
    fn default() -> Self {
        Ttl::EMPTY
    }
}

impl Ttl {
    pub const EMPTY: Ttl = Ttl {
        count: 0,
        unit: TtlUnit::Empty,
    };

    pub fn is_empty(&self) -> bool {
        self.count == 0 || self.unit == TtlUnit::Empty
    }

    /// Length in seconds (0 for the empty TTL).
    pub fn seconds(&self) -> u64 {
        self.count as u64 * self.unit.seconds()
    }

    pub fn to_bytes(&self) -> [u8; 2] {
        if self.is_empty() {
            return [0, 0];
        }
        [self.count, self.unit as u8]
    }

    pub fn from_bytes(b: [u8; 2]) -> Result<Ttl, TtlError> {
        let unit = TtlUnit::from_code(b[1]).ok_or(TtlError::BadBytes(b[0], b[1]))?;
        if b[0] == 0 || unit == TtlUnit::Empty {
            return Ok(Ttl::EMPTY);
        }
        Ok(Ttl { count: b[0], unit })
    }

    /// The 32-bit form heartbeats carry (`count << 8 | unit`, as SeaweedFS's `ToUint32`).
    pub fn to_u32(&self) -> u32 {
        let [c, u] = self.to_bytes();
        (c as u32) << 8 | u as u32
    }

    pub fn from_u32(v: u32) -> Result<Ttl, TtlError> {
        Ttl::from_bytes([(v >> 8) as u8, v as u8])
    }

    /// Picks the largest unit that divides `seconds` exactly with a count below 256;
    /// failing that, the smallest unit whose (rounded-down) count fits.
    fn fit(seconds: u64, original: &str) -> Result<Ttl, TtlError> {
        if seconds == 0 {
            return Ok(Ttl::EMPTY);
        }
        use TtlUnit::*;
        const LARGEST_FIRST: [TtlUnit; 6] = [Year, Month, Week, Day, Hour, Minute];
        for unit in LARGEST_FIRST {
            let s = unit.seconds();
            if seconds.is_multiple_of(s) && seconds / s < 256 {
                return Ok(Ttl {
                    count: (seconds / s) as u8,
                    unit,
                });
            }
        }
        for unit in LARGEST_FIRST.iter().rev() {
            let count = seconds / unit.seconds();
            if count < 256 && count > 0 {
                return Ok(Ttl {
                    count: count as u8,
                    unit: *unit,
                });
            }
        }
        Err(TtlError::TooLong(original.to_string()))
    }
}

impl FromStr for Ttl {
    type Err = TtlError;

    /// Parses `3m`, `4h`, `5d`, `6w`, `7M`, `8y`; a bare number means minutes;
    /// `""` is the empty TTL. The result is normalised (`60m` is `1h`, `7d` is `1w`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(Ttl::EMPTY);
        }
        let last = s.chars().last().unwrap_or('0');
        let (digits, unit) = if last.is_ascii_digit() {
            (s, TtlUnit::Minute)
        } else {
            let unit =
                TtlUnit::from_letter(last).ok_or_else(|| TtlError::Malformed(s.to_string()))?;
            (&s[..s.len() - last.len_utf8()], unit)
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TtlError::Malformed(s.to_string()));
        }
        let count: u64 = digits
            .parse()
            .map_err(|_| TtlError::TooLong(s.to_string()))?;
        let seconds = count
            .checked_mul(unit.seconds())
            .ok_or_else(|| TtlError::TooLong(s.to_string()))?;
        Ttl::fit(seconds, s)
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return Ok(());
        }
        write!(f, "{}{}", self.count, self.unit.letter())
    }
}

impl Serialize for Ttl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttl(s: &str) -> Ttl {
        s.parse().unwrap()
    }

    #[test]
    fn every_unit_of_the_facts_sheet() {
        for (s, bytes) in [
            ("3m", [3, 1]),
            ("4h", [4, 2]),
            ("5d", [5, 3]),
            ("6w", [6, 4]),
            ("7M", [7, 5]),
            ("8y", [8, 6]),
        ] {
            let t = ttl(s);
            assert_eq!(t.to_bytes(), bytes, "{s}");
            assert_eq!(t.to_string(), s);
            assert_eq!(Ttl::from_bytes(bytes).unwrap(), t);
        }
    }

    #[test]
    fn normalisation() {
        assert_eq!(ttl("60m").to_string(), "1h");
        assert_eq!(ttl("7d").to_string(), "1w");
        assert_eq!(ttl("24h").to_string(), "1d");
        assert_eq!(ttl("30d").to_string(), "1M");
        assert_eq!(ttl("365d").to_string(), "1y");
        assert_eq!(ttl("90").to_string(), "90m");
        assert_eq!(ttl("120").to_string(), "2h");
        assert_eq!(ttl("300m").to_string(), "5h");
        // 1000 minutes divides no larger unit and is too many minutes: 16h.
        assert_eq!(ttl("1000m").to_string(), "16h");
        assert_eq!(ttl("0m"), Ttl::EMPTY);
        assert_eq!(ttl(""), Ttl::EMPTY);
        assert_eq!(Ttl::EMPTY.to_bytes(), [0, 0]);
        assert_eq!(ttl("3d").seconds(), 3 * 86_400);
    }

    #[test]
    fn u32_form() {
        let t = ttl("5d");
        assert_eq!(t.to_u32(), 5 << 8 | 3);
        assert_eq!(Ttl::from_u32(t.to_u32()).unwrap(), t);
        assert_eq!(Ttl::from_u32(0).unwrap(), Ttl::EMPTY);
    }

    #[test]
    fn malformed() {
        for s in ["x", "3x", "m", "-3m", "3.5h", " 3m", "3 m", "3é"] {
            assert!(
                matches!(s.parse::<Ttl>(), Err(TtlError::Malformed(_))),
                "{s}"
            );
        }
        for s in ["256y", "99999999999999999999999m", "18446744073709551615y"] {
            assert!(matches!(s.parse::<Ttl>(), Err(TtlError::TooLong(_))), "{s}");
        }
        assert!(Ttl::from_bytes([1, 7]).is_err());
        assert!(ttl("255y").seconds() > 0);
    }
}
