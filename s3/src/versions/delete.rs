//! Deleting in a versioned bucket: without a version id a delete marker becomes the
//! latest version (the current object moves under `.versions`); with one, that version
//! goes for good, and when it was the latest the next newest real version becomes
//! current again. Locked versions (retention, legal hold) are refused.

use kelp_filer::FilerError;
use kelp_filer::entry::Entry;
use kelp_filer::store::Mutation;

use super::commit::MAX_TRIES;
use super::{
    DELETE_MARKER_KEY, Found, NULL, State, VERSION_ID_KEY, is_delete_marker, name_at, new_id,
    now_ns,
};
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;

/// What a delete did, for the `x-amz-version-id` / `x-amz-delete-marker` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

/// Retries a batch-building step while concurrent requests change what it read.
macro_rules! retrying {
    ($key:expr, $body:block) => {{
        let mut result = Err(GatewayError::ConditionalRequestConflict(format!(
            "{} kept changing during the delete: retry",
            $key
        )));
        for _ in 0..MAX_TRIES {
            match $body {
                Err(GatewayError::Filer(FilerError::PreconditionFailed(_)))
                | Err(GatewayError::Filer(FilerError::NotFound(_))) => continue,
                other => {
                    result = other;
                    break;
                }
            }
        }
        result
    }};
}

impl Gateway {
    /// DeleteObject (and each key of DeleteObjects) in a bucket in `state`.
    pub(crate) async fn delete_any(
        &self,
        bucket: &str,
        state: State,
        key: &str,
        version_id: Option<&str>,
        bypass_governance: bool,
    ) -> GatewayResult<Deleted> {
        let op = self.paths.object(bucket, key)?;
        if state.is_versioned() && !op.dir_marker {
            return self
                .delete_versioned(bucket, state, key, version_id, bypass_governance)
                .await;
        }
        match version_id {
            None => {}
            Some(NULL) => {}
            Some(other) => {
                // An unversioned bucket holds only `null` versions.
                super::check_id(other)?;
                return Ok(Deleted {
                    version_id: Some(other.to_string()),
                    delete_marker: false,
                });
            }
        }
        self.delete_key(bucket, &op).await?;
        Ok(Deleted {
            version_id: version_id.map(str::to_string),
            delete_marker: false,
        })
    }

    /// DeleteObject in a versioned bucket (`state` is not `Off`).
    pub(crate) async fn delete_versioned(
        &self,
        bucket: &str,
        state: State,
        key: &str,
        version_id: Option<&str>,
        bypass_governance: bool,
    ) -> GatewayResult<Deleted> {
        let done = match version_id {
            None => retrying!(key, { self.add_delete_marker(bucket, state, key).await }),
            Some(id) => retrying!(key, {
                self.delete_version(bucket, key, id, bypass_governance)
                    .await
            }),
        }?;
        let op = self.paths.object(bucket, key)?;
        if self.filer.find(&op.path).await?.is_none() {
            self.prune(bucket, &op.path).await?;
        }
        Ok(done)
    }

    async fn add_delete_marker(
        &self,
        bucket: &str,
        state: State,
        key: &str,
    ) -> GatewayResult<Deleted> {
        let op = self.paths.object(bucket, key)?;
        let cur = self.find_object(&op).await?;
        let mut muts = self.replacing(bucket, state, key, cur.as_ref()).await?;
        if cur.is_some() {
            muts.push(Mutation::Expect {
                path: op.path.clone(),
                entry: cur,
            });
            muts.push(Mutation::Delete(op.path.clone()));
        }
        let (id, name) = match state {
            State::Enabled => {
                let id = new_id();
                (id.clone(), id)
            }
            State::Suspended | State::Off => (NULL.to_string(), name_at(now_ns(), NULL)),
        };
        let mut marker = Entry::new_file(
            self.paths.version_file(bucket, key, &name),
            crate::copy::now_secs(),
        );
        marker
            .extended
            .insert(VERSION_ID_KEY.into(), id.as_bytes().to_vec());
        marker
            .extended
            .insert(DELETE_MARKER_KEY.into(), b"true".to_vec());
        muts.push(Mutation::Put(marker));
        self.filer.apply_with_parents(muts).await?;
        Ok(Deleted {
            version_id: Some(id),
            delete_marker: true,
        })
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        bypass_governance: bool,
    ) -> GatewayResult<Deleted> {
        let Some(found) = self.find_version(bucket, key, id).await? else {
            // Deleting a version that is not there changes nothing, as in S3.
            return Ok(Deleted {
                version_id: Some(id.to_string()),
                delete_marker: false,
            });
        };
        let e = found.entry().clone();
        let marker = is_delete_marker(&e);
        if !marker {
            crate::retention::check_removable(&e, bypass_governance)?;
        }
        let op = self.paths.object(bucket, key)?;
        let mut muts = vec![
            Mutation::Expect {
                path: e.path.clone(),
                entry: Some(e.clone()),
            },
            Mutation::Delete(e.path.clone()),
        ];
        // The latest version goes: the next newest becomes the latest. A real version
        // moves back to the key's path; a delete marker stays where it is.
        let next = match &found {
            Found::Current(_) => self.archived_versions(bucket, key, 1).await?.pop(),
            Found::Archived(_) => {
                let newest = self.archived_versions(bucket, key, 2).await?;
                let cur = self.find_object(&op).await?;
                match (cur, newest.first()) {
                    (None, Some(first)) if first.path == e.path => newest.get(1).cloned(),
                    _ => None,
                }
            }
        };
        if let Some(n) = next.filter(|n| !is_delete_marker(n)) {
            let mut promoted = n.clone();
            promoted.path = op.path.clone();
            muts.push(Mutation::Expect {
                path: n.path.clone(),
                entry: Some(n.clone()),
            });
            muts.push(Mutation::Delete(n.path));
            if matches!(found, Found::Archived(_)) {
                muts.push(Mutation::Expect {
                    path: op.path.clone(),
                    entry: None,
                });
            }
            muts.push(Mutation::Put(promoted));
        }
        self.filer.apply_with_parents(muts).await?;
        if matches!(found, Found::Archived(_)) {
            self.prune_versions(bucket, &e.path).await?;
        }
        Ok(Deleted {
            version_id: Some(id.to_string()),
            delete_marker: marker,
        })
    }

    /// Removes the empty directories a deleted version file leaves under `.versions`.
    async fn prune_versions(&self, bucket: &str, file: &str) -> GatewayResult<()> {
        let top = self.paths.versions(bucket);
        let mut cur = kelp_filer::path::parent(file).map(str::to_string);
        while let Some(dir) = cur {
            if dir == top || !kelp_filer::path::is_within(&dir, &top) {
                break;
            }
            match self.filer.delete_if(&dir, false, None).await {
                Ok(()) => {}
                Err(FilerError::Conflict(_) | FilerError::NotFound(_)) => break,
                Err(e) => return Err(e.into()),
            }
            cur = kelp_filer::path::parent(&dir).map(str::to_string);
        }
        Ok(())
    }
}
