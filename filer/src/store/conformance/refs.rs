//! Conformance checks for the chunk reference counts and the GC queue: the invariant
//! that a fid is queued exactly when the last entry referencing it goes.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::*;
use crate::store::GcItem;

async fn refs(s: &Arc<dyn FilerStore>, fid: &str) -> u64 {
    ok(s.chunk_refs(fid).await, &format!("chunk_refs({fid})"))
}

async fn pending(s: &Arc<dyn FilerStore>) -> Vec<GcItem> {
    let items = ok(s.gc_pending(usize::MAX).await, "gc_pending");
    assert_eq!(
        ok(s.gc_queue_len().await, "gc_queue_len"),
        items.len() as u64,
        "gc_queue_len counts the queue"
    );
    for w in items.windows(2) {
        assert!(
            w[0].seq < w[1].seq,
            "gc_pending must be in increasing seq order: {items:?}"
        );
    }
    items
}

async fn pending_fids(s: &Arc<dyn FilerStore>) -> BTreeSet<String> {
    let items = pending(s).await;
    let set: BTreeSet<String> = items.iter().map(|i| i.fid.clone()).collect();
    assert_eq!(
        set.len(),
        items.len(),
        "a fid is queued at most once: {items:?}"
    );
    set
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Walks the whole tree and checks every fid in `universe`: its count equals the number
/// of entries listing it, and it is queued only if nothing references it.
async fn check_invariant(s: &Arc<dyn FilerStore>, universe: &[&str]) {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut dirs = vec!["/".to_string()];
    while let Some(d) = dirs.pop() {
        for e in ok(s.list(&d, &ListOptions::default()).await, "list") {
            for fid in e.chunk_fids().collect::<BTreeSet<_>>() {
                *counts.entry(fid.to_string()).or_default() += 1;
            }
            if e.is_directory {
                dirs.push(e.path);
            }
        }
    }
    let queued = pending_fids(s).await;
    for fid in universe {
        let want = counts.get(*fid).copied().unwrap_or(0);
        assert_eq!(
            refs(s, fid).await,
            want,
            "chunk_refs({fid}) must equal the entries listing it"
        );
        if want > 0 {
            assert!(
                !queued.contains(*fid),
                "{fid} is referenced {want} times but queued for deletion"
            );
        }
    }
}

pub(super) async fn shared_chunks_and_overwrites(s: Arc<dyn FilerStore>) {
    let all = ["c1", "c2", "c3"];
    put_all(&s, vec![file("/a", &["c1", "c2", "c1"])]).await;
    assert_eq!(
        (refs(&s, "c1").await, refs(&s, "c2").await),
        (1, 1),
        "an entry counts once per fid"
    );
    put_all(&s, vec![file("/b", &["c1", "c2"])]).await;
    assert_eq!(
        (refs(&s, "c1").await, refs(&s, "c2").await),
        (2, 2),
        "a copy by reference"
    );
    apply(&s, vec![Mutation::Delete("/a".into())], "Delete(/a)").await;
    assert_eq!((refs(&s, "c1").await, refs(&s, "c2").await), (1, 1));
    assert!(
        pending(&s).await.is_empty(),
        "chunks still held by /b must not be queued"
    );
    check_invariant(&s, &all).await;

    put_all(&s, vec![file("/b", &["c2", "c3"])]).await;
    assert_eq!(
        pending_fids(&s).await,
        set(&["c1"]),
        "an overwrite releases the chunks it dropped"
    );
    assert_eq!(
        (
            refs(&s, "c1").await,
            refs(&s, "c2").await,
            refs(&s, "c3").await
        ),
        (0, 1, 1)
    );
    let mut same = file("/b", &["c2", "c3"]);
    same.attr.mtime = 99;
    put_all(&s, vec![same]).await;
    assert_eq!(
        pending_fids(&s).await,
        set(&["c1"]),
        "rewriting the same chunks changes nothing"
    );
    assert_eq!(refs(&s, "c2").await, 1);
    check_invariant(&s, &all).await;

    put_all(&s, vec![file("/b", &[])]).await;
    assert_eq!(
        pending_fids(&s).await,
        set(&all),
        "emptying /b releases its chunks"
    );
    check_invariant(&s, &all).await;

    // The filer's "discard" pattern: put then delete in one batch queues the chunks.
    apply(
        &s,
        vec![
            Mutation::Put(file("/tmp", &["d1", "d2"])),
            Mutation::Delete("/tmp".into()),
        ],
        "put then delete in one batch",
    )
    .await;
    assert_eq!(pending_fids(&s).await, set(&["c1", "c2", "c3", "d1", "d2"]));
    // Directories may hold chunks too (the store does not care).
    let mut d = dir("/dir");
    d.chunks.push(chunk("d3", 0, 1));
    put_all(&s, vec![d]).await;
    assert_eq!(refs(&s, "d3").await, 1);
}

pub(super) async fn delete_tree_releases_chunks(s: Arc<dyn FilerStore>) {
    let all = ["d1", "d2", "s1", "s2", "o1"];
    put_all(
        &s,
        vec![
            dir("/t"),
            file("/t/a", &["d1", "s1"]),
            dir("/t/sub"),
            file("/t/sub/b", &["d2"]),
            file("/t/sub/c", &["d2", "s2"]),
            file("/outside", &["s1"]),
            file("/t2", &["o1"]),
        ],
    )
    .await;
    assert_eq!(refs(&s, "d2").await, 2);
    check_invariant(&s, &all).await;
    apply(
        &s,
        vec![Mutation::DeleteTree("/t".into())],
        "DeleteTree(/t)",
    )
    .await;
    assert_eq!(
        pending_fids(&s).await,
        set(&["d1", "d2", "s2"]),
        "every chunk only /t held"
    );
    assert_eq!(refs(&s, "s1").await, 1, "/outside still holds s1");
    assert_eq!(refs(&s, "o1").await, 1, "/t2 is not under /t");
    check_invariant(&s, &all).await;
    apply(&s, vec![Mutation::DeleteTree("/".into())], "DeleteTree(/)").await;
    assert_eq!(pending_fids(&s).await, set(&all));
    check_invariant(&s, &all).await;
}

pub(super) async fn rename_keeps_references(s: Arc<dyn FilerStore>) {
    let all = ["r1", "r2"];
    put_all(
        &s,
        vec![
            dir("/r"),
            file("/r/x", &["r1"]),
            file("/r/y", &["r2"]),
            file("/other", &["r1"]),
        ],
    )
    .await;
    let rename = |from: &str, to: &str| Mutation::Rename {
        from: from.into(),
        to: to.into(),
    };
    apply(&s, vec![rename("/r", "/q")], "Rename(/r -> /q)").await;
    apply(
        &s,
        vec![rename("/other", "/q/other")],
        "Rename(/other -> /q/other)",
    )
    .await;
    assert_eq!(
        (refs(&s, "r1").await, refs(&s, "r2").await),
        (2, 1),
        "a rename changes no count"
    );
    assert!(pending(&s).await.is_empty(), "a rename queues nothing");
    check_invariant(&s, &all).await;
    apply(&s, vec![Mutation::Delete("/q/x".into())], "Delete(/q/x)").await;
    assert!(pending(&s).await.is_empty());
    apply(
        &s,
        vec![Mutation::DeleteTree("/q".into())],
        "DeleteTree(/q)",
    )
    .await;
    assert_eq!(pending_fids(&s).await, set(&all));
    check_invariant(&s, &all).await;
}

pub(super) async fn gc_queue_order_and_done(s: Arc<dyn FilerStore>) {
    for i in 0..5 {
        let p = format!("/g{i}");
        let fid = format!("g{i}");
        put_all(&s, vec![file(&p, &[&fid])]).await;
        apply(&s, vec![Mutation::Delete(p)], "Delete").await;
    }
    let items = pending(&s).await;
    let fids: Vec<&str> = items.iter().map(|i| i.fid.as_str()).collect();
    assert_eq!(
        fids,
        ["g0", "g1", "g2", "g3", "g4"],
        "the queue is in the order chunks were released"
    );
    let first_two = ok(s.gc_pending(2).await, "gc_pending(2)");
    assert_eq!(
        first_two,
        items[..2].to_vec(),
        "gc_pending(max) returns the oldest max items"
    );
    assert!(ok(s.gc_pending(0).await, "gc_pending(0)").is_empty());
    ok(
        s.gc_done(&[items[0].seq, items[1].seq, u64::MAX, 0]).await,
        "gc_done",
    );
    assert_eq!(
        pending(&s).await,
        items[2..].to_vec(),
        "gc_done forgets exactly the given items"
    );
    ok(s.gc_done(&[]).await, "gc_done([])");
    ok(
        s.gc_done(&[items[0].seq]).await,
        "gc_done of a forgotten seq",
    );
    let rest: Vec<u64> = items[2..].iter().map(|i| i.seq).collect();
    ok(s.gc_done(&rest).await, "gc_done(rest)");
    assert!(pending(&s).await.is_empty());
    put_all(&s, vec![file("/late", &["g9"])]).await;
    apply(&s, vec![Mutation::Delete("/late".into())], "Delete(/late)").await;
    let late = pending(&s).await;
    assert_eq!(late.len(), 1);
    let max_seen = items.iter().map(|i| i.seq).max().unwrap_or(0);
    assert!(
        late[0].seq > max_seen,
        "seqs are never reused, even after the queue empties"
    );
}

pub(super) async fn requeue_after_re_reference(s: Arc<dyn FilerStore>) {
    put_all(&s, vec![file("/g", &["q1"])]).await;
    apply(&s, vec![Mutation::Delete("/g".into())], "Delete(/g)").await;
    let first = pending(&s).await;
    assert_eq!(first.len(), 1);
    put_all(&s, vec![file("/h", &["q1"])]).await;
    assert!(
        pending(&s).await.is_empty(),
        "a queued chunk referenced again leaves the queue"
    );
    assert_eq!(refs(&s, "q1").await, 1);
    check_invariant(&s, &["q1"]).await;
    apply(&s, vec![Mutation::Delete("/h".into())], "Delete(/h)").await;
    let second = pending(&s).await;
    assert_eq!(second.len(), 1);
    assert!(
        second[0].seq > first[0].seq,
        "a re-queued chunk gets a new seq"
    );
    ok(s.gc_done(&[first[0].seq]).await, "gc_done of the stale seq");
    assert_eq!(
        pending(&s).await,
        second,
        "a stale seq does not forget the new item"
    );
}

pub(super) async fn failed_batches_leave_counts_alone(s: Arc<dyn FilerStore>) {
    let all = ["k1", "n1", "n2"];
    put_all(&s, vec![file("/keep", &["k1"]), file("/exists", &[])]).await;
    expect_err(
        &s,
        vec![
            Mutation::Put(file("/new", &["n1"])),
            Mutation::Delete("/keep".into()),
            Mutation::Put(file("/keep2", &["n2", "k1"])),
            Mutation::Rename {
                from: "/new".into(),
                to: "/exists".into(),
            },
        ],
        "a failing batch touching counts",
        |e| matches!(e, StoreError::AlreadyExists(_)),
    )
    .await;
    assert_eq!(refs(&s, "k1").await, 1);
    assert_eq!((refs(&s, "n1").await, refs(&s, "n2").await), (0, 0));
    assert!(
        pending(&s).await.is_empty(),
        "a failed batch queues nothing"
    );
    check_invariant(&s, &all).await;
}

pub(super) async fn first_reference_ends_the_upload_record(s: Arc<dyn FilerStore>) {
    use crate::store::pending_key;
    let rows = |fids: &[&str]| -> Vec<Mutation> {
        fids.iter()
            .map(|f| Mutation::KvPut(pending_key(f), b"holder".to_vec()))
            .collect()
    };
    apply(&s, rows(&["3,01", "3,02", "3,03"]), "recording uploads").await;
    apply(
        &s,
        vec![Mutation::KvPut(b"other".to_vec(), b"x".to_vec())],
        "another key",
    )
    .await;
    let scan = ok(
        s.kv_scan(crate::store::PENDING_PREFIX, None, 10).await,
        "kv_scan",
    );
    let keys: Vec<_> = scan.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        vec![
            pending_key("3,01"),
            pending_key("3,02"),
            pending_key("3,03")
        ],
        "kv_scan returns the prefix's keys in order, and only those"
    );
    let after = ok(
        s.kv_scan(crate::store::PENDING_PREFIX, Some(&pending_key("3,01")), 1)
            .await,
        "kv_scan after a key",
    );
    assert_eq!(after, vec![(pending_key("3,02"), b"holder".to_vec())]);

    put_all(&s, vec![file("/f", &["3,01", "3,02"])]).await;
    let scan = ok(
        s.kv_scan(crate::store::PENDING_PREFIX, None, 10).await,
        "kv_scan",
    );
    assert_eq!(
        scan,
        vec![(pending_key("3,03"), b"holder".to_vec())],
        "the first reference of a fid ends its upload record"
    );
}
