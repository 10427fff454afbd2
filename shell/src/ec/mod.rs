//! The EC commands of `kelp shell`, one file each: `ec.encode` (`encode`), `ec.rebuild`
//! (`rebuild`), `ec.decode` (`decode`), `ec.balance` (`balance`), `ec.vacuum` (`vacuum`).
//! This file owns what they share: each volume's geometry and live holders, and the
//! verified shard copy. The volume servers do the work (`/admin/ec/*`); the commands plan
//! where shards go, copy them (the target pulls from the source), verify every copy and
//! only then remove what it replaced. Each volume's geometry (data and parity shards)
//! comes from its holders, so volumes of different geometries coexist.

pub(crate) mod balance;
pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod rebuild;
pub(crate) mod vacuum;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kelp_proto::volume_api::EcVolumeStatus;

use crate::error::{Doing, ShellError, fail};
use crate::flags::Flags;
use crate::topo::{Cluster, Node, cluster};
use crate::{Shell, say};

/// Bytes compared between source and copy when verifying a shard.
const VERIFY_BYTES: usize = 4096;

pub(crate) fn fmt_ids(ids: &[u8]) -> String {
    ids.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
}

/// The shard counts of one EC volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geo {
    pub data: usize,
    pub parity: usize,
}

impl Geo {
    pub(crate) fn of(st: &EcVolumeStatus) -> Geo {
        Geo {
            data: st.data_shards as usize,
            parity: st.parity_shards as usize,
        }
    }

    pub(crate) fn total(&self) -> usize {
        self.data + self.parity
    }

    /// The geometry the holders report (the first one's: they share the `.vif`).
    pub(crate) fn from_holders(holders: &[Holder]) -> Option<Geo> {
        holders.first().map(|h| h.geo)
    }
}

/// A live holder of an EC volume: its url, rack, the shards it reports now and the
/// volume's geometry (from its `.vif`).
#[derive(Debug, Clone)]
pub(crate) struct Holder {
    pub url: String,
    pub rack: String,
    pub shards: Vec<u8>,
    pub geo: Geo,
    /// Bytes of its shard files when asked.
    pub bytes: u64,
}

/// Asks every server the master lists for `vid` what it holds; servers that do not
/// answer are left out (they count as lost).
pub(crate) async fn live_holders(shell: &Shell, c: &Cluster, vid: u32) -> Vec<Holder> {
    let mut out = Vec::new();
    for n in c.nodes.iter().filter(|n| !n.ec_shards_of(vid).is_empty()) {
        match shell.volumes.ec_info(&n.url, vid).await {
            Ok(st) => out.push(Holder {
                url: n.url.clone(),
                rack: n.rack.clone(),
                shards: st.shards.iter().map(|s| s.id).collect(),
                geo: Geo::of(&st),
                bytes: st.shard_bytes(),
            }),
            // The master's view is a heartbeat old: the shards may have just moved.
            Err(e) if e.status() == Some(404) => {}
            Err(e) => say(format!(
                "  {} does not answer ({e}); its shards count as lost",
                n.url
            )),
        }
    }
    out
}

/// Servers that answer `/status` now.
pub(crate) async fn live_nodes(shell: &Shell, c: &Cluster) -> Vec<Node> {
    let mut out = Vec::new();
    for n in &c.nodes {
        if shell.volumes.status(&n.url).await.is_ok() {
            out.push(n.clone());
        }
    }
    out
}

/// Copies `shards` of `vid` from `from` to `to` and verifies the copy: same file sizes
/// and the same verified first bytes of every shard on both sides. With `replace`, `to`'s
/// whole EC set becomes exactly these shards of `from`'s encoding (index files included).
pub(crate) async fn copy_verified(
    shell: &Shell,
    vid: u32,
    collection: &str,
    shards: &[u8],
    (from, to): (&str, &str),
    replace: bool,
) -> Result<(), ShellError> {
    let src = shell
        .volumes
        .ec_info(from, vid)
        .await
        .doing(|| format!("reading shard sizes on {from}"))?;
    let got: EcVolumeStatus = shell
        .volumes
        .ec_copy(to, vid, collection, shards, from, replace)
        .await
        .doing(|| format!("copying shards {} to {to}", fmt_ids(shards)))?;
    let t = Duration::from_secs(30);
    for &s in shards {
        let want = src.shards.iter().find(|f| f.id == s).map(|f| f.size);
        let have = got.shards.iter().find(|f| f.id == s).map(|f| f.size);
        if want.is_none() || want != have {
            fail!("shard {s} of volume {vid} on {to} has size {have:?}, {from} has {want:?}");
        }
        let a = shell
            .volumes
            .ec_shard_read(from, vid, s, 0, VERIFY_BYTES, t)
            .await?;
        let b = shell
            .volumes
            .ec_shard_read(to, vid, s, 0, VERIFY_BYTES, t)
            .await?;
        if a != b {
            fail!("shard {s} of volume {vid} on {to} differs from the one on {from}");
        }
    }
    Ok(())
}

/// Polls the master until `ok` holds for its view of the cluster (10 s at most).
pub(crate) async fn wait_master(
    shell: &Shell,
    what: &str,
    ok: impl Fn(&Cluster) -> bool,
) -> Result<(), ShellError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(c) = cluster(shell).await
            && ok(&c)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            fail!("the master does not show {what} after 10 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn ec_union(c: &Cluster, vid: u32) -> BTreeSet<u8> {
    c.nodes.iter().flat_map(|n| n.ec_shards_of(vid)).collect()
}

/// Volume ids the command applies to: `-volumeId`, else every volume (of `-collection`)
/// chosen by `pick`.
pub(crate) fn targets(
    flags: &Flags,
    all: impl Iterator<Item = (u32, String)>,
) -> Result<Vec<u32>, ShellError> {
    if let Some(v) = flags.num::<u32>("volumeId")? {
        return Ok(vec![v]);
    }
    let col = flags.get("collection");
    let mut ids: Vec<u32> = all
        .filter(|(_, c)| col.is_none_or(|want| want == c))
        .map(|(id, _)| id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
