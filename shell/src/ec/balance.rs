//! `ec.balance`: moves shards off servers holding more than their share of a volume
//! (and off racks holding more than parity covers), dropping duplicate shards first.

use std::collections::{BTreeMap, BTreeSet};

use super::{Geo, Holder, copy_verified, fmt_ids, live_holders, live_nodes, targets};
use crate::error::ShellError;
use crate::flags::Flags;
use crate::topo::cluster;
use crate::{Shell, say};

/// `ec.balance [-volumeId=N] [-collection=C]`: moves shards off servers holding more
/// than their share of a volume (and off racks holding more than parity covers).
pub(crate) async fn balance(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let c = cluster(shell).await?;
    let ids = targets(flags, c.ec_volumes().into_iter())?;
    let (mut moved, mut dups) = (0, 0);
    let progress = crate::progress::Progress::new("ec.balance", ids.len());
    for (step, vid) in ids.iter().enumerate() {
        progress.at(step);
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
pub(crate) async fn balance_one(shell: &Shell, vid: u32) -> Result<(usize, usize), ShellError> {
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
async fn drop_duplicates(
    shell: &Shell,
    vid: u32,
    holders: &mut [Holder],
) -> Result<usize, ShellError> {
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
