//! Commands on whole volumes and collections: `volume.copy`, `volume.move`,
//! `volume.delete`, `volume.mark`, `collection.list`, `collection.delete`.

use std::collections::BTreeMap;

use kelp_proto::master_api::VolumeInformation;

use crate::error::{Doing, ShellError, fail};
use crate::flags::Flags;
use crate::replicas::{copy_volume, replicas};
use crate::topo::cluster;
use crate::{Shell, say};

/// The value of a flag the command cannot do without.
fn need<'a>(flags: &'a Flags, k: &str, cmd: &str) -> Result<&'a str, ShellError> {
    flags
        .get(k)
        .ok_or_else(|| ShellError::BadFlags(format!("{cmd} needs -{k}")))
}

fn volume_id(flags: &Flags, cmd: &str) -> Result<u32, ShellError> {
    flags
        .num::<u32>("volumeId")?
        .ok_or_else(|| ShellError::BadFlags(format!("{cmd} needs -volumeId")))
}

/// The collection of volume `vid` as `server` reports it, checking it is there.
async fn collection_on(shell: &Shell, vid: u32, server: &str) -> Result<String, ShellError> {
    let c = cluster(shell).await?;
    let Some(n) = c.nodes.iter().find(|n| n.url == server) else {
        fail!("{server} is not a volume server the master knows");
    };
    match n.volumes.iter().find(|v| v.id == vid) {
        Some(v) => Ok(v.collection.clone()),
        None => fail!("{server} does not hold volume {vid}"),
    }
}

/// `volume.copy -volumeId=N -source=HOST:PORT -target=HOST:PORT [-maxMBps=M]`: one more
/// replica of the volume on the target.
pub(crate) async fn copy(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let vid = volume_id(flags, "volume.copy")?;
    let source = need(flags, "source", "volume.copy")?;
    let target = need(flags, "target", "volume.copy")?;
    let col = collection_on(shell, vid, source).await?;
    copy_volume(
        shell,
        vid,
        &col,
        source,
        target,
        flags.num("maxMBps")?.unwrap_or(0),
    )
    .await
}

/// `volume.move -volumeId=N -source -target [-maxMBps=M]`: see [`move_replica`].
pub(crate) async fn move_volume(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let vid = volume_id(flags, "volume.move")?;
    let source = need(flags, "source", "volume.move")?;
    let target = need(flags, "target", "volume.move")?;
    let c = cluster(shell).await?;
    let Some(v) = c
        .nodes
        .iter()
        .find(|n| n.url == source)
        .and_then(|n| n.volumes.iter().find(|v| v.id == vid))
    else {
        fail!("{source} does not hold volume {vid}");
    };
    move_replica(shell, v, source, target, flags.num("maxMBps")?.unwrap_or(0)).await
}

/// Moves the replica `v` on `source` to `target` (`volume.move`, `volume.balance`): the
/// source's replica is made read-only (writes go to the other replicas, or fail and are
/// retried elsewhere), copied to the target at most `max_mbps` MiB/s (0: unlimited),
/// and removed from the source; the new replica is writable again if the old one was.
pub(crate) async fn move_replica(
    shell: &Shell,
    v: &VolumeInformation,
    source: &str,
    target: &str,
    max_mbps: u64,
) -> Result<(), ShellError> {
    let vid = v.id;
    let was_writable = !v.read_only;
    if was_writable {
        shell.volumes.mark_readonly(source, vid, true).await?;
    }
    let copied = copy_volume(shell, vid, &v.collection, source, target, max_mbps).await;
    if let Err(e) = copied {
        if was_writable {
            let _ = shell.volumes.mark_readonly(source, vid, false).await;
        }
        return Err(e);
    }
    if was_writable {
        shell.volumes.mark_readonly(target, vid, false).await?;
    }
    shell
        .volumes
        .delete_volume(source, vid)
        .await
        .doing(|| format!("removing volume {vid} from {source}"))?;
    say(format!("volume {vid}: moved from {source} to {target}"));
    Ok(())
}

/// `volume.delete -volumeId=N -node=HOST:PORT`: removes that server's replica.
pub(crate) async fn delete(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let vid = volume_id(flags, "volume.delete")?;
    let node = need(flags, "node", "volume.delete")?;
    collection_on(shell, vid, node).await?;
    shell.volumes.delete_volume(node, vid).await?;
    say(format!("volume {vid}: removed from {node}"));
    Ok(())
}

/// `volume.mark -volumeId=N [-node=HOST:PORT] -readonly|-writable`: every replica (or
/// the one on `-node`).
pub(crate) async fn mark(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let vid = volume_id(flags, "volume.mark")?;
    let readonly = match (flags.on("readonly"), flags.on("writable")) {
        (true, false) => true,
        (false, true) => false,
        _ => {
            return Err(ShellError::BadFlags(
                "volume.mark takes one of -readonly and -writable".into(),
            ));
        }
    };
    let c = cluster(shell).await?;
    let all = replicas(&c);
    let Some(reps) = all.get(&vid) else {
        fail!("no server holds volume {vid}");
    };
    let mut n = 0;
    for r in reps
        .iter()
        .filter(|r| flags.get("node").is_none_or(|w| w == r.url))
    {
        shell.volumes.mark_readonly(&r.url, vid, readonly).await?;
        n += 1;
    }
    say(format!(
        "volume {vid}: {n} replica(s) marked {}",
        if readonly { "read-only" } else { "writable" }
    ));
    Ok(())
}

/// `collection.list`: every collection with its volumes and bytes.
pub(crate) async fn collection_list(shell: &Shell) -> Result<(), ShellError> {
    let c = cluster(shell).await?;
    // collection -> (volume ids, bytes of one replica each, files)
    let mut cols: BTreeMap<String, (BTreeMap<u32, u64>, u64)> = BTreeMap::new();
    for n in &c.nodes {
        for v in &n.volumes {
            let e = cols.entry(v.collection.clone()).or_default();
            e.0.insert(v.id, v.size);
            e.1 = e.1.max(v.file_count);
        }
        for e in &n.ec {
            cols.entry(e.collection.clone())
                .or_default()
                .0
                .entry(e.id)
                .or_insert(0);
        }
    }
    for (name, (vols, _)) in &cols {
        let bytes: u64 = vols.values().sum();
        say(format!(
            "collection:{:?} volumes:{} bytes:{bytes}",
            name,
            vols.len()
        ));
    }
    say(format!("{} collection(s)", cols.len()));
    Ok(())
}

/// `collection.delete -collection=NAME -apply`: removes every volume of the collection
/// on every server (without `-apply` it says what it would remove).
pub(crate) async fn collection_delete(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let Some(name) = flags.raw("collection") else {
        return Err(ShellError::BadFlags(
            "collection.delete needs -collection".into(),
        ));
    };
    let c = cluster(shell).await?;
    let n: usize = c
        .nodes
        .iter()
        .map(|n| n.volumes.iter().filter(|v| v.collection == name).count())
        .sum();
    if !flags.on("apply") {
        say(format!(
            "collection {name:?}: {n} volume replica(s) would be removed; run with -apply"
        ));
        return Ok(());
    }
    kelp_proto::name::check_collection(name).map_err(|e| ShellError::BadFlags(e.to_string()))?;
    let path = format!("/col/delete?collection={name}");
    shell
        .master_call(&path)
        .await
        .doing(|| format!("deleting collection {name:?}"))?;
    say(format!(
        "collection {name:?}: {n} volume replica(s) removed"
    ));
    Ok(())
}
