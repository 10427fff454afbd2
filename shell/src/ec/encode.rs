//! `ec.encode`: turns full, quiet normal volumes into EC shards on the server that holds
//! them, then spreads the shards over servers and racks (`plan`) and removes the source.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kelp_proto::VolumeId;

use super::{Geo, copy_verified, ec_union, fmt_ids, live_nodes, targets, wait_master};
use crate::error::{Doing, ShellError, fail};
use crate::flags::{Flags, parse_duration};
use crate::topo::{Node, cluster};
use crate::{Shell, say};

/// Default geometry of `ec.encode`.
const DEFAULT_DATA_SHARDS: u8 = 10;
const DEFAULT_PARITY_SHARDS: u8 = 4;

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

/// `ec.encode -volumeId=N | [-collection=C] [-fullPercent=95 -quietFor=1h]
/// [-dataShards=10 -parityShards=4]`.
pub(crate) async fn encode(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let data: u8 = flags.num("dataShards")?.unwrap_or(DEFAULT_DATA_SHARDS);
    let parity: u8 = flags.num("parityShards")?.unwrap_or(DEFAULT_PARITY_SHARDS);
    if data == 0 || parity == 0 {
        fail!("-dataShards and -parityShards must be at least 1");
    }
    let c = cluster(shell).await?;
    let ids = if flags.get("volumeId").is_some() {
        targets(flags, std::iter::empty())?
    } else {
        // No -collection: the default collection (as in SeaweedFS).
        let col = flags.raw("collection").unwrap_or("");
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
    let progress = crate::progress::Progress::new("ec.encode", ids.len());
    for (step, vid) in ids.iter().enumerate() {
        progress.at(step);
        encode_one(shell, *vid, (data, parity)).await?;
    }
    say(format!(
        "ec.encode: {} volume(s) encoded in {:.1}s",
        ids.len(),
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}

async fn encode_one(shell: &Shell, vid: u32, (data, parity): (u8, u8)) -> Result<(), ShellError> {
    let start = Instant::now();
    let (normal, _) = shell
        .master
        .lookup_all(VolumeId(vid))
        .await
        .doing(|| format!("looking up volume {vid}"))?;
    let Some(source) = normal.first().map(|l| l.url.clone()) else {
        fail!("volume {vid} is not a normal volume on any server");
    };
    for l in &normal {
        shell
            .volumes
            .mark_readonly(&l.url, vid, true)
            .await
            .doing(|| format!("marking volume {vid} read-only on {}", l.url))?;
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
            .doing(|| format!("removing the source volume {vid} on {}", l.url))?;
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
