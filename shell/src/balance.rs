//! `volume.balance`: spreads normal volumes over the volume servers in proportion to
//! their volume slots. Each step moves one replica from the most loaded server to one
//! below the average that does not hold the volume and keeps its replica placement
//! satisfied, within the same rack when it can; the steps stop when no move brings a
//! server closer to the average (with equal slots: volume counts within 1). The plan is
//! made on a copy of the topology first; `-force` then carries it out move by move, as
//! `volume.move` does.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use kelp_proto::ReplicaPlacement;
use kelp_proto::master_api::VolumeInformation;

use crate::error::ShellError;
use crate::flags::Flags;
use crate::replicas::{Spot, has_room, node_spot, satisfies};
use crate::topo::{Cluster, Node, cluster};
use crate::volumes::move_replica;
use crate::{Shell, say};

/// `-collection` values that are not collection names (SeaweedFS's).
const ALL: &str = "ALL_COLLECTIONS";
const EACH: &str = "EACH_COLLECTION";

/// One planned move.
#[derive(Debug, Clone)]
struct Move {
    info: VolumeInformation,
    from: String,
    to: String,
    /// `(from rack, to rack)`, for the plan's lines.
    racks: (String, String),
}

/// A server's share of the volumes being balanced: how many it holds, and how many it
/// could (its slots less those other volumes and EC shards take).
#[derive(Debug, Clone, Copy)]
struct Load {
    held: u64,
    slots: u64,
}

impl Load {
    fn of(n: &Node, chosen: &dyn Fn(&VolumeInformation) -> bool) -> Load {
        let held = n.volumes.iter().filter(|v| chosen(v)).count() as u64;
        let others = n.volumes.len() as u64 - held + n.ec_shard_count().div_ceil(10) as u64;
        Load {
            held,
            slots: n.max.saturating_sub(others).max(held),
        }
    }

    /// `held / slots` compared with `other`'s, without rounding.
    fn cmp_ratio(self, other: Load) -> Ordering {
        (u128::from(self.held) * u128::from(other.slots))
            .cmp(&(u128::from(other.held) * u128::from(self.slots)))
    }
}

/// The placement of `v` stays satisfied when its replica on `from` moves to `to`
/// (servers of `c`); a volume whose placement is not satisfied now is not moved
/// (`volume.fix.replication` repairs it first).
fn placement_kept(c: &Cluster, v: &VolumeInformation, from: &str, to: &Node) -> bool {
    let p = ReplicaPlacement::from_byte(u8::try_from(v.replica_placement).unwrap_or(0));
    let holders: Vec<&Node> = c
        .nodes
        .iter()
        .filter(|n| n.volumes.iter().any(|w| w.id == v.id))
        .collect();
    let now: Vec<Spot<'_>> = holders.iter().map(|n| node_spot(n)).collect();
    let after: Vec<Spot<'_>> = holders
        .iter()
        .filter(|n| n.url != from)
        .map(|n| node_spot(n))
        .chain([node_spot(to)])
        .collect();
    satisfies(p, &now) && satisfies(p, &after)
}

/// The best move off server `f`: a volume of it to a server below the average once it
/// has one more, the same rack first, then the same data center, then the least loaded,
/// then the smallest volume.
fn best_move(
    c: &Cluster,
    f: usize,
    loads: &[Load],
    total: Load,
    chosen: &dyn Fn(&VolumeInformation) -> bool,
) -> Option<(usize, usize)> {
    let from = &c.nodes[f];
    let mut candidates = Vec::new();
    for (vi, v) in from.volumes.iter().enumerate().filter(|(_, v)| chosen(v)) {
        for (t, to) in c.nodes.iter().enumerate() {
            let l = loads[t];
            let below = u128::from(l.held + 1) * u128::from(total.slots)
                <= u128::from(total.held) * u128::from(l.slots);
            if t == f
                || !below
                || l.held >= l.slots
                || !has_room(to)
                || to.volumes.iter().any(|w| w.id == v.id)
                || !placement_kept(c, v, &from.url, to)
            {
                continue;
            }
            let rank_of_t = loads
                .iter()
                .filter(|o| o.cmp_ratio(l) == Ordering::Less)
                .count();
            let key = (
                to.rack != from.rack || to.data_center != from.data_center,
                to.data_center != from.data_center,
                rank_of_t,
                v.size,
                v.id,
            );
            candidates.push((key, (vi, t)));
        }
    }
    candidates
        .into_iter()
        .min_by_key(|(key, _)| *key)
        .map(|(_, m)| m)
}

/// Plans the moves that balance the volumes `chosen` picks, applying each to `c`.
fn plan(c: &mut Cluster, chosen: &dyn Fn(&VolumeInformation) -> bool) -> Vec<Move> {
    let mut moves = Vec::new();
    let most = c.nodes.iter().map(|n| n.volumes.len()).sum::<usize>() * c.nodes.len().max(1);
    while moves.len() <= most {
        let loads: Vec<Load> = c.nodes.iter().map(|n| Load::of(n, chosen)).collect();
        let total = Load {
            held: loads.iter().map(|l| l.held).sum(),
            slots: loads.iter().map(|l| l.slots).sum(),
        };
        let mut fullest: Vec<usize> = (0..c.nodes.len())
            .filter(|&i| {
                // Above the average: held / slots > total held / total slots.
                u128::from(loads[i].held) * u128::from(total.slots)
                    > u128::from(total.held) * u128::from(loads[i].slots)
            })
            .collect();
        fullest.sort_by(|&a, &b| loads[b].cmp_ratio(loads[a]));
        let Some((f, (vi, t))) = fullest
            .iter()
            .find_map(|&f| best_move(c, f, &loads, total, chosen).map(|m| (f, m)))
        else {
            break;
        };
        let info = c.nodes[f].volumes.remove(vi);
        moves.push(Move {
            info: info.clone(),
            from: c.nodes[f].url.clone(),
            to: c.nodes[t].url.clone(),
            racks: (c.nodes[f].rack.clone(), c.nodes[t].rack.clone()),
        });
        c.nodes[t].volumes.push(info);
    }
    moves
}

/// `volume.balance [-collection=C|ALL_COLLECTIONS|EACH_COLLECTION] [-force]
/// [-maxMBps=M]`: without `-force` it prints the plan only.
pub(crate) async fn balance(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let force = flags.on("force");
    let max_mbps: u64 = flags.num("maxMBps")?.unwrap_or(0);
    let before = cluster(shell).await?;
    let mut after = before.clone();
    let moves = match flags.raw("collection") {
        None | Some(ALL) => plan(&mut after, &|_| true),
        Some(EACH) => {
            let names: BTreeSet<String> = before
                .nodes
                .iter()
                .flat_map(|n| n.volumes.iter().map(|v| v.collection.clone()))
                .collect();
            let mut all = Vec::new();
            for name in names {
                all.extend(plan(&mut after, &|v| v.collection == name));
            }
            all
        }
        Some(name) => plan(&mut after, &|v| v.collection == name),
    };
    for m in &moves {
        say(format!(
            "volume {} (collection {:?}): move from {} (rack {}) to {} (rack {})",
            m.info.id, m.info.collection, m.from, m.racks.0, m.to, m.racks.1
        ));
    }
    for (b, a) in before.nodes.iter().zip(&after.nodes) {
        say(format!(
            "  {} (rack {}): {} -> {} volume(s) of {} slots",
            b.url,
            b.rack,
            b.volumes.len(),
            a.volumes.len(),
            b.max
        ));
    }
    if moves.is_empty() {
        say("volume.balance: 0 move(s) planned (balanced already)");
        return Ok(());
    }
    if !force {
        say(format!(
            "volume.balance: {} move(s) planned; run with -force to make them",
            moves.len()
        ));
        return Ok(());
    }
    let progress = crate::progress::Progress::new("volume.balance", moves.len());
    for (step, m) in moves.iter().enumerate() {
        progress.at(step);
        move_replica(shell, &m.info, &m.from, &m.to, max_mbps).await?;
    }
    drop(progress);
    say(format!("volume.balance: {} volume(s) moved", moves.len()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(id: u32, collection: &str, placement: u32) -> VolumeInformation {
        VolumeInformation {
            id,
            collection: collection.into(),
            replica_placement: placement,
            size: u64::from(id),
            ..Default::default()
        }
    }

    fn node(url: &str, rack: &str, max: u64, volumes: Vec<VolumeInformation>) -> Node {
        Node {
            url: url.into(),
            data_center: "dc".into(),
            rack: rack.into(),
            max,
            volumes,
            ec: Vec::new(),
        }
    }

    fn counts(c: &Cluster) -> Vec<usize> {
        c.nodes.iter().map(|n| n.volumes.len()).collect()
    }

    /// `n` volumes on the first of `servers` (url, rack, slots), none on the others.
    fn one_full(n: u32, servers: &[(&str, &str, u64)]) -> Cluster {
        let nodes = servers.iter().enumerate().map(|(i, (url, rack, max))| {
            let vols = if i == 0 {
                (1..=n).map(|i| vol(i, "", 0)).collect()
            } else {
                Vec::new()
            };
            node(url, rack, *max, vols)
        });
        cluster_of(nodes.collect())
    }

    fn cluster_of(nodes: Vec<Node>) -> Cluster {
        Cluster {
            nodes,
            size_limit: 0,
            departed: Vec::new(),
        }
    }

    #[test]
    fn one_full_server_spreads_to_the_empty_ones_same_rack_first() {
        let mut c = one_full(7, &[("a", "r0", 10), ("b", "r1", 10), ("c", "r0", 10)]);
        let moves = plan(&mut c, &|_| true);
        assert_eq!(counts(&c), [3, 2, 2]);
        assert_eq!(moves.len(), 4);
        assert_eq!(moves[0].to, "c", "the same rack first");
        assert_eq!(moves[0].info.id, 1, "the smallest volume first");
        // Balanced: nothing more to do.
        assert!(plan(&mut c, &|_| true).is_empty());
    }

    #[test]
    fn slots_weigh_and_placements_hold() {
        // b has twice a's slots: 6 volumes end 2 / 4.
        let mut c = one_full(6, &[("a", "r0", 5), ("b", "r0", 10)]);
        plan(&mut c, &|_| true);
        assert_eq!(counts(&c), [2, 4]);
        // 010 (two racks): a's replica may not go to c (a second replica in r1's
        // rack alongside b), only to d in r0.
        let v = vol(9, "", 10);
        let mut c = cluster_of(vec![
            node("a", "r0", 10, vec![v.clone(), vol(1, "", 0), vol(2, "", 0)]),
            node("b", "r1", 10, vec![v]),
            node("c", "r1", 10, Vec::new()),
            node("d", "r0", 10, Vec::new()),
        ]);
        let moves = plan(&mut c, &|_| true);
        assert!(
            moves.iter().all(|m| m.info.id != 9 || m.to == "d"),
            "{moves:?}"
        );
        // Only the chosen collection moves.
        let mut c = cluster_of(vec![
            node(
                "a",
                "r0",
                10,
                vec![vol(1, "x", 0), vol(2, "x", 0), vol(3, "y", 0)],
            ),
            node("b", "r0", 10, Vec::new()),
        ]);
        let moves = plan(&mut c, &|v| v.collection == "y");
        assert!(moves.is_empty(), "one y volume is balanced: {moves:?}");
        let moves = plan(&mut c, &|v| v.collection == "x");
        assert_eq!(moves.len(), 1);
    }
}
