//! `ec.decode`: gathers an EC volume's shards on the server holding most of them and
//! turns them back into a normal volume there.

use std::time::Instant;

use super::{live_holders, targets, wait_master};
use crate::error::{Doing, ShellError, fail};
use crate::flags::Flags;
use crate::topo::cluster;
use crate::{Shell, say};

/// `ec.decode -volumeId=N`: gathers the shards on the server holding most of them, decodes
/// there into a normal volume and removes the shards everywhere.
pub(crate) async fn decode(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let c = cluster(shell).await?;
    let ids = targets(flags, c.ec_volumes().into_iter())?;
    let mut done = 0;
    let progress = crate::progress::Progress::new("ec.decode", ids.len());
    for (step, vid) in ids.iter().enumerate() {
        progress.at(step);
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
            fail!("volume {vid} has no live ec shards");
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
                .doing(|| format!("removing shards of {vid} on {}", h.url))?;
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
