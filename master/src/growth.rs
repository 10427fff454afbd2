//! Volume growth: choose servers that satisfy a placement `xyz`, then allocate new
//! volumes on them (ids from Raft).

use std::collections::BTreeMap;

use kelp_proto::{ReplicaPlacement, Ttl};
use rand::seq::SliceRandom;

use crate::topology::DataNode;

/// Why no set of servers can hold a new volume with this placement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot place replication {placement}: {why}")]
pub struct NoPlacement {
    pub placement: String,
    pub why: String,
}

/// How many volumes one growth adds for a placement with `copies` copies.
pub fn growth_count(copies: usize) -> usize {
    match copies {
        1 => 3,
        2 => 2,
        _ => 1,
    }
}

/// Picks `rp.copy_count()` distinct servers with free slots: the main one, `z` more in
/// its rack, one in each of `y` other racks of its data center, one in each of `x` other
/// data centers. `prefer` narrows the main server's data center, rack or node.
pub fn pick_servers(
    nodes: &[DataNode],
    rp: ReplicaPlacement,
    prefer_dc: Option<&str>,
    prefer_rack: Option<&str>,
    prefer_node: Option<&str>,
) -> Result<Vec<DataNode>, NoPlacement> {
    let err = |why: String| NoPlacement {
        placement: rp.to_string(),
        why,
    };
    let free: Vec<&DataNode> = nodes.iter().filter(|n| n.free_slots() > 0).collect();
    if free.is_empty() {
        return Err(err("no volume server has a free volume slot".into()));
    }
    // dc -> rack -> nodes with room, most free first.
    let mut tree: BTreeMap<&str, BTreeMap<&str, Vec<&DataNode>>> = BTreeMap::new();
    for n in &free {
        tree.entry(n.data_center.as_str())
            .or_default()
            .entry(n.rack.as_str())
            .or_default()
            .push(n);
    }
    let mut rng = rand::rng();
    for dc in tree.values_mut() {
        for rack in dc.values_mut() {
            rack.shuffle(&mut rng);
            rack.sort_by_key(|n| std::cmp::Reverse(n.free_slots()));
        }
    }
    let (x, y, z) = (
        rp.diff_dc as usize,
        rp.diff_rack as usize,
        rp.same_rack as usize,
    );
    if tree.len() < x + 1 {
        return Err(err(format!(
            "needs {} data centers with free slots, the cluster has {}",
            x + 1,
            tree.len()
        )));
    }
    let mut dcs: Vec<&str> = tree.keys().copied().collect();
    dcs.shuffle(&mut rng);
    let mut last_why = String::new();
    for main_dc in dcs.iter().copied() {
        if prefer_dc.is_some_and(|p| p != main_dc) {
            continue;
        }
        let racks = &tree[main_dc];
        if racks.len() < y + 1 {
            last_why = format!(
                "needs {} racks with free slots in one data center, {main_dc} has {}",
                y + 1,
                racks.len()
            );
            continue;
        }
        let mut rack_ids: Vec<&str> = racks.keys().copied().collect();
        rack_ids.shuffle(&mut rng);
        for main_rack in rack_ids.iter().copied() {
            if prefer_rack.is_some_and(|p| p != main_rack) {
                continue;
            }
            let in_rack = &racks[main_rack];
            if in_rack.len() < z + 1 {
                last_why = format!(
                    "needs {} servers with free slots in one rack, {main_rack} has {}",
                    z + 1,
                    in_rack.len()
                );
                continue;
            }
            let mut chosen: Vec<DataNode> = Vec::new();
            let main = match prefer_node {
                Some(p) => match in_rack.iter().find(|n| n.url == p || n.public_url == p) {
                    Some(n) => *n,
                    None => continue,
                },
                None => in_rack[0],
            };
            chosen.push(main.clone());
            chosen.extend(
                in_rack
                    .iter()
                    .filter(|n| n.url != main.url)
                    .take(z)
                    .map(|n| (*n).clone()),
            );
            chosen.extend(
                rack_ids
                    .iter()
                    .filter(|r| **r != main_rack)
                    .take(y)
                    .map(|r| racks[*r][0].clone()),
            );
            let other_dcs: Vec<&str> = dcs
                .iter()
                .copied()
                .filter(|d| *d != main_dc)
                .take(x)
                .collect();
            for d in other_dcs {
                if let Some(n) = tree[d].values().flatten().next() {
                    chosen.push((*n).clone());
                }
            }
            if chosen.len() == rp.copy_count() {
                return Ok(chosen);
            }
        }
    }
    if last_why.is_empty() {
        last_why = "no server matches the requested data center, rack or node".into();
    }
    Err(err(last_why))
}

/// The layout parameters of one growth.
#[derive(Debug, Clone)]
pub struct GrowSpec {
    pub collection: String,
    pub placement: ReplicaPlacement,
    pub ttl: Ttl,
    pub data_center: Option<String>,
    pub rack: Option<String>,
    pub data_node: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn node(url: &str, dc: &str, rack: &str, max: u32) -> DataNode {
        DataNode {
            url: url.into(),
            public_url: url.into(),
            data_center: dc.into(),
            rack: rack.into(),
            max_volumes: max,
            max_file_key: 0,
            last_seen: Instant::now(),
            volumes: Default::default(),
            ec_shards: Default::default(),
        }
    }

    #[test]
    fn racks_and_data_centers_are_honoured() {
        let nodes = vec![
            node("a", "dc1", "r1", 2),
            node("b", "dc1", "r1", 2),
            node("c", "dc1", "r2", 2),
            node("d", "dc2", "r1", 2),
        ];
        for _ in 0..20 {
            let got = pick_servers(&nodes, "010".parse().unwrap(), None, None, None).unwrap();
            assert_eq!(got.len(), 2);
            assert_ne!(got[0].rack, got[1].rack);
            assert_eq!(got[0].data_center, "dc1");
            let got = pick_servers(&nodes, "001".parse().unwrap(), None, None, None).unwrap();
            assert_eq!((got[0].rack.as_str(), got[1].rack.as_str()), ("r1", "r1"));
            assert_ne!(got[0].url, got[1].url);
            let got = pick_servers(&nodes, "100".parse().unwrap(), None, None, None).unwrap();
            assert_ne!(got[0].data_center, got[1].data_center);
        }
        let e = pick_servers(&nodes, "200".parse().unwrap(), None, None, None).unwrap_err();
        assert!(e.to_string().contains("3 data centers"), "{e}");
        let e = pick_servers(&nodes, "020".parse().unwrap(), None, None, None).unwrap_err();
        assert!(e.to_string().contains("racks"), "{e}");
        let full = vec![node("a", "dc1", "r1", 0)];
        assert!(pick_servers(&full, "000".parse().unwrap(), None, None, None).is_err());
        let got = pick_servers(&nodes, "000".parse().unwrap(), None, Some("r2"), None).unwrap();
        assert_eq!(got[0].url, "c");
    }
}
