//! What a filer references, for `volume.fsck`: the chunk fids of every entry (walking the
//! tree through the filer's JSON listings), manifest chunks expanded into the chunks
//! their blobs list (read from a volume server and parsed as the filer does), and kept
//! up to date from the filer's change log while the volumes are compared, so that an
//! entry written or renamed during the walk is not missed.

use std::collections::BTreeMap;

use kelp_proto::FileId;
use kelp_proto::security::Authorize;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ShellError, fail};
use crate::flags::Flags;
use crate::{Shell, say};

/// Entries per listing page.
const PAGE: usize = 1000;
/// Change-log events per page.
const EVENTS_PAGE: usize = 10_000;
/// Manifests nested deeper than this are refused (as the filer does).
const MAX_NESTING: usize = 8;
/// Go's `os.FileMode` directory bit, as the filer prints `Mode`.
const DIR_BIT: u64 = 1 << 31;

/// A listing page (`GET /dir/` with `Accept: application/json`).
#[derive(Deserialize)]
struct Listing {
    #[serde(rename = "Entries", default)]
    entries: Option<Vec<Entry>>,
    #[serde(rename = "LastFileName", default)]
    last_file_name: String,
    #[serde(rename = "ShouldDisplayLoadMore", default)]
    more: bool,
}

/// The fields of an entry's JSON that fsck needs.
#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "FullPath", default)]
    full_path: String,
    #[serde(rename = "Mode", default)]
    mode: u64,
    #[serde(default)]
    chunks: Option<Vec<Chunk>>,
}

impl Entry {
    fn is_dir(&self) -> bool {
        self.mode & DIR_BIT != 0
    }
}

#[derive(Deserialize)]
struct Chunk {
    file_id: String,
    #[serde(default)]
    is_chunk_manifest: bool,
}

/// A manifest blob: `{"version":1,"chunks":[{"fid",...,"is_manifest"}]}`.
#[derive(Deserialize)]
struct ManifestBlob {
    chunks: Vec<ManifestChunk>,
}

#[derive(Deserialize)]
struct ManifestChunk {
    fid: String,
    #[serde(default)]
    is_manifest: bool,
}

/// One page of the change log (`GET /?op=meta.events`).
#[derive(Deserialize)]
struct Events {
    next: u64,
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    op: String,
    #[serde(default)]
    entry: Option<Entry>,
    #[serde(default)]
    to: String,
}

/// The chunks a filer references.
#[derive(Debug, Default)]
pub(crate) struct Refs {
    /// Volume id -> needle key -> cookie.
    pub by_volume: BTreeMap<u32, BTreeMap<u64, u32>>,
    /// Entries seen (directories included).
    pub entries: u64,
    /// Manifests whose blob could not be read or parsed, with why: the chunks they list
    /// are unknown, so nothing may be deleted as unreferenced.
    pub unreadable: Vec<String>,
    /// Chunk ids that do not parse as fids.
    pub bad: Vec<String>,
    /// Manifests to expand, with their nesting depth.
    todo: Vec<(FileId, usize)>,
}

impl Refs {
    /// Distinct chunks referenced.
    pub(crate) fn chunks(&self) -> usize {
        self.by_volume.values().map(BTreeMap::len).sum()
    }

    fn add(&mut self, fid: &str, manifest: bool, depth: usize) {
        let Ok(id) = fid.parse::<FileId>() else {
            self.bad.push(fid.to_string());
            return;
        };
        let fresh = self
            .by_volume
            .entry(id.volume.0)
            .or_default()
            .insert(id.key.0, id.cookie.0)
            .is_none();
        if manifest && fresh {
            self.todo.push((id, depth));
        }
    }

    /// Adds the chunks of the entries a page of the change log puts; returns the new
    /// paths of what it renames (to be walked again).
    fn add_changes(&mut self, page: &Events) -> Vec<String> {
        let mut moved = Vec::new();
        for c in page.events.iter().flat_map(|e| &e.changes) {
            match (c.op.as_str(), &c.entry) {
                ("put", Some(e)) => self.add_entry(e),
                ("rename", _) if !c.to.is_empty() => moved.push(c.to.clone()),
                _ => {}
            }
        }
        moved
    }

    fn add_entry(&mut self, e: &Entry) {
        self.entries += 1;
        for c in e.chunks.iter().flatten() {
            self.add(&c.file_id, c.is_chunk_manifest, 0);
        }
    }
}

/// The filer `volume.fsck` reads from (`-filer`, default 127.0.0.1:8888).
pub(crate) struct Filer<'a> {
    shell: &'a Shell,
    base: Url,
}

impl<'a> Filer<'a> {
    pub(crate) fn new(shell: &'a Shell, flags: &Flags) -> Result<Filer<'a>, ShellError> {
        let addr = crate::meta::filer(flags);
        let base =
            Url::parse(&addr).map_err(|e| ShellError::BadFlags(format!("-filer: {addr}: {e}")))?;
        Ok(Filer { shell, base })
    }

    /// The URL of `path` on the filer, each name percent-encoded; a directory's ends
    /// with `/`.
    fn url(&self, path: &str, dir: bool) -> Url {
        let mut url = self.base.clone();
        let names: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.clear().extend(&names);
            if dir && !names.is_empty() {
                segs.push("");
            }
        }
        url
    }

    /// GETs JSON from the filer; `None` for a 404.
    async fn get<T: DeserializeOwned>(
        &self,
        url: Url,
        query: &[(&str, String)],
    ) -> Result<Option<T>, ShellError> {
        let shown = url.to_string();
        let req = self.shell.http.get(url).query(query);
        let accept = req.header("Accept", "application/json").filer(false);
        let r = crate::meta::send(accept, &shown).await?;
        match r.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => r
                .json()
                .await
                .map(Some)
                .map_err(|source| ShellError::Decode { url: shown, source }),
            StatusCode::GONE => fail!(
                "{shown}: the filer's change log no longer holds what changed while volume.fsck ran (it was trimmed); run it again"
            ),
            status => Err(ShellError::Answered { url: shown, status }),
        }
    }

    /// Where the filer's change log ends now: changes after it are read by
    /// [`Self::catch_up`].
    pub(crate) async fn head(&self) -> Result<u64, ShellError> {
        let v: Option<serde_json::Value> = self
            .get(self.url("/", true), &[("op", "meta.head".into())])
            .await?;
        match v.as_ref().and_then(|v| v["head"].as_u64()) {
            Some(h) => Ok(h),
            None => fail!("{}: no change-log head in the answer", self.base),
        }
    }

    /// Adds the chunks of every entry at or below `root` (a directory or a file), then
    /// expands the manifests found.
    pub(crate) async fn walk(&self, root: &str, refs: &mut Refs) -> Result<(), ShellError> {
        if root.trim_matches('/').is_empty() {
            self.walk_dirs(vec!["/".to_string()], refs).await?;
        } else {
            let url = self.url(root, false);
            let e: Option<Entry> = self.get(url, &[("metadata", "true".into())]).await?;
            match e {
                Some(e) if e.is_dir() => self.walk_dirs(vec![e.full_path], refs).await?,
                Some(e) => refs.add_entry(&e),
                None => {}
            }
        }
        self.expand(refs).await;
        Ok(())
    }

    async fn walk_dirs(&self, mut dirs: Vec<String>, refs: &mut Refs) -> Result<(), ShellError> {
        while let Some(dir) = dirs.pop() {
            let mut after = String::new();
            loop {
                let mut query = vec![("limit", PAGE.to_string())];
                if !after.is_empty() {
                    query.push(("lastFileName", after.clone()));
                }
                let Some(page) = self.get::<Listing>(self.url(&dir, true), &query).await? else {
                    break; // removed meanwhile
                };
                for e in page.entries.iter().flatten() {
                    refs.add_entry(e);
                    if e.is_dir() {
                        dirs.push(e.full_path.clone());
                    }
                }
                if !page.more || page.last_file_name.is_empty() || page.last_file_name == after {
                    break;
                }
                after = page.last_file_name;
            }
        }
        Ok(())
    }

    /// Reads every manifest not yet expanded and adds the chunks it lists (nested
    /// manifests too). One that cannot be read is noted in `refs.unreadable`.
    async fn expand(&self, refs: &mut Refs) {
        while let Some((fid, depth)) = refs.todo.pop() {
            if depth >= MAX_NESTING {
                refs.unreadable
                    .push(format!("manifest {fid}: manifests nest too deeply"));
                continue;
            }
            match self.manifest(&fid).await {
                Ok(blob) => {
                    for c in blob.chunks {
                        refs.add(&c.fid, c.is_manifest, depth + 1);
                    }
                }
                Err(e) => refs
                    .unreadable
                    .push(format!("manifest {fid}: {}", e.chain())),
            }
        }
    }

    /// A manifest's blob, from the first holder of its volume that serves it.
    async fn manifest(&self, fid: &FileId) -> Result<ManifestBlob, ShellError> {
        let locations = self.shell.master.lookup(fid.volume).await?;
        let mut last = None;
        for loc in &locations {
            let read = async {
                let r = self.shell.volumes.get(&loc.url, fid, None).await?;
                r.bytes()
                    .await
                    .map_err(|e| ShellError::Failed(format!("reading from {}: {e}", loc.url)))
            };
            match read.await {
                Ok(b) => {
                    return serde_json::from_slice(&b)
                        .map_err(|e| ShellError::Failed(format!("does not parse: {e}")));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ShellError::Failed("no server holds its volume".into())))
    }

    /// Adds the chunks of what changed since change-log position `since`: entries put
    /// (and the manifests they name), and whatever a rename moved (walked again at its
    /// new path). Returns the position to read from next time.
    pub(crate) async fn catch_up(
        &self,
        mut since: u64,
        refs: &mut Refs,
    ) -> Result<u64, ShellError> {
        loop {
            let query = [
                ("op", "meta.events".to_string()),
                ("since", since.to_string()),
                ("limit", EVENTS_PAGE.to_string()),
            ];
            let Some(page) = self.get::<Events>(self.url("/", true), &query).await? else {
                fail!("{}: the filer has no change log", self.base);
            };
            for to in refs.add_changes(&page) {
                say(format!(
                    "volume.fsck: {to} was renamed meanwhile: reading it again"
                ));
                self.walk(&to, refs).await?;
            }
            self.expand(refs).await;
            if page.next <= since {
                return Ok(since);
            }
            since = page.next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_name_by_name() {
        let shell = Shell::new(vec!["m:9333".into()], "test".into());
        let flags = Flags::parse(&["-filer=127.0.0.1:8888"]).unwrap();
        let f = Filer::new(&shell, &flags).unwrap();
        assert_eq!(f.url("/", true).path(), "/");
        assert_eq!(f.url("/a b/c", true).path(), "/a%20b/c/");
        assert_eq!(f.url("/a/100%/x?y#z", false).path(), "/a/100%25/x%3Fy%23z");
    }

    #[test]
    fn changes_add_put_entries_and_name_renamed_paths() {
        // As the filer's `?op=meta.events` answers (`filer/src/events.rs`).
        let page: Events = serde_json::from_value(serde_json::json!({
            "next": 7,
            "events": [
                {"seq": 5, "tsNs": 1, "changes": [
                    {"op": "put", "path": "/new", "data": "AQ==", "entry": {
                        "FullPath": "/new", "Mode": 432, "chunks": [
                            {"file_id": "5,0a01020304", "offset": 0, "size": 3,
                             "modified_ts_ns": 1, "e_tag": "", "is_chunk_manifest": false,
                             "fid": {"volume_id": 5, "file_key": 10, "cookie": 16909060}}
                        ]}}
                ]},
                {"seq": 6, "tsNs": 2, "changes": [
                    {"op": "rename", "from": "/a", "to": "/b"},
                    {"op": "delete", "path": "/c"},
                    {"op": "kvPut", "key": "eA==", "value": ""}
                ]}
            ]
        }))
        .unwrap();
        let mut refs = Refs::default();
        assert_eq!(refs.add_changes(&page), ["/b"]);
        assert_eq!(refs.by_volume[&5][&10], 0x0102_0304);
        assert_eq!(page.next, 7);
    }

    #[test]
    fn entries_and_manifests_add_their_chunks_once() {
        let e: Entry = serde_json::from_value(serde_json::json!({
            "FullPath": "/d/f", "Mode": 432,
            "chunks": [
                {"file_id": "3,01637037d6", "is_chunk_manifest": false},
                {"file_id": "4,02aabbccdd", "is_chunk_manifest": true},
                {"file_id": "nonsense"}
            ]
        }))
        .unwrap();
        let mut refs = Refs::default();
        refs.add_entry(&e);
        refs.add_entry(&e);
        assert_eq!(refs.chunks(), 2);
        assert_eq!(refs.by_volume[&3][&1], 0x637037d6);
        assert_eq!(refs.todo.len(), 1, "a manifest is expanded once");
        assert_eq!(refs.bad.len(), 2);
        let dir: Entry =
            serde_json::from_value(serde_json::json!({"FullPath": "/d", "Mode": 2147484152u64}))
                .unwrap();
        assert!(dir.is_dir() && !e.is_dir());
        let blob: ManifestBlob = serde_json::from_str(
            r#"{"version":1,"chunks":[{"fid":"3,05aabbccdd","offset":0,"size":9,"modified_ts_ns":1,"etag":"","is_manifest":false}]}"#,
        )
        .unwrap();
        assert_eq!(blob.chunks[0].fid, "3,05aabbccdd");
    }
}
