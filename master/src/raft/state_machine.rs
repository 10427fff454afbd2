//! The redb-backed replicated state machine: `RaftStateMachine` + `RaftSnapshotBuilder` over
//! [`MasterState`], persisted (with the last applied log id and membership) on every apply,
//! and snapshotted as JSON.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::RwLock;

use openraft::EntryPayload;
use openraft::LogId;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use openraft::Snapshot;
use openraft::SnapshotMeta;
use openraft::StorageError;
use openraft::StoredMembership;
use openraft::storage::RaftStateMachine;
use redb::ReadableDatabase;
use serde::Deserialize;
use serde::Serialize;

use super::CommandResponse;
use super::MasterState;
use super::NodeId;
use super::Peer;
use super::TypeConfig;
use super::error::Op;
use super::error::StoreError;
use super::store::Db;
use super::store::META;
use super::store::blocking;
use super::store::get_json;
use super::store::put_json;
use super::store::read_meta;

const KEY_STATE_MACHINE: &str = "state_machine";
const KEY_SNAPSHOT_META: &str = "snapshot_meta";
const KEY_SNAPSHOT_DATA: &str = "snapshot_data";

/// Version of the snapshot payload (it crosses the wire to other masters).
pub const SNAPSHOT_VERSION: u32 = 1;

type Entry = openraft::Entry<TypeConfig>;
type Meta = SnapshotMeta<NodeId, Peer>;

/// The persisted state machine record: the state and how far it has applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Applied {
    pub(crate) state: MasterState,
    pub(crate) last_applied: Option<LogId<NodeId>>,
    pub(crate) membership: StoredMembership<NodeId, Peer>,
}

/// The snapshot payload.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotPayload {
    version: u32,
    state: MasterState,
}

/// A read handle on the applied state, usable while openraft owns the state machine.
#[derive(Debug, Clone, Default)]
pub struct AppliedState(Arc<RwLock<Applied>>);

impl AppliedState {
    fn get(&self) -> Applied {
        // A poisoned lock still holds the last fully written value: writers replace it whole.
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, applied: Applied) {
        match self.0.write() {
            Ok(mut g) => *g = applied,
            Err(poisoned) => *poisoned.into_inner() = applied,
        }
    }

    /// The state as of the last applied entry on this node.
    pub fn state(&self) -> MasterState {
        self.get().state
    }

    /// The last log id applied on this node.
    pub fn last_applied(&self) -> Option<LogId<NodeId>> {
        self.get().last_applied
    }
}

/// The state machine half of the storage. Owned by openraft once the node runs; read the
/// applied state through [`StateMachineStore::applied`].
pub struct StateMachineStore {
    db: Arc<Db>,
    applied: AppliedState,
}

impl StateMachineStore {
    pub(crate) async fn load(db: Arc<Db>) -> Result<Self, StoreError> {
        let applied: Option<Applied> = blocking(&db, |db| read_meta(db, KEY_STATE_MACHINE)).await?;
        Ok(Self {
            db,
            applied: AppliedState(Arc::new(RwLock::new(applied.unwrap_or_default()))),
        })
    }

    /// A handle that keeps showing the applied state after the store moves into openraft.
    pub fn applied(&self) -> AppliedState {
        self.applied.clone()
    }

    async fn persist(&self, applied: Applied) -> Result<(), StoreError> {
        let record = applied.clone();
        blocking(&self.db, move |db| {
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                put_json(&mut meta, KEY_STATE_MACHINE, &record)?;
            }
            txn.commit()?;
            Ok(())
        })
        .await?;
        self.applied.set(applied);
        Ok(())
    }
}

/// Builds snapshots from a copy of the state taken when the builder was made.
pub struct SnapshotBuilder {
    db: Arc<Db>,
    applied: Applied,
}

fn snapshot_id(last: Option<&LogId<NodeId>>) -> String {
    let suffix: u32 = rand::random();
    match last {
        Some(l) => format!("{}-{}-{suffix:08x}", l.leader_id.term, l.index),
        None => format!("none-{suffix:08x}"),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let payload = SnapshotPayload {
            version: SNAPSHOT_VERSION,
            state: self.applied.state.clone(),
        };
        let data = serde_json::to_vec(&payload)
            .map_err(|e| StoreError::from(e).into_raft(Op::WriteSnapshot))?;
        let meta = Meta {
            last_log_id: self.applied.last_applied,
            last_membership: self.applied.membership.clone(),
            snapshot_id: snapshot_id(self.applied.last_applied.as_ref()),
        };
        let (m, d) = (meta.clone(), data.clone());
        blocking(&self.db, move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(META)?;
                let current: Option<Meta> = get_json(&table, KEY_SNAPSHOT_META)?;
                // Never replace a newer snapshot (e.g. one installed meanwhile).
                if current.is_none_or(|c| c.last_log_id <= m.last_log_id) {
                    put_json(&mut table, KEY_SNAPSHOT_META, &m)?;
                    table.insert(KEY_SNAPSHOT_DATA, d.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| e.into_raft(Op::WriteSnapshot))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Peer>), StorageError<NodeId>> {
        let a = self.applied.get();
        Ok((a.last_applied, a.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = self.applied.get();
        let mut responses = Vec::new();
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            let resp = match entry.payload {
                EntryPayload::Blank => CommandResponse::Empty,
                EntryPayload::Normal(cmd) => applied.state.apply(&cmd),
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    CommandResponse::Empty
                }
            };
            responses.push(resp);
        }
        if !responses.is_empty() {
            self.persist(applied)
                .await
                .map_err(|e| e.into_raft(Op::WriteStateMachine))?;
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            applied: self.applied.get(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let payload: SnapshotPayload = serde_json::from_slice(&data)
            .map_err(|e| StoreError::from(e).into_raft(Op::ReadSnapshot))?;
        if payload.version != SNAPSHOT_VERSION {
            let e = StoreError::Version {
                found: payload.version,
                known: SNAPSHOT_VERSION,
            };
            return Err(e.into_raft(Op::ReadSnapshot));
        }
        let applied = Applied {
            state: payload.state,
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        let (record, m) = (applied.clone(), meta.clone());
        blocking(&self.db, move |db| {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(META)?;
                put_json(&mut table, KEY_STATE_MACHINE, &record)?;
                put_json(&mut table, KEY_SNAPSHOT_META, &m)?;
                table.insert(KEY_SNAPSHOT_DATA, data.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| e.into_raft(Op::WriteSnapshot))?;
        self.applied.set(applied);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        blocking(&self.db, |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(META)?;
            let Some(meta) = get_json::<Meta>(&table, KEY_SNAPSHOT_META)? else {
                return Ok(None);
            };
            let Some(data) = table.get(KEY_SNAPSHOT_DATA)?.map(|v| v.value().to_vec()) else {
                return Err(StoreError::Corrupt(format!(
                    "snapshot {} has no data",
                    meta.snapshot_id
                )));
            };
            Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            }))
        })
        .await
        .map_err(|e| e.into_raft(Op::ReadSnapshot))
    }
}
