//! Calendar dates from unix time, for the few places that print UTC timestamps
//! (listings, logs, SigV4 dates) without a date library.

/// The UTC date and time of `secs` after the unix epoch: (year, month, day, hour,
/// minute, second). Howard Hinnant's `civil_from_days`, valid for any `i64` day count.
pub fn utc(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, (rem / 60) % 60, rem % 60)
}

/// `secs` as RFC 3339 in UTC (`2026-11-21T16:53:10Z`), as Go's `time.Time` marshals.
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = utc(secs);
    if !(0..=9999).contains(&y) {
        return format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
    }
    // Digit by digit: listings print two of these per entry, and the formatting
    // machinery was a tenth of a listing's CPU.
    let mut out = String::with_capacity(20);
    let mut digits = |v: i64, n: u32, sep: char| {
        for i in (0..n).rev() {
            let d = (v / 10i64.pow(i)) % 10;
            out.push(char::from(b'0' + d as u8));
        }
        out.push(sep);
    };
    digits(y, 4, '-');
    digits(mo, 2, '-');
    digits(d, 2, 'T');
    digits(h, 2, ':');
    digits(mi, 2, ':');
    digits(s, 2, 'Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_279_990), "2026-11-21T16:53:10Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_800), "10000-01-01T00:00:00Z");
        assert_eq!(rfc3339(-62_167_219_200), "0000-01-01T00:00:00Z");
        assert_eq!(rfc3339(-62_167_219_201), "-001-12-31T23:59:59Z");
    }
}
