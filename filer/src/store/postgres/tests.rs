//! `PostgresStore` on a real PostgreSQL server of the test's own: the conformance suite,
//! persistence across a reopen, and the format version check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kelp_testkit::PgServer;

use super::*;
use crate::store::conformance;

fn open_now(url: &str, schema: &str) -> PostgresStore {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(PostgresStore::open(url, schema))
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let pg = PgServer::start();
    let url = pg.url();
    let n = AtomicUsize::new(0);
    conformance::run_all(&|| {
        // Each check gets a schema of its own: a fresh, empty namespace.
        let schema = format!("conf_{}", n.fetch_add(1, Ordering::Relaxed));
        Arc::new(open_now(&url, &schema)) as Arc<dyn FilerStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_the_namespace_across_reopen_and_refuses_other_formats() {
    let pg = PgServer::start();
    let url = pg.url();
    let store = PostgresStore::open(&url, "kelp").await.unwrap();
    let mut e = Entry::new_file("/a/b.txt", 1);
    e.content = b"hello".to_vec();
    store
        .apply(vec![
            Mutation::Put(Entry::new_dir("/a", 1)),
            Mutation::Put(e.clone()),
        ])
        .await
        .unwrap();
    drop(store);
    let again = PostgresStore::open(&url, "kelp").await.unwrap();
    assert_eq!(again.find("/a/b.txt").await.unwrap(), Some(e));
    let client = again.client().await.unwrap();
    client
        .execute("UPDATE kelp.meta SET value = 99 WHERE name = 'format'", &[])
        .await
        .unwrap();
    let err = PostgresStore::open(&url, "kelp").await.err().unwrap();
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("version 99")),
        "{err}"
    );
    assert!(matches!(
        PostgresStore::open(&url, "Bad-Name").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        PostgresStore::open("not a url", "kelp").await,
        Err(StoreError::Invalid(_))
    ));
}
