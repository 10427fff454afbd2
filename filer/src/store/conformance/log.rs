//! Conformance checks of the change log: each batch that changes something appears once,
//! in order, with exactly its logged changes; guards, leases and failed batches leave
//! no trace; trimming refuses reads from before it; concurrent writers never make a
//! follower miss a batch.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{FilerStore, Mutation, StoreError, apply, dir, expect_err, file, ok};

fn lease(v: &[u8]) -> Mutation {
    Mutation::KvPut(b"lease/test".to_vec(), v.to_vec())
}

pub(super) async fn records_every_batch_in_order(s: Arc<dyn FilerStore>) {
    let empty = ok(s.log_bounds().await, "log_bounds of a new store");
    assert_eq!(
        (empty.trimmed, empty.head),
        (0, 0),
        "a new store's log is empty"
    );
    let page = ok(s.log_read(0, 10).await, "reading an empty log");
    assert!(page.events.is_empty() && page.next == 0, "{page:?}");

    let first = vec![
        Mutation::Put(dir("/d")),
        Mutation::Put(file("/d/f", &["1,01"])),
    ];
    apply(&s, first.clone(), "first batch").await;
    apply(&s, vec![lease(b"x")], "a lease alone").await;
    let guard = Mutation::Expect {
        path: "/d".into(),
        entry: Some(dir("/d")),
    };
    let rename = Mutation::Rename {
        from: "/d".into(),
        to: "/e".into(),
    };
    apply(
        &s,
        vec![guard, lease(b"y"), rename.clone()],
        "guarded rename",
    )
    .await;
    expect_err(
        &s,
        vec![
            Mutation::KvPut(b"k".to_vec(), b"v".to_vec()),
            Mutation::Delete("/nope".into()),
        ],
        "a failing batch",
        |e| matches!(e, StoreError::NotFound(_)),
    )
    .await;
    let last = vec![
        Mutation::KvPut(b"k".to_vec(), b"v".to_vec()),
        Mutation::DeleteTree("/e".into()),
        Mutation::KvDelete(b"k".to_vec()),
    ];
    apply(&s, last.clone(), "last batch").await;

    let page = ok(s.log_read(0, 100).await, "reading the log");
    let changes: Vec<_> = page.events.iter().map(|e| e.changes.clone()).collect();
    assert_eq!(
        changes,
        vec![first, vec![rename], last],
        "the log holds the three changing batches, without guards, leases or the failed batch"
    );
    let seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "positions rise: {seqs:?}"
    );
    assert_eq!(page.next, seqs[2], "next is the last position read");
    let bounds = ok(s.log_bounds().await, "log_bounds");
    assert_eq!(bounds.head, seqs[2], "head is the last position");

    let one = ok(s.log_read(seqs[0], 1).await, "reading one event");
    assert_eq!(one.events.len(), 1);
    assert_eq!(
        one.events[0].seq, seqs[1],
        "reading after the first gives the second"
    );
    let rest = ok(s.log_read(page.next, 10).await, "reading past the end");
    assert!(rest.events.is_empty() && rest.next == page.next, "{rest:?}");
}

pub(super) async fn trimming_refuses_older_reads(s: Arc<dyn FilerStore>) {
    for i in 0..3 {
        apply(&s, vec![Mutation::Put(dir(&format!("/t{i}")))], "a batch").await;
    }
    assert_eq!(ok(s.log_trim(0).await, "trimming nothing"), 0);
    assert_eq!(ok(s.log_read(0, 10).await, "read").events.len(), 3);
    assert_eq!(ok(s.log_trim(i64::MAX).await, "trimming all"), 3);
    let bounds = ok(s.log_bounds().await, "log_bounds after a trim");
    assert!(
        bounds.trimmed >= 3 && bounds.head == bounds.trimmed,
        "{bounds:?}"
    );
    match s.log_read(0, 10).await {
        Err(StoreError::Trimmed { since: 0, trimmed }) => assert_eq!(trimmed, bounds.trimmed),
        other => panic!("reading from before the trim must be refused, got {other:?}"),
    }
    apply(
        &s,
        vec![Mutation::Put(dir("/after"))],
        "a batch after the trim",
    )
    .await;
    let page = ok(
        s.log_read(bounds.trimmed, 10).await,
        "reading from the trim mark",
    );
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].changes, vec![Mutation::Put(dir("/after"))]);
}

pub(super) async fn a_follower_misses_no_concurrent_batch(s: Arc<dyn FilerStore>) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let e = file(
                    &format!("/w{w}-{i}"),
                    &[&format!("{},{:02x}", w + 1, i + 1)],
                );
                s.apply(vec![Mutation::Put(e)]).await?;
            }
            Ok::<(), StoreError>(())
        }));
    }
    let mut seen = BTreeSet::new();
    let mut since = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < WRITERS * EACH {
        assert!(
            Instant::now() < deadline,
            "the follower saw only {} batches",
            seen.len()
        );
        let page = ok(s.log_read(since, 7).await, "following the log");
        assert!(page.next >= since, "next never goes back");
        for ev in &page.events {
            for c in &ev.changes {
                let Mutation::Put(e) = c else {
                    panic!("unexpected change {c:?}");
                };
                assert!(seen.insert(e.path.clone()), "{} seen twice", e.path);
            }
        }
        if page.events.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        since = page.next;
    }
    for t in tasks {
        match t.await {
            Ok(r) => ok(r, "a writer"),
            Err(e) => panic!("a writer task failed: {e}"),
        }
    }
    let page = ok(s.log_read(since, 100).await, "after the writers");
    assert!(
        page.events.is_empty(),
        "nothing beyond the writers' batches"
    );
}
