//! `PUT`, `POST` and `DELETE`: uploads (raw, multipart, append), mkdir, `mv.from`,
//! `cp.from`, tagging, and deletes.

use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::StreamExt;
use serde_json::json;

use super::Target;
use crate::chunks::WriteTarget;
use crate::error::FilerError;
use crate::filer::{Filer, WriteOptions};
use crate::path;

/// Headers an entry keeps in its extended attributes and serves back.
fn extended_headers(h: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    h.iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k.starts_with("seaweed-")
                || ["cache-control", "expires", "content-disposition"].contains(&k)
        })
        .map(|(k, v)| (canonical(k.as_str()), v.as_bytes().to_vec()))
        .collect()
}

fn canonical(s: &str) -> String {
    s.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// `Content-MD5` as hex or base64.
fn content_md5(h: &HeaderMap) -> Result<Option<Vec<u8>>, FilerError> {
    let Some(v) = h
        .get("content-md5")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    else {
        return Ok(None);
    };
    if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        let raw: Vec<u8> = (0..16)
            .filter_map(|i| u8::from_str_radix(&v[i * 2..i * 2 + 2], 16).ok())
            .collect();
        return Ok(Some(raw));
    }
    match base64::engine::general_purpose::STANDARD.decode(v) {
        Ok(raw) if raw.len() == 16 => Ok(Some(raw)),
        _ => Err(FilerError::BadRequest(format!(
            "Content-MD5 {v:?} is neither hex nor base64 of 16 bytes"
        ))),
    }
}

fn options(
    filer: &Filer,
    t: &Target,
    h: &HeaderMap,
    mime: Option<String>,
) -> Result<WriteOptions, FilerError> {
    let ttl: kelp_proto::Ttl = t
        .query
        .get("ttl")
        .map(String::as_str)
        .unwrap_or("")
        .parse()
        .map_err(|e: kelp_proto::TtlError| FilerError::BadRequest(e.to_string()))?;
    let mode = match t.query.get("mode").filter(|m| !m.is_empty()) {
        Some(m) => Some(
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| {
                    FilerError::BadRequest(format!("mode {m:?} is not an octal permission"))
                })?,
        ),
        None => None,
    };
    let mime = mime
        .or_else(|| {
            h.get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .filter(|m| !m.starts_with("multipart/") && m != "application/x-www-form-urlencoded")
        .unwrap_or_default();
    let collection = t
        .query
        .get("collection")
        .cloned()
        .unwrap_or_else(|| filer.cfg.collection.clone());
    kelp_proto::name::check_collection(&collection)
        .map_err(|e| FilerError::BadRequest(e.to_string()))?;
    Ok(WriteOptions {
        mime,
        mode,
        ttl_sec: ttl.seconds().min(u32::MAX as u64) as u32,
        target: WriteTarget {
            collection,
            replication: t
                .query
                .get("replication")
                .cloned()
                .unwrap_or_else(|| filer.cfg.replication.clone()),
            ttl: if ttl.is_empty() {
                String::new()
            } else {
                ttl.to_string()
            },
            fsync: t.flag("fsync"),
            cipher: None,
        },
        extended: extended_headers(h),
        expect_md5: content_md5(h)?,
        size_hint: h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
        late_extended: None,
        precondition: None,
        keeps_replaced: false,
    })
}

fn created(name: &str, size: u64) -> Response {
    (
        StatusCode::CREATED,
        axum::Json(json!({ "name": name, "size": size })),
    )
        .into_response()
}

pub(crate) async fn put(
    filer: &Arc<Filer>,
    t: Target,
    req: Request,
) -> Result<Response, FilerError> {
    if t.has("tagging") {
        let tags = extended_headers(req.headers())
            .into_iter()
            .filter(|(k, _)| k.starts_with("Seaweed-"))
            .collect();
        filer.set_extended(&t.path, tags, None).await?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    if t.trailing_slash {
        return Err(FilerError::BadRequest(
            "PUT needs a file path, not a directory".into(),
        ));
    }
    let append = t.query.get("op").is_some_and(|o| o == "append");
    let opts = options(filer, &t, req.headers(), None)?;
    let body = req.into_body().into_data_stream();
    let e = filer.write(&t.path, body, opts, append).await?;
    Ok(created(e.name(), e.attr.file_size))
}

pub(crate) async fn post(
    filer: &Arc<Filer>,
    t: Target,
    req: Request,
) -> Result<Response, FilerError> {
    if let Some(from) = t.query.get("mv.from") {
        filer.rename(from, &t.path).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if let Some(from) = t.query.get("cp.from") {
        filer.copy(from, &t.path).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if ctype.starts_with("multipart/form-data") {
        return multipart(filer, t, req).await;
    }
    let append = t.query.get("op").is_some_and(|o| o == "append");
    if append {
        return Err(FilerError::BadRequest(
            "request Content-Type isn't multipart/form-data".into(),
        ));
    }
    let empty = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == "0");
    if ctype.is_empty() && (t.trailing_slash || empty) {
        let e = filer.mkdir(&t.path).await?;
        return Ok((StatusCode::CREATED, axum::Json(json!({ "name": e.name() }))).into_response());
    }
    if t.trailing_slash {
        return Err(FilerError::BadRequest(
            "a raw upload needs a file path, not a directory".into(),
        ));
    }
    let opts = options(filer, &t, req.headers(), None)?;
    let body = req.into_body().into_data_stream();
    let e = filer.write(&t.path, body, opts, false).await?;
    Ok(created(e.name(), e.attr.file_size))
}

async fn multipart(filer: &Arc<Filer>, t: Target, req: Request) -> Result<Response, FilerError> {
    let headers = req.headers().clone();
    let append = t.query.get("op").is_some_and(|o| o == "append");
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| FilerError::BadRequest(format!("bad multipart body: {e}")))?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        FilerError::BadRequest(format!("bad multipart body: {e}"))
    };
    let mut field = loop {
        let f = form.next_field().await.map_err(bad)?;
        match f {
            Some(f) if f.file_name().is_some() => break f,
            Some(_) => continue,
            None => {
                return Err(FilerError::BadRequest(
                    "multipart body has no file part".into(),
                ));
            }
        }
    };
    let file_name = field.file_name().unwrap_or("").to_string();
    let target_path = if t.trailing_slash || t.path == "/" {
        if file_name.is_empty() {
            return Err(FilerError::BadRequest(
                "the file part has no filename".into(),
            ));
        }
        path::join(&path::normalize(&t.path)?, &file_name)
    } else {
        t.path.clone()
    };
    let mut opts = options(
        filer,
        &t,
        &headers,
        field.content_type().map(str::to_string),
    )?;
    opts.size_hint = None;
    if let Some(md5) = field.headers().get("content-md5").cloned() {
        let mut h = HeaderMap::new();
        h.insert("content-md5", md5);
        opts.expect_md5 = content_md5(&h)?;
    }
    let stream = futures::stream::poll_fn(move |cx| field.poll_next_unpin(cx));
    let e = filer.write(&target_path, stream, opts, append).await?;
    Ok(created(e.name(), e.attr.file_size))
}

pub(crate) async fn delete(filer: &Arc<Filer>, t: Target) -> Result<Response, FilerError> {
    if let Some(keys) = t.query.get("tagging") {
        let keys: Vec<String> = keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(canonical)
            .collect();
        let keys: Vec<String> = keys
            .into_iter()
            .map(|k| {
                if k.starts_with("Seaweed-") {
                    k
                } else {
                    format!("Seaweed-{k}")
                }
            })
            .collect();
        // No names: every tag (the `Seaweed-` attributes) goes, nothing else.
        let keys = if keys.is_empty() {
            match filer.find(&t.path).await? {
                Some(e) => e
                    .extended
                    .keys()
                    .filter(|k| k.starts_with("Seaweed-"))
                    .cloned()
                    .collect(),
                None => return Err(FilerError::NotFound(t.path.clone())),
            }
        } else {
            keys
        };
        let changed = filer.set_extended(&t.path, Vec::new(), Some(keys)).await?;
        let status = if changed {
            StatusCode::ACCEPTED
        } else {
            StatusCode::NOT_MODIFIED
        };
        return Ok(status.into_response());
    }
    filer.delete(&t.path, t.flag("recursive")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
