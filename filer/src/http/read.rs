//! `GET`/`HEAD`: files (ranges, conditionals, streamed from volume servers), directory
//! listings (JSON or an HTML page) and `?metadata=true`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Target, json};
use crate::entry::Entry;
use crate::error::FilerError;
use crate::filer::Filer;
use crate::path;
use crate::store::ListOptions;

pub(crate) async fn get(
    filer: &Arc<Filer>,
    t: Target,
    req: Request,
) -> Result<Response, FilerError> {
    let p = path::normalize(&t.path)?;
    let entry = filer
        .find(&p)
        .await?
        .ok_or_else(|| FilerError::NotFound(p.clone()))?;
    if t.flag("metadata") {
        return Ok(axum::Json(json::EntryJson(&entry)).into_response());
    }
    if entry.is_directory {
        let wants_json = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
        return list(filer, &t, &entry, wants_json).await;
    }
    file(filer, &entry, req.headers(), req.method() == Method::HEAD)
}

fn put(h: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

fn http_date_secs(v: &str) -> Option<i64> {
    httpdate::parse_http_date(v)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == "*" || t == etag)
}

/// Serves a file: conditionals first, then one `Range`, then the streamed body.
fn file(
    filer: &Arc<Filer>,
    e: &Entry,
    req: &HeaderMap,
    head_only: bool,
) -> Result<Response, FilerError> {
    crate::entry::check_unsealed(e)?;
    let etag = json::etag(e);
    let mut h = HeaderMap::new();
    put(&mut h, header::ETAG, &format!("\"{etag}\""));
    put(&mut h, header::ACCEPT_RANGES, "bytes");
    let mtime = e.attr.mtime;
    put(
        &mut h,
        header::LAST_MODIFIED,
        &httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64)),
    );
    let hv = |n: HeaderName| req.get(n).and_then(|v| v.to_str().ok());
    if let Some(im) = hv(header::IF_MATCH)
        && !etag_matches(im, &etag)
    {
        return Ok((StatusCode::PRECONDITION_FAILED, h).into_response());
    }
    if let Some(ius) = hv(header::IF_UNMODIFIED_SINCE).and_then(http_date_secs)
        && hv(header::IF_MATCH).is_none()
        && mtime > ius
    {
        return Ok((StatusCode::PRECONDITION_FAILED, h).into_response());
    }
    if let Some(inm) = hv(header::IF_NONE_MATCH) {
        if etag_matches(inm, &etag) {
            return Ok((StatusCode::NOT_MODIFIED, h).into_response());
        }
    } else if let Some(ims) = hv(header::IF_MODIFIED_SINCE).and_then(http_date_secs)
        && mtime <= ims
    {
        return Ok((StatusCode::NOT_MODIFIED, h).into_response());
    }
    let mime = if e.attr.mime.is_empty() {
        kelp_proto::mime::from_name(path::name(&e.path)).to_string()
    } else {
        e.attr.mime.clone()
    };
    put(&mut h, header::CONTENT_TYPE, &mime);
    for (k, v) in &e.extended {
        let lower = k.to_ascii_lowercase();
        let served = lower.starts_with("seaweed-")
            || [
                "cache-control",
                "content-disposition",
                "content-encoding",
                "expires",
            ]
            .contains(&lower.as_str());
        if served
            && let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_bytes(v),
            )
        {
            h.insert(n, v);
        }
    }
    let size = e.attr.file_size;
    let (status, start, end) = match parse_range(hv(header::RANGE), size) {
        RangeAsk::All => (StatusCode::OK, 0, size),
        RangeAsk::Part(a, b) => {
            put(
                &mut h,
                header::CONTENT_RANGE,
                &format!("bytes {a}-{}/{size}", b - 1),
            );
            (StatusCode::PARTIAL_CONTENT, a, b)
        }
        RangeAsk::Unsatisfiable => {
            put(&mut h, header::CONTENT_RANGE, &format!("bytes */{size}"));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, h).into_response());
        }
    };
    put(&mut h, header::CONTENT_LENGTH, &(end - start).to_string());
    if head_only {
        return Ok((status, h).into_response());
    }
    Ok((status, h, body(filer.clone(), e.clone(), start, end)).into_response())
}

enum RangeAsk {
    All,
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(h: Option<&str>, len: u64) -> RangeAsk {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::All;
    };
    if spec.contains(',') {
        return RangeAsk::All;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeAsk::All;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<u64>() {
            Ok(0) => RangeAsk::Unsatisfiable,
            Ok(_) if len == 0 => RangeAsk::Unsatisfiable,
            Ok(n) => RangeAsk::Part(len.saturating_sub(n), len),
            Err(_) => RangeAsk::All,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeAsk::All;
    };
    let end = match b {
        "" => len,
        b => match b.parse::<u64>() {
            Ok(e) if e >= start => e.saturating_add(1).min(len),
            _ => return RangeAsk::All,
        },
    };
    if start >= len {
        RangeAsk::Unsatisfiable
    } else {
        RangeAsk::Part(start, end)
    }
}

/// The response body for bytes `start..end` of a file.
fn body(filer: Arc<Filer>, e: Entry, start: u64, end: u64) -> Body {
    Body::from_stream(filer.read_stream(e, start, end))
}

/// `*` and `?` glob matching of a name.
pub(crate) fn glob(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

async fn list(
    filer: &Arc<Filer>,
    t: &Target,
    dir: &Entry,
    wants_json: bool,
) -> Result<Response, FilerError> {
    let limit = match t.query.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l.parse::<usize>().ok().filter(|l| *l > 0).ok_or_else(|| {
            FilerError::BadRequest(format!("limit {l:?} must be a positive number"))
        })?,
        None => filer.cfg.dir_list_limit,
    }
    .min(100_000);
    let pattern = t
        .query
        .get("namePattern")
        .filter(|p| !p.is_empty())
        .cloned();
    let exclude = t
        .query
        .get("namePatternExclude")
        .filter(|p| !p.is_empty())
        .cloned();
    let prefix = pattern
        .as_deref()
        .map(|p| p.split(['*', '?']).next().unwrap_or("").to_string())
        .filter(|p| !p.is_empty());
    let mut cursor = t
        .query
        .get("lastFileName")
        .filter(|l| !l.is_empty())
        .cloned();
    let mut out: Vec<Entry> = Vec::new();
    let mut more = false;
    loop {
        let page = filer
            .list(
                &dir.path,
                &ListOptions {
                    start_after: cursor.clone(),
                    inclusive: false,
                    limit: limit + 1,
                    prefix: prefix.clone(),
                },
            )
            .await?;
        let exhausted = page.len() <= limit;
        for e in page {
            let name = e.name();
            cursor = Some(name.to_string());
            if pattern.as_deref().is_some_and(|p| !glob(p, name))
                || exclude.as_deref().is_some_and(|p| glob(p, name))
            {
                continue;
            }
            if out.len() == limit {
                more = true;
                break;
            }
            out.push(e);
        }
        if more || exhausted {
            break;
        }
    }
    let last = out.last().map(|e| e.name().to_string()).unwrap_or_default();
    if wants_json {
        let empty_folder =
            out.is_empty() && t.query.get("lastFileName").is_none_or(|l| l.is_empty());
        // Sized once for the usual entry (about 600 bytes), not grown by copying.
        let mut body = Vec::with_capacity(256 + out.len() * 640);
        let rendered = (|| -> serde_json::Result<()> {
            body.extend_from_slice(br#"{"Version":"#);
            serde_json::to_writer(&mut body, kelp_proto::VERSION)?;
            body.extend_from_slice(br#","Path":"#);
            serde_json::to_writer(&mut body, &dir.path)?;
            body.extend_from_slice(br#","Entries":"#);
            json::write_entries(&mut body, &out)?;
            body.extend_from_slice(format!(r#","Limit":{limit},"LastFileName":"#).as_bytes());
            serde_json::to_writer(&mut body, &last)?;
            body.extend_from_slice(
                format!(r#","ShouldDisplayLoadMore":{more},"EmptyFolder":{empty_folder}}}"#)
                    .as_bytes(),
            );
            Ok(())
        })();
        rendered.map_err(|e| FilerError::Internal(format!("rendering the listing: {e}")))?;
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response());
    }
    Ok(axum::response::Html(super::ui::listing(
        &dir.path,
        &out,
        more.then_some(last.as_str()),
        limit,
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "a.txt.gz"));
        assert!(glob("a?c*", "abcdef"));
        assert!(glob("*", ""));
        assert!(!glob("a", "b"));
    }
}
