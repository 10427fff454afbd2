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

/// A position taken by a batch that rolled back is settled with a marker; a batch that
/// commits after a later one is waited for, not skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_settles_gaps_and_waits_for_late_commits() {
    let pg = PgServer::start();
    let store = Arc::new(PostgresStore::open(&pg.url(), "kelp").await.unwrap());
    let put = |p: &str| Mutation::Put(Entry::new_dir(p, 1));
    // A rolled-back writer: its position is gone for good.
    let mut raw = store.client().await.unwrap();
    raw.query_one("SELECT nextval('kelp.log_seq')", &[])
        .await
        .unwrap();
    store.apply(vec![put("/a")]).await.unwrap();
    let page = store.log_read(0, 10).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!((page.events[0].seq, page.next), (2, 2));

    // A slow writer holds position 3 uncommitted while position 4 commits.
    let slow = raw.transaction().await.unwrap();
    let record = crate::store::log::encode(1, &[put("/slow")])
        .unwrap()
        .unwrap();
    slow.execute(&store.sql.log.append, &[&1i64, &record])
        .await
        .unwrap();
    store.apply(vec![put("/b")]).await.unwrap();
    let follower = {
        let store = store.clone();
        tokio::spawn(async move { store.log_read(2, 10).await })
    };
    // The follower must wait for position 3 whatever the timing: it cannot finish
    // before the slow writer does.
    tokio::task::yield_now().await;
    assert!(
        !follower.is_finished(),
        "the follower returned past an open batch"
    );
    slow.commit().await.unwrap();
    let page = follower.await.unwrap().unwrap();
    let paths: Vec<_> = page
        .events
        .iter()
        .map(|e| match &e.changes[0] {
            Mutation::Put(e) => e.path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(paths, ["/slow", "/b"]);
    assert_eq!(page.next, 4);
}

/// Every connection plans with sequential scans and sorts priced out, on top of the
/// options the URL gives; a listing of a freshly filled directory, whose statistics
/// are not gathered yet, then walks the key index instead of sorting the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_plan_by_key_even_before_statistics() {
    let pg = PgServer::start();
    let url = format!("{}?options=-c%20statement_timeout%3D60000", pg.url());
    let store = PostgresStore::open(&url, "plans").await.unwrap();
    let client = store.client().await.unwrap();
    for (setting, want) in [
        ("enable_sort", "off"),
        ("enable_seqscan", "off"),
        ("statement_timeout", "1min"),
    ] {
        let row = client
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), want, "{setting}");
    }
    let mut muts = vec![Mutation::Put(Entry::new_dir("/d", 1))];
    muts.extend((0..3000).map(|i| Mutation::Put(Entry::new_file(format!("/d/f{i:05}"), 1))));
    store.apply(muts).await.unwrap();
    let (start, end) = list_bounds(&codec::list_range("/d", None, false, None));
    let plan: Vec<String> = client
        .query(
            &format!("EXPLAIN {}", store.sql.list.replace("$3", "1001")),
            &[&start, &end.unwrap()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("Index Scan using entries_pkey"), "{plan}");
    assert!(!plan.contains("Sort"), "{plan}");
}
