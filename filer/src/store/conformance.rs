//! The conformance suite every [`FilerStore`] backend must pass (in the spirit of
//! `openraft::testing::Suite`): [`run_all`] runs each check on a fresh store and panics
//! with a message naming what broke. Persistence across a reopen is each backend's own
//! test, since only the backend knows how to reopen.
//!
//! This module is compiled in normal builds so other crates' stores can run it.

use std::sync::Arc;

use super::FilerStore;
use super::ListOptions;
use super::Mutation;
use super::StoreError;
use crate::entry::Entry;
use crate::entry::FileChunk;

mod cas;
mod log;
mod refs;
mod tree;

/// Builds a fresh, empty store for one check.
pub type MakeStore<'a> = &'a dyn Fn() -> Arc<dyn FilerStore>;

/// Runs every check, each on a fresh store from `make`; panics on the first failure.
pub async fn run_all(make: &dyn Fn() -> Arc<dyn FilerStore>) {
    macro_rules! checks {
        ($($check:path),* $(,)?) => {$(
            let store = make();
            eprintln!("filer store conformance [{}]: {}", store.name(), stringify!($check));
            $check(store).await;
        )*};
    }
    checks!(
        root_always_exists,
        put_find_replace,
        refuses_unnormalized_paths,
        list_orders_by_name_bytes,
        list_paginates,
        list_is_isolated,
        tree::delete_refuses_non_empty,
        tree::delete_tree_removes_exactly_the_subtree,
        tree::rename_moves_the_subtree,
        tree::rename_refusals,
        tree::put_file_over_directory,
        tree::batches_are_atomic_and_ordered,
        tree::kv_space,
        refs::shared_chunks_and_overwrites,
        refs::delete_tree_releases_chunks,
        refs::rename_keeps_references,
        refs::gc_queue_order_and_done,
        refs::requeue_after_re_reference,
        refs::failed_batches_leave_counts_alone,
        refs::first_reference_ends_the_upload_record,
        cas::expect_guards_a_batch,
        cas::one_of_racing_writers_wins,
        cas::expect_kv_guards_a_batch,
        cas::expect_parent_guards_a_create,
        log::records_every_batch_in_order,
        log::trimming_refuses_older_reads,
        log::a_follower_misses_no_concurrent_batch,
    );
}

// ---- helpers shared by the checks ----

fn ok<T>(r: Result<T, StoreError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error: {e}"),
    }
}

fn chunk(fid: &str, offset: u64, size: u64) -> FileChunk {
    FileChunk {
        fid: fid.to_string(),
        offset,
        size,
        modified_ts_ns: 1,
        etag: String::new(),
        is_manifest: false,
    }
}

fn dir(p: &str) -> Entry {
    Entry::new_dir(p, 1_700_000_000)
}

fn file(p: &str, fids: &[&str]) -> Entry {
    let mut e = Entry::new_file(p, 1_700_000_000);
    for (i, fid) in fids.iter().enumerate() {
        e.chunks.push(chunk(fid, i as u64 * 10, 10));
    }
    e.attr.file_size = fids.len() as u64 * 10;
    e
}

async fn apply(s: &Arc<dyn FilerStore>, muts: Vec<Mutation>, what: &str) {
    ok(s.apply(muts).await, what);
}

async fn put_all(s: &Arc<dyn FilerStore>, entries: Vec<Entry>) {
    apply(
        s,
        entries.into_iter().map(Mutation::Put).collect(),
        "putting entries",
    )
    .await;
}

async fn find(s: &Arc<dyn FilerStore>, p: &str) -> Option<Entry> {
    ok(s.find(p).await, &format!("find({p})"))
}

async fn names(s: &Arc<dyn FilerStore>, d: &str, opts: &ListOptions) -> Vec<String> {
    let entries = ok(s.list(d, opts).await, &format!("list({d}, {opts:?})"));
    for e in &entries {
        assert_eq!(
            e.parent(),
            Some(d),
            "list({d}) returned {} which is not a child of {d}",
            e.path
        );
    }
    entries.iter().map(|e| e.name().to_string()).collect()
}

async fn all_names(s: &Arc<dyn FilerStore>, d: &str) -> Vec<String> {
    names(s, d, &ListOptions::default()).await
}

/// Applies `muts`, expecting the error `want` matches.
async fn expect_err(
    s: &Arc<dyn FilerStore>,
    muts: Vec<Mutation>,
    what: &str,
    want: impl Fn(&StoreError) -> bool,
) -> StoreError {
    match s.apply(muts).await {
        Ok(()) => panic!("{what}: expected an error, the batch was applied"),
        Err(e) if want(&e) => e,
        Err(e) => panic!("{what}: wrong error: {e:?}"),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---- basic checks ----

async fn root_always_exists(s: Arc<dyn FilerStore>) {
    let Some(root) = find(&s, "/").await else {
        panic!("find(/) must return the root directory");
    };
    assert!(root.is_directory, "the root must be a directory");
    assert_eq!(root.path, "/");
    assert!(
        all_names(&s, "/").await.is_empty(),
        "a new store's root must be empty"
    );
    let mut r = dir("/");
    r.attr.mtime = 42;
    r.extended.insert("k".into(), b"v".to_vec());
    apply(&s, vec![Mutation::Put(r.clone())], "put /").await;
    assert_eq!(
        find(&s, "/").await,
        Some(r),
        "the root's attributes can be stored"
    );
    assert!(
        all_names(&s, "/").await.is_empty(),
        "the root must not list itself"
    );
    expect_err(
        &s,
        vec![Mutation::Put(file("/", &[]))],
        "a file at /",
        |e| matches!(e, StoreError::Invalid(_)),
    )
    .await;
    expect_err(&s, vec![Mutation::Delete("/".into())], "Delete(/)", |e| {
        matches!(e, StoreError::Invalid(_))
    })
    .await;
    put_all(&s, vec![dir("/a")]).await;
    expect_err(
        &s,
        vec![Mutation::Rename {
            from: "/".into(),
            to: "/b".into(),
        }],
        "Rename(/ -> /b)",
        |e| matches!(e, StoreError::Invalid(_)),
    )
    .await;
    apply(&s, vec![Mutation::DeleteTree("/".into())], "DeleteTree(/)").await;
    assert!(
        find(&s, "/").await.is_some_and(|e| e.is_directory),
        "the root survives DeleteTree(/)"
    );
}

async fn put_find_replace(s: Arc<dyn FilerStore>) {
    assert_eq!(find(&s, "/f").await, None, "a missing entry");
    let mut f = file("/f", &["1,0101", "2,0202"]);
    f.attr.mime = "text/plain; charset=utf-8".into();
    f.attr.md5 = (0..16).collect();
    f.attr.ttl_sec = 3600;
    f.attr.uid = 1000;
    f.attr.gid = u32::MAX;
    f.attr.mtime = -5;
    f.attr.symlink_target = "/elsewhere".into();
    f.chunks[1].etag = "d41d8cd98f00b204e9800998ecf8427e".into();
    f.chunks[1].is_manifest = true;
    f.chunks[1].modified_ts_ns = i64::MIN;
    f.chunks[0].offset = u64::MAX - 10;
    f.extended.insert("Seaweed-Tag".into(), vec![0, 1, 255]);
    f.extended.insert("empty".into(), Vec::new());
    f.content = b"inline \0 bytes".to_vec();
    put_all(&s, vec![f.clone()]).await;
    assert_eq!(
        find(&s, "/f").await,
        Some(f.clone()),
        "an entry reads back exactly as written"
    );
    let many = ok(s.find_many(&["/nope", "/f", "/", "/f"]).await, "find_many");
    assert_eq!(many.len(), 4, "find_many answers each path asked");
    assert_eq!(
        (&many[0], &many[1], &many[3]),
        (&None, &Some(f.clone()), &Some(f.clone()))
    );
    assert!(
        many[2].as_ref().is_some_and(|r| r.is_directory),
        "the root always exists"
    );

    let mut g = file("/f", &["3,0303"]);
    g.attr.mode = 0o600;
    put_all(&s, vec![g.clone()]).await;
    assert_eq!(
        find(&s, "/f").await,
        Some(g),
        "Put replaces the whole entry"
    );

    let uni = "/dé jà/😀 %41\u{1}";
    put_all(&s, vec![dir("/dé jà"), file(uni, &[])]).await;
    assert_eq!(find(&s, uni).await.map(|e| e.path), Some(uni.to_string()));
    assert_eq!(find(&s, "/dé jà").await.map(|e| e.is_directory), Some(true));
    assert_eq!(find(&s, "/dé").await, None, "a name prefix is not an entry");

    let long_name = "n".repeat(255);
    let mut p = String::new();
    while p.len() + 256 <= crate::path::MAX_PATH_LEN {
        p.push('/');
        p.push_str(&long_name);
    }
    put_all(&s, vec![file(&p, &[])]).await;
    assert!(
        find(&s, &p).await.is_some(),
        "a {}-byte path is stored",
        p.len()
    );
}

async fn refuses_unnormalized_paths(s: Arc<dyn FilerStore>) {
    for p in ["a", "", "/a/", "/a//b", "/a/../b", "/./a", "/a\0b"] {
        assert!(
            matches!(s.find(p).await, Err(StoreError::Invalid(_))),
            "find({p:?}) must be refused as Invalid"
        );
        assert!(
            matches!(
                s.list(p, &ListOptions::default()).await,
                Err(StoreError::Invalid(_))
            ),
            "list({p:?}) must be refused as Invalid"
        );
        expect_err(
            &s,
            vec![Mutation::Put(file(p, &[]))],
            &format!("Put({p:?})"),
            |e| matches!(e, StoreError::Invalid(_)),
        )
        .await;
        for m in [Mutation::Delete(p.into()), Mutation::DeleteTree(p.into())] {
            expect_err(&s, vec![m], &format!("delete {p:?}"), |e| {
                matches!(e, StoreError::Invalid(_))
            })
            .await;
        }
    }
    assert!(all_names(&s, "/").await.is_empty(), "nothing was stored");
}

async fn list_orders_by_name_bytes(s: Arc<dyn FilerStore>) {
    let mut expected = strings(&[
        "a",
        "a b",
        "a%2Fb",
        "a%",
        "a-",
        "a.",
        "a.b",
        "a0",
        "a\u{1}",
        "a\u{7f}",
        "a\tb",
        "a\\b",
        "aa",
        "ab",
        "abc",
        "abd",
        "A",
        "Z",
        "_",
        "~",
        "%",
        " lead",
        "é",
        "e\u{301}",
        "😀",
        "中文",
        "z",
        "\u{10ffff}",
    ]);
    let mut entries = vec![dir("/d")];
    for n in &expected {
        if n == "a" || n == "a.b" {
            entries.push(dir(&format!("/d/{n}")));
        } else {
            entries.push(file(&format!("/d/{n}"), &[]));
        }
    }
    // Grandchildren whose keys sort among the children's must not show up.
    entries.push(file("/d/a/x", &[]));
    entries.push(file("/d/a.b/y", &[]));
    entries.reverse();
    put_all(&s, entries).await;
    expected.sort();
    assert_eq!(
        all_names(&s, "/d").await,
        expected,
        "children in byte order of their names"
    );
    assert_eq!(
        names(
            &s,
            "/d",
            &ListOptions {
                prefix: Some("ab".into()),
                ..Default::default()
            }
        )
        .await,
        strings(&["ab", "abc", "abd"]),
        "a prefix that is itself a name"
    );
    assert_eq!(
        names(
            &s,
            "/d",
            &ListOptions {
                prefix: Some("a.".into()),
                ..Default::default()
            }
        )
        .await,
        strings(&["a.", "a.b"])
    );
    assert_eq!(
        names(
            &s,
            "/d",
            &ListOptions {
                prefix: Some("e".into()),
                ..Default::default()
            }
        )
        .await,
        strings(&["e\u{301}"])
    );
    assert_eq!(all_names(&s, "/d/a").await, strings(&["x"]));
    let full = ok(s.list("/d", &ListOptions::first(3)).await, "list");
    assert_eq!(
        full[0].path, "/d/ lead",
        "listed entries carry their full path"
    );
}

async fn list_paginates(s: Arc<dyn FilerStore>) {
    const N: usize = 2500;
    let name = |i: usize| format!("f{i:05}");
    // Insert in a scrambled order, in a few batches.
    let order: Vec<usize> = (0..N).map(|i| (i * 1543) % N).collect();
    put_all(&s, vec![dir("/big"), dir("/big0"), dir("/bigger")]).await;
    for part in order.chunks(500) {
        put_all(
            &s,
            part.iter()
                .map(|&i| file(&format!("/big/{}", name(i)), &[]))
                .collect(),
        )
        .await;
    }
    put_all(
        &s,
        vec![
            file("/big0/f00000", &[]),
            file("/bigger/f00001", &[]),
            file("/big.x", &[]),
        ],
    )
    .await;
    let all: Vec<String> = (0..N).map(name).collect();
    assert_eq!(
        all_names(&s, "/big").await,
        all,
        "limit 0 lists every child"
    );

    for page in [100, 7, 1000, 2499, 2500, 4000] {
        let mut got: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let opts = ListOptions {
                start_after: cursor.clone(),
                limit: page,
                ..Default::default()
            };
            let batch = names(&s, "/big", &opts).await;
            assert!(
                batch.len() <= page,
                "a page of {page} returned {}",
                batch.len()
            );
            let Some(last) = batch.last().cloned() else {
                break;
            };
            got.extend(batch);
            cursor = Some(last);
        }
        assert_eq!(
            got, all,
            "paging with limit {page} visits every child once, in order"
        );
    }
    let opts = |start: &str, inclusive: bool, limit: usize, prefix: Option<&str>| ListOptions {
        start_after: Some(start.to_string()),
        inclusive,
        limit,
        prefix: prefix.map(str::to_string),
    };
    let cases: Vec<(ListOptions, Vec<String>)> = vec![
        (
            opts("f00100", true, 3, None),
            strings(&["f00100", "f00101", "f00102"]),
        ),
        (
            opts("f00100", false, 3, None),
            strings(&["f00101", "f00102", "f00103"]),
        ),
        (
            opts("f00100x", true, 2, None),
            strings(&["f00101", "f00102"]),
        ),
        (opts("", false, 2, None), strings(&["f00000", "f00001"])),
        (opts("e", true, 1, None), strings(&["f00000"])),
        (opts("f02499", false, 10, None), vec![]),
        (opts("zzz", true, 10, None), vec![]),
        (
            opts("a", false, 0, Some("f012")),
            (1200..1300).map(name).collect(),
        ),
        (
            opts("f01250", false, 0, Some("f012")),
            (1251..1300).map(name).collect(),
        ),
        (
            opts("f01250", true, 5, Some("f012")),
            (1250..1255).map(name).collect(),
        ),
        (opts("f013", false, 0, Some("f012")), vec![]),
        (
            opts("f01200", true, 0, Some("f01200")),
            strings(&["f01200"]),
        ),
        (opts("f01200", false, 0, Some("f01200")), vec![]),
        (opts("", false, 0, Some("g")), vec![]),
        (opts("", false, 0, Some("f")), all.clone()),
    ];
    for (o, want) in cases {
        assert_eq!(names(&s, "/big", &o).await, want, "list(/big, {o:?})");
    }
    let prefixed = ListOptions {
        prefix: Some("f024".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        names(&s, "/big", &prefixed).await,
        (2400..2410).map(name).collect::<Vec<_>>()
    );
}

async fn list_is_isolated(s: Arc<dyn FilerStore>) {
    put_all(
        &s,
        vec![
            dir("/a"),
            dir("/a/b"),
            file("/a/b/c", &[]),
            file("/a/x", &[]),
            dir("/ab"),
            file("/ab/x", &[]),
            file("/a.b", &[]),
            dir("/a0"),
            file("/a0/z", &[]),
            file("/a b", &[]),
        ],
    )
    .await;
    assert_eq!(
        all_names(&s, "/").await,
        strings(&["a", "a b", "a.b", "a0", "ab"])
    );
    assert_eq!(all_names(&s, "/a").await, strings(&["b", "x"]));
    assert_eq!(all_names(&s, "/a/b").await, strings(&["c"]));
    assert_eq!(all_names(&s, "/ab").await, strings(&["x"]));
    assert_eq!(all_names(&s, "/a0").await, strings(&["z"]));
    assert!(
        all_names(&s, "/missing").await.is_empty(),
        "a missing directory lists empty"
    );
    assert!(all_names(&s, "/a.b").await.is_empty(), "a file lists empty");
    assert!(all_names(&s, "/a/b/c").await.is_empty());
}
