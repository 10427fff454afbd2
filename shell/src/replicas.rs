//! Replica repair: `volume.fix.replication` (volumes with fewer replicas than their
//! placement asks, too many, or misplaced ones) and `volume.check.disk` (replicas that
//! differ needle by needle), and the placement arithmetic both use.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use kelp_proto::ReplicaPlacement;
use kelp_proto::master_api::VolumeInformation;

use crate::error::{Doing, ShellError, fail};
use crate::flags::Flags;
use crate::topo::{Cluster, Node, cluster};
use crate::{Shell, say};

/// One replica of a volume: where it is and what its server reports of it.
#[derive(Debug, Clone)]
pub(crate) struct Replica {
    pub url: String,
    pub dc: String,
    pub rack: String,
    pub info: VolumeInformation,
}

/// Every normal volume's replicas, by volume id.
pub(crate) fn replicas(c: &Cluster) -> BTreeMap<u32, Vec<Replica>> {
    let mut out: BTreeMap<u32, Vec<Replica>> = BTreeMap::new();
    for n in &c.nodes {
        for v in &n.volumes {
            out.entry(v.id).or_default().push(Replica {
                url: n.url.clone(),
                dc: n.data_center.clone(),
                rack: n.rack.clone(),
                info: v.clone(),
            });
        }
    }
    out
}

/// A place a replica is or could be: (data center, rack, server).
pub(crate) type Spot<'a> = (&'a str, &'a str, &'a str);

/// Whether replicas at `spots` (distinct servers) spread as `p` asks: `x+1` data
/// centers, `y+1` racks in the data center holding most, `z+1` servers in the rack
/// holding most.
pub(crate) fn satisfies(p: ReplicaPlacement, spots: &[Spot<'_>]) -> bool {
    if spots.len() != p.copy_count() {
        return false;
    }
    let (dcs, main_dc) = group(spots, |s| s.0);
    if dcs != usize::from(p.diff_dc) + 1 {
        return false;
    }
    let (racks, main_rack) = group(&main_dc, |s| s.1);
    racks == usize::from(p.diff_rack) + 1 && main_rack.len() == usize::from(p.same_rack) + 1
}

/// How many groups `by` makes of `spots`, and the largest group.
fn group<'a>(spots: &[Spot<'a>], by: impl Fn(&Spot<'a>) -> &'a str) -> (usize, Vec<Spot<'a>>) {
    let mut g: BTreeMap<&str, Vec<Spot<'a>>> = BTreeMap::new();
    for s in spots {
        g.entry(by(s)).or_default().push(*s);
    }
    let n = g.len();
    let biggest = g.into_values().max_by_key(Vec::len).unwrap_or_default();
    (n, biggest)
}

/// Whether `spots` can still grow into a spread `p` accepts: no more data centers,
/// racks per data center or servers per rack than it allows.
fn within(p: ReplicaPlacement, spots: &[Spot<'_>]) -> bool {
    let mut dcs: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for s in spots {
        *dcs.entry(s.0).or_default().entry(s.1).or_default() += 1;
    }
    spots.len() <= p.copy_count()
        && dcs.len() <= usize::from(p.diff_dc) + 1
        && dcs.values().all(|racks| {
            racks.len() <= usize::from(p.diff_rack) + 1
                && racks.values().all(|&n| n <= usize::from(p.same_rack) + 1)
        })
}

pub(crate) fn spot(r: &Replica) -> Spot<'_> {
    (&r.dc, &r.rack, &r.url)
}

pub(crate) fn node_spot(n: &Node) -> Spot<'_> {
    (&n.data_center, &n.rack, &n.url)
}

/// Whether `n` has a free volume slot (EC shards take one slot per ten).
pub(crate) fn has_room(n: &Node) -> bool {
    (n.volumes.len() as u64 + n.ec_shard_count().div_ceil(10) as u64) < n.max
}

/// The server a new replica of a volume held at `have` should go to: one with a free
/// slot that does not hold it, keeping the spread acceptable (the full placement when
/// it is the last replica missing); the least loaded first.
pub(crate) fn pick_target<'a>(
    c: &'a Cluster,
    p: ReplicaPlacement,
    have: &[Spot<'_>],
) -> Option<&'a Node> {
    let mut candidates: Vec<&Node> = c
        .nodes
        .iter()
        .filter(|n| !have.iter().any(|h| h.2 == n.url))
        .filter(|n| has_room(n))
        .collect();
    candidates.sort_by_key(|n| (n.volumes.len(), n.url.clone()));
    candidates.into_iter().find(|n| {
        let mut with: Vec<Spot<'_>> = have.to_vec();
        with.push(node_spot(n));
        if with.len() == p.copy_count() {
            satisfies(p, &with)
        } else {
            within(p, &with)
        }
    })
}

/// The replica to drop from `reps` (more than `p` asks): the one whose removal leaves
/// the placement satisfied, stalest (fewest files) first.
fn pick_surplus(p: ReplicaPlacement, reps: &[Replica]) -> Option<usize> {
    let mut order: Vec<usize> = (0..reps.len()).collect();
    order.sort_by_key(|&i| {
        (
            reps[i].info.file_count,
            reps[i].info.size,
            reps[i].url.clone(),
        )
    });
    let leaves_ok = |i: usize| {
        let rest: Vec<Spot<'_>> = reps
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, r)| spot(r))
            .collect();
        satisfies(p, &rest) || rest.len() > p.copy_count()
    };
    order
        .iter()
        .copied()
        .find(|&i| leaves_ok(i))
        .or(order.first().copied())
}

/// The replica to copy from: the one with the most files, writable first.
fn best_source(reps: &[Replica]) -> Option<&Replica> {
    reps.iter().max_by_key(|r| {
        (
            !r.info.read_only,
            r.info.file_count,
            r.info.size,
            r.url.clone(),
        )
    })
}

/// Volume ids a repair command looks at: `-volumeId`, else all (of `-collection`).
pub(crate) fn chosen(
    flags: &Flags,
    all: &BTreeMap<u32, Vec<Replica>>,
) -> Result<Vec<u32>, ShellError> {
    if let Some(v) = flags.num::<u32>("volumeId")? {
        return Ok(vec![v]);
    }
    let col = flags.raw("collection").or(flags.raw("collectionPattern"));
    Ok(all
        .iter()
        .filter(|(_, reps)| {
            col.is_none_or(|want| {
                reps.first()
                    .is_some_and(|r| want == "*" || r.info.collection == want)
            })
        })
        .map(|(id, _)| *id)
        .collect())
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `volume.fix.replication [-apply] [-volumeId=N] [-collection=C] [-doDelete=false]
/// [-grace=10m] [-maxMBps=M]`: plans (and with `-apply` carries out) copies for
/// volumes with fewer replicas than their placement, removals for volumes with more,
/// and a copy plus a removal for misplaced ones. A volume whose missing replica was on
/// a server the master dropped less than `-grace` ago is left alone (the server may
/// come back).
pub(crate) async fn fix_replication(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let apply = flags.on("apply");
    let do_delete = flags.get("doDelete") != Some("false");
    let grace = match flags.get("grace") {
        Some(g) => crate::flags::parse_duration(g)?,
        None => 0,
    };
    let max_mbps: u64 = flags.num("maxMBps")?.unwrap_or(0);
    let c = cluster(shell).await?;
    let all = replicas(&c);
    let ids = chosen(flags, &all)?;
    let progress = crate::progress::Progress::new("volume.fix.replication", ids.len());
    let (mut copied, mut removed, mut waiting, mut planned) = (0, 0, 0, 0);
    for (step, vid) in ids.iter().enumerate() {
        progress.at(step);
        let Some(reps) = all.get(vid) else {
            say(format!("volume {vid}: no replica anywhere"));
            continue;
        };
        let Some(first) = reps.first() else { continue };
        let p =
            ReplicaPlacement::from_byte(u8::try_from(first.info.replica_placement).unwrap_or(0));
        let want = p.copy_count();
        let spots: Vec<Spot<'_>> = reps.iter().map(spot).collect();
        if reps.len() < want {
            let recent = c.departed.iter().find(|d| {
                d.volumes.contains(vid)
                    && unix_now() - d.since < i64::try_from(grace).unwrap_or(i64::MAX)
            });
            if let Some(d) = recent {
                say(format!(
                    "volume {vid}: {} of {want} replicas; {} left {}s ago, waiting for the -grace of {grace}s",
                    reps.len(),
                    d.url,
                    unix_now() - d.since
                ));
                waiting += 1;
                continue;
            }
            let mut have = spots.clone();
            let Some(source) = best_source(reps) else {
                continue;
            };
            for _ in reps.len()..want {
                let Some(target) = pick_target(&c, p, &have) else {
                    say(format!(
                        "volume {vid}: {} of {want} replicas, and no server can take another under placement {:03}",
                        have.len(),
                        p.to_byte()
                    ));
                    break;
                };
                planned += 1;
                say(format!(
                    "volume {vid}: {} of {want} replicas: copy from {} to {} (rack {})",
                    have.len(),
                    source.url,
                    target.url,
                    target.rack
                ));
                if apply {
                    copy_volume(
                        shell,
                        *vid,
                        &source.info.collection,
                        &source.url,
                        &target.url,
                        max_mbps,
                    )
                    .await?;
                    copied += 1;
                }
                have.push(node_spot(target));
            }
        } else if reps.len() > want {
            if !do_delete {
                say(format!(
                    "volume {vid}: {} replicas of {want} (-doDelete=false: kept)",
                    reps.len()
                ));
                continue;
            }
            let mut left = reps.clone();
            while left.len() > want {
                let Some(i) = pick_surplus(p, &left) else {
                    break;
                };
                let r = left.remove(i);
                planned += 1;
                say(format!(
                    "volume {vid}: {} replicas of {want}: remove the one on {} ({} files)",
                    left.len() + 1,
                    r.url,
                    r.info.file_count
                ));
                if apply {
                    shell
                        .volumes
                        .delete_volume(&r.url, *vid)
                        .await
                        .doing(|| format!("removing volume {vid} from {}", r.url))?;
                    removed += 1;
                }
            }
        } else if !satisfies(p, &spots) {
            // Misplaced: find one replica to move so that the spread is right.
            let plan = reps.iter().enumerate().find_map(|(i, r)| {
                let rest: Vec<Spot<'_>> = reps
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, r)| spot(r))
                    .collect();
                let t = pick_target(&c, p, &rest)?;
                Some((r.clone(), t))
            });
            let Some((from, to)) = plan else {
                say(format!(
                    "volume {vid}: misplaced for {:03}, and no move fixes it",
                    p.to_byte()
                ));
                continue;
            };
            planned += 1;
            say(format!(
                "volume {vid}: misplaced for {:03}: move the replica on {} to {}",
                p.to_byte(),
                from.url,
                to.url
            ));
            if apply {
                let Some(source) = best_source(reps) else {
                    continue;
                };
                copy_volume(
                    shell,
                    *vid,
                    &source.info.collection,
                    &source.url,
                    &to.url,
                    max_mbps,
                )
                .await?;
                shell
                    .volumes
                    .delete_volume(&from.url, *vid)
                    .await
                    .doing(|| format!("removing volume {vid} from {}", from.url))?;
                copied += 1;
                removed += 1;
            }
        }
    }
    if apply {
        say(format!(
            "volume.fix.replication: {copied} replica(s) copied, {removed} removed, {waiting} volume(s) waiting for their grace period"
        ));
    } else {
        say(format!(
            "volume.fix.replication: {planned} change(s) planned, {waiting} volume(s) waiting; run with -apply to make them"
        ));
    }
    Ok(())
}

/// Copies volume `vid` from `from` to `to` (the target pulls it), then brings the new
/// replica up to date with what was written meanwhile.
pub(crate) async fn copy_volume(
    shell: &Shell,
    vid: u32,
    collection: &str,
    from: &str,
    to: &str,
    max_mbps: u64,
) -> Result<(), ShellError> {
    let start = Instant::now();
    let done = shell
        .volumes
        .volume_copy(to, vid, collection, from, max_mbps)
        .await
        .doing(|| format!("copying volume {vid} from {from} to {to}"))?;
    let synced = sync_replicas(shell, vid, &[from.to_string(), to.to_string()], true).await?;
    say(format!(
        "volume {vid}: copied {} bytes from {from} to {to} in {:.1}s{}",
        done.bytes,
        start.elapsed().as_secs_f64(),
        if synced.changes() > 0 {
            format!(", then caught up {}", synced.summary())
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// What a comparison of replicas found (and repaired, when applied).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sync {
    /// Needles copied to replicas that lacked them.
    pub copied: usize,
    /// Needles deleted on replicas that still had them after another deleted them.
    pub deleted: usize,
    /// Needles whose sizes differ between replicas (reported, not changed).
    pub differ: usize,
}

impl Sync {
    fn changes(&self) -> usize {
        self.copied + self.deleted
    }

    fn summary(&self) -> String {
        format!(
            "{} needle(s) copied, {} deleted, {} differing",
            self.copied, self.deleted, self.differ
        )
    }
}

/// The needles of volume `vid` on `server` (with their append times when `timed`).
pub(crate) async fn needles(
    shell: &Shell,
    vid: u32,
    server: &str,
    timed: bool,
) -> Result<kelp_proto::volume_api::NeedleList, ShellError> {
    let listed = if timed {
        shell.volumes.volume_needles_timed(server, vid).await
    } else {
        shell.volumes.volume_needles(server, vid).await
    };
    listed.doing(|| format!("listing the needles of volume {vid} on {server}"))
}

/// Compares the replicas of `vid` on `servers` needle by needle; with `apply`, copies
/// each needle a replica lacks from one that has it, and deletes on every replica a
/// needle any replica deleted (a delete is never undone).
pub(crate) async fn sync_replicas(
    shell: &Shell,
    vid: u32,
    servers: &[String],
    apply: bool,
) -> Result<Sync, ShellError> {
    let mut lists = Vec::with_capacity(servers.len());
    for s in servers {
        let l = needles(shell, vid, s, false).await?;
        let live: HashMap<u64, u64> = l.live.iter().map(|[k, size]| (*k, *size)).collect();
        lists.push((s.clone(), live, l.deleted));
    }
    let deleted: BTreeSet<u64> = lists.iter().flat_map(|l| l.2.iter().copied()).collect();
    let keys: BTreeSet<u64> = lists.iter().flat_map(|l| l.1.keys().copied()).collect();
    let mut out = Sync::default();
    for key in keys {
        if deleted.contains(&key) {
            for (server, live, _) in &lists {
                if live.contains_key(&key) {
                    out.deleted += 1;
                    if apply {
                        shell
                            .volumes
                            .needle_delete_local(server, vid, key)
                            .await
                            .doing(|| {
                                format!("deleting needle {key:x} of volume {vid} on {server}")
                            })?;
                    }
                }
            }
            continue;
        }
        let holders: Vec<&(String, HashMap<u64, u64>, Vec<u64>)> =
            lists.iter().filter(|l| l.1.contains_key(&key)).collect();
        let sizes: BTreeSet<u64> = holders
            .iter()
            .filter_map(|l| l.1.get(&key).copied())
            .collect();
        if sizes.len() > 1 {
            out.differ += 1;
        }
        let Some(source) = holders.first() else {
            continue;
        };
        for (server, live, _) in &lists {
            if live.contains_key(&key) {
                continue;
            }
            out.copied += 1;
            if apply {
                let raw = shell
                    .volumes
                    .needle_raw(&source.0, vid, key)
                    .await
                    .doing(|| format!("reading needle {key:x} of volume {vid} on {}", source.0))?;
                shell
                    .volumes
                    .needle_put_raw(server, vid, raw)
                    .await
                    .doing(|| format!("writing needle {key:x} of volume {vid} to {server}"))?;
            }
        }
    }
    Ok(out)
}

/// `volume.check.disk [-apply] [-volumeId=N] [-collection=C]`: compares the replicas of
/// each replicated volume needle by needle and (with `-apply`) repairs them.
pub(crate) async fn check_disk(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let apply = flags.on("apply");
    let c = cluster(shell).await?;
    let all = replicas(&c);
    let ids = chosen(flags, &all)?;
    let progress = crate::progress::Progress::new("volume.check.disk", ids.len());
    let mut total = Sync::default();
    let mut checked = 0;
    for (step, vid) in ids.iter().enumerate() {
        progress.at(step);
        let Some(reps) = all.get(vid).filter(|r| r.len() >= 2) else {
            if flags.get("volumeId").is_some() {
                fail!("volume {vid} has fewer than two replicas: nothing to compare");
            }
            continue;
        };
        let servers: Vec<String> = reps.iter().map(|r| r.url.clone()).collect();
        let s = sync_replicas(shell, *vid, &servers, apply).await?;
        if apply {
            // The master may read from every replica again.
            shell
                .master_send(
                    "/vol/reconciled",
                    Some((
                        &[("volume", vid.to_string())],
                        std::time::Duration::from_secs(10),
                    )),
                )
                .await
                .doing(|| format!("telling the master volume {vid} is reconciled"))?;
        }
        checked += 1;
        if s.changes() > 0 || s.differ > 0 {
            say(format!(
                "volume {vid} on {}: {}{}",
                servers.join(", "),
                s.summary(),
                if apply { "" } else { " (not applied)" }
            ));
        }
        total.copied += s.copied;
        total.deleted += s.deleted;
        total.differ += s.differ;
    }
    say(format!(
        "volume.check.disk: {checked} volume(s) compared: {}{}",
        total.summary(),
        if apply || total.changes() == 0 {
            ""
        } else {
            "; run with -apply to repair"
        }
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ReplicaPlacement {
        s.parse().unwrap()
    }

    #[test]
    fn placements_are_checked_as_seaweedfs_does() {
        let a = ("dc1", "r1", "a");
        let b = ("dc1", "r1", "b");
        let c = ("dc1", "r2", "c");
        let d = ("dc2", "r9", "d");
        assert!(satisfies(p("000"), &[a]));
        assert!(satisfies(p("001"), &[a, b]));
        assert!(!satisfies(p("001"), &[a, c]));
        assert!(satisfies(p("010"), &[a, c]));
        assert!(!satisfies(p("010"), &[a, b]));
        assert!(satisfies(p("100"), &[a, d]));
        assert!(satisfies(p("011"), &[a, b, c]));
        assert!(!satisfies(p("010"), &[a]));
        assert!(within(p("011"), &[a, c]));
        assert!(!within(p("010"), &[a, b]));
        assert!(!within(p("000"), &[a, b]));
    }

    fn rep(url: &str, rack: &str, files: u64) -> Replica {
        Replica {
            url: url.into(),
            dc: "dc".into(),
            rack: rack.into(),
            info: VolumeInformation {
                id: 1,
                file_count: files,
                ..Default::default()
            },
        }
    }

    #[test]
    fn surplus_replicas_go_stalest_first_keeping_the_spread() {
        // 010 with three replicas: r1/a (stale), r1/b, r2/c. Dropping c would leave one
        // rack, so the stale one on r1 goes.
        let reps = vec![rep("a", "r1", 5), rep("b", "r1", 9), rep("c", "r2", 1)];
        assert_eq!(pick_surplus(p("010"), &reps), Some(0));
        let reps = vec![rep("a", "r1", 9), rep("b", "r1", 5)];
        assert_eq!(pick_surplus(p("000"), &reps), Some(1));
        assert_eq!(best_source(&reps).map(|r| r.url.as_str()), Some("a"));
    }
}
