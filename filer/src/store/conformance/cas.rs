//! Conformance checks of [`Mutation::Expect`]: compare-and-set batches, including many
//! writers racing for one path (exactly one wins, the losers change nothing).

use std::sync::Arc;

use super::{FilerStore, Mutation, StoreError, apply, dir, expect_err, file, find, ok, put_all};

fn expect(path: &str, entry: Option<crate::entry::Entry>) -> Mutation {
    Mutation::Expect {
        path: path.to_string(),
        entry,
    }
}

fn changed(e: &StoreError) -> bool {
    matches!(e, StoreError::Changed(_))
}

pub(super) async fn expect_guards_a_batch(s: Arc<dyn FilerStore>) {
    let a = file("/a", &["1,01"]);
    apply(
        &s,
        vec![expect("/a", None), Mutation::Put(a.clone())],
        "put /a if absent",
    )
    .await;
    assert_eq!(find(&s, "/a").await, Some(a.clone()));

    let b = file("/a", &["1,02"]);
    expect_err(
        &s,
        vec![expect("/a", None), Mutation::Put(b.clone())],
        "put /a if absent while it exists",
        changed,
    )
    .await;
    assert_eq!(
        find(&s, "/a").await,
        Some(a.clone()),
        "a refused compare-and-set changes nothing"
    );
    assert_eq!(
        ok(s.chunk_refs("1,02").await, "chunk_refs"),
        0,
        "the refused entry's chunks are not referenced"
    );

    apply(
        &s,
        vec![expect("/a", Some(a.clone())), Mutation::Put(b.clone())],
        "replace /a if unchanged",
    )
    .await;
    assert_eq!(find(&s, "/a").await, Some(b.clone()));
    expect_err(
        &s,
        vec![expect("/a", Some(a.clone())), Mutation::Delete("/a".into())],
        "delete /a with a stale expectation",
        changed,
    )
    .await;
    assert_eq!(find(&s, "/a").await, Some(b.clone()));
    apply(
        &s,
        vec![expect("/a", Some(b)), Mutation::Delete("/a".into())],
        "delete /a if unchanged",
    )
    .await;
    assert_eq!(find(&s, "/a").await, None);

    // An Expect sees the mutations before it in its own batch.
    let c = file("/c", &[]);
    apply(
        &s,
        vec![
            Mutation::Put(c.clone()),
            expect("/c", Some(c.clone())),
            Mutation::Delete("/c".into()),
            expect("/c", None),
        ],
        "expectations inside one batch",
    )
    .await;

    // A directory is an entry like any other; an unnormalized path is refused.
    put_all(&s, vec![dir("/d")]).await;
    expect_err(
        &s,
        vec![expect("/d", None)],
        "expect no entry where a directory is",
        changed,
    )
    .await;
    expect_err(
        &s,
        vec![expect("/d/../d", None)],
        "unnormalized path",
        |e| matches!(e, StoreError::Invalid(_)),
    )
    .await;
}

pub(super) async fn one_of_racing_writers_wins(s: Arc<dyn FilerStore>) {
    const WRITERS: usize = 20;
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let e = file("/race", &[&format!("7,{i:02x}")]);
            s.apply(vec![expect("/race", None), Mutation::Put(e)]).await
        }));
    }
    let mut won = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(Ok(())) => won.push(i),
            Ok(Err(e)) => assert!(changed(&e), "a losing writer must see Changed, got {e:?}"),
            Err(e) => panic!("writer task failed: {e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one writer wins, winners: {won:?}");
    let winner = format!("7,{:02x}", won[0]);
    let stored = find(&s, "/race").await;
    assert_eq!(
        stored.map(|e| e.chunks.into_iter().map(|c| c.fid).collect::<Vec<_>>()),
        Some(vec![winner.clone()]),
        "the stored entry is the winner's"
    );
    for i in 0..WRITERS {
        let fid = format!("7,{i:02x}");
        let want = u64::from(fid == winner);
        assert_eq!(
            ok(s.chunk_refs(&fid).await, "chunk_refs"),
            want,
            "chunk {fid} is referenced only if its writer won"
        );
    }
}

pub(super) async fn expect_kv_guards_a_batch(s: Arc<dyn FilerStore>) {
    let key = b"lease/test".to_vec();
    let expect_kv = |value: Option<&[u8]>| Mutation::ExpectKv {
        key: key.clone(),
        value: value.map(<[u8]>::to_vec),
    };
    let put = |v: &[u8]| Mutation::KvPut(key.clone(), v.to_vec());
    apply(
        &s,
        vec![expect_kv(None), put(b"one")],
        "set the key if absent",
    )
    .await;
    expect_err(
        &s,
        vec![expect_kv(None), put(b"two")],
        "set the key if absent while it is set",
        changed,
    )
    .await;
    expect_err(
        &s,
        vec![expect_kv(Some(b"two")), put(b"three")],
        "replace with a stale expectation",
        changed,
    )
    .await;
    assert_eq!(
        ok(s.kv_get(&key).await, "kv_get"),
        Some(b"one".to_vec()),
        "refused batches change nothing"
    );
    apply(
        &s,
        vec![
            expect_kv(Some(b"one")),
            put(b"two"),
            expect_kv(Some(b"two")),
            Mutation::KvDelete(key.clone()),
            expect_kv(None),
        ],
        "expectations see the batch's own writes",
    )
    .await;
    assert_eq!(ok(s.kv_get(&key).await, "kv_get"), None);

    // Racing claims of one key: exactly one lands.
    let mut tasks = Vec::new();
    for i in 0..10u8 {
        let (s, key) = (s.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            s.apply(vec![
                Mutation::ExpectKv {
                    key: key.clone(),
                    value: None,
                },
                Mutation::KvPut(key, vec![i]),
            ])
            .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => won += 1,
            Ok(Err(e)) => assert!(changed(&e), "a losing claim must see Changed, got {e:?}"),
            Err(e) => panic!("claim task failed: {e}"),
        }
    }
    assert_eq!(won, 1, "exactly one claim of the key lands");
}

/// The filer's create into a directory it read before: the batch expects the parent
/// unchanged and the path free. A changed, deleted or replaced parent fails it whole.
pub(super) async fn expect_parent_guards_a_create(s: Arc<dyn FilerStore>) {
    let d = dir("/d");
    apply(&s, vec![Mutation::Put(d.clone())], "mkdir /d").await;
    let create = |parent: Option<crate::entry::Entry>, name: &str, fid: &str| {
        let p = format!("/d/{name}");
        vec![
            expect("/d", parent),
            expect(&p, None),
            Mutation::Put(file(&p, &[fid])),
        ]
    };
    apply(&s, create(Some(d.clone()), "a", "1,01"), "create /d/a").await;
    assert_eq!(find(&s, "/d/a").await, Some(file("/d/a", &["1,01"])));
    assert_eq!(ok(s.chunk_refs("1,01").await, "chunk_refs"), 1);

    let mut changed_dir = d.clone();
    changed_dir.attr.mode ^= 0o022;
    apply(&s, vec![Mutation::Put(changed_dir.clone())], "chmod /d").await;
    expect_err(
        &s,
        create(Some(d.clone()), "b", "1,02"),
        "create /d/b expecting /d as it was",
        changed,
    )
    .await;
    assert_eq!(
        find(&s, "/d/b").await,
        None,
        "a refused create writes nothing"
    );
    assert_eq!(ok(s.chunk_refs("1,02").await, "chunk_refs"), 0);
    apply(&s, create(Some(changed_dir), "b", "1,02"), "create /d/b").await;

    apply(&s, vec![Mutation::DeleteTree("/d".into())], "rm -r /d").await;
    expect_err(
        &s,
        create(Some(d.clone()), "c", "1,03"),
        "create /d/c after /d was deleted",
        changed,
    )
    .await;
    apply(
        &s,
        vec![Mutation::Put(file("/d", &["1,04"]))],
        "a file at /d",
    )
    .await;
    expect_err(
        &s,
        create(Some(d), "c", "1,03"),
        "create /d/c under a file",
        changed,
    )
    .await;
    assert_eq!(find(&s, "/d/c").await, None);
    assert_eq!(ok(s.chunk_refs("1,03").await, "chunk_refs"), 0);
}
