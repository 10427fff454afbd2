//! The EC commands of `kelp shell`: `ec.encode`, `ec.rebuild`, `ec.decode`, `ec.balance`
//! (`ec.vacuum` is in `ec_vacuum`). The volume servers do the work (`/admin/ec/*`); this
//! module plans where shards go, copies them (the target pulls from the source), verifies
//! every copy and only then removes what it replaced. Each volume's geometry (data and
//! parity shards) comes from its holders, so volumes of different geometries coexist.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use kelp_proto::VolumeId;
use kelp_proto::volume_api::EcVolumeStatus;

use super::topo::{Cluster, Node, cluster, parse_duration};
use super::{Flags, Shell, say};

/// Default geometry of `ec.encode`.
const DEFAULT_DATA_SHARDS: u8 = 10;
const DEFAULT_PARITY_SHARDS: u8 = 4;
/// Bytes compared between source and copy when verifying a shard.
const VERIFY_BYTES: usize = 4096;

pub(super) fn fmt_ids(ids: &[u8]) -> String {
    ids.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
}

/// The shard counts of one EC volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geo {
    pub data: usize,
    pub parity: usize,
}

impl Geo {
    pub(super) fn of(st: &EcVolumeStatus) -> Geo {
        Geo {
            data: st.data_shards as usize,
            parity: st.parity_shards as usize,
        }
    }

    pub(super) fn total(&self) -> usize {
        self.data + self.parity
    }

    /// The geometry the holders report (the first one's: they share the `.vif`).
    fn from_holders(holders: &[Holder]) -> Option<Geo> {
        holders.first().map(|h| h.geo)
    }
}

/// A live holder of an EC volume: its url, rack, the shards it reports now and the
/// volume's geometry (from its `.vif`).
#[derive(Debug, Clone)]
pub(super) struct Holder {
    pub url: String,
    pub rack: String,
    pub shards: Vec<u8>,
    pub geo: Geo,
    /// Bytes of its shard files when asked.
    pub bytes: u64,
}

/// Asks every server the master lists for `vid` what it holds; servers that do not
/// answer are left out (they count as lost).
pub(super) async fn live_holders(shell: &Shell, c: &Cluster, vid: u32) -> Vec<Holder> {
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
async fn live_nodes(shell: &Shell, c: &Cluster) -> Vec<Node> {
    let mut out = Vec::new();
    for n in &c.nodes {
        if shell.volumes.status(&n.url).await.is_ok() {
            out.push(n.clone());
        }
    }
    out
}

/// Server order for placement: racks interleaved (rack with fewest shards first), least
/// loaded servers first in each rack, `prefer` first in its rack.
fn placement_order(nodes: &[Node], prefer: &str) -> Vec<String> {
    let mut racks: BTreeMap<String, Vec<&Node>> = BTreeMap::new();
    for n in nodes {
        racks.entry(n.rack.clone()).or_default().push(n);
    }
    for list in racks.values_mut() {
        list.sort_by_key(|n| (n.url != prefer, n.ec_shard_count(), n.url.clone()));
    }
    let mut lists: Vec<Vec<&Node>> = racks.into_values().collect();
    lists.sort_by_key(|l| {
        (
            !l.iter().any(|n| n.url == prefer),
            std::cmp::Reverse(l.len()),
        )
    });
    let mut order = Vec::new();
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for l in &lists {
            if let Some(n) = l.get(i) {
                order.push(n.url.clone());
            }
        }
    }
    order
}

/// Shard ids per server: round-robin over the placement order, so no server gets more
/// than `ceil(total / servers)` shards and racks get shares as even as their sizes allow.
fn plan(nodes: &[Node], prefer: &str, total: usize) -> BTreeMap<String, Vec<u8>> {
    let order = placement_order(nodes, prefer);
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if order.is_empty() {
        return out;
    }
    for s in 0..total {
        out.entry(order[s % order.len()].clone())
            .or_default()
            .push(s as u8);
    }
    out
}

/// Copies `shards` of `vid` from `from` to `to` and verifies the copy: same file sizes
/// and the same verified first bytes of every shard on both sides. With `replace`, `to`'s
/// whole EC set becomes exactly these shards of `from`'s encoding (index files included).
pub(super) async fn copy_verified(
    shell: &Shell,
    vid: u32,
    collection: &str,
    shards: &[u8],
    (from, to): (&str, &str),
    replace: bool,
) -> anyhow::Result<()> {
    let src = shell
        .volumes
        .ec_info(from, vid)
        .await
        .with_context(|| format!("reading shard sizes on {from}"))?;
    let got: EcVolumeStatus = shell
        .volumes
        .ec_copy(to, vid, collection, shards, from, replace)
        .await
        .with_context(|| format!("copying shards {} to {to}", fmt_ids(shards)))?;
    let t = Duration::from_secs(30);
    for &s in shards {
        let want = src.shards.iter().find(|f| f.id == s).map(|f| f.size);
        let have = got.shards.iter().find(|f| f.id == s).map(|f| f.size);
        if want.is_none() || want != have {
            bail!("shard {s} of volume {vid} on {to} has size {have:?}, {from} has {want:?}");
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
            bail!("shard {s} of volume {vid} on {to} differs from the one on {from}");
        }
    }
    Ok(())
}

/// Polls the master until `ok` holds for its view of the cluster (10 s at most).
pub(super) async fn wait_master(
    shell: &Shell,
    what: &str,
    ok: impl Fn(&Cluster) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(c) = cluster(shell).await
            && ok(&c)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the master does not show {what} after 10 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn ec_union(c: &Cluster, vid: u32) -> BTreeSet<u8> {
    c.nodes.iter().flat_map(|n| n.ec_shards_of(vid)).collect()
}

/// Volume ids the command applies to: `-volumeId`, else every volume (of `-collection`)
/// chosen by `pick`.
pub(super) fn targets(
    flags: &Flags,
    all: impl Iterator<Item = (u32, String)>,
) -> anyhow::Result<Vec<u32>> {
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

/// `ec.encode -volumeId=N | [-collection=C] [-fullPercent=95 -quietFor=1h]
/// [-dataShards=10 -parityShards=4]`.
pub(crate) async fn encode(shell: &Shell, flags: &Flags) -> anyhow::Result<()> {
    let data: u8 = flags.num("dataShards")?.unwrap_or(DEFAULT_DATA_SHARDS);
    let parity: u8 = flags.num("parityShards")?.unwrap_or(DEFAULT_PARITY_SHARDS);
    if data == 0 || parity == 0 {
        bail!("-dataShards and -parityShards must be at least 1");
    }
    let c = cluster(shell).await?;
    let ids = if flags.get("volumeId").is_some() {
        targets(flags, std::iter::empty())?
    } else {
        // No -collection: the default collection (as in SeaweedFS).
        let col = flags.0.get("collection").map_or("", String::as_str);
        let full: f64 = flags.num("fullPercent")?.unwrap_or(95.0);
        let quiet = parse_duration(flags.get("quietFor").unwrap_or("1h"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let limit = c.size_limit as f64;
        // Ask the servers themselves: the master's copy is a heartbeat old.
        let mut vols = Vec::new();
        for n in &c.nodes {
            match shell.volumes.status(&n.url).await {
                Ok(st) => vols.extend(st.volumes),
                Err(e) => say(format!("  {} does not answer ({e}); skipping it", n.url)),
            }
        }
        let mut ids: Vec<u32> = vols
            .iter()
            .filter(|v| v.collection == col && v.file_count > 0)
            .filter(|v| limit <= 0.0 || v.size as f64 >= limit * full / 100.0)
            .filter(|v| now - v.modified_at_second >= quiet as i64)
            .map(|v| v.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        say(format!(
            "ec.encode: {} volume(s) of collection {col:?} are {full}% full and quiet for {quiet}s",
            ids.len()
        ));
        ids
    };
    let start = Instant::now();
    for vid in &ids {
        encode_one(shell, *vid, (data, parity)).await?;
    }
    say(format!(
        "ec.encode: {} volume(s) encoded in {:.1}s",
        ids.len(),
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}

async fn encode_one(shell: &Shell, vid: u32, (data, parity): (u8, u8)) -> anyhow::Result<()> {
    let start = Instant::now();
    let (normal, _) = shell
        .master
        .lookup_all(VolumeId(vid))
        .await
        .with_context(|| format!("looking up volume {vid}"))?;
    let Some(source) = normal.first().map(|l| l.url.clone()) else {
        bail!("volume {vid} is not a normal volume on any server");
    };
    for l in &normal {
        shell
            .volumes
            .mark_readonly(&l.url, vid, true)
            .await
            .with_context(|| format!("marking volume {vid} read-only on {}", l.url))?;
    }
    say(format!(
        "volume {vid}: read-only on {} server(s); encoding on {source} ({data} data + {parity} parity shards)...",
        normal.len()
    ));
    let st = shell.volumes.ec_encode(&source, vid, data, parity).await?;
    let total = Geo::of(&st).total();
    say(format!(
        "volume {vid}: {} shards written in {:.2}s ({} needles)",
        st.shards.len(),
        st.seconds,
        st.needles
    ));
    let c = cluster(shell).await?;
    let nodes = live_nodes(shell, &c).await;
    let placement = plan(&nodes, &source, total);
    for (url, shards) in placement.iter().filter(|(u, _)| **u != source) {
        say(format!(
            "volume {vid}: copying shards {} to {url}",
            fmt_ids(shards)
        ));
        copy_verified(shell, vid, &st.collection, shards, (&source, url), false).await?;
        say(format!(
            "volume {vid}: shards {} verified on {url}",
            fmt_ids(shards)
        ));
    }
    let moved: Vec<u8> = placement
        .iter()
        .filter(|(u, _)| **u != source)
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    if !moved.is_empty() {
        shell.volumes.ec_delete_shards(&source, vid, &moved).await?;
    }
    for l in &normal {
        shell
            .volumes
            .delete_volume(&l.url, vid)
            .await
            .with_context(|| format!("removing the source volume {vid} on {}", l.url))?;
    }
    say(format!(
        "volume {vid}: source volume removed from {} server(s)",
        normal.len()
    ));
    wait_master(shell, &format!("all shards of volume {vid}"), |c| {
        ec_union(c, vid).len() == total
            && c.nodes
                .iter()
                .all(|n| n.volumes.iter().all(|v| v.id != vid))
    })
    .await?;
    let racks: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| placement.contains_key(&n.url))
        .map(|n| n.rack.as_str())
        .collect();
    let spread: Vec<String> = placement
        .iter()
        .map(|(u, s)| format!("{u}:[{}]", fmt_ids(s)))
        .collect();
    say(format!(
        "volume {vid}: encoded into {total} shards on {} servers in {} rack(s) in {:.1}s: {}",
        placement.len(),
        racks.len(),
        start.elapsed().as_secs_f64(),
        spread.join(" ")
    ));
    Ok(())
}

/// `ec.rebuild [-volumeId=N] [-collection=C]`: regenerates lost shards (data and parity)
/// on a healthy holder, then spreads them out.
pub(crate) async fn rebuild(shell: &Shell, flags: &Flags) -> anyhow::Result<()> {
    let c = cluster(shell).await?;
    let ids = targets(flags, c.ec_volumes().into_iter())?;
    let (mut rebuilt_total, mut volumes) = (0usize, 0usize);
    for vid in ids {
        let holders = live_holders(shell, &c, vid).await;
        if holders.is_empty() && flags.get("volumeId").is_none() {
            say(format!("volume {vid}: no ec shards any more, skipped"));
            continue;
        }
        let Some(geo) = Geo::from_holders(&holders) else {
            bail!("volume {vid}: no live holder");
        };
        let present: BTreeSet<u8> = holders.iter().flat_map(|h| h.shards.clone()).collect();
        let missing: Vec<u8> = (0..geo.total() as u8)
            .filter(|s| !present.contains(s))
            .collect();
        if missing.is_empty() {
            say(format!("volume {vid}: all {} shards present", geo.total()));
            continue;
        }
        if present.len() < geo.data {
            // Shards left on a server that was down while `ec.decode` ran: the volume
            // lives on as a normal volume, and too few shards remain to read anything.
            if c.nodes
                .iter()
                .any(|n| n.volumes.iter().any(|v| v.id == vid))
            {
                for h in &holders {
                    shell
                        .volumes
                        .ec_delete_shards(&h.url, vid, &h.shards)
                        .await
                        .with_context(|| format!("removing stale shards of {vid} on {}", h.url))?;
                    say(format!(
                        "volume {vid}: removed stale shards {} on {} (the volume was decoded)",
                        fmt_ids(&h.shards),
                        h.url
                    ));
                }
                continue;
            }
            bail!(
                "volume {vid}: only {} shards left, {} needed to rebuild",
                present.len(),
                geo.data
            );
        }
        let Some(target) = holders
            .iter()
            .min_by_key(|h| (h.shards.len(), h.url.clone()))
        else {
            bail!("volume {vid}: no live holder");
        };
        say(format!(
            "volume {vid}: rebuilding shards {} on {}...",
            fmt_ids(&missing),
            target.url
        ));
        let st = shell.volumes.ec_rebuild(&target.url, vid, &missing).await?;
        say(format!(
            "volume {vid}: rebuilt shards {} in {:.2}s",
            fmt_ids(&st.rebuilt),
            st.seconds
        ));
        rebuilt_total += st.rebuilt.len();
        volumes += 1;
        balance_one(shell, vid).await?;
    }
    say(format!(
        "ec.rebuild: {rebuilt_total} shard(s) rebuilt for {volumes} volume(s)"
    ));
    Ok(())
}

/// `ec.balance [-volumeId=N] [-collection=C]`: moves shards off servers holding more
/// than their share of a volume (and off racks holding more than parity covers).
pub(crate) async fn balance(shell: &Shell, flags: &Flags) -> anyhow::Result<()> {
    let c = cluster(shell).await?;
    let ids = targets(flags, c.ec_volumes().into_iter())?;
    let (mut moved, mut dups) = (0, 0);
    for vid in &ids {
        let (d, m) = balance_one(shell, *vid).await?;
        dups += d;
        moved += m;
    }
    say(format!(
        "ec.balance: {moved} shard(s) moved, {dups} duplicate(s) removed over {} volume(s)",
        ids.len()
    ));
    Ok(())
}

/// Returns (duplicate shards removed, shards moved).
pub(super) async fn balance_one(shell: &Shell, vid: u32) -> anyhow::Result<(usize, usize)> {
    let c = cluster(shell).await?;
    let nodes = live_nodes(shell, &c).await;
    if nodes.is_empty() {
        return Ok((0, 0));
    }
    let mut holders = live_holders(shell, &c, vid).await;
    let Some(geo) = Geo::from_holders(&holders) else {
        return Ok((0, 0));
    };
    let collection = c.ec_volumes().get(&vid).cloned().unwrap_or_default();
    let dups = drop_duplicates(shell, vid, &mut holders).await?;
    let mut moved = 0;
    let total: usize = holders.iter().map(|h| h.shards.len()).sum();
    let cap = total.div_ceil(nodes.len()).max(1);
    let racks: BTreeSet<&str> = nodes.iter().map(|n| n.rack.as_str()).collect();
    let rack_cap = if racks.len() > 1 {
        geo.parity.max(total.div_ceil(racks.len()))
    } else {
        usize::MAX
    };
    loop {
        let count = |url: &str, hs: &[Holder]| {
            hs.iter()
                .find(|h| h.url == url)
                .map_or(0, |h| h.shards.len())
        };
        let rack_count = |rack: &str, hs: &[Holder]| {
            hs.iter()
                .filter(|h| h.rack == rack)
                .map(|h| h.shards.len())
                .sum::<usize>()
        };
        let mut by_load: Vec<&Holder> = holders.iter().collect();
        by_load.sort_by_key(|h| std::cmp::Reverse(h.shards.len()));
        let mut step = None;
        for from in by_load {
            let server_over = from.shards.len() > cap;
            let rack_over = !from.shards.is_empty() && rack_count(&from.rack, &holders) > rack_cap;
            if !server_over && !rack_over {
                continue;
            }
            let dest = nodes
                .iter()
                .filter(|n| n.url != from.url && count(&n.url, &holders) < cap)
                .filter(|n| {
                    // A move inside the rack leaves the rack counts as they are: fine
                    // for an overloaded server even when the rack has too many (when
                    // the other racks cannot take more, as with a server down).
                    if n.rack == from.rack {
                        !rack_over || server_over
                    } else {
                        rack_count(&n.rack, &holders) < rack_cap
                    }
                })
                .min_by_key(|n| {
                    (
                        n.rack == from.rack,
                        rack_count(&n.rack, &holders),
                        count(&n.url, &holders),
                        n.url.clone(),
                    )
                });
            if let Some(d) = dest {
                step = Some((from.clone(), d.clone()));
                break;
            }
        }
        let Some((from, dest)) = step else { break };
        let Some(&shard) = from.shards.last() else {
            break;
        };
        say(format!(
            "volume {vid}: moving shard {shard} from {} to {}",
            from.url, dest.url
        ));
        copy_verified(
            shell,
            vid,
            &collection,
            &[shard],
            (&from.url, &dest.url),
            false,
        )
        .await?;
        shell
            .volumes
            .ec_delete_shards(&from.url, vid, &[shard])
            .await?;
        moved += 1;
        for h in holders.iter_mut().filter(|h| h.url == from.url) {
            h.shards.retain(|s| *s != shard);
        }
        match holders.iter_mut().find(|h| h.url == dest.url) {
            Some(h) => h.shards.push(shard),
            None => holders.push(Holder {
                url: dest.url.clone(),
                rack: dest.rack.clone(),
                shards: vec![shard],
                geo,
                bytes: 0,
            }),
        }
        if moved > geo.total() * 2 {
            break;
        }
    }
    if moved > 0 {
        say(format!("volume {vid}: {moved} shard(s) moved"));
    }
    Ok((dups, moved))
}

/// Removes extra copies of shards held by several servers (a server that came back after
/// its shards were rebuilt elsewhere); the least loaded holder keeps each shard.
async fn drop_duplicates(shell: &Shell, vid: u32, holders: &mut [Holder]) -> anyhow::Result<usize> {
    let mut order: Vec<usize> = (0..holders.len()).collect();
    order.sort_by_key(|&i| (holders[i].shards.len(), holders[i].url.clone()));
    let mut seen = BTreeSet::new();
    let mut extra: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    for i in order {
        for &s in &holders[i].shards {
            if !seen.insert(s) {
                extra.entry(i).or_default().push(s);
            }
        }
    }
    let mut n = 0;
    for (i, ids) in extra {
        let h = &mut holders[i];
        say(format!(
            "volume {vid}: removing duplicate shards {} from {}",
            fmt_ids(&ids),
            h.url
        ));
        shell.volumes.ec_delete_shards(&h.url, vid, &ids).await?;
        h.shards.retain(|s| !ids.contains(s));
        n += ids.len();
    }
    Ok(n)
}

/// `ec.decode -volumeId=N`: gathers the shards on the server holding most of them, decodes
/// there into a normal volume and removes the shards everywhere.
pub(crate) async fn decode(shell: &Shell, flags: &Flags) -> anyhow::Result<()> {
    let c = cluster(shell).await?;
    let ids = targets(flags, c.ec_volumes().into_iter())?;
    let mut done = 0;
    for vid in &ids {
        let start = Instant::now();
        let holders = live_holders(shell, &c, *vid).await;
        let Some(target) = holders
            .iter()
            .max_by_key(|h| (h.shards.len(), h.url.clone()))
        else {
            if flags.get("volumeId").is_none() {
                say(format!("volume {vid}: no ec shards any more, skipped"));
                continue;
            }
            bail!("volume {vid} has no live ec shards");
        };
        say(format!(
            "volume {vid}: decoding on {} (holds {} shards)...",
            target.url,
            target.shards.len()
        ));
        shell.volumes.ec_decode(&target.url, *vid).await?;
        for h in holders.iter().filter(|h| h.url != target.url) {
            shell
                .volumes
                .ec_delete_shards(&h.url, *vid, &h.shards)
                .await
                .with_context(|| format!("removing shards of {vid} on {}", h.url))?;
        }
        wait_master(shell, &format!("volume {vid} as a normal volume"), |c| {
            c.nodes
                .iter()
                .any(|n| n.volumes.iter().any(|v| v.id == *vid))
        })
        .await?;
        say(format!(
            "volume {vid}: decoded into a normal volume on {} in {:.1}s",
            target.url,
            start.elapsed().as_secs_f64()
        ));
        done += 1;
    }
    say(format!("ec.decode: {done} volume(s) decoded"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(url: &str, rack: &str) -> Node {
        Node {
            url: url.into(),
            data_center: "dc".into(),
            rack: rack.into(),
            max: 8,
            volumes: Vec::new(),
            ec: Vec::new(),
        }
    }

    #[test]
    fn plan_spreads_over_servers_and_racks() {
        let nodes = vec![
            node("a", "r1"),
            node("b", "r1"),
            node("c", "r2"),
            node("d", "r2"),
            node("e", "r3"),
        ];
        let p = plan(&nodes, "c", 14);
        assert_eq!(p.values().map(Vec::len).sum::<usize>(), 14);
        assert!(p.values().all(|s| s.len() <= 3), "{p:?}");
        assert_eq!(
            p.get("c").map(Vec::len),
            Some(3),
            "the source keeps a share"
        );
        let mut per_rack: BTreeMap<&str, usize> = BTreeMap::new();
        for n in &nodes {
            *per_rack.entry(&n.rack).or_default() += p.get(&n.url).map_or(0, Vec::len);
        }
        assert!(per_rack.values().all(|&n| n <= 6), "{per_rack:?}");
        let four = plan(&nodes[..4], "a", 14);
        assert!(four.values().all(|s| s.len() <= 4), "{four:?}");
        let six = plan(&nodes, "a", 6);
        assert_eq!(six.values().map(Vec::len).sum::<usize>(), 6);
        assert!(six.values().all(|s| s.len() <= 2), "{six:?}");
    }
}
