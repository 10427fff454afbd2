//! The server side of Raft RPCs: axum routes `POST /raft/append`, `/raft/vote` and
//! `/raft/snapshot` taking and returning openraft's messages as JSON.
//!
//! Each route answers `200` with `{"Ok": response}` or `{"Err": RaftError}` (serde's encoding
//! of `Result`), so the caller can tell a remote Raft error from a transport failure. A body
//! that does not parse gets axum's 4xx rejection.

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::routing::post;
use openraft::error::InstallSnapshotError;
use openraft::error::RaftError;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::InstallSnapshotRequest;
use openraft::raft::InstallSnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;

use super::NodeId;
use super::Raft;
use super::TypeConfig;

/// Route of the AppendEntries RPC.
pub const PATH_APPEND: &str = "/raft/append";
/// Route of the RequestVote RPC.
pub const PATH_VOTE: &str = "/raft/vote";
/// Route of the InstallSnapshot RPC (one chunk per request).
pub const PATH_SNAPSHOT: &str = "/raft/snapshot";

/// Largest accepted Raft RPC body. Snapshot chunks are at most
/// [`SNAPSHOT_CHUNK_BYTES`](super::node::SNAPSHOT_CHUNK_BYTES), which JSON inflates up to 4x.
pub const MAX_RPC_BODY: usize = 16 * 1024 * 1024;

/// The Raft RPC routes of one master, ready to be merged into the master's HTTP router.
///
/// The returned router already carries its state, so it fits any outer router state `S`:
///
/// ```ignore
/// let app = Router::new()
///     .route("/cluster/status", get(status))
///     .with_state(my_state)
///     .merge(raft_router(node.raft().clone()));
/// axum::serve(listener, app).with_graceful_shutdown(signal).await?;
/// ```
pub fn raft_router<S>(raft: Raft) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(PATH_APPEND, post(append))
        .route(PATH_VOTE, post(vote))
        .route(PATH_SNAPSHOT, post(snapshot))
        .layer(DefaultBodyLimit::max(MAX_RPC_BODY))
        .with_state(raft)
}

async fn append(
    State(raft): State<Raft>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> {
    Json(raft.append_entries(req).await)
}

async fn vote(
    State(raft): State<Raft>,
    Json(req): Json<VoteRequest<NodeId>>,
) -> Json<Result<VoteResponse<NodeId>, RaftError<NodeId>>> {
    Json(raft.vote(req).await)
}

async fn snapshot(
    State(raft): State<Raft>,
    Json(req): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>> {
    Json(raft.install_snapshot(req).await)
}
