//! `volume.fsck`: compares the chunks a filer references with the needles the volume
//! servers hold. A needle the filer references that a replica lacks is *missing*; a
//! live needle nothing references is an *orphan* (a chunk leaked by a crash, or written
//! straight to a volume server), which `-reallyDeleteFromVolume` deletes on every
//! replica, once it is older than `-cutoffTimeAgo`.

use std::collections::{BTreeMap, BTreeSet};

use kelp_proto::{Cookie, FileId, NeedleKey, VolumeId};

use crate::error::{Doing, ShellError};
use crate::flags::{Flags, parse_duration};
use crate::refs::{Filer, Refs};
use crate::replicas::{chosen, needles, replicas, unix_now};
use crate::topo::cluster;
use crate::{Shell, say};

/// `-cutoffTimeAgo` when not given: 5 minutes, as SeaweedFS.
const DEFAULT_CUTOFF: u64 = 300;

/// One replica's live needles: key -> (Size field, append time in unix seconds).
struct Listed {
    url: String,
    live: BTreeMap<u64, (u64, u64)>,
}

/// What the comparison of one volume found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Found {
    /// Referenced keys, each with the replicas that lack it.
    missing: Vec<(u64, Vec<String>)>,
    /// Unreferenced keys older than the cutoff: (key, Size, replicas holding it).
    orphans: Vec<(u64, u64, Vec<String>)>,
    /// Unreferenced keys younger than the cutoff (left alone).
    young: usize,
}

/// Compares the replicas' needles with the keys the filer references; needles appended
/// after `cutoff` (unix seconds) on any replica are not orphans yet.
fn compare(lists: &[Listed], referenced: Option<&BTreeMap<u64, u32>>, cutoff: u64) -> Found {
    let mut found = Found::default();
    for key in referenced.into_iter().flat_map(BTreeMap::keys) {
        let lacking: Vec<String> = lists
            .iter()
            .filter(|l| !l.live.contains_key(key))
            .map(|l| l.url.clone())
            .collect();
        if !lacking.is_empty() {
            found.missing.push((*key, lacking));
        }
    }
    let keys: BTreeSet<u64> = lists.iter().flat_map(|l| l.live.keys().copied()).collect();
    for key in keys {
        if referenced.is_some_and(|r| r.contains_key(&key)) {
            continue;
        }
        let held: Vec<(&str, u64, u64)> = lists
            .iter()
            .filter_map(|l| l.live.get(&key).map(|(s, t)| (l.url.as_str(), *s, *t)))
            .collect();
        let newest = held.iter().map(|h| h.2).max().unwrap_or(0);
        if newest > cutoff {
            found.young += 1;
            continue;
        }
        let size = held.iter().map(|h| h.1).max().unwrap_or(0);
        let holders = held.iter().map(|h| h.0.to_string()).collect();
        found.orphans.push((key, size, holders));
    }
    found
}

/// Lists the live needles (with their append times) of `vid` on each of `servers`.
async fn list(shell: &Shell, vid: u32, servers: &[String]) -> Result<Vec<Listed>, ShellError> {
    let mut out = Vec::with_capacity(servers.len());
    for s in servers {
        let l = needles(shell, vid, s, true).await?;
        if l.times.len() != l.live.len() {
            say(format!(
                "volume {vid} on {s}: the server gives no needle times; its unreferenced needles are left alone"
            ));
        }
        let live = l
            .live
            .iter()
            .enumerate()
            .map(|(i, [k, size])| (*k, (*size, l.times.get(i).copied().unwrap_or(u64::MAX))))
            .collect();
        out.push(Listed {
            url: s.clone(),
            live,
        });
    }
    Ok(out)
}

fn fid(vid: u32, key: u64, cookie: u32) -> FileId {
    FileId::new(VolumeId(vid), NeedleKey(key), Cookie(cookie))
}

/// Running totals of the command.
#[derive(Debug, Default)]
struct Totals {
    volumes: usize,
    missing: usize,
    orphans: usize,
    bytes: u64,
    young: usize,
    deleted: usize,
}

/// `volume.fsck [-filer=HOST:PORT] [-volumeId=N] [-collection=C]
/// [-reallyDeleteFromVolume] [-cutoffTimeAgo=5m] [-verbose]`.
pub(crate) async fn fsck(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let delete = flags.on("reallyDeleteFromVolume");
    let verbose = flags.on("verbose");
    let cutoff_ago = match flags.get("cutoffTimeAgo") {
        Some(d) => parse_duration(d)?,
        None => DEFAULT_CUTOFF,
    };
    let filer = Filer::new(shell, flags)?;
    // Changes made from here on are read back before each volume is judged.
    let mut since = filer.head().await?;
    let mut refs = Refs::default();
    let walking = crate::progress::Progress::spinner("volume.fsck: reading the filer");
    filer.walk("/", &mut refs).await?;
    drop(walking);
    say(format!(
        "volume.fsck: {} entries reference {} chunk(s)",
        refs.entries,
        refs.chunks()
    ));
    for b in &refs.bad {
        say(format!(
            "volume.fsck: an entry names a malformed chunk id {b:?}"
        ));
    }
    let c = cluster(shell).await?;
    let all = replicas(&c);
    let ids = chosen(flags, &all)?;
    let progress = crate::progress::Progress::new("volume.fsck", ids.len());
    let mut t = Totals::default();
    let mut refused = false;
    for (step, vid) in ids.iter().enumerate() {
        progress.at(step);
        let Some(reps) = all.get(vid) else {
            // An explicit -volumeId no server holds: its references are reported below.
            if !refs.by_volume.contains_key(vid) {
                say(format!("volume {vid}: no server holds it"));
            }
            continue;
        };
        let servers: Vec<String> = reps.iter().map(|r| r.url.clone()).collect();
        let lists = list(shell, *vid, &servers).await?;
        since = filer.catch_up(since, &mut refs).await?;
        let cutoff = u64::try_from(unix_now())
            .unwrap_or(0)
            .saturating_sub(cutoff_ago);
        let referenced = refs.by_volume.get(vid);
        let found = compare(&lists, referenced, cutoff);
        t.volumes += 1;
        t.young += found.young;
        let bytes: u64 = found.orphans.iter().map(|o| o.1).sum();
        if !found.missing.is_empty() || !found.orphans.is_empty() {
            say(format!(
                "volume {vid} on {}: {} missing, {} orphan(s) ({bytes} bytes)",
                servers.join(", "),
                found.missing.len(),
                found.orphans.len()
            ));
        }
        for (key, lacking) in found.missing.iter().filter(|_| verbose) {
            let cookie = referenced.and_then(|r| r.get(key)).copied().unwrap_or(0);
            say(format!(
                "  missing: {} on {}",
                fid(*vid, *key, cookie),
                lacking.join(", ")
            ));
        }
        t.missing += found.missing.len();
        t.orphans += found.orphans.len();
        t.bytes += bytes;
        let may_delete = delete && refs.unreadable.is_empty();
        refused |= delete && !may_delete && !found.orphans.is_empty();
        for (key, size, holders) in &found.orphans {
            if verbose {
                say(format!(
                    "  orphan: needle {key:x} of volume {vid} ({size} bytes) on {}",
                    holders.join(", ")
                ));
            }
            if !may_delete {
                continue;
            }
            for server in holders {
                shell
                    .volumes
                    .needle_delete_local(server, *vid, *key)
                    .await
                    .doing(|| format!("deleting needle {key:x} of volume {vid} on {server}"))?;
            }
            t.deleted += 1;
        }
    }
    drop(progress);
    absent(flags, &refs, &c, &all, &mut t);
    for u in &refs.unreadable {
        say(format!("volume.fsck: unreadable {u}"));
    }
    if refused {
        say(format!(
            "volume.fsck: {} manifest(s) could not be read, so the chunks they list are unknown: nothing was deleted",
            refs.unreadable.len()
        ));
    }
    if t.young > 0 {
        say(format!(
            "volume.fsck: {} unreferenced needle(s) younger than -cutoffTimeAgo={cutoff_ago}s left alone (uploads in flight)",
            t.young
        ));
    }
    if !delete && t.orphans > 0 {
        say("volume.fsck: run with -reallyDeleteFromVolume to delete the orphans");
    }
    say(format!(
        "volume.fsck: {} volume(s), {} referenced chunk(s), {} missing, {} orphan(s) ({} bytes){}",
        t.volumes,
        refs.chunks(),
        t.missing,
        t.orphans,
        t.bytes,
        if delete && !refused && t.deleted == t.orphans {
            " deleted"
        } else {
            ""
        }
    ));
    Ok(())
}

/// Reports the chunks the filer references in volumes no server holds (as a normal or
/// an EC volume) as missing: every such volume when no `-volumeId` or `-collection`
/// narrows the check, else the `-volumeId` asked for.
fn absent(
    flags: &Flags,
    refs: &Refs,
    c: &crate::topo::Cluster,
    all: &BTreeMap<u32, Vec<crate::replicas::Replica>>,
    t: &mut Totals,
) {
    let only = flags.get("volumeId");
    if only.is_none() && flags.raw("collection").is_some() {
        return;
    }
    let ec = c.ec_volumes();
    for (vid, keys) in &refs.by_volume {
        if all.contains_key(vid) || only.is_some_and(|o| o != vid.to_string()) {
            continue;
        }
        if ec.contains_key(vid) {
            say(format!(
                "volume {vid} is erasure-coded: its {} referenced chunk(s) are not checked",
                keys.len()
            ));
            continue;
        }
        say(format!(
            "volume {vid}: no server holds it: {} referenced chunk(s) missing",
            keys.len()
        ));
        t.missing += keys.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(url: &str, live: &[(u64, u64, u64)]) -> Listed {
        Listed {
            url: url.into(),
            live: live.iter().map(|(k, s, t)| (*k, (*s, *t))).collect(),
        }
    }

    #[test]
    fn missing_orphans_and_young_needles() {
        // Keys 1, 2 referenced; 2 lacks on b; 3 is an old orphan on both; 4 is young on
        // b only (old on a): left alone.
        let a = listed(
            "a",
            &[(1, 10, 100), (2, 20, 100), (3, 30, 100), (4, 40, 100)],
        );
        let b = listed("b", &[(1, 10, 100), (3, 31, 100), (4, 40, 900)]);
        let refs: BTreeMap<u64, u32> = [(1, 7), (2, 7)].into_iter().collect();
        let f = compare(&[a, b], Some(&refs), 500);
        assert_eq!(f.missing, vec![(2, vec!["b".to_string()])]);
        assert_eq!(
            f.orphans,
            vec![(3, 31, vec!["a".to_string(), "b".to_string()])]
        );
        assert_eq!(f.young, 1);
        // Nothing referenced in the volume: everything old is an orphan.
        let c = listed("c", &[(5, 1, 0)]);
        assert_eq!(compare(&[c], None, 500).orphans.len(), 1);
    }
}
