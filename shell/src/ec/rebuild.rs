//! `ec.rebuild`: regenerates the lost shards of EC volumes on a healthy holder, then
//! spreads them out (`balance::balance_one`); drops stale shards of decoded volumes.

use std::collections::BTreeSet;

use super::balance::balance_one;
use super::{Geo, fmt_ids, live_holders, targets};
use crate::error::{Doing, ShellError, fail};
use crate::flags::Flags;
use crate::topo::cluster;
use crate::{Shell, say};

/// `ec.rebuild [-volumeId=N] [-collection=C]`: regenerates lost shards (data and parity)
/// on a healthy holder, then spreads them out.
pub(crate) async fn rebuild(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let c = cluster(shell).await?;
    let ids = targets(flags, c.ec_volumes().into_iter())?;
    let (mut rebuilt_total, mut volumes) = (0usize, 0usize);
    let progress = crate::progress::Progress::new("ec.rebuild", ids.len());
    for (step, vid) in ids.into_iter().enumerate() {
        progress.at(step);
        let holders = live_holders(shell, &c, vid).await;
        if holders.is_empty() && flags.get("volumeId").is_none() {
            say(format!("volume {vid}: no ec shards any more, skipped"));
            continue;
        }
        let Some(geo) = Geo::from_holders(&holders) else {
            fail!("volume {vid}: no live holder");
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
                        .doing(|| format!("removing stale shards of {vid} on {}", h.url))?;
                    say(format!(
                        "volume {vid}: removed stale shards {} on {} (the volume was decoded)",
                        fmt_ids(&h.shards),
                        h.url
                    ));
                }
                continue;
            }
            fail!(
                "volume {vid}: only {} shards left, {} needed to rebuild",
                present.len(),
                geo.data
            );
        }
        let Some(target) = holders
            .iter()
            .min_by_key(|h| (h.shards.len(), h.url.clone()))
        else {
            fail!("volume {vid}: no live holder");
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
