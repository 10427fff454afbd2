//! `POST`/`PUT` (upload) and `DELETE` of a needle, with synchronous fan-out to replicas.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use kelp_proto::client::UploadOptions;
use kelp_proto::volume_api::{DeleteResult, UploadResult};
use kelp_proto::{FileId, Ttl};
use md5::{Digest, Md5};

/// Appends of needles up to this size run on the request's own task (see `upload_inner`).
pub(crate) const INLINE_WRITE_MAX: usize = 128 * 1024;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::path;
use super::read::{is_true, query_map};
use crate::needle::{FLAG_CHUNK_MANIFEST, FLAG_GZIP, Needle};

/// The data and metadata of one upload, however it arrived.
struct Upload {
    data: Bytes,
    name: Option<String>,
    mime: Option<String>,
    gzip: bool,
    content_md5: Option<String>,
}

pub(crate) async fn upload(state: Arc<AppState>, req: Request) -> Response {
    match upload_inner(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A MIME type worth storing: not empty, not a form encoding, not the default binary type.
pub(crate) fn storable_mime(m: Option<&str>) -> Option<String> {
    let m = m?.trim();
    let base = m
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if base.is_empty()
        || base == "application/octet-stream"
        || base == "application/x-www-form-urlencoded"
        || base.starts_with("multipart/")
    {
        return None;
    }
    Some(m.to_string())
}

fn filename_from_disposition(v: &str) -> Option<String> {
    v.split(';').map(str::trim).find_map(|part| {
        let (k, val) = part.split_once('=')?;
        matches!(k.trim(), "filename" | "name").then(|| val.trim().trim_matches('"').to_string())
    })
}

async fn read_body(state: &AppState, req: Request) -> ApiResult<Upload> {
    let limit = state.cfg.file_size_limit as usize;
    let too_big = || ApiError::TooLarge {
        limit: limit as u64,
    };
    let headers = req.headers().clone();
    if let Some(len) =
        header_str(&headers, &header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64 + 64 * 1024
    {
        return Err(too_big());
    }
    let ctype = header_str(&headers, &header::CONTENT_TYPE)
        .unwrap_or("")
        .to_string();
    let is_multipart =
        req.method() == axum::http::Method::POST && ctype.starts_with("multipart/form-data");
    let disposition_name =
        header_str(&headers, &header::CONTENT_DISPOSITION).and_then(filename_from_disposition);
    if is_multipart {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad multipart body: {e}")))?;
        let mut first: Option<Upload> = None;
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(ApiError::BadRequest(format!("bad multipart body: {e}"))),
            };
            let file_name = field.file_name().map(str::to_string);
            let mime = storable_mime(field.content_type());
            let gzip = field
                .headers()
                .get(header::CONTENT_ENCODING)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
            let content_md5 = field
                .headers()
                .get("Content-MD5")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let has_file = file_name.is_some();
            if first.is_some() && !has_file {
                continue;
            }
            let mut data = Vec::new();
            let mut field = field;
            loop {
                match field.chunk().await {
                    Ok(Some(c)) => {
                        if data.len() + c.len() > limit {
                            return Err(too_big());
                        }
                        data.extend_from_slice(&c);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Err(ApiError::BadRequest(format!("bad multipart body: {e}")));
                    }
                }
            }
            let up = Upload {
                data: Bytes::from(data),
                name: file_name.filter(|n| !n.is_empty()),
                mime,
                gzip,
                content_md5,
            };
            let done = has_file;
            first = Some(up);
            if done {
                break;
            }
        }
        return first.ok_or_else(|| ApiError::BadRequest("multipart body has no parts".into()));
    }
    let gzip = header_str(&headers, &header::CONTENT_ENCODING)
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            if e.to_string().contains("length limit") {
                too_big()
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {e}"))
            }
        })?;
    Ok(Upload {
        data: body,
        name: disposition_name,
        mime: storable_mime(Some(&ctype)),
        gzip,
        content_md5: None,
    })
}

/// Inflates a gzip upload without keeping the output: refuses one that is not gzip or
/// inflates past `limit` bytes (a small body of zeros can inflate to gigabytes).
fn check_inflated(gz: &[u8], limit: u64) -> ApiResult<()> {
    use std::io::Read;
    let mut d = flate2::read::GzDecoder::new(gz).take(limit.saturating_add(1));
    let n = std::io::copy(&mut d, &mut std::io::sink())
        .map_err(|e| ApiError::BadRequest(format!("the gzip body does not inflate: {e}")))?;
    if n > limit {
        return Err(ApiError::TooLarge { limit });
    }
    Ok(())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn upload_inner(state: Arc<AppState>, req: Request) -> ApiResult<Response> {
    let p = path::parse(req.uri().path())?;
    let q = query_map(&req);
    let headers = req.headers().clone();
    let replicate = q.get("type").is_some_and(|t| t == "replicate");
    let Some(vol) = state.store.volume(p.fid.volume) else {
        if state.ec.get(p.fid.volume.0).is_some() {
            return Err(ApiError::BadRequest(format!(
                "volume {} is erasure-coded and read-only",
                p.fid.volume
            )));
        }
        return Err(ApiError::NotFound(format!(
            "volume {} is not on this server",
            p.fid.volume
        )));
    };
    let ttl: Option<Ttl> = match q.get("ttl").filter(|t| !t.is_empty()) {
        Some(t) => Some(
            t.parse()
                .map_err(|e: kelp_proto::TtlError| ApiError::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    let ts = match q.get("ts").filter(|t| !t.is_empty()) {
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| ApiError::BadRequest(format!("ts {t:?} is not unix seconds")))?,
        None => now_secs(),
    };
    let fsync = is_true(&q, "fsync") || state.cfg.fsync;
    let mut up = read_body(&state, req).await?;
    if up.gzip {
        // The size limit holds for what a reader gets: the inflated bytes.
        let (data, limit) = (up.data.clone(), state.cfg.file_size_limit);
        tokio::task::spawn_blocking(move || check_inflated(&data, limit)).await??;
    }
    if up.name.is_none() {
        up.name = p
            .filename
            .clone()
            .or_else(|| q.get("name").cloned())
            .filter(|n| !n.is_empty());
    }
    // Content-MD5 (base64, of the data as sent) must match.
    let md5_header = up.content_md5.clone().or_else(|| {
        header_str(&headers, &header::HeaderName::from_static("content-md5")).map(str::to_string)
    });
    // `md5=false`: the caller hashes the bytes itself (the filer hashes whole files), so
    // the MD5 is computed only to check a Content-MD5 the request carries.
    let md5_b64 = if md5_header.is_some() || q.get("md5").is_none_or(|v| v != "false") {
        base64::engine::general_purpose::STANDARD.encode(Md5::digest(&up.data))
    } else {
        String::new()
    };
    if let Some(want) = md5_header
        && want.trim() != md5_b64
    {
        return Err(ApiError::BadRequest(format!(
            "Content-MD5 {want:?} does not match the body's MD5 {md5_b64:?}"
        )));
    }
    let pairs = pairs_from_headers(&headers);

    let mut needle = Needle::new(p.fid.key, p.fid.cookie, up.data.clone());
    if up.gzip {
        needle.flags |= FLAG_GZIP;
    }
    if is_true(&q, "cm") {
        needle.flags |= FLAG_CHUNK_MANIFEST;
    }
    needle.name = up
        .name
        .clone()
        .filter(|n| n.len() < 256)
        .map(String::into_bytes);
    needle.mime = up
        .mime
        .clone()
        .filter(|m| m.len() < 256)
        .map(String::into_bytes);
    needle.last_modified = Some(ts);
    needle.ttl = ttl;
    needle.pairs = pairs.as_ref().map(|p| p.clone().into_bytes());
    needle.validate().map_err(ApiError::from)?;

    let placement = vol.placement();
    let v = vol.clone();
    // A small append without fsync only copies into the page cache: done here, it costs
    // less than handing it to the blocking pool and back. Large or fsynced writes may
    // wait on the disk, so they go to the pool.
    let outcome = if !fsync && !v.fsync_always() && needle.data.len() <= INLINE_WRITE_MAX {
        v.write(needle, false)
    } else {
        tokio::task::spawn_blocking(move || v.write(needle, fsync)).await?
    }
    .map_err(ApiError::from_write)?;
    let etag = outcome.etag();

    if !replicate && placement.copy_count() > 1 && !outcome.unchanged {
        let opts = UploadOptions {
            name: up.name.clone(),
            mime: up.mime.clone(),
            ttl: ttl.map(|t| t.to_string()),
            fsync,
            replicate: true,
            ts: Some(ts),
            pairs: pairs_list(&headers),
            gzip: up.gzip,
            // Replicas take this server's admin credential.
            jwt: None,
            // This server hashed the bytes (when asked to); replicas need not again.
            skip_md5: true,
        };
        if let Err(e) =
            replicate_write(&state, &p.fid, &up.data, &opts, placement.copy_count()).await
        {
            // The local copy holds data a replica may lack: stop taking writes on this
            // volume until it is repaired, rather than let the copies drift apart.
            tracing::error!(volume = %p.fid.volume, error = %e, "replication failed; marking volume read-only");
            let _ = vol.set_read_only(true);
            state.volume_changed();
            return Err(e);
        }
    }

    let mut resp_headers = HeaderMap::new();
    if let Ok(v) = format!("\"{etag}\"").parse() {
        resp_headers.insert(header::ETAG, v);
    }
    if !md5_b64.is_empty()
        && let Ok(v) = md5_b64.parse()
    {
        resp_headers.insert("Content-MD5", v);
    }
    if outcome.unchanged {
        return Ok((StatusCode::NO_CONTENT, resp_headers).into_response());
    }
    let body = UploadResult {
        name: up.name.unwrap_or_else(|| p.last_segment.clone()),
        size: up.data.len() as u64,
        etag,
        mime: up.mime.unwrap_or_default(),
        error: String::new(),
        content_md5: md5_b64,
    };
    Ok((StatusCode::CREATED, resp_headers, axum::Json(body)).into_response())
}

fn pairs_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str();
            let stripped = name.strip_prefix("seaweed-")?;
            let v = v.to_str().ok()?;
            // Header names arrive lower-cased; store them capitalised like SeaweedFS's Go
            // server does (`Seaweed-Foo` is stored as `Foo`).
            Some((canonical_header(stripped), v.to_string()))
        })
        .collect()
}

fn canonical_header(s: &str) -> String {
    s.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// `Seaweed-*` headers as the JSON object stored in the needle's pairs.
fn pairs_from_headers(headers: &HeaderMap) -> Option<String> {
    let list = pairs_list(headers);
    if list.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> = list
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    Some(serde_json::Value::Object(map).to_string())
}

/// Sends the write to every other replica in parallel; all must succeed.
async fn replicate_write(
    state: &AppState,
    fid: &FileId,
    data: &Bytes,
    opts: &UploadOptions,
    copies: usize,
) -> ApiResult<()> {
    let others = other_replicas(state, fid, copies).await?;
    let calls = others.iter().map(|url| {
        let body = data.clone();
        async move {
            state
                .volumes
                .upload(url, fid, body, opts)
                .await
                .map_err(|e| format!("{url}: {e}"))
        }
    });
    let results = futures::future::join_all(calls).await;
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        state.master.forget(fid.volume);
        Err(ApiError::Upstream(format!(
            "replication of {fid} failed: {}",
            failed.join("; ")
        )))
    }
}

async fn other_replicas(state: &AppState, fid: &FileId, copies: usize) -> ApiResult<Vec<String>> {
    let me = state.cfg.url();
    let locations = state.master.lookup(fid.volume).await.map_err(|e| {
        ApiError::Upstream(format!(
            "cannot find the replicas of volume {}: {e}",
            fid.volume
        ))
    })?;
    let others: Vec<String> = locations
        .into_iter()
        .map(|l| l.url)
        .filter(|u| *u != me)
        .collect();
    if others.len() + 1 < copies {
        state.master.forget(fid.volume);
        return Err(ApiError::Upstream(format!(
            "volume {} needs {copies} copies but only {} servers hold it",
            fid.volume,
            others.len() + 1
        )));
    }
    Ok(others)
}

pub(crate) async fn delete(state: Arc<AppState>, req: Request) -> Response {
    match delete_inner(state, req).await {
        Ok(r) => r,
        Err(e) if e.status() == StatusCode::NOT_FOUND => {
            (StatusCode::NOT_FOUND, axum::Json(DeleteResult { size: 0 })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn delete_inner(state: Arc<AppState>, req: Request) -> ApiResult<Response> {
    let p = path::parse(req.uri().path())?;
    let q: HashMap<String, String> = query_map(&req);
    let replicate = q.get("type").is_some_and(|t| t == "replicate");
    let Some(vol) = state.store.volume(p.fid.volume) else {
        if let Some(ev) = state.ec.get(p.fid.volume.0) {
            return super::ec::read::delete(&state, ev, &p.fid, replicate).await;
        }
        return Err(ApiError::NotFound(format!(
            "volume {} is not on this server",
            p.fid.volume
        )));
    };
    let placement = vol.placement();
    let (key, cookie) = (p.fid.key, p.fid.cookie);
    let v = vol.clone();
    let size = tokio::task::spawn_blocking(move || v.delete(key, cookie)).await??;
    if !replicate && placement.copy_count() > 1 {
        let others = other_replicas(&state, &p.fid, placement.copy_count()).await?;
        let calls = others
            .iter()
            .map(|url| state.volumes.delete(url, &p.fid, true));
        for (url, r) in others.iter().zip(futures::future::join_all(calls).await) {
            match r {
                Ok(_) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => {
                    return Err(ApiError::Upstream(format!(
                        "delete on replica {url} failed: {e}"
                    )));
                }
            }
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(DeleteResult { size: size as u64 }),
    )
        .into_response())
}
