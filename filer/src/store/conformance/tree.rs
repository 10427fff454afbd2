//! Conformance checks for the shape of the tree: Delete, DeleteTree, Rename, replacing
//! directories, batch atomicity and the key-value space.

use std::sync::Arc;

use super::*;

pub(super) async fn delete_refuses_non_empty(s: Arc<dyn FilerStore>) {
    put_all(
        &s,
        vec![
            dir("/a"),
            dir("/a/b"),
            file("/a/b/c", &[]),
            file("/a/x", &[]),
        ],
    )
    .await;
    expect_err(
        &s,
        vec![Mutation::Delete("/a".into())],
        "Delete(/a) with children",
        |e| matches!(e, StoreError::NotEmpty(p) if p == "/a"),
    )
    .await;
    expect_err(
        &s,
        vec![Mutation::Delete("/a/b".into())],
        "Delete(/a/b) with a child",
        |e| matches!(e, StoreError::NotEmpty(_)),
    )
    .await;
    assert!(find(&s, "/a").await.is_some() && find(&s, "/a/b/c").await.is_some());
    expect_err(
        &s,
        vec![Mutation::Delete("/nope".into())],
        "Delete of a missing entry",
        |e| matches!(e, StoreError::NotFound(p) if p == "/nope"),
    )
    .await;
    for p in ["/a/x", "/a/b/c", "/a/b", "/a"] {
        apply(
            &s,
            vec![Mutation::Delete(p.into())],
            &format!("Delete({p})"),
        )
        .await;
        assert_eq!(find(&s, p).await, None, "{p} is gone");
    }
    // A descendant whose parent entry is missing still makes a directory non-empty.
    put_all(&s, vec![dir("/o"), file("/o/p/q", &[])]).await;
    expect_err(
        &s,
        vec![Mutation::Delete("/o".into())],
        "Delete(/o) with a grandchild",
        |e| matches!(e, StoreError::NotEmpty(_)),
    )
    .await;
}

pub(super) async fn delete_tree_removes_exactly_the_subtree(s: Arc<dyn FilerStore>) {
    let inside = ["/a", "/a/b", "/a/b/c", "/a/b/c/d", "/a/x", "/a/b/c.txt"];
    let outside = ["/a b", "/a.b", "/a0", "/a0/y", "/ab", "/ab/x", "/b", "/b/a"];
    let mk = |p: &str| {
        if p.contains('x') || p.ends_with('d') || p.ends_with('y') {
            file(p, &[])
        } else {
            dir(p)
        }
    };
    put_all(
        &s,
        inside.iter().chain(outside.iter()).map(|p| mk(p)).collect(),
    )
    .await;
    apply(
        &s,
        vec![Mutation::DeleteTree("/a".into())],
        "DeleteTree(/a)",
    )
    .await;
    for p in inside {
        assert_eq!(find(&s, p).await, None, "{p} was under /a and must be gone");
    }
    for p in outside {
        assert!(
            find(&s, p).await.is_some(),
            "{p} was not under /a and must remain"
        );
    }
    assert_eq!(
        all_names(&s, "/").await,
        strings(&["a b", "a.b", "a0", "ab", "b"])
    );
    expect_err(
        &s,
        vec![Mutation::DeleteTree("/a".into())],
        "DeleteTree of a missing entry",
        |e| matches!(e, StoreError::NotFound(_)),
    )
    .await;
    apply(
        &s,
        vec![Mutation::DeleteTree("/a.b".into())],
        "DeleteTree of a file",
    )
    .await;
    assert_eq!(find(&s, "/a.b").await, None);
    apply(&s, vec![Mutation::DeleteTree("/".into())], "DeleteTree(/)").await;
    assert!(
        all_names(&s, "/").await.is_empty(),
        "DeleteTree(/) empties the store"
    );
    for p in outside {
        assert_eq!(
            find(&s, p).await,
            None,
            "{p} must be gone after DeleteTree(/)"
        );
    }
}

pub(super) async fn rename_moves_the_subtree(s: Arc<dyn FilerStore>) {
    let mut deep = file("/src/a/b/c", &["7,0707"]);
    deep.content = b"deep".to_vec();
    deep.extended.insert("x".into(), b"y".to_vec());
    put_all(
        &s,
        vec![
            dir("/src"),
            dir("/src/a"),
            dir("/src/a/b"),
            deep.clone(),
            file("/src/f", &[]),
            dir("/srcx"),
            file("/srcx/g", &[]),
            file("/src.d", &[]),
            dir("/src0"),
            file("/src0/h", &[]),
            dir("/dst"),
        ],
    )
    .await;
    let rename = |from: &str, to: &str| Mutation::Rename {
        from: from.into(),
        to: to.into(),
    };
    apply(
        &s,
        vec![rename("/src", "/dst/moved")],
        "Rename(/src -> /dst/moved)",
    )
    .await;
    let moved = find(&s, "/dst/moved/a/b/c").await;
    let mut want = deep.clone();
    want.path = "/dst/moved/a/b/c".into();
    assert_eq!(
        moved,
        Some(want),
        "a nested entry moves with its path rewritten"
    );
    assert_eq!(all_names(&s, "/dst/moved").await, strings(&["a", "f"]));
    assert_eq!(all_names(&s, "/dst/moved/a/b").await, strings(&["c"]));
    assert!(
        find(&s, "/dst/moved")
            .await
            .is_some_and(|e| e.is_directory && e.path == "/dst/moved")
    );
    for p in ["/src", "/src/a", "/src/a/b", "/src/a/b/c", "/src/f"] {
        assert_eq!(find(&s, p).await, None, "{p} must be gone after the rename");
    }
    assert!(all_names(&s, "/src").await.is_empty());
    for p in ["/srcx/g", "/src.d", "/src0/h"] {
        assert!(
            find(&s, p).await.is_some(),
            "{p} is not under /src and must stay"
        );
    }
    assert_eq!(
        all_names(&s, "/").await,
        strings(&["dst", "src.d", "src0", "srcx"])
    );
    // A file, then a directory to a name that extends its own.
    apply(&s, vec![rename("/src.d", "/renamed")], "Rename of a file").await;
    assert!(find(&s, "/renamed").await.is_some() && find(&s, "/src.d").await.is_none());
    apply(
        &s,
        vec![rename("/srcx", "/srcxy")],
        "Rename to a longer sibling name",
    )
    .await;
    assert_eq!(all_names(&s, "/srcxy").await, strings(&["g"]));
    apply(
        &s,
        vec![rename("/dst/moved", "/m")],
        "Rename to a shorter path",
    )
    .await;
    assert_eq!(all_names(&s, "/m/a/b").await, strings(&["c"]));
    assert!(all_names(&s, "/dst").await.is_empty());
}

pub(super) async fn rename_refusals(s: Arc<dyn FilerStore>) {
    put_all(
        &s,
        vec![
            dir("/a"),
            file("/a/f", &[]),
            dir("/b"),
            file("/c", &[]),
            file("/o/p", &[]),
        ],
    )
    .await;
    let rename = |from: &str, to: &str| Mutation::Rename {
        from: from.into(),
        to: to.into(),
    };
    for to in ["/b", "/c", "/a"] {
        expect_err(
            &s,
            vec![rename("/a", to)],
            &format!("Rename(/a -> {to})"),
            |e| matches!(e, StoreError::AlreadyExists(p) if p == to),
        )
        .await;
    }
    expect_err(
        &s,
        vec![rename("/a", "/o")],
        "Rename onto a path with descendants",
        |e| matches!(e, StoreError::AlreadyExists(_)),
    )
    .await;
    expect_err(
        &s,
        vec![rename("/nope", "/z")],
        "Rename of a missing entry",
        |e| matches!(e, StoreError::NotFound(p) if p == "/nope"),
    )
    .await;
    expect_err(
        &s,
        vec![rename("/a", "/a/inner")],
        "Rename into itself",
        |e| matches!(e, StoreError::Invalid(_)),
    )
    .await;
    expect_err(&s, vec![rename("/a", "/")], "Rename onto the root", |e| {
        matches!(e, StoreError::Invalid(_) | StoreError::AlreadyExists(_))
    })
    .await;
    assert_eq!(all_names(&s, "/").await, strings(&["a", "b", "c"]));
    assert_eq!(all_names(&s, "/a").await, strings(&["f"]));
}

pub(super) async fn put_file_over_directory(s: Arc<dyn FilerStore>) {
    put_all(&s, vec![dir("/d"), file("/d/x", &[])]).await;
    expect_err(
        &s,
        vec![Mutation::Put(file("/d", &[]))],
        "a file over a non-empty directory",
        |e| matches!(e, StoreError::NotEmpty(p) if p == "/d"),
    )
    .await;
    assert!(find(&s, "/d").await.is_some_and(|e| e.is_directory));
    let mut d2 = dir("/d");
    d2.attr.mtime = 5;
    put_all(&s, vec![d2.clone()]).await;
    assert_eq!(
        find(&s, "/d").await,
        Some(d2),
        "a directory's attributes can be replaced"
    );
    assert_eq!(
        all_names(&s, "/d").await,
        strings(&["x"]),
        "replacing a directory keeps its children"
    );
    apply(&s, vec![Mutation::Delete("/d/x".into())], "Delete(/d/x)").await;
    put_all(&s, vec![file("/d", &[])]).await;
    assert!(
        find(&s, "/d").await.is_some_and(|e| !e.is_directory),
        "a file over an empty directory"
    );
    put_all(&s, vec![dir("/d")]).await;
    assert!(
        find(&s, "/d").await.is_some_and(|e| e.is_directory),
        "a directory over a file"
    );
}

pub(super) async fn batches_are_atomic_and_ordered(s: Arc<dyn FilerStore>) {
    put_all(&s, vec![file("/exists", &[]), file("/keep", &[])]).await;
    let before = all_names(&s, "/").await;
    expect_err(
        &s,
        vec![
            Mutation::Put(file("/t1", &[])),
            Mutation::Put(dir("/t2")),
            Mutation::KvPut(b"k".to_vec(), b"v".to_vec()),
            Mutation::Delete("/keep".into()),
            Mutation::Delete("/missing".into()),
        ],
        "a batch whose last mutation fails",
        |e| matches!(e, StoreError::NotFound(_)),
    )
    .await;
    assert_eq!(
        all_names(&s, "/").await,
        before,
        "a failed batch changes no entry"
    );
    assert_eq!(
        ok(s.kv_get(b"k").await, "kv_get"),
        None,
        "a failed batch changes no key"
    );
    expect_err(
        &s,
        vec![
            Mutation::Rename {
                from: "/keep".into(),
                to: "/kept".into(),
            },
            Mutation::Rename {
                from: "/kept".into(),
                to: "/exists".into(),
            },
        ],
        "a rename then a refused rename",
        |e| matches!(e, StoreError::AlreadyExists(_)),
    )
    .await;
    assert_eq!(all_names(&s, "/").await, before);
    // Each mutation sees the ones before it.
    expect_err(
        &s,
        vec![
            Mutation::Put(dir("/n")),
            Mutation::Put(file("/n/f", &[])),
            Mutation::Delete("/n".into()),
        ],
        "deleting a directory a batch just filled",
        |e| matches!(e, StoreError::NotEmpty(_)),
    )
    .await;
    assert_eq!(all_names(&s, "/").await, before);
    apply(
        &s,
        vec![
            Mutation::Put(dir("/n")),
            Mutation::Put(file("/n/f", &[])),
            Mutation::Rename {
                from: "/n/f".into(),
                to: "/n/g".into(),
            },
            Mutation::Put(file("/n/f", &[])),
            Mutation::Delete("/n/g".into()),
        ],
        "an ordered batch",
    )
    .await;
    assert_eq!(all_names(&s, "/n").await, strings(&["f"]));
    apply(&s, Vec::new(), "an empty batch").await;
}

pub(super) async fn kv_space(s: Arc<dyn FilerStore>) {
    let get = |k: &'static [u8]| {
        let s = s.clone();
        async move { ok(s.kv_get(k).await, "kv_get") }
    };
    assert_eq!(get(b"a").await, None);
    apply(
        &s,
        vec![Mutation::KvPut(b"a".to_vec(), b"1".to_vec())],
        "KvPut",
    )
    .await;
    assert_eq!(get(b"a").await, Some(b"1".to_vec()));
    apply(
        &s,
        vec![Mutation::KvPut(b"a".to_vec(), b"2".to_vec())],
        "KvPut again",
    )
    .await;
    assert_eq!(get(b"a").await, Some(b"2".to_vec()), "KvPut overwrites");
    let binary: &'static [u8] = b"\0\xff/\0x";
    apply(
        &s,
        vec![Mutation::KvPut(binary.to_vec(), Vec::new())],
        "binary key, empty value",
    )
    .await;
    assert_eq!(
        get(binary).await,
        Some(Vec::new()),
        "an empty value is not a missing one"
    );
    apply(
        &s,
        vec![Mutation::KvPut(b"/\0kv".to_vec(), b"x".to_vec())],
        "entry-like key",
    )
    .await;
    assert_eq!(
        find(&s, "/kv").await,
        None,
        "the key-value space is separate from entries"
    );
    assert!(all_names(&s, "/").await.is_empty());
    apply(&s, vec![Mutation::KvDelete(b"a".to_vec())], "KvDelete").await;
    assert_eq!(get(b"a").await, None);
    apply(
        &s,
        vec![Mutation::KvDelete(b"never".to_vec())],
        "KvDelete of a missing key",
    )
    .await;
    put_all(&s, vec![file("/e", &[])]).await;
    assert_eq!(
        get(b"/\0e").await,
        None,
        "entries are not in the key-value space"
    );
}
