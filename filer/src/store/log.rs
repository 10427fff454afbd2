//! The metadata change log: every `apply` that changes entries (or non-lease keys)
//! appends one record, in the same transaction, under a sequence number. Tools follow
//! it (`GET /?op=meta.events`, `kelp filer.meta.tail`, `kelp filer.backup`). This
//! module owns which mutations are logged and the record encoding
//! (`docs/formats/filer-store.md`, "Change log").

use serde::{Deserialize, Serialize};

use super::{Mutation, StoreError, codec};

/// The first byte of every log record.
pub const RECORD_VERSION: u8 = 1;

/// Keys of the key-value space under these prefixes are not logged: leases are renewed
/// every few seconds, and uploads in flight are the writing filer's business; neither
/// means anything to a follower.
const UNLOGGED_KV_PREFIXES: [&[u8]; 2] = [b"lease/", super::PENDING_PREFIX];

/// One logged batch: what one `apply` changed, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Position in the log (increasing; gaps are possible and mean nothing).
    pub seq: u64,
    /// When the batch was applied (unix nanoseconds, the writer's clock).
    pub ts_ns: i64,
    /// The batch's changes: only `Put`, `Delete`, `DeleteTree`, `Rename`, `KvPut` and
    /// `KvDelete`. Applying them in order to a copy of the store as it was before
    /// gives the store as it was after.
    pub changes: Vec<Mutation>,
}

/// A page of the log after some position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPage {
    /// Events in sequence order.
    pub events: Vec<LogEvent>,
    /// Where the next read starts (`since` of the next call): the last position this
    /// read settled, which may lie past the last event.
    pub next: u64,
}

/// Which part of the log a store still holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogBounds {
    /// Everything at or below this position was trimmed away (0: nothing was).
    pub trimmed: u64,
    /// The last position written and settled: a read from here sees every later batch.
    pub head: u64,
}

/// True when `m` goes into the log.
pub fn logged(m: &Mutation) -> bool {
    match m {
        Mutation::Put(_)
        | Mutation::Delete(_)
        | Mutation::DeleteTree(_)
        | Mutation::Rename { .. } => true,
        Mutation::KvPut(k, _) | Mutation::KvDelete(k) => {
            !UNLOGGED_KV_PREFIXES.iter().any(|p| k.starts_with(p))
        }
        Mutation::Expect { .. } | Mutation::ExpectKv { .. } => false,
    }
}

/// A change as stored, version 1. Entries keep their own stored form
/// ([`codec::encode_entry`]), so the log and the entries table never disagree on bytes.
#[derive(Serialize, Deserialize)]
enum ChangeV1 {
    Put { path: String, entry: Vec<u8> },
    Delete { path: String },
    DeleteTree { path: String },
    Rename { from: String, to: String },
    KvPut { key: Vec<u8>, value: Vec<u8> },
    KvDelete { key: Vec<u8> },
}

/// Serialize side of a record (the timestamp first, so trimming reads only that).
#[derive(Serialize)]
struct RecordOutV1<'a> {
    ts_ns: i64,
    changes: &'a [ChangeV1],
}

#[derive(Deserialize)]
struct RecordInV1 {
    ts_ns: i64,
    changes: Vec<ChangeV1>,
}

/// The record of a batch, or `None` when nothing in it is logged.
pub fn encode(ts_ns: i64, muts: &[Mutation]) -> Result<Option<Vec<u8>>, StoreError> {
    let mut changes = Vec::new();
    for m in muts.iter().filter(|m| logged(m)) {
        changes.push(match m {
            Mutation::Put(e) => ChangeV1::Put {
                path: e.path.clone(),
                entry: codec::encode_entry(e)?,
            },
            Mutation::Delete(p) => ChangeV1::Delete { path: p.clone() },
            Mutation::DeleteTree(p) => ChangeV1::DeleteTree { path: p.clone() },
            Mutation::Rename { from, to } => ChangeV1::Rename {
                from: from.clone(),
                to: to.clone(),
            },
            Mutation::KvPut(k, v) => ChangeV1::KvPut {
                key: k.clone(),
                value: v.clone(),
            },
            Mutation::KvDelete(k) => ChangeV1::KvDelete { key: k.clone() },
            Mutation::Expect { .. } | Mutation::ExpectKv { .. } => continue,
        });
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let out = RecordOutV1 {
        ts_ns,
        changes: &changes,
    };
    postcard::to_extend(&out, vec![RECORD_VERSION])
        .map(Some)
        .map_err(|e| StoreError::Backend(format!("encoding a log record: {e}")))
}

fn body(seq: u64, value: &[u8]) -> Result<&[u8], StoreError> {
    match value.split_first() {
        Some((&RECORD_VERSION, body)) => Ok(body),
        Some((&v, _)) => Err(StoreError::Corrupt(format!(
            "log record {seq}: unknown record version {v} (this build reads {RECORD_VERSION})"
        ))),
        None => Err(StoreError::Corrupt(format!("log record {seq}: empty"))),
    }
}

/// The timestamp of a stored record, without decoding the rest.
pub fn timestamp(seq: u64, value: &[u8]) -> Result<i64, StoreError> {
    let (ts, _): (i64, _) = postcard::take_from_bytes(body(seq, value)?)
        .map_err(|e| StoreError::Corrupt(format!("log record {seq}: {e}")))?;
    Ok(ts)
}

/// Decodes the record stored at `seq`.
pub fn decode(seq: u64, value: &[u8]) -> Result<LogEvent, StoreError> {
    let (r, rest): (RecordInV1, &[u8]) = postcard::take_from_bytes(body(seq, value)?)
        .map_err(|e| StoreError::Corrupt(format!("log record {seq}: {e}")))?;
    if !rest.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "log record {seq}: {} unexpected bytes",
            rest.len()
        )));
    }
    let mut changes = Vec::with_capacity(r.changes.len());
    for c in r.changes {
        changes.push(match c {
            ChangeV1::Put { path, entry } => Mutation::Put(codec::decode_entry(path, &entry)?),
            ChangeV1::Delete { path } => Mutation::Delete(path),
            ChangeV1::DeleteTree { path } => Mutation::DeleteTree(path),
            ChangeV1::Rename { from, to } => Mutation::Rename { from, to },
            ChangeV1::KvPut { key, value } => Mutation::KvPut(key, value),
            ChangeV1::KvDelete { key } => Mutation::KvDelete(key),
        });
    }
    Ok(LogEvent {
        seq,
        ts_ns: r.ts_ns,
        changes,
    })
}

/// The refusal of a read from before what the log still holds.
pub fn trimmed_error(since: u64, trimmed: u64) -> StoreError {
    StoreError::Trimmed { since, trimmed }
}

/// Now, in unix nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;

    #[test]
    fn records_round_trip_and_skip_guards_and_leases() {
        let e = Entry::new_file("/a/b", 5);
        let muts = vec![
            Mutation::Expect {
                path: "/a/b".into(),
                entry: None,
            },
            Mutation::Put(e.clone()),
            Mutation::KvPut(b"lease/gc".to_vec(), b"x".to_vec()),
            Mutation::KvPut(b"m".to_vec(), b"v".to_vec()),
            Mutation::Rename {
                from: "/a".into(),
                to: "/c".into(),
            },
            Mutation::DeleteTree("/c".into()),
        ];
        let rec = encode(42, &muts).unwrap().unwrap();
        assert_eq!(rec[0], RECORD_VERSION);
        assert_eq!(timestamp(7, &rec).unwrap(), 42);
        let ev = decode(7, &rec).unwrap();
        assert_eq!(ev.seq, 7);
        assert_eq!(ev.ts_ns, 42);
        assert_eq!(
            ev.changes,
            vec![
                Mutation::Put(e),
                Mutation::KvPut(b"m".to_vec(), b"v".to_vec()),
                Mutation::Rename {
                    from: "/a".into(),
                    to: "/c".into()
                },
                Mutation::DeleteTree("/c".into()),
            ]
        );
        let only_lease = [Mutation::KvPut(b"lease/gc".to_vec(), vec![])];
        assert_eq!(encode(1, &only_lease).unwrap(), None);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let rec = encode(1, &[Mutation::Delete("/x".into())])
            .unwrap()
            .unwrap();
        assert!(decode(1, &[]).is_err());
        assert!(decode(1, &[9]).is_err());
        for cut in 1..rec.len() {
            assert!(decode(1, &rec[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = rec.clone();
        long.push(0);
        assert!(decode(1, &long).is_err());
    }
}
