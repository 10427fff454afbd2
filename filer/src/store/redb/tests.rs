//! Unit tests of `RedbStore` internals: the format version check and damaged data.

use super::*;

#[tokio::test]
async fn refuses_unknown_format_version() {
    let dir = tempfile::tempdir().unwrap();
    drop(RedbStore::open(dir.path()).unwrap());
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_FORMAT, 99)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = RedbStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("version 99")),
        "{err}"
    );
}

#[tokio::test]
async fn damaged_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    store
        .apply(vec![Mutation::Put(Entry::new_file("/ok", 1))])
        .await
        .unwrap();
    {
        let txn = store.db.begin_write().unwrap();
        let mut t = txn.open_table(ENTRIES).unwrap();
        t.insert(b"/\0bad".as_slice(), b"\x01\xff".as_slice())
            .unwrap();
        t.insert(b"/\0future".as_slice(), b"\x07".as_slice())
            .unwrap();
        drop(t);
        txn.commit().unwrap();
    }
    assert!(matches!(
        store.find("/bad").await,
        Err(StoreError::Corrupt(_))
    ));
    let err = store.find("/future").await.unwrap_err();
    assert!(err.to_string().contains("version 7"), "{err}");
    assert!(matches!(
        store.list("/", &ListOptions::default()).await,
        Err(StoreError::Corrupt(_))
    ));
    // Damage blocks mutations touching it rather than corrupting the counts.
    assert!(matches!(
        store.apply(vec![Mutation::DeleteTree("/".into())]).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(store.find("/ok").await.unwrap().is_some());
}

#[tokio::test]
async fn missing_count_is_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let mut e = Entry::new_file("/f", 1);
    e.chunks.push(crate::entry::FileChunk {
        fid: "1,01".into(),
        size: 1,
        ..Default::default()
    });
    store.apply(vec![Mutation::Put(e)]).await.unwrap();
    {
        let txn = store.db.begin_write().unwrap();
        txn.open_table(CHUNK_REFS).unwrap().remove("1,01").unwrap();
        txn.commit().unwrap();
    }
    store
        .apply(vec![Mutation::Delete("/f".into())])
        .await
        .unwrap();
    assert!(store.gc_pending(10).await.unwrap().is_empty());
}
