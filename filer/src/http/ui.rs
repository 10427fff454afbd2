//! The filer's directory browser: `GET /dir/` from a browser (`Accept: text/html`)
//! answers a page with breadcrumbs, the sorted listing (sizes, dates, download links,
//! paging) and forms to upload files, create a folder, rename and delete; the forms
//! `POST` to the same paths with `?ui=upload|mkdir|rename|delete` and are answered
//! with a redirect back to the listing. The same path rules as the REST API apply
//! (`crate::path`). No scripts: it works in any browser.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kelp_proto::html::{bytes, esc, href, page};

use super::Target;
use crate::entry::Entry;
use crate::error::FilerError;
use crate::filer::{Filer, WriteOptions};
use crate::path;

/// The listing page of `dir`.
pub(super) fn listing(
    dir: &str,
    entries: &[Entry],
    more_after: Option<&str>,
    limit: usize,
) -> String {
    let mut body = String::new();
    // Breadcrumbs: each ancestor a link.
    body.push_str("<nav><a href=\"/\">/</a>");
    let mut at = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        body.push_str(&format!(" <a href=\"{}/\">{}</a> /", href(&at), esc(part)));
    }
    body.push_str("</nav>\n");

    let here = if dir == "/" { String::new() } else { href(dir) };
    body.push_str(&format!(
        "<div class=\"bar\">\
         <form method=\"post\" action=\"{here}/?ui=upload\" enctype=\"multipart/form-data\">\
         <input type=\"file\" name=\"file\" multiple required> <button>Upload</button></form>\
         <form method=\"post\" action=\"{here}/?ui=mkdir\">\
         <input name=\"name\" placeholder=\"new folder\" required> <button>Create folder</button></form>\
         </div>\n"
    ));

    body.push_str(
        "<table><tr><th>name</th><th class=\"n\">size</th><th>modified (UTC)</th><th></th></tr>\n",
    );
    if dir != "/" {
        let up = path::parent(dir).unwrap_or("/");
        let up = if up == "/" {
            "/".to_string()
        } else {
            format!("{}/", href(up))
        };
        body.push_str(&format!(
            "<tr><td><a href=\"{up}\">..</a></td><td></td><td></td><td></td></tr>\n"
        ));
    }
    for e in entries {
        let name = e.name();
        let target = href(&e.path);
        let (link, size) = if e.is_directory {
            (format!("{target}/"), "-".to_string())
        } else {
            (target.clone(), bytes(e.attr.file_size))
        };
        let suffix = if e.is_directory { "/" } else { "" };
        let download = if e.is_directory {
            String::new()
        } else {
            format!(" <a href=\"{target}\" download>download</a>")
        };
        body.push_str(&format!(
            "<tr><td><a href=\"{link}\">{n}{suffix}</a></td><td class=\"n\">{size}</td><td>{m}</td>\
             <td>{download} \
             <form class=\"inline\" method=\"post\" action=\"{target}?ui=rename\">\
             <input name=\"to\" value=\"{n}\" size=\"14\" aria-label=\"new name of {n}\"> <button>Rename</button></form> \
             <form class=\"inline\" method=\"post\" action=\"{target}?ui=delete\">\
             <button aria-label=\"delete {n}\">Delete</button></form></td></tr>\n",
            n = esc(name),
            m = super::json::rfc3339(e.attr.mtime),
        ));
    }
    body.push_str("</table>\n");
    if let Some(last) = more_after {
        body.push_str(&format!(
            "<p><a href=\"?limit={limit}&amp;lastFileName={}\">more entries</a></p>\n",
            href(last)
        ));
    }
    page(dir, &body)
}

/// A redirect to the listing of `dir` (what every form answers).
fn back_to(dir: &str) -> Response {
    let to = if dir == "/" {
        "/".to_string()
    } else {
        format!("{}/", href(dir))
    };
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// A form's fields.
async fn form(req: Request) -> Result<HashMap<String, String>, FilerError> {
    let axum::Form(f) = axum::Form::<HashMap<String, String>>::from_request(req, &())
        .await
        .map_err(|e| FilerError::BadRequest(format!("bad form: {e}")))?;
    Ok(f)
}

/// One name typed into a form: a single path component.
fn one_name(v: Option<&String>) -> Result<String, FilerError> {
    let n = v.map(|s| s.trim()).unwrap_or("");
    if n.is_empty() || n.contains('/') || n == "." || n == ".." {
        return Err(FilerError::BadRequest(format!(
            "{n:?} is not a name: use one path component, without /"
        )));
    }
    Ok(n.to_string())
}

/// `POST <path>?ui=…` from the browser's forms.
pub(super) async fn post(
    filer: &Arc<Filer>,
    t: Target,
    req: Request,
) -> Result<Response, FilerError> {
    let at = path::normalize(&t.path)?;
    match t.query.get("ui").map(String::as_str) {
        Some("upload") => {
            let mut parts = Multipart::from_request(req, &())
                .await
                .map_err(|e| FilerError::BadRequest(format!("bad multipart body: {e}")))?;
            let bad = |e: axum::extract::multipart::MultipartError| {
                FilerError::BadRequest(format!("bad multipart body: {e}"))
            };
            while let Some(mut field) = parts.next_field().await.map_err(bad)? {
                let Some(name) = field.file_name().map(str::to_string) else {
                    continue;
                };
                if name.is_empty() {
                    continue;
                }
                let name = one_name(Some(&name))?;
                let opts = WriteOptions {
                    mime: field.content_type().unwrap_or("").to_string(),
                    ..WriteOptions::default()
                };
                let stream = futures::stream::poll_fn(move |cx| field.poll_next_unpin(cx));
                filer
                    .write(&path::join(&at, &name), stream, opts, false)
                    .await?;
            }
            Ok(back_to(&at))
        }
        Some("mkdir") => {
            let f = form(req).await?;
            let name = one_name(f.get("name"))?;
            filer.mkdir(&path::join(&at, &name)).await?;
            Ok(back_to(&at))
        }
        Some("rename") => {
            let f = form(req).await?;
            let name = one_name(f.get("to"))?;
            let dir = path::parent(&at).unwrap_or("/").to_string();
            filer.rename(&at, &path::join(&dir, &name)).await?;
            Ok(back_to(&dir))
        }
        Some("delete") => {
            filer.delete(&at, true).await?;
            Ok(back_to(path::parent(&at).unwrap_or("/")))
        }
        other => Err(FilerError::BadRequest(format!(
            "ui={} is not a browser action (upload, mkdir, rename, delete)",
            other.unwrap_or("")
        ))),
    }
}
