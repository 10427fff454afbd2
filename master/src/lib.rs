//! The kelp master: Raft-replicated ids (volume ids, the file-key ceiling), the topology
//! rebuilt from volume heartbeats, volume placement and growth, and the master HTTP API.

pub mod growth;
pub mod http;
pub mod lock;
pub mod master;
pub mod raft;
pub mod sequencer;
pub mod topology;

use std::sync::Arc;

pub use master::{Master, MasterConfig, MasterError};

/// Opens the Raft state under `cfg.mdir`, joins or forms the master group, and returns
/// the master ready to be served with [`http::serve`].
pub async fn start(cfg: MasterConfig) -> Result<Arc<Master>, raft::ConsensusError> {
    let peers: Vec<String> = cfg.peers.clone();
    let raft_cfg = raft::RaftNodeConfig {
        join: cfg.raft_join,
        ..raft::RaftNodeConfig::new(cfg.addr(), peers, cfg.mdir.clone())
    };
    let node = raft::RaftNode::start(raft_cfg).await?;
    let http = kelp_proto::client::http_client();
    Ok(Arc::new(Master::new(cfg, Arc::new(node), http)))
}
