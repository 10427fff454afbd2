//! ListObjectVersions: the bucket's current objects and its `.versions` tree walked side
//! by side in key order (the trees mirror each other), each key's current version
//! first, then its older versions and delete markers newest first; prefix, delimiter
//! (common prefixes), max-keys and `key-marker` + `version-id-marker` paging.

use kelp_filer::entry::Entry;
use s3s::dto::*;
use s3s::{S3Request, S3Response};

use super::{id_of, is_delete_marker};
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::keys::VERSION_SEP;
use crate::list::{encoder, max_keys};
use crate::meta;
use crate::walk::{Bound, Item, Walker, has_objects};

/// One step of a walk: a common prefix, or a version (current or archived) of `key`.
enum Elem {
    Prefix(String),
    Version { key: String, entry: Box<Entry> },
}

impl Elem {
    fn sort_key(&self) -> &str {
        match self {
            Elem::Prefix(p) => p,
            Elem::Version { key, .. } => key,
        }
    }
}

/// One of the two trees being walked.
struct Source {
    walker: Walker,
    root: String,
    /// The `.versions` tree: file names end in `<VERSION_SEP><version name>`.
    archive: bool,
    head: Option<Elem>,
}

/// The key an item of a tree stands for.
fn logical_key(raw: &str, archive: bool, is_dir: bool) -> &str {
    if archive && !is_dir {
        raw.rfind(VERSION_SEP).map_or(raw, |i| &raw[..i])
    } else {
        raw
    }
}

/// What a listing page asks for.
struct Query<'a> {
    bucket: &'a str,
    prefix: &'a str,
    delimiter: Option<&'a str>,
    /// Keys and common prefixes must pass this.
    start: Bound,
}

impl Gateway {
    /// The next element of `src`: descends into directories, rolls common prefixes up.
    async fn pull(&self, src: &mut Source, q: &Query<'_>) -> GatewayResult<Option<Elem>> {
        let bucket_dir = self.paths.bucket(q.bucket);
        loop {
            let Some(item) = src.walker.next().await? else {
                return Ok(None);
            };
            let (raw, entry, is_dir) = match item {
                Item::Object { key, entry } => (key, entry, false),
                Item::Dir { key, entry } => (key, entry, true),
            };
            if is_dir && q.prefix.starts_with(raw.as_str()) {
                src.walker.enter(raw, entry);
                continue;
            }
            let key = logical_key(&raw, src.archive, is_dir).to_string();
            if !key.starts_with(q.prefix) {
                if key.as_str() > q.prefix {
                    return Ok(None);
                }
                continue;
            }
            let cp = q.delimiter.and_then(|d| {
                key[q.prefix.len()..]
                    .find(d)
                    .map(|i| key[..q.prefix.len() + i + d.len()].to_string())
            });
            match cp {
                None if is_dir => src.walker.enter(raw, entry),
                None => {
                    return Ok(Some(Elem::Version {
                        key,
                        entry: Box::new(entry),
                    }));
                }
                Some(cp) => {
                    if is_dir && !has_objects(&self.filer, &bucket_dir, &entry, &raw).await? {
                        continue;
                    }
                    // Nothing under the prefix comes again from this tree: a directory
                    // that is the whole prefix is simply not entered; otherwise the
                    // walk starts again past the prefix.
                    if !(is_dir && cp == raw) {
                        src.walker = self.walker_in(
                            &src.root,
                            q.bucket,
                            q.prefix,
                            Some(Bound::past_prefix(&cp)),
                        );
                    }
                    if q.start.passes(cp.as_bytes()) {
                        return Ok(Some(Elem::Prefix(cp)));
                    }
                }
            }
        }
    }

    /// Drops what `src` holds under the prefix `cp` just returned.
    async fn skip_prefix(&self, src: &mut Source, q: &Query<'_>, cp: &str) -> GatewayResult<()> {
        match &src.head {
            // The same prefix from this tree: it has already moved past it.
            Some(Elem::Prefix(p)) if p == cp => src.head = self.pull(src, q).await?,
            Some(h) if h.sort_key().starts_with(cp) => {
                src.walker =
                    self.walker_in(&src.root, q.bucket, q.prefix, Some(Bound::past_prefix(cp)));
                src.head = self.pull(src, q).await?;
            }
            _ => {}
        }
        Ok(())
    }

    pub async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> GatewayResult<S3Response<ListObjectVersionsOutput>> {
        let i = req.input;
        self.bucket_entry(&i.bucket).await?;
        let enc = encoder(i.encoding_type.as_ref());
        let prefix = i.prefix.clone().unwrap_or_default();
        let delimiter = i.delimiter.as_deref().filter(|d| !d.is_empty());
        let max = max_keys(i.max_keys)?;
        let key_marker = i.key_marker.clone().filter(|m| !m.is_empty());
        let vid_marker = i.version_id_marker.clone().filter(|m| !m.is_empty());
        if vid_marker.is_some() && key_marker.is_none() {
            return Err(GatewayError::InvalidArgument(
                "a version-id-marker needs a key-marker".into(),
            ));
        }
        if let Some(v) = &vid_marker {
            super::check_id(v)?;
        }
        // Where each tree starts: from the marker key itself when a version of it is
        // the marker, else after all of it.
        let (start, archive_start) = match &key_marker {
            Some(k) if k.as_str() >= prefix.as_str() => match vid_marker {
                Some(_) => {
                    let b = Bound {
                        key: k.as_bytes().to_vec(),
                        inclusive: true,
                    };
                    (b.clone(), b)
                }
                None => (
                    Bound::after(k),
                    Bound::past_prefix(&format!("{k}{VERSION_SEP}")),
                ),
            },
            _ => {
                let b = Bound {
                    key: prefix.as_bytes().to_vec(),
                    inclusive: true,
                };
                (b.clone(), b)
            }
        };
        let q = Query {
            bucket: &i.bucket,
            prefix: &prefix,
            delimiter,
            start: start.clone(),
        };
        let bucket_root = self.paths.bucket(&i.bucket);
        let versions_root = self.paths.versions(&i.bucket);
        let mut cur = Source {
            walker: self.walker_in(&bucket_root, &i.bucket, &prefix, Some(start)),
            root: bucket_root,
            archive: false,
            head: None,
        };
        let mut arch = Source {
            walker: self.walker_in(&versions_root, &i.bucket, &prefix, Some(archive_start)),
            root: versions_root,
            archive: true,
            head: None,
        };
        cur.head = self.pull(&mut cur, &q).await?;
        arch.head = self.pull(&mut arch, &q).await?;

        let mut page = Page::default();
        // Skipping the marker key's versions up to and including the marker version.
        let mut skipping = vid_marker.clone();
        loop {
            let take_cur = match (&cur.head, &arch.head) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                // Ties: a key's current version comes before its older ones.
                (Some(a), Some(b)) => a.sort_key() <= b.sort_key(),
            };
            let src = if take_cur { &mut cur } else { &mut arch };
            let Some(elem) = src.head.take() else {
                break;
            };
            src.head = self.pull(src, &q).await?;
            match elem {
                Elem::Prefix(cp) => {
                    if page.count == max {
                        page.truncated = true;
                        break;
                    }
                    self.skip_prefix(&mut cur, &q, &cp).await?;
                    self.skip_prefix(&mut arch, &q, &cp).await?;
                    page.next = Some((cp.clone(), None));
                    page.prefixes.push(cp);
                    page.count += 1;
                }
                Elem::Version { key, entry } => {
                    let id = id_of(&entry);
                    if let Some(marker) = &skipping {
                        if Some(&key) == key_marker.as_ref() {
                            if *marker == id {
                                skipping = None;
                            }
                            page.latest_seen = Some(key);
                            continue;
                        }
                        skipping = None;
                    }
                    if page.count == max {
                        page.truncated = true;
                        break;
                    }
                    let latest = page.latest_seen.as_ref() != Some(&key);
                    page.latest_seen = Some(key.clone());
                    page.next = Some((key.clone(), Some(id.clone())));
                    page.count += 1;
                    if is_delete_marker(&entry) {
                        page.markers.push(DeleteMarkerEntry {
                            key: Some(enc(&key)),
                            version_id: Some(id),
                            is_latest: Some(latest),
                            last_modified: Some(meta::last_modified(&entry)),
                            owner: Some(crate::gateway::owner_of(&entry)),
                        });
                    } else {
                        page.versions.push(ObjectVersion {
                            key: Some(enc(&key)),
                            version_id: Some(id),
                            is_latest: Some(latest),
                            e_tag: Some(meta::etag_dto(&entry)),
                            last_modified: Some(meta::last_modified(&entry)),
                            size: Some(i64::try_from(meta::size(&entry)).unwrap_or(i64::MAX)),
                            storage_class: Some(ObjectVersionStorageClass::from_static(
                                ObjectVersionStorageClass::STANDARD,
                            )),
                            owner: Some(crate::gateway::owner_of(&entry)),
                            ..Default::default()
                        });
                    }
                }
            }
        }
        let next = page.next.filter(|_| page.truncated);
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(i.bucket.clone()),
            prefix: Some(enc(&prefix)),
            key_marker: Some(i.key_marker.as_deref().map(enc).unwrap_or_default()),
            version_id_marker: Some(i.version_id_marker.clone().unwrap_or_default()),
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.truncated),
            next_key_marker: next.as_ref().map(|(k, _)| enc(k)),
            next_version_id_marker: next.and_then(|(_, v)| v),
            delimiter: delimiter.map(enc),
            encoding_type: i.encoding_type.clone(),
            versions: Some(page.versions),
            delete_markers: Some(page.markers),
            common_prefixes: Some(
                page.prefixes
                    .iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(p)),
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }
}

/// A page being filled.
#[derive(Default)]
struct Page {
    versions: Vec<ObjectVersion>,
    markers: Vec<DeleteMarkerEntry>,
    prefixes: Vec<String>,
    count: usize,
    truncated: bool,
    /// The key whose latest version has gone by (on this page or, when resuming inside
    /// a key, on an earlier one).
    latest_seen: Option<String>,
    /// The last key (or prefix) and version id returned.
    next: Option<(String, Option<String>)>,
}
