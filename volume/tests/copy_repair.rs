//! Whole-volume copies (`/admin/volume/{sizes,file,copy}`) and needle-by-needle replica
//! repair (`/admin/volume/needle*`) between real volume servers on loopback ports, with a
//! stand-in master that knows exactly the servers that heartbeat to it.

// The fixtures run outside #[test] functions, where clippy.toml's test allowance does not
// reach: a broken fixture must panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use kelp_proto::client::{UploadOptions, VolumeClient, http_client};
use kelp_proto::master_api::{
    DataCenterStatus, DataNodeStatus, DirStatus, Heartbeat, HeartbeatResponse, RackStatus,
    TopologyStatus,
};
use kelp_proto::volume_api::AllocateVolumeRequest;
use kelp_proto::{Cookie, FileId, NeedleKey, ReplicaPlacement, Ttl, VolumeId};
use kelp_volume::http::{VolumeServerConfig, serve};
use kelp_volume::store::COPYING_SUFFIX;
use kelp_volume::{DiskLocation, Needle, Store, StoreOptions, Volume, VolumeOptions};
use tokio::sync::oneshot;

type Beats = Arc<Mutex<BTreeMap<String, Heartbeat>>>;

/// A master that answers heartbeats and lists in `/dir/status` the servers that sent one.
struct FakeMaster {
    addr: String,
    beats: Beats,
    _stop: oneshot::Sender<()>,
}

async fn heartbeat(
    State(beats): State<Beats>,
    Json(hb): Json<Heartbeat>,
) -> Json<HeartbeatResponse> {
    beats
        .lock()
        .unwrap()
        .insert(format!("{}:{}", hb.ip, hb.port), hb);
    Json(HeartbeatResponse {
        volume_size_limit: 1 << 30,
        ..HeartbeatResponse::default()
    })
}

async fn dir_status(State(beats): State<Beats>) -> Json<DirStatus> {
    let data_nodes = beats
        .lock()
        .unwrap()
        .iter()
        .map(|(url, hb)| DataNodeStatus {
            url: url.clone(),
            public_url: hb.public_url.clone(),
            volumes: hb.volumes.len() as u64,
            ..DataNodeStatus::default()
        })
        .collect();
    Json(DirStatus {
        topology: TopologyStatus {
            data_centers: vec![DataCenterStatus {
                id: "dc1".into(),
                racks: vec![RackStatus {
                    id: "rack1".into(),
                    data_nodes,
                }],
            }],
            ..TopologyStatus::default()
        },
        ..DirStatus::default()
    })
}

impl FakeMaster {
    async fn start() -> FakeMaster {
        let beats = Beats::default();
        let app = Router::new()
            .route("/heartbeat", post(heartbeat))
            .route("/dir/status", get(dir_status))
            .with_state(beats.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        FakeMaster {
            addr,
            beats,
            _stop: tx,
        }
    }

    /// The volume ids `server` reported in its latest heartbeat.
    fn volumes_of(&self, server: &str) -> Option<Vec<u32>> {
        let beats = self.beats.lock().unwrap();
        beats
            .get(server)
            .map(|hb| hb.volumes.iter().map(|v| v.id).collect())
    }

    /// Waits (polling, with a deadline) until `server`'s heartbeat satisfies `ok`.
    async fn wait_for(&self, server: &str, what: &str, ok: impl Fn(&[u32]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.volumes_of(server).is_some_and(|v| ok(&v)) {
                return;
            }
            assert!(Instant::now() < deadline, "{server}: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A volume server in this process, serving `dir` (one location, 8 slots).
struct Server {
    addr: String,
    dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(dir: &Path, master: Option<&FakeMaster>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let store = Store::open(vec![DiskLocation::new(dir, 8)], StoreOptions::default()).unwrap();
        let cfg = VolumeServerConfig {
            ip: "127.0.0.1".into(),
            port,
            masters: master.map(|m| vec![m.addr.clone()]).unwrap_or_default(),
            heartbeat_secs: 1,
            ..VolumeServerConfig::default()
        };
        let addr = cfg.url();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::new(store), cfg, async move {
            let _ = rx.await;
        }));
        Server {
            addr,
            dir: dir.to_path_buf(),
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// File names in the data directory that belong to volume `vid` (any collection).
    fn files_of(&self, vid: u32) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                let stem = n.split('.').next().unwrap_or("");
                stem == vid.to_string() || stem.ends_with(&format!("_{vid}"))
            })
            .collect();
        names.sort();
        names
    }
}

fn client() -> VolumeClient {
    VolumeClient::new(http_client())
}

fn fid(vid: u32, key: u64) -> FileId {
    FileId::new(
        VolumeId(vid),
        NeedleKey(key),
        Cookie((key as u32).wrapping_mul(2_654_435_761) | 1),
    )
}

/// Random-looking bytes of needle `key`, `len` long.
fn data(key: u64, len: usize) -> Bytes {
    let mut x = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn allocate(c: &VolumeClient, server: &str, vid: u32, collection: &str) {
    c.allocate_volume(
        server,
        &AllocateVolumeRequest {
            volume: vid,
            collection: collection.into(),
            replication: "000".into(),
            ..AllocateVolumeRequest::default()
        },
    )
    .await
    .unwrap();
}

async fn upload(c: &VolumeClient, server: &str, f: &FileId, body: Bytes, name: Option<&str>) {
    let opts = UploadOptions {
        name: name.map(str::to_string),
        mime: Some("application/x-kelp-test".into()),
        pairs: vec![("Color".into(), "blue".into())],
        ..UploadOptions::default()
    };
    c.upload_bytes(server, f, body, &opts).await.unwrap();
}

async fn read(c: &VolumeClient, server: &str, f: &FileId) -> Result<Bytes, u16> {
    match c.get(server, f, None).await {
        Ok(r) => Ok(r.bytes().await.unwrap()),
        Err(e) => Err(e.status().unwrap_or(0)),
    }
}

/// Needle sizes of the copy tests: empty, tiny, over the 64 KiB inline read, over 1 MiB.
fn size_of(key: u64) -> usize {
    match key {
        1 => 1,
        4 => 200 << 10,
        7 => (1 << 20) + 12_345,
        k => (k as usize) * 1000 + 3,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copied_volume_serves_the_same_needles() {
    let master = FakeMaster::start().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start(da.path(), Some(&master)).await;
    let b = Server::start(db.path(), Some(&master)).await;
    let c = client();
    let vid = 5;
    allocate(&c, &a.addr, vid, "pics").await;
    for k in 1..=10 {
        upload(
            &c,
            &a.addr,
            &fid(vid, k),
            data(k, size_of(k)),
            Some("f.bin"),
        )
        .await;
    }
    c.delete(&a.addr, &fid(vid, 3), false).await.unwrap();
    master
        .wait_for(&a.addr, "heartbeat with the volume", |v| v.contains(&vid))
        .await;

    let sizes = c.volume_sizes(&a.addr, vid).await.unwrap();
    assert_eq!((sizes.volume, sizes.collection.as_str()), (vid, "pics"));
    assert_eq!(sizes.idx, 11 * 17, "ten puts and a delete, 17-byte entries");
    assert!(!sizes.read_only);
    // The file endpoint: what was asked, and refusals.
    let head = c.volume_file(&a.addr, vid, ".dat", Some(8)).await.unwrap();
    assert_eq!(head.content_length(), Some(8));
    assert_eq!(head.bytes().await.unwrap()[0], 3, "superblock version");
    let whole = c.volume_file(&a.addr, vid, ".idx", None).await.unwrap();
    assert_eq!(whole.bytes().await.unwrap().len() as u64, sizes.idx);
    let refused = async |vid: u32, ext: &str, upto: Option<u64>| {
        c.volume_file(&a.addr, vid, ext, upto)
            .await
            .err()
            .and_then(|e| e.status())
    };
    assert_eq!(refused(vid, ".dat", Some(sizes.dat + 1)).await, Some(400));
    assert_eq!(refused(vid, ".ecx", None).await, Some(400));
    assert_eq!(refused(99, ".dat", None).await, Some(404));

    let copied = c
        .volume_copy(&b.addr, vid, "pics", &a.addr, 0)
        .await
        .unwrap();
    assert_eq!(copied.volume, vid);
    assert!(copied.bytes >= sizes.idx + sizes.dat, "{copied:?}");
    assert_eq!(
        b.files_of(vid),
        ["pics_5.dat", "pics_5.idx", "pics_5.vif"],
        "no staged file left"
    );
    for k in 1..=10 {
        let got = read(&c, &b.addr, &fid(vid, k)).await;
        if k == 3 {
            assert_eq!(got, Err(404), "deleted on the source");
        } else {
            assert_eq!(got.unwrap(), data(k, size_of(k)), "needle {k}");
            assert_eq!(
                c.needle_raw(&b.addr, vid, k).await.unwrap(),
                c.needle_raw(&a.addr, vid, k).await.unwrap(),
                "record {k} byte for byte"
            );
        }
    }
    assert_eq!(
        c.volume_needles(&b.addr, vid).await.unwrap(),
        c.volume_needles(&a.addr, vid).await.unwrap()
    );
    master
        .wait_for(&b.addr, "heartbeat with the copy", |v| v.contains(&vid))
        .await;
    // The copy is a volume like any other: it takes writes.
    upload(&c, &b.addr, &fid(vid, 11), data(11, 10), None).await;
    // A second copy of the same volume is a conflict.
    let again = c.volume_copy(&b.addr, vid, "pics", &a.addr, 0).await;
    assert_eq!(again.unwrap_err().status(), Some(409));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_from_unknown_servers_or_of_corrupt_files_are_refused() {
    let master = FakeMaster::start().await;
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = Server::start(da.path(), Some(&master)).await;
    let b = Server::start(db.path(), Some(&master)).await;
    // `stranger` never heartbeats: the masters do not know it.
    let stranger = Server::start(dc.path(), None).await;
    let c = client();
    let vid = 8;
    for s in [&a, &stranger] {
        allocate(&c, &s.addr, vid, "").await;
        for k in 1..=4 {
            upload(&c, &s.addr, &fid(vid, k), data(k, 3000), None).await;
        }
    }
    master
        .wait_for(&a.addr, "heartbeat with the volume", |v| v.contains(&vid))
        .await;
    master.wait_for(&b.addr, "first heartbeat", |_| true).await;

    let e = c
        .volume_copy(&b.addr, vid, "", &stranger.addr, 0)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(
        e.to_string()
            .contains("not a volume server the masters know"),
        "{e}"
    );
    assert!(b.files_of(vid).is_empty());
    // The wrong collection, and a volume the source does not have.
    let e = c
        .volume_copy(&b.addr, vid, "pics", &a.addr, 0)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    let e = c
        .volume_copy(&b.addr, 77, "", &a.addr, 0)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500), "{e}");
    assert!(b.files_of(77).is_empty());

    // A flipped data byte in the source's .dat: the copy fails its CRC check and leaves
    // nothing behind.
    let dat = da.path().join(format!("{vid}.dat"));
    let at = 8 + 20 + 100;
    flip(&dat, at);
    let e = c
        .volume_copy(&b.addr, vid, "", &a.addr, 0)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("CRC"), "{e}");
    assert!(b.files_of(vid).is_empty(), "{:?}", b.files_of(vid));
    // Repaired, the same copy goes through (the failed one released its slot), at
    // most 1 MiB/s: a bit over 12 KiB takes about 12 ms at least.
    flip(&dat, at);
    let copied = c.volume_copy(&b.addr, vid, "", &a.addr, 1).await.unwrap();
    let floor = copied.bytes as f64 / (1 << 20) as f64;
    assert!(copied.seconds >= floor * 0.9, "{copied:?}");
    assert_eq!(
        read(&c, &b.addr, &fid(vid, 2)).await.unwrap(),
        data(2, 3000)
    );
    for s in [a, b, stranger] {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_throttled_copy_takes_its_time() {
    let master = FakeMaster::start().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start(da.path(), Some(&master)).await;
    let b = Server::start(db.path(), Some(&master)).await;
    let c = client();
    allocate(&c, &a.addr, 4, "").await;
    upload(&c, &a.addr, &fid(4, 1), data(1, 3 << 20), None).await;
    master
        .wait_for(&a.addr, "heartbeat", |v| v.contains(&4))
        .await;
    let copied = c.volume_copy(&b.addr, 4, "", &a.addr, 2).await.unwrap();
    assert!(copied.bytes > 3 << 20);
    assert!(copied.seconds >= 1.4, "3 MiB at 2 MiB/s: {copied:?}");
    assert_eq!(
        read(&c, &b.addr, &fid(4, 1)).await.unwrap(),
        data(1, 3 << 20)
    );
    a.stop().await;
    b.stop().await;
}

fn flip(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x20], at).unwrap();
}

#[test]
fn half_copied_volumes_are_removed_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    // A whole, valid volume 5, staged under the .copying names: it must not be loaded.
    let v = Volume::create(
        src.path(),
        "",
        VolumeId(5),
        ReplicaPlacement::default(),
        Ttl::EMPTY,
        &VolumeOptions::default(),
    )
    .unwrap();
    v.write(Needle::new(NeedleKey(1), Cookie(1), vec![1u8; 10]), true)
        .unwrap();
    drop(v);
    for ext in [".dat", ".idx", ".vif"] {
        std::fs::copy(
            src.path().join(format!("5{ext}")),
            dir.path().join(format!("5{ext}{COPYING_SUFFIX}")),
        )
        .unwrap();
    }
    // Next to a normal volume 6.
    drop(
        Volume::create(
            dir.path(),
            "",
            VolumeId(6),
            ReplicaPlacement::default(),
            Ttl::EMPTY,
            &VolumeOptions::default(),
        )
        .unwrap(),
    );
    let store = Store::open(
        vec![DiskLocation::new(dir.path(), 8)],
        StoreOptions::default(),
    )
    .unwrap();
    assert!(store.volume(VolumeId(5)).is_none());
    assert!(store.volume(VolumeId(6)).is_some());
    assert!(store.load_errors().is_empty());
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["6.dat", "6.idx", "6.vif"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_are_repaired_needle_by_needle() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // No master is needed: every call names its server.
    let a = Server::start(da.path(), None).await;
    let b = Server::start(db.path(), None).await;
    let c = client();
    let vid = 9;
    for s in [&a, &b] {
        allocate(&c, &s.addr, vid, "docs").await;
        for k in 1..=5 {
            upload(&c, &s.addr, &fid(vid, k), data(k, 500 * k as usize), None).await;
        }
    }
    // Needle 6 reached only A (with a name, a mime type and a pair); needle 3 was
    // deleted only on B; needle 4 only on A.
    upload(&c, &a.addr, &fid(vid, 6), data(6, 300_000), Some("six.bin")).await;
    c.delete(&b.addr, &fid(vid, 3), false).await.unwrap();
    c.delete(&a.addr, &fid(vid, 4), false).await.unwrap();

    let la = c.volume_needles(&a.addr, vid).await.unwrap();
    let lb = c.volume_needles(&b.addr, vid).await.unwrap();
    let keys = |l: &kelp_proto::volume_api::NeedleList| -> Vec<u64> {
        l.live.iter().map(|[k, _]| *k).collect()
    };
    assert_eq!(keys(&la), [1, 2, 3, 5, 6]);
    assert_eq!(la.deleted, [4]);
    assert_eq!(keys(&lb), [1, 2, 4, 5]);
    assert_eq!(lb.deleted, [3]);
    assert_eq!(la.live[0], lb.live[0], "same Size on both");

    // B is read-only: repair writes anyway.
    c.mark_readonly(&b.addr, vid, true).await.unwrap();
    let raw = c.needle_raw(&a.addr, vid, 6).await.unwrap();
    let stored = c.needle_put_raw(&b.addr, vid, raw.clone()).await.unwrap();
    assert_eq!(stored.key, 6);
    assert_eq!(c.needle_raw(&b.addr, vid, 6).await.unwrap(), raw);
    let back = c.get(&b.addr, &fid(vid, 6), None).await.unwrap();
    let headers = back.headers().clone();
    assert_eq!(
        back.bytes().await.unwrap(),
        data(6, 300_000),
        "same cookie, same bytes"
    );
    assert_eq!(
        headers.get("content-type").unwrap().to_str().unwrap(),
        "application/x-kelp-test"
    );
    assert_eq!(headers.get("color").unwrap().to_str().unwrap(), "blue");
    assert!(
        headers
            .get("content-disposition")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("six.bin")
    );
    // Again: the key is live there now.
    let e = c
        .needle_put_raw(&b.addr, vid, raw.clone())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    // Damaged records are refused.
    let mut bad = raw.to_vec();
    bad[1000] ^= 1;
    let e = c
        .needle_put_raw(&a.addr, vid, Bytes::from(bad))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    let e = c
        .needle_put_raw(&a.addr, vid, raw.slice(..raw.len() - 1))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");

    // A key deleted on one side: raw reads are 404 there, deletes go across locally.
    assert_eq!(
        c.needle_raw(&b.addr, vid, 3).await.unwrap_err().status(),
        Some(404)
    );
    assert_eq!(
        c.needle_raw(&a.addr, vid, 99).await.unwrap_err().status(),
        Some(404)
    );
    assert!(c.needle_delete_local(&a.addr, vid, 3).await.unwrap());
    assert!(!c.needle_delete_local(&a.addr, vid, 3).await.unwrap());
    assert!(c.needle_delete_local(&b.addr, vid, 4).await.unwrap());
    assert_eq!(read(&c, &a.addr, &fid(vid, 3)).await, Err(404));
    assert_eq!(read(&c, &b.addr, &fid(vid, 4)).await, Err(404));

    let la = c.volume_needles(&a.addr, vid).await.unwrap();
    let lb = c.volume_needles(&b.addr, vid).await.unwrap();
    assert_eq!(la, lb, "the replicas agree");
    assert_eq!(keys(&la), [1, 2, 5, 6]);
    assert_eq!(la.deleted, [3, 4]);
    assert!(la.times.is_empty(), "times only when asked");
    // With times: one per live needle, recent, and the raw copy of needle 6 kept its
    // append time on B.
    let (ta, tb) = (
        c.volume_needles_timed(&a.addr, vid).await.unwrap(),
        c.volume_needles_timed(&b.addr, vid).await.unwrap(),
    );
    assert_eq!((&ta.live, &ta.deleted), (&la.live, &la.deleted));
    assert_eq!(ta.times.len(), ta.live.len());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(ta.times.iter().all(|t| now.abs_diff(*t) < 120), "{ta:?}");
    assert_eq!(ta.times[3], tb.times[3], "needle 6 copied raw");
    // Unknown volumes are 404s.
    assert_eq!(
        c.volume_needles(&a.addr, 77).await.unwrap_err().status(),
        Some(404)
    );
    a.stop().await;
    b.stop().await;
}
