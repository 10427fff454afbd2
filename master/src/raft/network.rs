//! The client side of Raft RPCs: a `RaftNetworkFactory` that POSTs JSON to a peer's
//! `/raft/*` routes through one pooled `reqwest::Client` per node, and maps transport failures
//! to openraft's `Unreachable`/`Network`/`Timeout` errors.

use kelp_proto::security::Authorize;
use std::time::Duration;

use openraft::RPCTypes;
use openraft::RaftNetwork;
use openraft::RaftNetworkFactory;
use openraft::error::InstallSnapshotError;
use openraft::error::NetworkError;
use openraft::error::RPCError;
use openraft::error::RaftError;
use openraft::error::RemoteError;
use openraft::error::Timeout;
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::InstallSnapshotRequest;
use openraft::raft::InstallSnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::NodeId;
use super::Peer;
use super::TypeConfig;
use super::http::PATH_APPEND;
use super::http::PATH_SNAPSHOT;
use super::http::PATH_VOTE;

/// How long to wait for a TCP connection to a peer. Short, so a dead peer is reported as
/// unreachable long before an election timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long an idle pooled connection is kept: under the servers' idle timeout.
const POOL_IDLE_TIMEOUT: Duration = kelp_proto::client::POOL_IDLE_TIMEOUT;

/// Builds per-peer clients that share one connection pool.
#[derive(Debug, Clone)]
pub struct HttpNetwork {
    client: reqwest::Client,
    self_id: NodeId,
}

impl HttpNetwork {
    /// A network for the node `self_id`.
    pub fn new(self_id: NodeId) -> Result<Self, reqwest::Error> {
        let client = kelp_proto::client::with_cluster_tls(
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .tcp_nodelay(true)
                .no_proxy(),
        )
        .build()?;
        Ok(Self { client, self_id })
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Peer) -> Self::Network {
        PeerClient {
            client: self.client.clone(),
            self_id: self.self_id,
            target,
            peer: node.clone(),
        }
    }
}

/// Sends Raft RPCs to one peer.
#[derive(Debug, Clone)]
pub struct PeerClient {
    client: reqwest::Client,
    self_id: NodeId,
    target: NodeId,
    peer: Peer,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, Peer, RaftError<NodeId, E>>>;

/// A transport failure as openraft wants to see it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

impl PeerClient {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        action: RPCTypes,
        req: &Req,
        ttl: Duration,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("{}{path}", kelp_proto::client::base_url(&self.peer.addr));
        let sent = self
            .client
            .post(&url)
            .admin()
            .timeout(ttl)
            .json(req)
            .send()
            .await;
        let resp = sent.map_err(|e| self.transport_error(action, ttl, &url, e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let msg = format!("{url}: HTTP {status}: {}", body.trim());
            return Err(RPCError::Network(NetworkError::new(&TransportError(msg))));
        }
        let body: Result<Resp, RaftError<NodeId, E>> = resp
            .json()
            .await
            .map_err(|e| self.transport_error(action, ttl, &url, e))?;
        body.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.peer.clone(),
                e,
            ))
        })
    }

    fn transport_error<E: std::error::Error>(
        &self,
        action: RPCTypes,
        ttl: Duration,
        url: &str,
        e: reqwest::Error,
    ) -> RPCError<NodeId, Peer, RaftError<NodeId, E>> {
        if e.is_timeout() {
            return RPCError::Timeout(Timeout {
                action,
                id: self.self_id,
                target: self.target,
                timeout: ttl,
            });
        }
        let err = TransportError(format!("{url}: {e}"));
        if e.is_connect() {
            // Nobody listens (peer down): back off instead of hammering it.
            RPCError::Unreachable(Unreachable::new(&err))
        } else {
            // A reset pooled connection, a truncated or undecodable body: retry soon.
            RPCError::Network(NetworkError::new(&err))
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.call(
            PATH_APPEND,
            RPCTypes::AppendEntries,
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(
            PATH_SNAPSHOT,
            RPCTypes::InstallSnapshot,
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call(PATH_VOTE, RPCTypes::Vote, &rpc, option.hard_ttl())
            .await
    }
}
