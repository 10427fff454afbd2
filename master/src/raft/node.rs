//! [`RaftNode`]: starts a master's Raft member (storage, network, one-time cluster
//! initialization) and offers the typed operations the rest of the master needs.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::Config;
use openraft::RaftMetrics;
use openraft::ServerState;
use openraft::SnapshotPolicy;
use openraft::error::ClientWriteError;
use openraft::error::InitializeError;
use openraft::error::RaftError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Command;
use super::CommandResponse;
use super::MasterState;
use super::NodeId;
use super::Peer;
use super::Raft;
use super::error::ConsensusError;
use super::network::HttpNetwork;
use super::node_id;
use super::state_machine::AppliedState;
use super::store::open_storage;

/// Largest snapshot chunk sent in one `/raft/snapshot` request.
pub const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;
/// How long [`RaftNode::shutdown`] waits for openraft to release the storage.
const STORAGE_RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a master's Raft member.
#[derive(Debug, Clone)]
pub struct RaftNodeConfig {
    /// This master's `"host:port"`, spelled exactly as in the other masters' `peers`.
    pub self_addr: String,
    /// All masters' `"host:port"` (this one may be included or not). Empty: a single master.
    /// Only used to form the cluster on first start; afterwards membership comes from the log.
    pub peers: Vec<String>,
    /// Metadata directory; the Raft state lives in `<mdir>/raft.redb`.
    pub mdir: PathBuf,
    /// Leader heartbeat period (also the AppendEntries RPC timeout).
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// Build a snapshot after this many applied entries since the last one; `None`: never
    /// automatically.
    pub snapshot_every: Option<u64>,
    /// Applied entries kept in the log after a snapshot (older ones are purged).
    pub logs_kept_after_snapshot: u64,
    /// Join a running group instead of forming one: on first start this node waits
    /// to be added (`cluster.raft.add`) rather than initializing with `peers`.
    pub join: bool,
}

impl RaftNodeConfig {
    /// Defaults tuned for a failover well within 10 s: heartbeat 250 ms, election timeout
    /// 1000-2000 ms, a snapshot every 1000 entries keeping 100 more.
    pub fn new(self_addr: impl Into<String>, peers: Vec<String>, mdir: impl Into<PathBuf>) -> Self {
        Self {
            self_addr: self_addr.into(),
            peers,
            mdir: mdir.into(),
            heartbeat_interval: Duration::from_millis(250),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            snapshot_every: Some(1000),
            logs_kept_after_snapshot: 100,
            join: false,
        }
    }

    fn raft_config(&self) -> Result<Config, ConsensusError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let config = Config {
            cluster_name: "kelp-master".into(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            install_snapshot_timeout: ms(self.election_timeout_max).max(5000),
            snapshot_policy: match self.snapshot_every {
                Some(n) => SnapshotPolicy::LogsSinceLast(n),
                None => SnapshotPolicy::Never,
            },
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            purge_batch_size: 1,
            ..Config::default()
        };
        Ok(config.validate()?)
    }

    /// The initial members: `peers` plus this node, keyed by their derived ids.
    fn members(&self) -> Result<BTreeMap<NodeId, Peer>, ConsensusError> {
        let self_addr = self.self_addr.trim();
        if self_addr.is_empty() {
            return Err(ConsensusError::InvalidArgument("empty self address".into()));
        }
        let mut members = BTreeMap::new();
        let addrs = self
            .peers
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty());
        for addr in addrs.chain([self_addr]) {
            let peer = Peer::new(addr);
            if let Some(other) = members.insert(peer.id(), peer.clone())
                && other != peer
            {
                return Err(ConsensusError::InvalidArgument(format!(
                    "peers {other} and {peer} hash to the same node id"
                )));
            }
        }
        Ok(members)
    }
}

/// What a member knows about who leads the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// This node leads.
    Leader,
    /// Another node leads; its `"host:port"`.
    Follower(String),
}

/// A running Raft member of the master group.
pub struct RaftNode {
    id: NodeId,
    self_addr: String,
    raft: Raft,
    applied: AppliedState,
    storage_closed: watch::Receiver<()>,
    topology_task: JoinHandle<()>,
    /// How long a leader may go without a quorum's acknowledgement and still act as
    /// leader (the lower bound of the election timeout: sooner than that, no other
    /// master can have been elected).
    lease: Duration,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.id)
            .field("self_addr", &self.self_addr)
            .finish_non_exhaustive()
    }
}

impl RaftNode {
    /// Opens `<mdir>/raft.redb`, starts Raft and, only if the storage is pristine (never voted,
    /// no log, no snapshot), initializes the cluster with `peers` + self. Every master may do
    /// so with the same list; a restarted master rejoins with its stored state instead.
    pub async fn start(cfg: RaftNodeConfig) -> Result<RaftNode, ConsensusError> {
        let members = cfg.members()?;
        let config = Arc::new(cfg.raft_config()?);
        let self_addr = cfg.self_addr.trim().to_string();
        let id = node_id(&self_addr);

        let (log_store, sm) = open_storage(&cfg.mdir).await?;
        let pristine = log_store.is_pristine().await? && sm.applied().last_applied().is_none();
        let applied = sm.applied();
        let storage_closed = log_store.closed();
        let network =
            HttpNetwork::new(id).map_err(|e| ConsensusError::HttpClient(e.to_string()))?;
        let raft = Raft::new(id, config, network, log_store, sm).await?;

        if pristine && cfg.join {
            tracing::info!(%self_addr, "waiting to be added to the master group (cluster.raft.add)");
        } else if pristine {
            tracing::info!(%self_addr, members = members.len(), "initializing raft cluster");
            match raft.initialize(members).await {
                Ok(()) => {}
                // A peer's vote request reached us first: the cluster is already forming.
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => {
                    let _ = raft.shutdown().await;
                    return Err(ConsensusError::Initialize(e.to_string()));
                }
            }
        } else {
            tracing::info!(%self_addr, "rejoining raft cluster with stored state");
        }

        let topology_task = tokio::spawn(ensure_topology_id(raft.clone(), applied.clone(), id));
        Ok(RaftNode {
            id,
            self_addr,
            raft,
            applied,
            storage_closed,
            topology_task,
            lease: cfg.election_timeout_min,
        })
    }

    /// This node's Raft id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// This node's `"host:port"`.
    pub fn self_addr(&self) -> &str {
        &self.self_addr
    }

    /// The openraft handle (for [`raft_router`](super::raft_router) and metrics).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The Raft RPC routes of this node, to merge into the master's HTTP router.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        super::raft_router(self.raft.clone())
    }

    /// The latest Raft metrics of this node.
    pub fn metrics(&self) -> RaftMetrics<NodeId, Peer> {
        self.raft.metrics().borrow().clone()
    }

    /// True if this node currently believes it leads the cluster.
    pub fn is_leader(&self) -> bool {
        let rx = self.raft.metrics();
        let m = rx.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.id)
    }

    /// Whether this leader heard from a quorum of voters within its lease: a leader cut
    /// off from the other masters stops acting (handing out ids) before another can be
    /// elected, so two masters never both hand out ids. A group of one always has.
    pub fn leads_with_quorum(&self) -> bool {
        let rx = self.raft.metrics();
        let m = rx.borrow();
        if m.state != ServerState::Leader {
            return false;
        }
        if m.membership_config.membership().voter_ids().count() <= 1 {
            return true;
        }
        let lease = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        m.millis_since_quorum_ack.is_some_and(|ms| ms < lease)
    }

    /// The current leader's `"host:port"`, if one is known.
    pub fn leader_addr(&self) -> Option<String> {
        let rx = self.raft.metrics();
        let m = rx.borrow();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|p| p.addr.clone())
    }

    /// The addresses of all members (this one included), sorted.
    pub fn peers(&self) -> Vec<String> {
        let rx = self.raft.metrics();
        let m = rx.borrow();
        let mut peers: Vec<String> = m
            .membership_config
            .membership()
            .nodes()
            .map(|(_, p)| p.addr.clone())
            .collect();
        peers.sort();
        peers
    }

    /// Every member as this node sees the membership: `(address, id, voter)`.
    pub fn members(&self) -> Vec<(String, NodeId, bool)> {
        let rx = self.raft.metrics();
        let m = rx.borrow();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let mut out: Vec<(String, NodeId, bool)> = membership
            .nodes()
            .map(|(id, p)| (p.addr.clone(), *id, voters.contains(id)))
            .collect();
        out.sort();
        out
    }

    /// Adds the master at `addr`: first as a learner, which catches up from the log or
    /// a snapshot (this returns once it has), then, with `voter`, as a voter. Only on
    /// the leader.
    pub async fn add_member(&self, addr: &str, voter: bool) -> Result<(), ConsensusError> {
        let addr = addr.trim().to_string();
        if addr.is_empty() {
            return Err(ConsensusError::InvalidArgument("empty address".into()));
        }
        let id = node_id(&addr);
        self.raft
            .add_learner(id, Peer::new(addr.clone()), true)
            .await
            .map_err(|e| ConsensusError::Rejected(format!("adding {addr}: {e}")))?;
        if voter {
            self.raft
                .change_membership(
                    openraft::ChangeMembers::AddVoterIds([id].into_iter().collect()),
                    false,
                )
                .await
                .map_err(|e| ConsensusError::Rejected(format!("making {addr} a voter: {e}")))?;
        }
        Ok(())
    }

    /// Removes the master at `addr` from the group (a voter or a learner). Only on the
    /// leader; removing the leader itself makes another one lead.
    pub async fn remove_member(&self, addr: &str) -> Result<(), ConsensusError> {
        let addr = addr.trim();
        let id = node_id(addr);
        let Some((_, _, voter)) = self.members().into_iter().find(|m| m.1 == id) else {
            return Err(ConsensusError::InvalidArgument(format!(
                "{addr} is not a member of the master group"
            )));
        };
        let ids: std::collections::BTreeSet<NodeId> = [id].into_iter().collect();
        let change = if voter {
            openraft::ChangeMembers::RemoveVoters(ids)
        } else {
            openraft::ChangeMembers::RemoveNodes(ids)
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| ConsensusError::Rejected(format!("removing {addr}: {e}")))?;
        Ok(())
    }

    /// The state as applied on this node (a follower's may lag the leader's slightly).
    pub fn state(&self) -> MasterState {
        self.applied.state()
    }

    /// Waits up to `timeout` until this node either leads or knows another leader; the
    /// answer is `None` if it does neither by then (an election still running).
    pub async fn wait_for_role(&self, timeout: Duration) -> Option<Role> {
        let mut rx = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.is_leader() {
                return Some(Role::Leader);
            }
            if let Some(addr) = self.leader_addr().filter(|a| a != &self.self_addr) {
                return Some(Role::Follower(addr));
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return None,
            }
        }
    }

    /// Waits until some leader is known and returns its address.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<String, ConsensusError> {
        let mut rx = self.raft.metrics();
        let wait = async {
            loop {
                if let Some(addr) = self.leader_addr() {
                    return Ok(addr);
                }
                if rx.changed().await.is_err() {
                    return Err(ConsensusError::Fatal("raft stopped".into()));
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| ConsensusError::Timeout("a raft leader".into()))?
    }

    /// Allocates the next volume id through Raft (leader only).
    pub async fn next_volume_id(&self) -> Result<u32, ConsensusError> {
        match self.write(Command::NextVolumeId).await? {
            CommandResponse::VolumeId(vid) => Ok(vid),
            other => unexpected(other),
        }
    }

    /// Raises the max volume id to at least `seen` (leader only); returns the new maximum.
    pub async fn raise_max_volume_id(&self, seen: u32) -> Result<u32, ConsensusError> {
        if self.state().max_volume_id >= seen {
            return Ok(self.state().max_volume_id);
        }
        match self
            .write(Command::RaiseMaxVolumeId { at_least: seen })
            .await?
        {
            CommandResponse::VolumeId(vid) => Ok(vid),
            other => unexpected(other),
        }
    }

    /// Reserves `block` file keys, all above `above` and above every key reserved before by
    /// any leader (leader only). The returned range is this leader's to hand out.
    pub async fn reserve_file_keys(
        &self,
        above: u64,
        block: u64,
    ) -> Result<Range<u64>, ConsensusError> {
        if block == 0 {
            return Err(ConsensusError::InvalidArgument(
                "file key block must not be empty".into(),
            ));
        }
        let cmd = Command::ReserveFileKeys {
            at_least_above: above,
            block,
        };
        match self.write(cmd).await? {
            CommandResponse::FileKeys { start, end } => Ok(start..end),
            other => unexpected(other),
        }
    }

    /// Proposes `id` as the topology id; returns the id in force (the first one ever set).
    pub async fn set_topology_id(&self, id: String) -> Result<String, ConsensusError> {
        match self.write(Command::SetTopologyId { id }).await? {
            CommandResponse::TopologyId(id) => Ok(id),
            other => unexpected(other),
        }
    }

    async fn write(&self, cmd: Command) -> Result<CommandResponse, ConsensusError> {
        match self.raft.client_write(cmd).await {
            Ok(resp) => match resp.data {
                CommandResponse::Rejected(msg) => Err(ConsensusError::Rejected(msg)),
                data => Ok(data),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                let leader = f.leader_node.map(|p| p.addr).or_else(|| {
                    f.leader_id
                        .filter(|l| *l != self.id)
                        .and_then(|_| self.leader_addr())
                });
                Err(ConsensusError::NotLeader { leader })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(ConsensusError::UnexpectedResponse(e.to_string()))
            }
            Err(RaftError::Fatal(f)) => Err(f.into()),
        }
    }

    /// Stops Raft and waits until the storage is closed, so the same `mdir` can be reopened.
    pub async fn shutdown(&self) -> Result<(), ConsensusError> {
        self.topology_task.abort();
        self.raft
            .shutdown()
            .await
            .map_err(|e| ConsensusError::Fatal(e.to_string()))?;
        let mut closed = self.storage_closed.clone();
        // Nothing is ever sent: `changed()` fails once the database is closed.
        let released = async { while closed.changed().await.is_ok() {} };
        tokio::time::timeout(STORAGE_RELEASE_TIMEOUT, released)
            .await
            .map_err(|_| ConsensusError::Timeout("raft storage to close".into()))
    }
}

impl Drop for RaftNode {
    fn drop(&mut self) {
        self.topology_task.abort();
    }
}

fn unexpected<T>(resp: CommandResponse) -> Result<T, ConsensusError> {
    Err(ConsensusError::UnexpectedResponse(format!("{resp:?}")))
}

/// Whenever this node leads and no topology id is set yet, proposes a fresh random one.
/// First writer wins in the state machine, so racing proposals are harmless.
async fn ensure_topology_id(raft: Raft, applied: AppliedState, id: NodeId) {
    let mut rx = raft.metrics();
    loop {
        let leading = {
            let m = rx.borrow_and_update();
            m.state == ServerState::Leader && m.current_leader == Some(id)
        };
        if leading && applied.state().topology_id.is_empty() {
            let cmd = Command::SetTopologyId { id: random_uuid() };
            if let Err(e) = raft.client_write(cmd).await {
                tracing::debug!(error = %e, "could not set the topology id yet");
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// A random (version 4) UUID string.
fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, random_uuid());
    }

    #[test]
    fn members_include_self_and_dedup() {
        let cfg = RaftNodeConfig::new(
            "127.0.0.1:1",
            vec!["127.0.0.1:2".into(), " 127.0.0.1:1 ".into(), "".into()],
            "/nonexistent",
        );
        let m = cfg.members().unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.contains_key(&node_id("127.0.0.1:1")));
        let single = RaftNodeConfig::new("h:1", vec![], "/x").members().unwrap();
        assert_eq!(single.len(), 1);
        assert!(RaftNodeConfig::new(" ", vec![], "/x").members().is_err());
    }

    #[test]
    fn default_config_validates() {
        let cfg = RaftNodeConfig::new("h:1", vec![], "/x")
            .raft_config()
            .unwrap();
        assert_eq!(cfg.heartbeat_interval, 250);
        let mut bad = RaftNodeConfig::new("h:1", vec![], "/x");
        bad.election_timeout_min = Duration::from_millis(100);
        assert!(bad.raft_config().is_err());
    }
}
