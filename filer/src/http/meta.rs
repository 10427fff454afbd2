//! Metadata export and import over the REST API: `GET <dir>?op=meta.export` streams the
//! entries under a directory (not the chunk data) in the export container of
//! `kelp_proto::meta_export`; `POST /?op=meta.import` checks a whole export, then puts
//! its entries (idempotent: a second import of the same file changes nothing).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use kelp_proto::meta_export::{self, Kind, Writer};

use super::Target;
use crate::entry::Entry;
use crate::error::FilerError;
use crate::filer::Filer;
use crate::path;
use crate::store::walk::{PAGE, Walk};
use crate::store::{FilerStore, Mutation, codec};

/// The largest export an import takes (it is checked whole before anything is applied).
const MAX_IMPORT: usize = 1 << 30;

/// Streams the export of `target.path` (the directory itself and everything below it).
pub(super) async fn export(filer: &Arc<Filer>, target: Target) -> Result<Response, FilerError> {
    let root = path::normalize(&target.path)?;
    let top = filer
        .store
        .find(&root)
        .await?
        .ok_or_else(|| FilerError::NotFound(root.clone()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let filer = filer.clone();
    tokio::spawn(async move {
        if let Err(e) = send_export(&filer, &root, top, &tx).await {
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [("Content-Type", "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Sends the export of `root` (whose entry is `top`) down `tx`, a page at a time. A
/// closed channel (the client left) ends it quietly.
async fn send_export(
    filer: &Filer,
    root: &str,
    top: Entry,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), FilerError> {
    let mut w = Writer::default();
    let mut out = w.header();
    if root != "/" {
        // The directories above it (themselves only), so an import into an empty store
        // lists it where it was; then the entry itself.
        let mut above = Vec::new();
        let mut p = path::parent(root);
        while let Some(d) = p.filter(|d| *d != "/") {
            above.push(d);
            p = path::parent(d);
        }
        for d in above.into_iter().rev() {
            if let Some(e) = filer.store.find(d).await? {
                push_entry(&mut w, &mut out, &e)?;
            }
        }
        push_entry(&mut w, &mut out, &top)?;
    }
    if top.is_directory {
        let mut walk = Walk::new(filer.store.as_ref(), root);
        while let Some(page) = walk.next_page().await? {
            for e in &page {
                push_entry(&mut w, &mut out, e)?;
            }
            if tx
                .send(Ok(Bytes::from(std::mem::take(&mut out))))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
    out.extend(w.trailer());
    let _ = tx.send(Ok(Bytes::from(out))).await;
    Ok(())
}

/// Appends an entry's record (and the manifest markers of its manifest chunks).
fn push_entry(w: &mut Writer, out: &mut Vec<u8>, e: &Entry) -> Result<(), FilerError> {
    let value = codec::encode_entry(e)?;
    out.extend(w.record(Kind::Entry, e.path.as_bytes(), &value));
    for c in e.chunks.iter().filter(|c| c.is_manifest) {
        out.extend(w.record(Kind::Kv, &crate::manifest::marker(&c.fid), b""));
    }
    Ok(())
}

/// Reads a whole export, checks it (framing, count, checksum, every entry decodes),
/// then puts its entries and keys in batches. Answers `{"entries": N, "keys": M}`.
pub(super) async fn import(filer: &Arc<Filer>, req: Request) -> Result<Response, FilerError> {
    let mut body = req.into_body().into_data_stream();
    let mut buf = Vec::new();
    while let Some(piece) = body.next().await {
        let piece =
            piece.map_err(|e| FilerError::BadRequest(format!("reading the export: {e}")))?;
        if buf.len() + piece.len() > MAX_IMPORT {
            return Err(FilerError::BadRequest(format!(
                "an import takes at most {MAX_IMPORT} bytes; split the export by -path"
            )));
        }
        buf.extend_from_slice(&piece);
    }
    let (entries, keys) = load_export(filer.store.as_ref(), &buf).await?;
    Ok(axum::Json(serde_json::json!({ "entries": entries, "keys": keys })).into_response())
}

/// Checks a whole export (framing, count, checksum, every entry decodes), then puts its
/// entries and keys into `store` in batches; returns how many entries and keys. Also
/// how `kelp filer.backup` seeds a new copy.
pub async fn load_export(store: &dyn FilerStore, export: &[u8]) -> Result<(u64, u64), FilerError> {
    let records = meta_export::read(export).map_err(|e| FilerError::BadRequest(e.to_string()))?;
    let mut muts = Vec::with_capacity(records.len());
    let (mut entries, mut keys) = (0u64, 0u64);
    for r in &records {
        match r.kind {
            Kind::Entry => {
                let p = std::str::from_utf8(r.key)
                    .map_err(|_| FilerError::BadRequest("an exported path is not UTF-8".into()))?;
                let p = path::normalize(p)?;
                let e = codec::decode_entry(p, r.value)
                    .map_err(|e| FilerError::BadRequest(format!("an exported entry: {e}")))?;
                muts.push(Mutation::Put(e));
                entries += 1;
            }
            Kind::Kv => {
                muts.push(Mutation::KvPut(r.key.to_vec(), r.value.to_vec()));
                keys += 1;
            }
        }
    }
    let mut rest = muts;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(PAGE));
        store.apply(rest).await?;
        rest = tail;
    }
    Ok((entries, keys))
}
