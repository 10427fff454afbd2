//! `ec.vacuum`: drops the deleted needles of EC volumes. The holder with
//! the most shards borrows shards until it holds `data_shards`, rewrites every shard
//! (`/admin/ec/vacuum`), then hands each other holder its shards of the new encoding
//! (copied, verified, swapped in whole with the index files) and drops what it borrowed,
//! so the placement ends as it began and no old shard is left anywhere.

use std::collections::BTreeSet;
use std::time::Instant;

use super::{copy_verified, fmt_ids, live_holders, targets};
use crate::error::{Doing, ShellError, fail};
use crate::flags::Flags;
use crate::topo::{Cluster, cluster};
use crate::{Shell, say};

/// `ec.vacuum [-volumeId=N] [-collection=C] [-garbageThreshold=0.3]`.
pub(crate) async fn vacuum(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let threshold: f64 = flags.num("garbageThreshold")?.unwrap_or(0.3);
    if !(0.0..=1.0).contains(&threshold) {
        fail!("-garbageThreshold must be between 0 and 1");
    }
    let c = cluster(shell).await?;
    let ids = targets(flags, c.ec_volumes().into_iter())?;
    let (mut done, mut before, mut after) = (0usize, 0u64, 0u64);
    let progress = crate::progress::Progress::new("ec.vacuum", ids.len());
    for (step, vid) in ids.iter().enumerate() {
        progress.at(step);
        if let Some((b, a)) = vacuum_one(shell, &c, *vid, threshold).await? {
            done += 1;
            before += b;
            after += a;
        }
    }
    say(format!(
        "ec.vacuum: {done} of {} volume(s) vacuumed; their shards went from {before} to {after} bytes",
        ids.len()
    ));
    Ok(())
}

/// Vacuums one volume if its garbage is over `threshold`: `Some((bytes before, after))`
/// of all its shard files, `None` when skipped.
async fn vacuum_one(
    shell: &Shell,
    c: &Cluster,
    vid: u32,
    threshold: f64,
) -> Result<Option<(u64, u64)>, ShellError> {
    let start = Instant::now();
    let holders = live_holders(shell, c, vid).await;
    let Some(target) = holders
        .iter()
        .max_by_key(|h| (h.shards.len(), h.url.clone()))
        .cloned()
    else {
        say(format!("volume {vid}: no live ec shards, skipped"));
        return Ok(None);
    };
    let geo = target.geo;
    let st = shell
        .volumes
        .ec_info(&target.url, vid)
        .await
        .doing(|| format!("asking {} about volume {vid}", target.url))?;
    let ratio = match st.needles {
        0 => 0.0,
        n => st.deleted as f64 / n as f64,
    };
    if ratio <= threshold {
        say(format!(
            "volume {vid}: {} of {} needles deleted ({:.0}%), not over {:.0}%, skipped",
            st.deleted,
            st.needles,
            ratio * 100.0,
            threshold * 100.0
        ));
        return Ok(None);
    }
    let present: BTreeSet<u8> = holders.iter().flat_map(|h| h.shards.clone()).collect();
    if present.len() < geo.total() {
        fail!(
            "volume {vid}: {} of {} shards present; run ec.rebuild first so that no holder keeps old shards",
            present.len(),
            geo.total()
        );
    }
    let collection = st.collection.clone();
    let before: u64 = holders.iter().map(|h| h.bytes).sum();

    let mut local: BTreeSet<u8> = target.shards.iter().copied().collect();
    for h in holders.iter().filter(|h| h.url != target.url) {
        if local.len() >= geo.data {
            break;
        }
        let want: Vec<u8> = h
            .shards
            .iter()
            .copied()
            .filter(|s| !local.contains(s))
            .take(geo.data - local.len())
            .collect();
        if want.is_empty() {
            continue;
        }
        say(format!(
            "volume {vid}: copying shards {} from {} to {}",
            fmt_ids(&want),
            h.url,
            target.url
        ));
        copy_verified(shell, vid, &collection, &want, (&h.url, &target.url), false).await?;
        local.extend(&want);
    }
    if local.len() < geo.data {
        fail!(
            "volume {vid}: {} shards gathered on {}, {} needed",
            local.len(),
            target.url,
            geo.data
        );
    }

    say(format!(
        "volume {vid}: vacuuming on {} ({} of {} needles deleted)...",
        target.url, st.deleted, st.needles
    ));
    let new = shell
        .volumes
        .ec_vacuum(&target.url, vid)
        .await
        .doing(|| format!("vacuuming volume {vid} on {}", target.url))?;
    say(format!(
        "volume {vid}: {} shards rewritten on {} in {:.2}s ({} needles kept)",
        new.shards.len(),
        target.url,
        new.seconds,
        new.needles
    ));

    for h in holders.iter().filter(|h| h.url != target.url) {
        if h.shards.is_empty() {
            shell.volumes.ec_delete_shards(&h.url, vid, &[]).await?;
            continue;
        }
        copy_verified(
            shell,
            vid,
            &collection,
            &h.shards,
            (&target.url, &h.url),
            true,
        )
        .await
        .doing(|| format!("handing the new shards of volume {vid} to {}", h.url))?;
        say(format!(
            "volume {vid}: new shards {} verified on {}",
            fmt_ids(&h.shards),
            h.url
        ));
    }
    let borrowed: Vec<u8> = (0..geo.total() as u8)
        .filter(|s| !target.shards.contains(s))
        .collect();
    if !borrowed.is_empty() {
        shell
            .volumes
            .ec_delete_shards(&target.url, vid, &borrowed)
            .await
            .doing(|| format!("dropping the extra shards on {}", target.url))?;
    }
    let after: u64 = live_holders(shell, c, vid)
        .await
        .iter()
        .map(|h| h.bytes)
        .sum();
    say(format!(
        "volume {vid}: vacuumed in {:.1}s, shards {before} -> {after} bytes",
        start.elapsed().as_secs_f64()
    ));
    Ok(Some((before, after)))
}
