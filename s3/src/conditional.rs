//! Conditional requests (RFC 9110 order, as S3 applies it: If-Match, else
//! If-Unmodified-Since → 412; If-None-Match, else If-Modified-Since → 304, or 412 for
//! writes) and byte ranges (`Range` → the `[start, end)` to stream).

use s3s::dto::{ETagCondition, Range, Timestamp};

use crate::error::{GatewayError, GatewayResult};
use crate::meta::unix_secs;

/// The conditional headers of one request.
#[derive(Debug, Default, Clone)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

fn matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(t) => t.value() == etag,
    }
}

impl Conditions<'_> {
    /// Evaluates the conditions against an existing object with `etag` last modified at
    /// `mtime` (unix seconds). `read` is true for GET/HEAD (a failed If-None-Match or
    /// If-Modified-Since is then 304 Not Modified) and false for copy sources and
    /// conditional writes (412).
    pub fn check(&self, etag: &str, mtime: i64, read: bool) -> GatewayResult<()> {
        match (self.if_match, self.if_unmodified_since) {
            (Some(m), _) => {
                if !matches(m, etag) {
                    return Err(GatewayError::PreconditionFailed);
                }
            }
            (None, Some(t)) => {
                if mtime > unix_secs(t) {
                    return Err(GatewayError::PreconditionFailed);
                }
            }
            (None, None) => {}
        }
        let not_modified = match (self.if_none_match, self.if_modified_since) {
            (Some(m), _) => matches(m, etag),
            (None, Some(t)) => mtime <= unix_secs(t),
            (None, None) => false,
        };
        if not_modified {
            return Err(if read {
                GatewayError::NotModified
            } else {
                GatewayError::PreconditionFailed
            });
        }
        Ok(())
    }
}

/// The byte range `[start, end)` of an object of `size` bytes a `Range` asks for.
pub fn byte_range(range: Option<&Range>, size: u64) -> GatewayResult<Option<(u64, u64)>> {
    match range {
        None => Ok(None),
        Some(r) => {
            let rg = r.check(size).map_err(|_| GatewayError::InvalidRange)?;
            Ok(Some((rg.start, rg.end)))
        }
    }
}

/// Parses an `x-amz-copy-source-range` (`bytes=first-last`, both required) for an
/// object of `size` bytes into `[start, end)`.
pub fn copy_source_range(s: &str, size: u64) -> GatewayResult<(u64, u64)> {
    let bad = || {
        GatewayError::InvalidArgument(format!(
            "x-amz-copy-source-range {s:?} must be bytes=first-last within the source object"
        ))
    };
    let spec = s.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if first > last || last >= size {
        return Err(GatewayError::InvalidRange);
    }
    Ok((first, last + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;
    use std::time::{Duration, SystemTime};

    fn ts(secs: u64) -> Timestamp {
        Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn tag(v: &str) -> ETagCondition {
        ETagCondition::ETag(ETag::Strong(v.into()))
    }

    #[test]
    fn rfc_order() {
        let (m, other, any) = (tag("abc"), tag("zzz"), ETagCondition::Any);
        let (old, new, same) = (ts(50), ts(200), ts(100));
        let c = |im, inm, ims, ius| Conditions {
            if_match: im,
            if_none_match: inm,
            if_modified_since: ims,
            if_unmodified_since: ius,
        };
        // mtime 100, etag abc
        let run = |c: Conditions<'_>| c.check("abc", 100, true);
        assert!(run(c(None, None, None, None)).is_ok());
        assert!(run(c(Some(&m), None, None, None)).is_ok());
        assert!(run(c(Some(&any), None, None, None)).is_ok());
        assert!(matches!(
            run(c(Some(&other), None, None, None)),
            Err(GatewayError::PreconditionFailed)
        ));
        // If-Match true wins over a failing If-Unmodified-Since.
        assert!(run(c(Some(&m), None, None, Some(&old))).is_ok());
        assert!(matches!(
            run(c(None, None, None, Some(&old))),
            Err(GatewayError::PreconditionFailed)
        ));
        assert!(run(c(None, None, None, Some(&new))).is_ok());
        assert!(matches!(
            run(c(None, Some(&m), None, None)),
            Err(GatewayError::NotModified)
        ));
        assert!(run(c(None, Some(&other), None, None)).is_ok());
        // If-None-Match false (matches) with If-Modified-Since true: 304.
        assert!(matches!(
            run(c(None, Some(&m), Some(&old), None)),
            Err(GatewayError::NotModified)
        ));
        // If-None-Match true (differs) makes If-Modified-Since irrelevant.
        assert!(run(c(None, Some(&other), Some(&new), None)).is_ok());
        assert!(matches!(
            run(c(None, None, Some(&new), None)),
            Err(GatewayError::NotModified)
        ));
        assert!(matches!(
            run(c(None, None, Some(&same), None)),
            Err(GatewayError::NotModified)
        ));
        assert!(run(c(None, None, Some(&old), None)).is_ok());
        // For writes a matching If-None-Match is 412.
        assert!(matches!(
            c(None, Some(&any), None, None).check("abc", 1, false),
            Err(GatewayError::PreconditionFailed)
        ));
    }

    #[test]
    fn ranges() {
        let r = Range::parse("bytes=0-9").unwrap();
        assert_eq!(byte_range(Some(&r), 100).unwrap(), Some((0, 10)));
        let r = Range::parse("bytes=90-").unwrap();
        assert_eq!(byte_range(Some(&r), 100).unwrap(), Some((90, 100)));
        let r = Range::parse("bytes=-5").unwrap();
        assert_eq!(byte_range(Some(&r), 100).unwrap(), Some((95, 100)));
        let r = Range::parse("bytes=50-500").unwrap();
        assert_eq!(byte_range(Some(&r), 100).unwrap(), Some((50, 100)));
        let r = Range::parse("bytes=100-").unwrap();
        assert!(matches!(
            byte_range(Some(&r), 100),
            Err(GatewayError::InvalidRange)
        ));
        assert_eq!(byte_range(None, 100).unwrap(), None);
        assert_eq!(copy_source_range("bytes=0-4", 10).unwrap(), (0, 5));
        assert!(copy_source_range("bytes=5-10", 10).is_err());
        assert!(copy_source_range("0-4", 10).is_err());
    }
}
