//! The master client: assign, lookup (cached), heartbeat, with leader discovery.

use crate::security::Authorize;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::{ClientError, base_url, http_client, json_reply};
use crate::id::VolumeId;
use crate::master_api::{
    AssignRequest, Assignment, ClusterStatus, DirStatus, Heartbeat, HeartbeatResponse, Location,
    LookupRequest, LookupResponse,
};

/// How long calls keep retrying by default while no master can answer (elections, restarts).
const RETRY_FOR: Duration = Duration::from_secs(10);

/// How long a volume's locations are trusted before asking the master again.
const LOOKUP_TTL: Duration = Duration::from_secs(60);

/// Talks to a set of masters: any of them answers (followers forward to the
/// leader); the last one that answered is tried first next time.
#[derive(Debug)]
pub struct MasterClient {
    http: reqwest::Client,
    masters: Vec<String>,
    preferred: RwLock<Option<String>>,
    locations: RwLock<HashMap<u32, (Instant, Vec<Location>)>>,
    retry_for: Duration,
}

impl MasterClient {
    /// `masters` are `host:port` strings (a comma-separated flag value split up).
    pub fn new(masters: Vec<String>) -> MasterClient {
        MasterClient::with_http(masters, http_client())
    }

    pub fn with_http(masters: Vec<String>, http: reqwest::Client) -> MasterClient {
        let masters = masters
            .into_iter()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        MasterClient {
            http,
            masters,
            preferred: RwLock::new(None),
            locations: RwLock::new(HashMap::new()),
            retry_for: RETRY_FOR,
        }
    }

    /// How long calls keep retrying while no master answers (default 10 s).
    pub fn retrying_for(mut self, d: Duration) -> MasterClient {
        self.retry_for = d;
        self
    }

    /// Parses a `-master=a:9333,b:9333` flag value.
    pub fn from_flag(flag: &str) -> MasterClient {
        MasterClient::new(flag.split(',').map(str::to_string).collect())
    }

    pub fn masters(&self) -> &[String] {
        &self.masters
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn order(&self) -> Vec<String> {
        let mut order = Vec::with_capacity(self.masters.len() + 1);
        if let Ok(p) = self.preferred.read()
            && let Some(p) = p.as_ref()
        {
            order.push(p.clone());
        }
        for m in &self.masters {
            if !order.contains(m) {
                order.push(m.clone());
            }
        }
        order
    }

    fn prefer(&self, master: &str) {
        if let Ok(mut p) = self.preferred.write() {
            *p = Some(master.to_string());
        }
    }

    /// Calls `f` on each master in turn until one answers something other than
    /// a transport error or a 503 (election in progress).
    async fn each_master<T, F, Fut>(&self, mut f: F) -> Result<T, ClientError>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        // While no master can answer (an election, a restart) keep trying for a while,
        // backing off, instead of failing the caller at once.
        let deadline = Instant::now() + self.retry_for;
        let mut pause = Duration::from_millis(50);
        loop {
            let order = self.order();
            let mut last = None;
            for m in &order {
                match f(m.clone()).await {
                    Ok(v) => {
                        self.prefer(m);
                        return Ok(v);
                    }
                    Err(e) if e.is_retryable() => last = Some(e),
                    Err(e) => {
                        self.prefer(m);
                        return Err(e);
                    }
                }
            }
            let err = last.unwrap_or_else(|| ClientError::NoMaster(order.join(",")));
            if !err.is_transient() || Instant::now() + pause > deadline {
                return Err(err);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// `/dir/assign`.
    pub async fn assign(&self, req: &AssignRequest) -> Result<Assignment, ClientError> {
        self.each_master(|m| async move {
            let url = format!("{}/dir/assign", base_url(&m));
            let resp = self.http.post(&url).admin().query(req).send().await;
            json_reply::<Assignment>(&url, resp).await
        })
        .await
    }

    /// One `/dir/lookup` round trip, from whichever master answers.
    async fn fetch_lookup(&self, vid: VolumeId) -> Result<LookupResponse, ClientError> {
        self.each_master(|m| async move {
            let url = format!("{}/dir/lookup", base_url(&m));
            let resp = self
                .http
                .get(&url)
                .admin()
                .query(&LookupRequest {
                    volume_id: Some(vid.0.to_string()),
                    ..Default::default()
                })
                .send()
                .await;
            json_reply::<LookupResponse>(&url, resp).await
        })
        .await
    }

    /// `/dir/status` of any master: the topology with every volume server it knows.
    pub async fn dir_status(&self) -> Result<DirStatus, ClientError> {
        self.each_master(|m| async move {
            let url = format!("{}/dir/status", base_url(&m));
            let resp = self.http.get(&url).admin().send().await;
            json_reply::<DirStatus>(&url, resp).await
        })
        .await
    }

    /// Whether `server` (host:port) is a volume server the masters know.
    pub async fn knows_server(&self, server: &str) -> Result<bool, ClientError> {
        let status = self.dir_status().await?;
        Ok(status
            .topology
            .data_centers
            .iter()
            .flat_map(|dc| &dc.racks)
            .flat_map(|r| &r.data_nodes)
            .any(|n| n.url == server || n.public_url == server))
    }

    /// `/dir/lookup`, answered from a cache refreshed every minute or on `forget`.
    pub async fn lookup(&self, vid: VolumeId) -> Result<Vec<Location>, ClientError> {
        if let Ok(cache) = self.locations.read()
            && let Some((at, locs)) = cache.get(&vid.0)
            && at.elapsed() < LOOKUP_TTL
            && !locs.is_empty()
        {
            return Ok(locs.clone());
        }
        let reply = self.fetch_lookup(vid).await?;
        if let Ok(mut cache) = self.locations.write() {
            cache.insert(vid.0, (Instant::now(), reply.locations.clone()));
        }
        Ok(reply.locations)
    }

    /// `/dir/lookup` uncached: (normal holders, EC shard holders with their shard ids).
    pub async fn lookup_all(
        &self,
        vid: VolumeId,
    ) -> Result<(Vec<Location>, Vec<Location>), ClientError> {
        let reply = self.fetch_lookup(vid).await?;
        let normal = if reply.ec_locations.is_empty() {
            reply.locations
        } else {
            reply
                .locations
                .into_iter()
                .filter(|l| l.ec_shards.is_empty())
                .collect()
        };
        Ok((normal, reply.ec_locations))
    }

    /// Drops the cached locations of `vid` (after a read or write to them failed).
    pub fn forget(&self, vid: VolumeId) {
        if let Ok(mut cache) = self.locations.write() {
            cache.remove(&vid.0);
        }
    }

    /// Sends one heartbeat to the master `master` (volume servers send one to each).
    pub async fn heartbeat_to(
        &self,
        master: &str,
        hb: &Heartbeat,
    ) -> Result<HeartbeatResponse, ClientError> {
        let url = format!("{}/heartbeat", base_url(master));
        let resp = self
            .http
            .post(&url)
            .admin()
            .json(hb)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        json_reply::<HeartbeatResponse>(&url, resp).await
    }

    /// `/cluster/status` of one given master.
    pub async fn cluster_status(&self, master: &str) -> Result<ClusterStatus, ClientError> {
        let url = format!("{}/cluster/status", base_url(master));
        let resp = self
            .http
            .get(&url)
            .admin()
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        json_reply(&url, resp).await
    }
}
