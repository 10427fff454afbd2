//! ListObjects (v1), ListObjectsV2 and ListObjectVersions over a [`Walker`]: prefix,
//! delimiter (common prefixes), max-keys, marker / start-after / continuation tokens and
//! `encoding-type=url`, in S3's bytewise key order across the whole tree. (Versions are
//! listed by `versions/list.rs`.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kelp_filer::entry::Entry;
use s3s::S3Request;
use s3s::S3Response;
use s3s::dto::*;

use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::meta;
use crate::walk::{Bound, Item, Walker, has_objects};

/// What one listing page asks for.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: usize,
    /// Keys (and common prefixes) must sort after this.
    pub after: Option<String>,
}

impl ListParams {
    /// A page as a listing request asks for it (`max-keys` checked).
    fn of(
        prefix: &Option<String>,
        delimiter: &Option<String>,
        max: Option<i32>,
        after: Option<String>,
    ) -> GatewayResult<ListParams> {
        Ok(ListParams {
            prefix: prefix.clone().unwrap_or_default(),
            delimiter: delimiter.clone(),
            max_keys: max_keys(max)?,
            after,
        })
    }
}

/// One listing page.
#[derive(Debug, Default)]
pub struct ListPage {
    pub objects: Vec<(String, Entry)>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or common prefix returned: where the next page starts.
    pub last: Option<String>,
}

/// S3's `encoding-type=url`: percent-encode all but unreserved characters and `/`.
pub fn url_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

pub(crate) fn encoder(t: Option<&EncodingType>) -> fn(&str) -> String {
    match t {
        Some(t) if t.as_str().eq_ignore_ascii_case(EncodingType::URL) => url_encode,
        _ => str::to_string,
    }
}

pub fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last.as_bytes())
}

pub fn decode_token(t: &str) -> GatewayResult<String> {
    URL_SAFE_NO_PAD
        .decode(t.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| GatewayError::InvalidArgument("the continuation token is not valid".into()))
}

pub(crate) fn max_keys(m: Option<i32>) -> GatewayResult<usize> {
    match m {
        None => Ok(1000),
        Some(n) if n < 0 => Err(GatewayError::InvalidArgument(
            "max-keys must not be negative".into(),
        )),
        Some(n) => Ok(usize::try_from(n).unwrap_or(1000).min(1000)),
    }
}

impl Gateway {
    fn walker_for(&self, bucket: &str, prefix: &str, bound: Option<Bound>) -> Walker {
        self.walker_in(&self.paths.bucket(bucket), bucket, prefix, bound)
    }

    /// A walker of the tree at `root` (the bucket's directory, or its `.versions`
    /// directory, which mirrors the bucket's key hierarchy) from `prefix` on.
    pub(crate) fn walker_in(
        &self,
        root: &str,
        bucket: &str,
        prefix: &str,
        bound: Option<Bound>,
    ) -> Walker {
        // Every key with this prefix lives in the directory named by the prefix up to
        // its last '/', under a name starting with the rest.
        let (dir_key, name) = match prefix.rfind('/') {
            Some(i) => (&prefix[..=i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let dir = match dir_key.strip_suffix('/') {
            Some(d) if !d.is_empty() => format!("{root}/{d}"),
            _ => root.to_string(),
        };
        Walker::new(
            self.filer.clone(),
            self.paths.bucket(bucket),
            dir,
            dir_key.to_string(),
            (!name.is_empty()).then(|| name.to_string()),
            bound,
            name.is_empty(),
        )
    }

    /// One page of keys and common prefixes in S3 order.
    pub async fn list_page(&self, bucket: &str, p: &ListParams) -> GatewayResult<ListPage> {
        self.bucket_entry(bucket).await?;
        let prefix = p.prefix.as_str();
        // Prefixes whose directory part no key can have ('//', '..', a leading '/')
        // list nothing.
        let unreachable = match prefix.rfind('/') {
            None => false,
            Some(i) => {
                let dir = &prefix[..i];
                dir.is_empty() || dir.ends_with('/') || crate::keys::check_key(dir).is_err()
            }
        };
        // max-keys=0 asks for nothing: an empty, complete page (as S3 answers).
        if unreachable || prefix.contains('\0') || p.max_keys == 0 {
            return Ok(ListPage::default());
        }
        let start = match &p.after {
            Some(a) if a.as_str() >= prefix => Bound::after(a),
            _ => Bound {
                key: prefix.as_bytes().to_vec(),
                inclusive: true,
            },
        };
        let delim = p.delimiter.as_deref().filter(|d| !d.is_empty());
        let bucket_dir = self.paths.bucket(bucket);
        let mut walker = self.walker_for(bucket, prefix, Some(start.clone()));
        let mut page = ListPage::default();
        let mut count = 0usize;
        loop {
            let Some(item) = walker.next().await? else {
                break;
            };
            let (key, entry, is_dir) = match item {
                Item::Object { key, entry } => (key, entry, false),
                Item::Dir { key, entry } => (key, entry, true),
            };
            if is_dir && prefix.starts_with(key.as_str()) {
                walker.enter(key, entry);
                continue;
            }
            if !key.starts_with(prefix) {
                if key.as_str() > prefix {
                    break;
                }
                continue;
            }
            let cp = delim.and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|i| key[..prefix.len() + i + d.len()].to_string())
            });
            match cp {
                None if is_dir => walker.enter(key, entry),
                None => {
                    if count == p.max_keys {
                        page.truncated = true;
                        break;
                    }
                    page.last = Some(key.clone());
                    page.objects.push((key, entry));
                    count += 1;
                }
                Some(cp) => {
                    if !start.passes(cp.as_bytes()) {
                        // Rolled into a prefix already returned: skip all of it.
                        if cp.len() < key.len() {
                            walker = self.walker_for(bucket, prefix, Some(Bound::past_prefix(&cp)));
                        }
                        continue;
                    }
                    if is_dir && !has_objects(&self.filer, &bucket_dir, &entry, &key).await? {
                        continue;
                    }
                    if count == p.max_keys {
                        page.truncated = true;
                        break;
                    }
                    page.last = Some(cp.clone());
                    count += 1;
                    let whole_dir = is_dir && cp == key;
                    page.prefixes.push(cp.clone());
                    if !whole_dir {
                        walker = self.walker_for(bucket, prefix, Some(Bound::past_prefix(&cp)));
                    }
                }
            }
        }
        Ok(page)
    }

    pub async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> GatewayResult<S3Response<ListObjectsOutput>> {
        let i = req.input;
        let enc = encoder(i.encoding_type.as_ref());
        let params = ListParams::of(
            &i.prefix,
            &i.delimiter,
            i.max_keys,
            i.marker.clone().filter(|m| !m.is_empty()),
        )?;
        let page = self.list_page(&i.bucket, &params).await?;
        let out = ListObjectsOutput {
            name: Some(i.bucket.clone()),
            prefix: Some(enc(&params.prefix)),
            marker: Some(i.marker.as_deref().map(enc).unwrap_or_default()),
            max_keys: Some(i32::try_from(params.max_keys).unwrap_or(1000)),
            is_truncated: Some(page.truncated),
            next_marker: page.last.as_deref().filter(|_| page.truncated).map(enc),
            delimiter: i.delimiter.as_deref().filter(|d| !d.is_empty()).map(enc),
            encoding_type: i.encoding_type.clone(),
            contents: Some(objects(&page, enc, true)),
            common_prefixes: Some(prefixes(&page, enc)),
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }

    pub async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> GatewayResult<S3Response<ListObjectsV2Output>> {
        let i = req.input;
        let enc = encoder(i.encoding_type.as_ref());
        let after = match &i.continuation_token {
            Some(t) => Some(decode_token(t)?),
            None => i.start_after.clone().filter(|s| !s.is_empty()),
        };
        let params = ListParams::of(&i.prefix, &i.delimiter, i.max_keys, after)?;
        let page = self.list_page(&i.bucket, &params).await?;
        let contents = objects(&page, enc, i.fetch_owner == Some(true));
        let common = prefixes(&page, enc);
        let out = ListObjectsV2Output {
            name: Some(i.bucket.clone()),
            prefix: Some(enc(&params.prefix)),
            max_keys: Some(i32::try_from(params.max_keys).unwrap_or(1000)),
            key_count: Some(i32::try_from(contents.len() + common.len()).unwrap_or(i32::MAX)),
            continuation_token: i.continuation_token.clone(),
            is_truncated: Some(page.truncated),
            next_continuation_token: page
                .last
                .as_deref()
                .filter(|_| page.truncated)
                .map(encode_token),
            delimiter: i.delimiter.as_deref().filter(|d| !d.is_empty()).map(enc),
            encoding_type: i.encoding_type.clone(),
            start_after: i.start_after.as_deref().map(enc),
            contents: Some(contents),
            common_prefixes: Some(common),
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }
}

/// The listed objects; `with_owner`: v1 always names the owner, v2 only with
/// `fetch-owner=true`.
fn objects(page: &ListPage, enc: fn(&str) -> String, with_owner: bool) -> Vec<Object> {
    page.objects
        .iter()
        .map(|(k, e)| Object {
            key: Some(enc(k)),
            e_tag: Some(meta::etag_dto(e)),
            last_modified: Some(meta::last_modified(e)),
            size: Some(i64::try_from(meta::size(e)).unwrap_or(i64::MAX)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            owner: with_owner.then(|| crate::gateway::owner_of(e)),
            ..Default::default()
        })
        .collect()
}

pub(crate) fn prefixes(page: &ListPage, enc: fn(&str) -> String) -> Vec<CommonPrefix> {
    page.prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding() {
        assert_eq!(url_encode("a b+c/é%~_-.x"), "a%20b%2Bc/%C3%A9%25~_-.x");
    }

    #[test]
    fn tokens() {
        let t = encode_token("dir/ké y");
        assert_eq!(decode_token(&t).unwrap(), "dir/ké y");
        assert!(decode_token("!!!").is_err());
    }
}
