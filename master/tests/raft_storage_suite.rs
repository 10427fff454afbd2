//! Runs openraft's storage conformance suite against the redb-backed log store and state
//! machine, each case on a fresh `raft.redb` in its own temporary directory.

use kelp_master::raft::LogStore;
use kelp_master::raft::NodeId;
use kelp_master::raft::StateMachineStore;
use kelp_master::raft::TypeConfig;
use kelp_master::raft::open_storage;
use openraft::AnyError;
use openraft::StorageError;
use openraft::StorageIOError;
use openraft::testing::StoreBuilder;
use openraft::testing::Suite;
use tempfile::TempDir;

struct RedbStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RedbStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
        let io = |e: AnyError| StorageError::IO {
            source: StorageIOError::write(e),
        };
        let dir = tempfile::tempdir().map_err(|e| io(AnyError::new(&e)))?;
        let (log, sm) = open_storage(dir.path())
            .await
            .map_err(|e| io(AnyError::new(&e)))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn redb_store_passes_openraft_suite() {
    if let Err(e) = Suite::test_all(RedbStoreBuilder) {
        panic!("openraft storage suite failed: {e}");
    }
}
