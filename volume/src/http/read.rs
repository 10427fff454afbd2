//! `GET`/`HEAD` of a needle: conditionals, ranges, gzip, streaming from disk.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::path::{self, ByteRange, RangeRequest};
use crate::handle::NeedleHandle;
use crate::needle::NeedleMeta;
use crate::volume::ReadOptions;

/// Large needles are streamed in pieces of this size.
const STREAM_CHUNK: usize = 256 * 1024;
/// Needles up to this size (the filer's default chunk size) are read whole, in one
/// read, and CRC-checked in memory before the answer starts; larger ones are checked in
/// a first pass and then streamed, so memory stays bounded.
const READ_WHOLE_MAX: u64 = 8 << 20;

pub(crate) fn query_map(req: &Request) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| url_pairs(q).collect())
        .unwrap_or_default()
}

fn url_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter(|s| !s.is_empty()).map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Decodes `%xx` and `+` in a query component; invalid escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match hex_val(b[i + 1]).zip(hex_val(b[i + 2])) {
                Some((h, l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

pub(crate) fn is_true(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k)
        .is_some_and(|v| v == "true" || v == "1" || v == "yes")
}

pub(crate) async fn get(state: Arc<AppState>, req: Request) -> Response {
    match get_inner(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn get_inner(state: Arc<AppState>, req: Request) -> ApiResult<Response> {
    let head_only = req.method() == Method::HEAD;
    let p = path::parse(req.uri().path())?;
    let q = query_map(&req);
    let Some(vol) = state.store.volume(p.fid.volume) else {
        if let Some(ev) = state.ec.get(p.fid.volume.0) {
            return super::ec::read::get(&state, ev, &p, &q, req.headers(), head_only).await;
        }
        return not_local(&state, &p, &q).await;
    };
    let opts = ReadOptions {
        allow_deleted: is_true(&q, "readDeleted"),
        ..Default::default()
    };
    // Opening is one positioned read of the record (the whole record when it is small):
    // cheaper here than a round trip through the blocking pool.
    let handle = vol.open_needle_with(p.fid.key, p.fid.cookie, opts)?;
    respond_handle(handle, &p, &q, req.headers(), head_only).await
}

/// Answers a `GET`/`HEAD` of an opened needle (from a `.dat` or an EC volume):
/// conditionals, gzip, ranges; small needles are sent whole, large ones CRC-checked
/// first and then streamed range by range.
pub(crate) async fn respond_handle(
    mut handle: NeedleHandle,
    p: &path::NeedlePath,
    q: &HashMap<String, String>,
    req_headers: &HeaderMap,
    head_only: bool,
) -> ApiResult<Response> {
    let meta = handle.meta().clone();
    let mut headers = match needle_headers(&meta, p, q, req_headers) {
        Ok(h) => h,
        Err(h) => return Ok((StatusCode::NOT_MODIFIED, h).into_response()),
    };

    // Gzip-stored data: sent as is to clients that accept gzip, else inflated.
    if handle.is_gzip() {
        let accepts_gzip = req_headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("gzip"));
        let raw = tokio::task::spawn_blocking(move || handle.read_all()).await??;
        if accepts_gzip {
            insert(&mut headers, header::CONTENT_ENCODING, "gzip");
            return Ok(respond_bytes(headers, raw, req_headers, head_only));
        }
        // Inflated as a stream: memory stays bounded whatever the data inflates to.
        headers.remove(header::CONTENT_LENGTH);
        if head_only {
            return Ok((StatusCode::OK, headers).into_response());
        }
        return Ok((StatusCode::OK, headers, gunzip_stream(raw)).into_response());
    }

    let len = handle.data_len();
    let range = path::parse_range(
        req_headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    );
    let (status, span) = match range {
        RangeRequest::Full => (StatusCode::OK, ByteRange { start: 0, end: len }),
        RangeRequest::Partial(r) => {
            insert(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{len}", r.start, r.end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, r)
        }
        RangeRequest::Unsatisfiable => {
            insert(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes */{len}"),
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response());
        }
    };
    insert(
        &mut headers,
        header::CONTENT_LENGTH,
        &(span.end - span.start).to_string(),
    );
    if head_only {
        return Ok((status, headers).into_response());
    }
    if len <= READ_WHOLE_MAX {
        let all = if handle.is_loaded() {
            handle.read_all()?
        } else {
            tokio::task::spawn_blocking(move || handle.read_all()).await??
        };
        let slice = all.slice(span.start as usize..span.end as usize);
        return Ok((status, headers, slice).into_response());
    }
    // Large needle: check the CRC over the whole data first (bounded memory), so no
    // corrupt byte is ever sent, then stream the asked span from disk.
    let handle =
        tokio::task::spawn_blocking(move || handle.verify_crc().map(|()| handle)).await??;
    Ok((status, headers, stream_body(handle, span)).into_response())
}

/// The headers of a needle answer (ETag, Last-Modified, type, disposition, pairs), or
/// `Err` with the headers of a 304 answer when the client's copy is current.
fn needle_headers(
    meta: &NeedleMeta,
    p: &path::NeedlePath,
    q: &HashMap<String, String>,
    req_headers: &HeaderMap,
) -> Result<HeaderMap, HeaderMap> {
    let etag = format!("\"{}\"", meta.etag());
    let last_modified = meta
        .last_modified
        .map(|s| UNIX_EPOCH + Duration::from_secs(s));

    let mut headers = HeaderMap::new();
    insert(&mut headers, header::ETAG, &etag);
    insert(&mut headers, header::ACCEPT_RANGES, "bytes");
    if let Some(lm) = last_modified {
        insert(
            &mut headers,
            header::LAST_MODIFIED,
            &httpdate::fmt_http_date(lm),
        );
    }
    if not_modified(req_headers, &etag, meta.last_modified) {
        return Err(headers);
    }

    let stored_name = meta
        .name
        .as_ref()
        .map(|n| String::from_utf8_lossy(n).into_owned());
    let name = p.filename.clone().or(stored_name);
    let mime = meta
        .mime
        .as_ref()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| {
            let ext = name
                .as_deref()
                .and_then(|n| n.rsplit_once('.').map(|(_, e)| e.to_string()))
                .or(p.ext.clone());
            kelp_proto::mime::from_ext(ext.as_deref().unwrap_or("")).to_string()
        });
    insert(&mut headers, header::CONTENT_TYPE, &mime);
    if let Some(n) = name.as_deref().filter(|n| !n.is_empty()) {
        let kind = if is_true(q, "dl") {
            "attachment"
        } else {
            "inline"
        };
        let n = n.replace(['"', '\\', '\r', '\n'], "_");
        insert(
            &mut headers,
            header::CONTENT_DISPOSITION,
            &format!("{kind}; filename=\"{n}\""),
        );
    }
    if let Some(pairs) = &meta.pairs {
        add_pair_headers(&mut headers, pairs);
    }

    Ok(headers)
}

fn stream_body(handle: NeedleHandle, span: ByteRange) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut pos = span.start;
        while pos < span.end {
            let n = ((span.end - pos) as usize).min(STREAM_CHUNK);
            let mut buf = vec![0u8; n];
            let item = match handle.read_data_at(pos, &mut buf) {
                Ok(got) if got == n => Ok(Bytes::from(buf)),
                Ok(got) => Err(std::io::Error::other(format!(
                    "short read: {got} of {n} bytes"
                ))),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
            pos += n as u64;
        }
    });
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

fn respond_bytes(
    mut headers: HeaderMap,
    body: Bytes,
    req_headers: &HeaderMap,
    head_only: bool,
) -> Response {
    let len = body.len() as u64;
    let range = path::parse_range(
        req_headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    );
    let (status, body) = match range {
        RangeRequest::Partial(r) if !headers.contains_key(header::CONTENT_ENCODING) => {
            insert(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{len}", r.start, r.end - 1),
            );
            (
                StatusCode::PARTIAL_CONTENT,
                body.slice(r.start as usize..r.end as usize),
            )
        }
        RangeRequest::Unsatisfiable if !headers.contains_key(header::CONTENT_ENCODING) => {
            insert(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes */{len}"),
            );
            return (StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response();
        }
        _ => (StatusCode::OK, body),
    };
    insert(
        &mut headers,
        header::CONTENT_LENGTH,
        &body.len().to_string(),
    );
    if head_only {
        return (status, headers).into_response();
    }
    (status, headers, body).into_response()
}

/// The inflated bytes of stored gzip data, produced 64 KiB at a time on a blocking
/// thread as the client reads them.
fn gunzip_stream(raw: Bytes) -> axum::body::Body {
    use std::io::Read;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut d = flate2::read::GzDecoder::new(&raw[..]);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let next = match d.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
                Err(e) => Err(e),
            };
            let failed = next.is_err();
            // The client went away, or the data is damaged: stop inflating.
            if tx.blocking_send(next).is_err() || failed {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    axum::body::Body::from_stream(stream)
}

/// True when `If-None-Match` or `If-Modified-Since` says the client's copy is current.
fn not_modified(h: &HeaderMap, etag: &str, last_modified: Option<u64>) -> bool {
    if let Some(inm) = h.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag || t.trim_matches('"') == etag.trim_matches('"'));
    }
    if let (Some(ims), Some(lm)) = (
        h.get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok()),
        last_modified,
    ) {
        let ims = ims
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return lm <= ims;
    }
    false
}

fn insert(h: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// Serves the stored `Seaweed-*` pairs back as headers (prefix stripped, as SeaweedFS does).
fn add_pair_headers(h: &mut HeaderMap, pairs: &[u8]) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(pairs)
    else {
        return;
    };
    for (k, v) in map {
        let v = match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.insert(name, value);
        }
    }
}

/// The volume is not here: send the client to a server that has it (once).
async fn not_local(
    state: &AppState,
    p: &path::NeedlePath,
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let missing = || ApiError::NotFound(format!("volume {} is not on this server", p.fid.volume));
    if is_true(q, "proxied") || state.cfg.masters.is_empty() {
        return Err(missing());
    }
    let locations = state
        .master
        .lookup(p.fid.volume)
        .await
        .map_err(|_| missing())?;
    let me = state.cfg.url();
    let Some(loc) = locations.iter().find(|l| l.url != me) else {
        return Err(missing());
    };
    let target = format!(
        "{}/{}?proxied=true",
        kelp_proto::client::base_url(&loc.public_url),
        p.fid
    );
    Ok((StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, target)]).into_response())
}
