//! Writing a version: the new object becomes the key's current entry and the one it
//! replaces moves under `.versions` in the same store transaction (a suspended bucket
//! replaces the `null` version instead), retried when a concurrent writer got there
//! first.

use kelp_filer::entry::Entry;
use kelp_filer::store::Mutation;
use kelp_filer::{FilerError, Precondition};

use super::{NULL, State, VERSION_ID_KEY, id_of, new_id};
use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::keys::ObjectPath;

/// Attempts before a write that keeps losing races gives up (409).
pub(super) const MAX_TRIES: usize = 16;

impl Gateway {
    /// Puts `new` (its chunks already stored) as the current object of `key` and
    /// returns it with its version id (`None` in an unversioned bucket). `pre` is the
    /// client's condition on the entry replaced (S3 If-Match / If-None-Match).
    pub(crate) async fn commit_object(
        &self,
        bucket: &str,
        state: State,
        key: &str,
        op: &ObjectPath,
        mut new: Entry,
        pre: Option<Precondition>,
    ) -> GatewayResult<(Entry, Option<String>)> {
        if !state.is_versioned() || op.dir_marker {
            let e = self.filer.put_entry_if(new, pre.as_ref()).await?;
            return Ok((e, None));
        }
        let id = match state {
            State::Enabled => new_id(),
            State::Suspended | State::Off => NULL.to_string(),
        };
        new.extended
            .insert(VERSION_ID_KEY.into(), id.as_bytes().to_vec());
        for _ in 0..MAX_TRIES {
            let cur = self.filer.find(&op.path).await?;
            if let Some(p) = &pre
                && !p.holds(cur.as_ref())
            {
                return Err(GatewayError::PreconditionFailed);
            }
            let mut muts = self.replacing(bucket, state, key, cur.as_ref()).await?;
            muts.push(Mutation::Expect {
                path: op.path.clone(),
                entry: cur,
            });
            muts.push(Mutation::Put(new.clone()));
            match self.filer.apply_with_parents(muts).await {
                Ok(()) => return Ok((new, Some(id))),
                Err(FilerError::PreconditionFailed(_) | FilerError::NotFound(_))
                    if pre.is_none() =>
                {
                    continue;
                }
                Err(FilerError::PreconditionFailed(_)) => {
                    return Err(GatewayError::PreconditionFailed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(GatewayError::ConditionalRequestConflict(format!(
            "{key} kept changing while this version was written: retry"
        )))
    }

    /// What replacing `cur` (the current entry of `key`, if any) takes besides the new
    /// entry: moving `cur` under `.versions`, and in a suspended bucket dropping the
    /// `null` version wherever it is (the current one is simply overwritten).
    pub(super) async fn replacing(
        &self,
        bucket: &str,
        state: State,
        key: &str,
        cur: Option<&Entry>,
    ) -> GatewayResult<Vec<Mutation>> {
        let mut muts = Vec::new();
        if let Some(c) = cur.filter(|c| !c.is_directory) {
            if state == State::Suspended && id_of(c) == NULL {
                // Overwritten in place: its chunks go to the collector.
                crate::retention::check_removable(c, false)?;
            } else {
                muts.push(Mutation::Put(self.archived(bucket, key, c)));
            }
        }
        if state == State::Suspended {
            for e in self.archived_versions(bucket, key, 0).await? {
                if id_of(&e) == NULL {
                    crate::retention::check_removable(&e, false)?;
                    muts.push(Mutation::Delete(e.path));
                }
            }
        }
        Ok(muts)
    }
}
