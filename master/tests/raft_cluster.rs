//! End-to-end Raft tests: masters serving the Raft routes over real HTTP on ephemeral
//! loopback ports (single node restart, three-node failover, snapshot catch-up).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::{Future, ready};
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;
use std::time::Instant;

use kelp_master::raft::ConsensusError;
use kelp_master::raft::RaftNode;
use kelp_master::raft::RaftNodeConfig;
use kelp_testkit::wait_until_async;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous: the test machine has 2 cores shared with other builds.
const DEADLINE: Duration = Duration::from_secs(20);
/// The failover goal.
const FAILOVER_GOAL: Duration = Duration::from_secs(10);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A master's Raft member with its HTTP server.
struct TestMaster {
    node: RaftNode,
    addr: String,
    mdir: PathBuf,
    stop_http: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestMaster {
    async fn start(listener: TcpListener, peers: &[String], mdir: &Path) -> TestMaster {
        let addr = listener.local_addr().unwrap().to_string();
        let cfg = RaftNodeConfig::new(&addr, peers.to_vec(), mdir);
        Self::start_with(listener, cfg).await
    }

    async fn start_with(listener: TcpListener, cfg: RaftNodeConfig) -> TestMaster {
        let addr = listener.local_addr().unwrap().to_string();
        assert_eq!(addr, cfg.self_addr);
        let mdir = cfg.mdir.clone();
        let node = RaftNode::start(cfg).await.unwrap();
        let app: axum::Router = node.router();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        TestMaster {
            node,
            addr,
            mdir,
            stop_http: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the HTTP server (peers now get "connection refused") and then Raft.
    async fn stop(mut self) {
        if let Some(tx) = self.stop_http.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("http server did not stop")
                .unwrap()
                .unwrap();
        }
        self.node.shutdown().await.unwrap();
    }
}

async fn bind_ephemeral() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Rebinds a port a stopped master used (retrying while the old socket goes away).
async fn rebind(addr: &str) -> TcpListener {
    let addr: SocketAddr = addr.parse().unwrap();
    let start = Instant::now();
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if start.elapsed() < DEADLINE => {
                eprintln!("rebinding {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot rebind {addr}: {e}"),
        }
    }
}

/// Retries a leader write while leadership settles (a fresh leader may still be committing its
/// first entry, or a stale one may step down).
async fn on_leader<'a, T, F, Fut>(masters: &'a [&'a TestMaster], mut op: F) -> T
where
    F: FnMut(&'a RaftNode) -> Fut,
    Fut: Future<Output = Result<T, ConsensusError>>,
{
    let start = Instant::now();
    loop {
        if let Some(m) = masters.iter().find(|m| m.node.is_leader()) {
            match op(&m.node).await {
                Ok(v) => return v,
                Err(ConsensusError::NotLeader { .. }) => {}
                Err(e) => panic!("leader write failed: {e}"),
            }
        }
        assert!(start.elapsed() < DEADLINE, "no leader accepted the write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Exactly one leader, and every master names it.
fn one_agreed_leader(masters: &[&TestMaster]) -> Option<String> {
    let leaders: Vec<_> = masters.iter().filter(|m| m.node.is_leader()).collect();
    let [leader] = leaders.as_slice() else {
        return None;
    };
    let all_agree = masters
        .iter()
        .all(|m| m.node.leader_addr().as_deref() == Some(leader.addr.as_str()));
    all_agree.then(|| leader.addr.clone())
}

fn same_state(masters: &[&TestMaster]) -> bool {
    let first = masters[0].node.state();
    masters.iter().all(|m| m.node.state() == first)
}

fn disjoint(a: &std::ops::Range<u64>, b: &std::ops::Range<u64>) -> bool {
    a.end <= b.start || b.end <= a.start
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_leads_and_survives_restart() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let listener = bind_ephemeral().await;
    let m = TestMaster::start(listener, &[], dir.path()).await;

    wait_until_async("single node leadership", DEADLINE, || {
        ready(m.node.is_leader())
    })
    .await;
    assert_eq!(m.node.leader_addr().as_deref(), Some(m.addr.as_str()));
    assert_eq!(m.node.peers(), vec![m.addr.clone()]);
    assert_eq!(m.node.next_volume_id().await.unwrap(), 1);
    assert_eq!(m.node.next_volume_id().await.unwrap(), 2);
    assert_eq!(m.node.raise_max_volume_id(5).await.unwrap(), 5);
    assert_eq!(m.node.next_volume_id().await.unwrap(), 6);
    assert_eq!(m.node.reserve_file_keys(0, 100).await.unwrap(), 1..101);
    assert!(matches!(
        m.node.reserve_file_keys(0, 0).await,
        Err(ConsensusError::InvalidArgument(_))
    ));
    wait_until_async("the topology id", DEADLINE, || {
        ready(!m.node.state().topology_id.is_empty())
    })
    .await;
    let before = m.node.state();
    assert_eq!(before.max_volume_id, 6);
    assert_eq!(before.file_key_ceiling, 100);
    let membership_log = *m.node.metrics().membership_config.log_id();
    let addr = m.addr.clone();
    m.stop().await;

    // Reopen the same mdir on the same address: state kept, no second initialization.
    let m = TestMaster::start(rebind(&addr).await, &[], dir.path()).await;
    assert_eq!(m.node.state(), before, "state survives a restart");
    wait_until_async("leadership after restart", DEADLINE, || {
        ready(m.node.is_leader())
    })
    .await;
    assert_eq!(*m.node.metrics().membership_config.log_id(), membership_log);
    assert_eq!(m.node.next_volume_id().await.unwrap(), 7);
    assert_eq!(m.node.reserve_file_keys(50, 10).await.unwrap(), 101..111);
    assert_eq!(m.node.state().topology_id, before.topology_id);
    m.stop().await;
}

async fn start_cluster(dirs: &[PathBuf], tune: impl Fn(&mut RaftNodeConfig)) -> Vec<TestMaster> {
    let mut listeners = Vec::new();
    for _ in dirs {
        listeners.push(bind_ephemeral().await);
    }
    let peers: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let mut masters = Vec::new();
    for ((listener, dir), addr) in listeners.into_iter().zip(dirs).zip(&peers) {
        let mut cfg = RaftNodeConfig::new(addr, peers.clone(), dir);
        tune(&mut cfg);
        masters.push(TestMaster::start_with(listener, cfg).await);
    }
    masters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_fail_over_without_reusing_keys() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("m{i}"))).collect();
    let mut masters = start_cluster(&dirs, |_| {}).await;

    let all: Vec<&TestMaster> = masters.iter().collect();
    wait_until_async("one agreed leader", DEADLINE, || {
        ready(one_agreed_leader(&all).is_some())
    })
    .await;
    let leader_addr = one_agreed_leader(&all).unwrap();
    for m in &masters {
        assert_eq!(m.node.peers().len(), 3);
    }

    let vid = on_leader(&all, |n| n.next_volume_id()).await;
    assert_eq!(vid, 1);
    let mut old_ranges = Vec::new();
    for _ in 0..3 {
        old_ranges.push(on_leader(&all, |n| n.reserve_file_keys(0, 1000)).await);
    }
    // A follower refuses and names the leader.
    let follower = masters.iter().find(|m| !m.node.is_leader()).unwrap();
    match follower.node.reserve_file_keys(0, 10).await {
        Err(ConsensusError::NotLeader { leader }) => {
            assert_eq!(leader.as_deref(), Some(leader_addr.as_str()))
        }
        other => panic!("expected NotLeader, got {other:?}"),
    }
    wait_until_async("replicas to agree", DEADLINE, || ready(same_state(&all))).await;
    let topology_id = {
        wait_until_async("the topology id", DEADLINE, || {
            ready(!masters[0].node.state().topology_id.is_empty() && same_state(&all))
        })
        .await;
        masters[0].node.state().topology_id
    };

    // Kill the leader.
    let idx = masters.iter().position(|m| m.addr == leader_addr).unwrap();
    let old = masters.remove(idx);
    let old_dir = old.mdir.clone();
    let started = Instant::now();
    old.stop().await;
    let stopped_after = started.elapsed();
    let rest: Vec<&TestMaster> = masters.iter().collect();
    wait_until_async("a new leader", DEADLINE, || {
        ready(one_agreed_leader(&rest).is_some())
    })
    .await;
    let failover = started.elapsed();
    let new_leader = one_agreed_leader(&rest).unwrap();
    println!(
        "failover: new leader {new_leader} elected {failover:?} after stopping {leader_addr} \
         (stop itself took {stopped_after:?})"
    );
    assert_ne!(new_leader, leader_addr);
    assert!(failover < FAILOVER_GOAL, "failover took {failover:?}");

    // The new leader reserves strictly above everything the old one handed out.
    let old_max = old_ranges.iter().map(|r| r.end).max().unwrap();
    let mut new_ranges = Vec::new();
    for _ in 0..3 {
        new_ranges.push(on_leader(&rest, |n| n.reserve_file_keys(0, 1000)).await);
    }
    for n in &new_ranges {
        assert!(n.start >= old_max, "{n:?} starts below {old_max}");
        for o in &old_ranges {
            assert!(disjoint(n, o), "{n:?} overlaps {o:?}");
        }
    }
    assert_eq!(on_leader(&rest, |n| n.next_volume_id()).await, 2);

    // The old leader comes back with its mdir, rejoins and catches up.
    let back = TestMaster::start(rebind(&leader_addr).await, &[], &old_dir).await;
    masters.push(back);
    let all: Vec<&TestMaster> = masters.iter().collect();
    wait_until_async("the old leader to catch up", DEADLINE, || {
        ready(one_agreed_leader(&all).is_some() && same_state(&all))
    })
    .await;
    let state = masters[0].node.state();
    assert_eq!(state.max_volume_id, 2);
    assert_eq!(state.topology_id, topology_id);
    assert_eq!(state.file_key_ceiling, new_ranges.last().unwrap().end - 1);
    let r = on_leader(&all, |n| n.reserve_file_keys(0, 5)).await;
    assert_eq!(r.start, state.file_key_ceiling + 1);
    wait_until_async("replicas to agree again", DEADLINE, || {
        ready(same_state(&all))
    })
    .await;

    for m in masters {
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_node_catches_up_from_a_snapshot() {
    init_tracing();
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("m{i}"))).collect();
    let mut masters = start_cluster(&dirs, |cfg| {
        cfg.snapshot_every = Some(10);
        cfg.logs_kept_after_snapshot = 0;
    })
    .await;
    let all: Vec<&TestMaster> = masters.iter().collect();
    wait_until_async("one agreed leader", DEADLINE, || {
        ready(one_agreed_leader(&all).is_some())
    })
    .await;
    on_leader(&all, |n| n.next_volume_id()).await;
    wait_until_async("replicas to agree", DEADLINE, || ready(same_state(&all))).await;

    // Stop a follower that has not built a snapshot of its own yet.
    let idx = masters.iter().position(|m| !m.node.is_leader()).unwrap();
    let lagging = masters.remove(idx);
    assert_eq!(lagging.node.metrics().snapshot, None);
    let lag_last_log = lagging.node.metrics().last_log_index.unwrap_or(0);
    let (lag_addr, lag_dir) = (lagging.addr.clone(), lagging.mdir.clone());
    lagging.stop().await;

    // Write enough for the others to snapshot and purge past the lagging node's log.
    let rest: Vec<&TestMaster> = masters.iter().collect();
    for _ in 0..40 {
        on_leader(&rest, |n| n.reserve_file_keys(0, 7)).await;
    }
    let vid = on_leader(&rest, |n| n.next_volume_id()).await;
    wait_until_async("the leader to purge its log", DEADLINE, || {
        ready({
            rest.iter().filter(|m| m.node.is_leader()).any(|m| {
                m.node
                    .metrics()
                    .purged
                    .is_some_and(|p| p.index > lag_last_log + 10)
            })
        })
    })
    .await;

    // Restart it with automatic snapshots off: a snapshot it holds must come from the leader.
    let mut cfg = RaftNodeConfig::new(&lag_addr, vec![], &lag_dir);
    cfg.snapshot_every = None;
    let back = TestMaster::start_with(rebind(&lag_addr).await, cfg).await;
    masters.push(back);
    let all: Vec<&TestMaster> = masters.iter().collect();
    wait_until_async("the lagging node to catch up", DEADLINE, || {
        ready(same_state(&all) && one_agreed_leader(&all).is_some())
    })
    .await;
    let back = masters.last().unwrap();
    let snap = back.node.metrics().snapshot;
    assert!(
        snap.is_some_and(|s| s.index > lag_last_log + 10),
        "expected an installed snapshot, got {snap:?}"
    );
    let state = back.node.state();
    assert_eq!(state.max_volume_id, vid);
    assert_eq!(state.file_key_ceiling, 40 * 7);

    // Normal replication resumes after the snapshot.
    let all: Vec<&TestMaster> = masters.iter().collect();
    on_leader(&all, |n| n.next_volume_id()).await;
    wait_until_async("replicas to agree after more writes", DEADLINE, || {
        ready(same_state(&all))
    })
    .await;

    for m in masters {
        m.stop().await;
    }
}
