//! Runs the filer store conformance suite against `RedbStore`, checks that everything
//! (entries, kv, chunk counts, the GC queue) survives closing and reopening, and holds
//! the `#[ignore]`d throughput measurement of the store.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use kelp_filer::entry::Entry;
use kelp_filer::entry::FileChunk;
use kelp_filer::store::FilerStore;
use kelp_filer::store::ListOptions;
use kelp_filer::store::Mutation;
use kelp_filer::store::RedbStore;
use kelp_filer::store::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_passes_the_conformance_suite() {
    let dirs = Mutex::new(Vec::new());
    let make = || -> Arc<dyn FilerStore> {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        dirs.lock().unwrap().push(dir);
        Arc::new(store)
    };
    conformance::run_all(&make).await;
}

fn file(p: &str, fids: &[&str]) -> Entry {
    let mut e = Entry::new_file(p, 1_700_000_000);
    for (i, fid) in fids.iter().enumerate() {
        e.chunks.push(FileChunk {
            fid: fid.to_string(),
            offset: i as u64 * 4,
            size: 4,
            modified_ts_ns: 7,
            etag: "00".repeat(16),
            is_manifest: false,
        });
    }
    e
}

#[tokio::test]
async fn redb_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = file("/d/big", &["1,01", "1,02"]);
    big.extended.insert("Seaweed-A".into(), b"b".to_vec());
    big.content = vec![0, 1, 2];
    {
        let s = RedbStore::open(dir.path()).unwrap();
        s.apply(vec![
            Mutation::Put(Entry::new_dir("/d", 5)),
            Mutation::Put(big.clone()),
            Mutation::Put(file("/d/copy", &["1,02"])),
            Mutation::Put(file("/gone", &["2,03"])),
            Mutation::KvPut(b"key".to_vec(), b"value".to_vec()),
        ])
        .await
        .unwrap();
        s.apply(vec![Mutation::Delete("/gone".into())])
            .await
            .unwrap();
        assert_eq!(s.gc_pending(10).await.unwrap().len(), 1);
    }
    let s = RedbStore::open(dir.path()).unwrap();
    assert_eq!(s.find("/d/big").await.unwrap(), Some(big));
    let names: Vec<String> = s
        .list("/d", &ListOptions::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(names, ["/d/big", "/d/copy"]);
    assert_eq!(s.kv_get(b"key").await.unwrap(), Some(b"value".to_vec()));
    assert_eq!(s.chunk_refs("1,01").await.unwrap(), 1);
    assert_eq!(s.chunk_refs("1,02").await.unwrap(), 2);
    let queued = s.gc_pending(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].fid, "2,03");
    // The seq counter survives too: a new item comes after the old one.
    s.gc_done(&[queued[0].seq]).await.unwrap();
    drop(s);
    let s = RedbStore::open(dir.path()).unwrap();
    assert!(
        s.gc_pending(10).await.unwrap().is_empty(),
        "gc_done is durable"
    );
    s.apply(vec![Mutation::DeleteTree("/d".into())])
        .await
        .unwrap();
    let later = s.gc_pending(10).await.unwrap();
    let fids: Vec<&str> = later.iter().map(|i| i.fid.as_str()).collect();
    assert_eq!(fids, ["1,01", "1,02"]);
    assert!(later[0].seq > queued[0].seq, "seqs continue across reopen");
}

/// Throughput figures (not a pass/fail goal): run with
/// `cargo test -p kelp-filer --release --test store_suite -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints figures"]
async fn redb_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStore::open(dir.path()).unwrap();
    s.apply(vec![
        Mutation::Put(Entry::new_dir("/one", 0)),
        Mutation::Put(Entry::new_dir("/big", 0)),
    ])
    .await
    .unwrap();

    let n = 2_000;
    let t = Instant::now();
    for i in 0..n {
        let e = file(&format!("/one/f{i:07}"), &[&format!("3,{i:08x}1234abcd")]);
        s.apply(vec![Mutation::Put(e)]).await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "one entry per apply: {n} entries in {secs:.2} s = {:.0} entries/s",
        n as f64 / secs
    );

    let total = 100_000;
    let t = Instant::now();
    for b in 0..total / 100 {
        let muts = (0..100)
            .map(|j| {
                let i = b * 100 + j;
                Mutation::Put(file(
                    &format!("/big/file-{i:07}"),
                    &[&format!("4,{i:08x}1234abcd")],
                ))
            })
            .collect();
        s.apply(muts).await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "batches of 100: {total} entries in {secs:.2} s = {:.0} entries/s",
        total as f64 / secs
    );

    let t = Instant::now();
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = s
            .list(
                "/big",
                &ListOptions {
                    start_after: cursor.take(),
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(last.name().to_string());
        seen += page.len();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(seen, total);
    println!(
        "listing {total} entries 1,000 per page: {secs:.3} s ({:.2} ms per page)",
        secs * 1000.0 / (total / 1000) as f64
    );

    let t = Instant::now();
    s.apply(vec![Mutation::Rename {
        from: "/big".into(),
        to: "/moved".into(),
    }])
    .await
    .unwrap();
    println!(
        "renaming the 100,000-entry directory: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    s.apply(vec![Mutation::DeleteTree("/moved".into())])
        .await
        .unwrap();
    println!(
        "deleting it (100,000 chunks queued for GC): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(s.gc_pending(usize::MAX).await.unwrap().len(), total);
}

/// Group commit: concurrent applies share fsyncs, yet each stays atomic on its own and
/// one failing batch does not disturb the others; everything acknowledged survives a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_commit_together_and_stay_separate() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path()).unwrap());
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut muts = vec![Mutation::Put(file(
                &format!("/g/f{i:03}"),
                &[&format!("1,{i:x}aabbccdd")],
            ))];
            if i % 16 == 0 {
                // This batch fails at its second step: its first step must not land.
                muts.push(Mutation::Delete("/no/such/entry".into()));
            }
            store.apply(muts).await
        }));
    }
    let mut failed = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(()) => assert!(i % 16 != 0),
            Err(_) => {
                assert_eq!(i % 16, 0);
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 4);
    drop(store);
    let store = RedbStore::open(dir.path()).unwrap();
    let listed = store.list("/g", &ListOptions::first(1000)).await.unwrap();
    assert_eq!(listed.len(), 60);
    assert!(
        listed
            .iter()
            .all(|e| !e.path.ends_with("f000") && !e.path.ends_with("f016"))
    );
    assert_eq!(
        store.chunk_refs("1,10aabbccdd").await.unwrap(),
        0,
        "a failed batch adds no reference"
    );
    assert_eq!(store.chunk_refs("1,11aabbccdd").await.unwrap(), 1);
}
