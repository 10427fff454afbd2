//! The change log on the wire and at the receiving end: the JSON form of log events
//! that `GET /?op=meta.events` answers (and `kelp filer.meta.tail` and
//! `kelp filer.backup` read), the path-prefix filter, and [`replay`], which applies
//! followed events to another store.

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::store::codec;
use crate::store::{FilerStore, LogEvent, Mutation, StoreError};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The JSON form of one event. A `put` carries the entry twice: `entry` as the REST
/// listing renders it, for people, and `data`, its exact stored bytes, for replay.
pub fn to_json(ev: &LogEvent) -> Result<Value, StoreError> {
    let mut changes = Vec::with_capacity(ev.changes.len());
    for c in &ev.changes {
        changes.push(match c {
            Mutation::Put(e) => json!({
                "op": "put",
                "path": e.path,
                "entry": crate::http::json_entry(e),
                "data": B64.encode(codec::encode_entry(e)?),
            }),
            Mutation::Delete(p) => json!({"op": "delete", "path": p}),
            Mutation::DeleteTree(p) => json!({"op": "deleteTree", "path": p}),
            Mutation::Rename { from, to } => json!({"op": "rename", "from": from, "to": to}),
            Mutation::KvPut(k, v) => {
                json!({"op": "kvPut", "key": B64.encode(k), "value": B64.encode(v)})
            }
            Mutation::KvDelete(k) => json!({"op": "kvDelete", "key": B64.encode(k)}),
            Mutation::Expect { .. } | Mutation::ExpectKv { .. } => continue,
        });
    }
    Ok(json!({"seq": ev.seq, "tsNs": ev.ts_ns, "changes": changes}))
}

/// Unix nanoseconds as RFC 3339 (UTC, whole seconds), as listings print times.
pub fn rfc3339_ns(ts_ns: i64) -> String {
    crate::http::rfc3339(ts_ns.div_euclid(1_000_000_000))
}

/// A change as it arrives (the fields of every kind; each kind uses its own).
#[derive(Deserialize)]
struct WireChange {
    op: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct WireEvent {
    seq: u64,
    #[serde(rename = "tsNs")]
    ts_ns: i64,
    changes: Vec<WireChange>,
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, String> {
    B64.decode(s)
        .map_err(|e| format!("{field} is not base64: {e}"))
}

/// Decodes one event of the JSON form; paths are checked like any path the filer takes.
pub fn from_json(v: Value) -> Result<LogEvent, String> {
    let w: WireEvent = serde_json::from_value(v).map_err(|e| format!("a log event: {e}"))?;
    let norm = |p: &str| crate::path::normalize(p).map_err(|e| e.to_string());
    let mut changes = Vec::with_capacity(w.changes.len());
    for c in w.changes {
        changes.push(match c.op.as_str() {
            "put" => {
                let data = b64("data", &c.data)?;
                let e = codec::decode_entry(norm(&c.path)?, &data).map_err(|e| e.to_string())?;
                Mutation::Put(e)
            }
            "delete" => Mutation::Delete(norm(&c.path)?),
            "deleteTree" => Mutation::DeleteTree(norm(&c.path)?),
            "rename" => Mutation::Rename {
                from: norm(&c.from)?,
                to: norm(&c.to)?,
            },
            "kvPut" => Mutation::KvPut(b64("key", &c.key)?, b64("value", &c.value)?),
            "kvDelete" => Mutation::KvDelete(b64("key", &c.key)?),
            other => return Err(format!("event {}: unknown change {other:?}", w.seq)),
        });
    }
    Ok(LogEvent {
        seq: w.seq,
        ts_ns: w.ts_ns,
        changes,
    })
}

/// Whether a change touches a path starting with `prefix` (key-value changes never do).
pub fn touches(c: &Mutation, prefix: &str) -> bool {
    match c {
        Mutation::Put(e) => e.path.starts_with(prefix),
        Mutation::Delete(p) | Mutation::DeleteTree(p) => p.starts_with(prefix),
        Mutation::Rename { from, to } => from.starts_with(prefix) || to.starts_with(prefix),
        _ => false,
    }
}

/// Keeps only the changes under `prefix`, and the events left with any.
pub fn filter(events: Vec<LogEvent>, prefix: &str) -> Vec<LogEvent> {
    if prefix.is_empty() || prefix == "/" {
        return events;
    }
    events
        .into_iter()
        .filter_map(|mut ev| {
            ev.changes.retain(|c| touches(c, prefix));
            (!ev.changes.is_empty()).then_some(ev)
        })
        .collect()
}

/// Applies `changes` to `to` together with `extra` (a follower's cursor) in one batch.
/// A follower that started from a copy taken while the source kept changing may find a
/// change already there; then each change is applied so that its outcome holds, which
/// is what the source had after it: a delete of what is missing does nothing, a rename
/// whose source is gone does nothing, and a rename or a file put over something in the
/// way replaces it.
pub async fn replay(
    to: &dyn FilerStore,
    changes: &[Mutation],
    extra: Vec<Mutation>,
) -> Result<(), StoreError> {
    let mut batch = changes.to_vec();
    batch.extend(extra.iter().cloned());
    match to.apply(batch).await {
        Ok(()) => return Ok(()),
        Err(StoreError::NotFound(_) | StoreError::AlreadyExists(_) | StoreError::NotEmpty(_)) => {}
        Err(e) => return Err(e),
    }
    for c in changes {
        let muts = match c {
            Mutation::Delete(p) | Mutation::DeleteTree(p) => {
                if to.find(p).await?.is_none() {
                    continue;
                }
                vec![Mutation::DeleteTree(p.clone())]
            }
            Mutation::Rename { from, to: dest } => {
                if to.find(from).await?.is_none() {
                    continue;
                }
                let mut m = Vec::new();
                if to.find(dest).await?.is_some() {
                    m.push(Mutation::DeleteTree(dest.clone()));
                }
                m.push(c.clone());
                m
            }
            Mutation::Put(e) => match to.apply(vec![c.clone()]).await {
                Err(StoreError::NotEmpty(_)) => {
                    vec![Mutation::DeleteTree(e.path.clone()), c.clone()]
                }
                other => {
                    other?;
                    continue;
                }
            },
            other => vec![other.clone()],
        };
        to.apply(muts).await?;
    }
    to.apply(extra).await
}
