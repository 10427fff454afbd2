//! Parsing the needle URL forms: `/<vid>,<fid>[.ext]`, `/<vid>/<fid>[.ext]`, `/<vid>/<fid>/<filename>`.

use kelp_proto::id::parse_key_cookie;
use kelp_proto::{Cookie, FileId, NeedleKey, VolumeId};

use super::error::ApiError;

/// A parsed needle URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedlePath {
    pub fid: FileId,
    /// The file name given in the URL (`/<vid>/<fid>/<filename>`), if any.
    pub filename: Option<String>,
    /// The extension after the fid (`/3,01637037d6.jpg` gives `jpg`).
    pub ext: Option<String>,
    /// The last path segment, which SeaweedFS reports as the name of a nameless upload.
    pub last_segment: String,
}

fn split_ext(s: &str) -> (&str, Option<String>) {
    match s.rfind('.') {
        Some(i) => (&s[..i], Some(s[i + 1..].to_string())),
        None => (s, None),
    }
}

/// Parses a request path (already percent-decoded by the caller or not: fids are ASCII).
pub fn parse(path: &str) -> Result<NeedlePath, ApiError> {
    let trimmed = path.trim_start_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    let bad = |why: String| ApiError::BadRequest(format!("bad file id in path {path:?}: {why}"));
    let (vid_str, keycookie_ext, filename): (&str, &str, Option<String>) = match parts.as_slice() {
        [one] => match one.split_once(',') {
            Some((v, k)) => (v, k, None),
            None => return Err(bad("expected /<volume>,<key><cookie>".into())),
        },
        [v, k] => (v, k, None),
        [v, k, name] if !name.is_empty() => (v, k, Some(name.to_string())),
        _ => return Err(bad("expected /<volume>,<key><cookie>[/<filename>]".into())),
    };
    let volume: VolumeId = vid_str.parse().map_err(|e| bad(format!("{e}")))?;
    let (keycookie, ext) = split_ext(keycookie_ext);
    let (key, cookie): (NeedleKey, Cookie) =
        parse_key_cookie(keycookie).map_err(|e| bad(e.to_string()))?;
    Ok(NeedlePath {
        fid: FileId::new(volume, key, cookie),
        filename,
        ext,
        last_segment: parts.last().map(|s| s.to_string()).unwrap_or_default(),
    })
}

/// A byte range resolved against a length: `start..end` (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// What a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: serve the whole body (also for several ranges, which we may ignore).
    Full,
    Partial(ByteRange),
    Unsatisfiable,
}

/// Resolves a `Range: bytes=...` header against a body of `len` bytes.
pub fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(h) = header else {
        return RangeRequest::Full;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix: the last b bytes.
        let Ok(n) = b.parse::<u64>() else {
            return RangeRequest::Full;
        };
        if n == 0 || len == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Partial(ByteRange {
            start: len.saturating_sub(n),
            end: len,
        });
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeRequest::Full;
    };
    let end = if b.is_empty() {
        len
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.saturating_add(1).min(len),
            _ => return RangeRequest::Full,
        }
    };
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(ByteRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let p = parse("/3,01637037d6").unwrap();
        assert_eq!(p.fid.to_string(), "3,01637037d6");
        assert_eq!(p.last_segment, "3,01637037d6");
        let p = parse("/3/01637037d6.jpg").unwrap();
        assert_eq!(p.fid.to_string(), "3,01637037d6");
        assert_eq!(p.ext.as_deref(), Some("jpg"));
        let p = parse("/3/01637037d6/cat.png").unwrap();
        assert_eq!(p.filename.as_deref(), Some("cat.png"));
        let p = parse("/4,02a105935c_1").unwrap();
        assert_eq!(p.fid.to_string(), "4,03a105935c");
        for bad in [
            "/",
            "/3",
            "/3,",
            "/x,01637037d6",
            "/3,zz",
            "/3/01637037d6/a/b",
            "/3,1",
        ] {
            assert_eq!(parse(bad).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        let r = |h: &str| parse_range(Some(h), 100);
        assert_eq!(r("bytes=0-9"), Partial(ByteRange { start: 0, end: 10 }));
        assert_eq!(
            r("bytes=90-"),
            Partial(ByteRange {
                start: 90,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=-10"),
            Partial(ByteRange {
                start: 90,
                end: 100
            })
        );
        assert_eq!(r("bytes=-1000"), Partial(ByteRange { start: 0, end: 100 }));
        assert_eq!(
            r("bytes=50-1000"),
            Partial(ByteRange {
                start: 50,
                end: 100
            })
        );
        assert_eq!(r("bytes=100-"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=5-1"), Full);
        assert_eq!(r("bytes=0-1,5-6"), Full);
        assert_eq!(r("items=0-1"), Full);
        assert_eq!(parse_range(None, 100), Full);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
    }
}
