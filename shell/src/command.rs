//! Command lines: the list of commands, checking maintenance scripts, dispatching one
//! line to its command ([`Shell::execute`]) and running a whole round into the log.

use std::sync::atomic::Ordering;

use crate::error::{Doing, ShellError};
use crate::flags::Flags;
use crate::{Shell, TO_LOG, ec, say, topo};

/// Every command `kelp shell` knows.
pub const COMMANDS: &[&str] = &[
    "lock",
    "unlock",
    "cluster.status",
    "cluster.raft.ps",
    "cluster.raft.add",
    "cluster.raft.remove",
    "volume.list",
    "volume.vacuum",
    "volume.fix.replication",
    "volume.check.disk",
    "volume.copy",
    "volume.move",
    "volume.delete",
    "volume.mark",
    "volume.balance",
    "volume.fsck",
    "collection.list",
    "collection.delete",
    "ec.encode",
    "ec.rebuild",
    "ec.decode",
    "ec.balance",
    "ec.vacuum",
    "fs.meta.save",
    "fs.meta.load",
];

/// Splits a maintenance script (commands separated by `;` or newlines, `#` comments)
/// into command lines, checking each names a known command with well-formed flags.
pub fn parse_script(script: &str) -> Result<Vec<String>, ShellError> {
    let mut out = Vec::new();
    for line in script.split([';', '\n']).map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if !COMMANDS.contains(&words[0]) {
            return Err(ShellError::UnknownCommand {
                command: words[0].to_string(),
                hint: format!("in {line:?} (known: {})", COMMANDS.join(" ")),
            });
        }
        Flags::parse(&words[1..]).doing(|| format!("in {line:?}"))?;
        out.push(line.to_string());
    }
    Ok(out)
}

/// Runs command lines against `masters` with progress going to the log, as the master's
/// maintenance loop does; returns how many failed (each failure is logged).
pub async fn run_logged(masters: Vec<String>, lines: &[String]) -> usize {
    TO_LOG.store(true, Ordering::Relaxed);
    let shell = Shell::new(
        masters.clone(),
        format!("master maintenance ({})", masters.join(",")),
    );
    // The whole round runs under the cluster lock; someone else holding it skips it.
    if let Err(e) = shell.lock().await {
        tracing::info!(target: "kelp::maintenance", "round skipped: {}", e.chain());
        return 0;
    }
    let mut failed = 0;
    for line in lines {
        tracing::info!(target: "kelp::maintenance", "running {line:?}");
        if let Err(e) = shell.execute(line).await {
            failed += 1;
            tracing::warn!(target: "kelp::maintenance", "{line:?} failed: {}", e.chain());
        }
    }
    shell.unlock().await;
    failed
}

/// Splits off a file name given as the first word, or as the last one when the word
/// before it is not a flag waiting for its value.
fn positional<'a>(words: &[&'a str]) -> (Option<&'a str>, Vec<&'a str>) {
    match words {
        [first, more @ ..] if !first.starts_with('-') => (Some(first), more.to_vec()),
        [before @ .., last]
            if !last.starts_with('-') && before.last().is_none_or(|w| w.contains('=')) =>
        {
            (Some(last), before.to_vec())
        }
        _ => (None, words.to_vec()),
    }
}

impl Shell {
    /// Runs one command line (`ec.encode -volumeId=3`); an empty line does nothing.
    pub async fn execute(&self, line: &str) -> Result<(), ShellError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&cmd, rest)) = words.split_first() else {
            return Ok(());
        };
        // `fs.meta.load FILE`: the one command with a word that is not a flag, first
        // or last (after a `-name=value`).
        let (file, rest) = match cmd {
            "fs.meta.load" => positional(rest),
            _ => (None, rest.to_vec()),
        };
        let flags = Flags::parse(&rest)?;
        match cmd {
            "fs.meta.save" => {
                flags.check_known(&["o", "path", "filer"])?;
                crate::meta::save(self, &flags).await
            }
            "fs.meta.load" => {
                flags.check_known(&["i", "filer"])?;
                let file = file.or(flags.get("i")).ok_or_else(|| {
                    ShellError::BadFlags("fs.meta.load needs a file: fs.meta.load FILE".into())
                })?;
                crate::meta::load(self, file, &flags).await
            }
            "lock" => {
                flags.check_known(&[])?;
                self.lock().await?;
                say("locked: other shells and the master's maintenance wait until unlock");
                Ok(())
            }
            "unlock" => {
                flags.check_known(&[])?;
                self.unlock().await;
                Ok(())
            }
            "help" => {
                say(format!("commands: {}", COMMANDS.join(" ")));
                Ok(())
            }
            "cluster.status" => {
                flags.check_known(&[])?;
                topo::cluster_status(self).await
            }
            "cluster.raft.ps" => {
                flags.check_known(&[])?;
                crate::raft::ps(self).await
            }
            "cluster.raft.add" => {
                flags.check_known(&["address", "id", "voter"])?;
                self.locked(crate::raft::add(self, &flags)).await
            }
            "cluster.raft.remove" => {
                flags.check_known(&["address", "id"])?;
                self.locked(crate::raft::remove(self, &flags)).await
            }
            "volume.list" => {
                flags.check_known(&[])?;
                topo::volume_list(self).await
            }
            "volume.vacuum" => {
                flags.check_known(&["garbageThreshold"])?;
                self.locked(topo::volume_vacuum(self, &flags)).await
            }
            "volume.fix.replication" => {
                flags.check_known(&[
                    "apply",
                    "volumeId",
                    "collection",
                    "collectionPattern",
                    "doDelete",
                    "grace",
                    "maxMBps",
                ])?;
                self.locked(crate::replicas::fix_replication(self, &flags))
                    .await
            }
            "volume.check.disk" => {
                flags.check_known(&["apply", "volumeId", "collection", "collectionPattern"])?;
                self.locked(crate::replicas::check_disk(self, &flags)).await
            }
            "volume.copy" => {
                flags.check_known(&["volumeId", "source", "target", "maxMBps"])?;
                self.locked(crate::volumes::copy(self, &flags)).await
            }
            "volume.move" => {
                flags.check_known(&["volumeId", "source", "target", "maxMBps"])?;
                self.locked(crate::volumes::move_volume(self, &flags)).await
            }
            "volume.delete" => {
                flags.check_known(&["volumeId", "node"])?;
                self.locked(crate::volumes::delete(self, &flags)).await
            }
            "volume.mark" => {
                flags.check_known(&["volumeId", "node", "readonly", "writable"])?;
                self.locked(crate::volumes::mark(self, &flags)).await
            }
            "volume.balance" => {
                flags.check_known(&["collection", "force", "maxMBps"])?;
                self.locked(crate::balance::balance(self, &flags)).await
            }
            "volume.fsck" => {
                flags.check_known(&[
                    "filer",
                    "volumeId",
                    "collection",
                    "reallyDeleteFromVolume",
                    "cutoffTimeAgo",
                    "verbose",
                ])?;
                self.locked(crate::fsck::fsck(self, &flags)).await
            }
            "collection.list" => {
                flags.check_known(&[])?;
                crate::volumes::collection_list(self).await
            }
            "collection.delete" => {
                flags.check_known(&["collection", "apply"])?;
                self.locked(crate::volumes::collection_delete(self, &flags))
                    .await
            }
            "ec.encode" => {
                flags.check_known(&[
                    "volumeId",
                    "collection",
                    "fullPercent",
                    "quietFor",
                    "force",
                    "parallelCopy",
                    "maxParallelization",
                    "rebalance",
                    "diskType",
                    "dataShards",
                    "parityShards",
                ])?;
                self.locked(ec::encode::encode(self, &flags)).await
            }
            "ec.rebuild" => {
                flags.check_known(&["volumeId", "collection", "force", "maxParallelization"])?;
                self.locked(ec::rebuild::rebuild(self, &flags)).await
            }
            "ec.decode" => {
                flags.check_known(&["volumeId", "collection"])?;
                self.locked(ec::decode::decode(self, &flags)).await
            }
            "ec.balance" => {
                flags.check_known(&[
                    "volumeId",
                    "collection",
                    "force",
                    "maxParallelization",
                    "dataCenter",
                    "shardReplicaPlacement",
                ])?;
                self.locked(ec::balance::balance(self, &flags)).await
            }
            "ec.vacuum" => {
                flags.check_known(&["volumeId", "collection", "garbageThreshold"])?;
                self.locked(ec::vacuum::vacuum(self, &flags)).await
            }
            other => Err(ShellError::UnknownCommand {
                command: other.to_string(),
                hint: "(try help)".to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_scripts() {
        let lines = parse_script(
            "ec.encode -collection=c -fullPercent=95 -quietFor=1h; ec.rebuild\n# note\n",
        )
        .unwrap();
        assert_eq!(
            lines,
            [
                "ec.encode -collection=c -fullPercent=95 -quietFor=1h",
                "ec.rebuild"
            ]
        );
        let unknown = parse_script("ec.encodee -collection=c").unwrap_err();
        assert!(matches!(unknown, ShellError::UnknownCommand { .. }));
        assert!(unknown.to_string().starts_with(
            "unknown command \"ec.encodee\" in \"ec.encodee -collection=c\" (known: lock "
        ));
        let stray = parse_script("ec.encode stray").unwrap_err();
        assert_eq!(
            stray.chain().to_string(),
            "in \"ec.encode stray\": unexpected argument \"stray\" (flags look like -name=value)"
        );
        assert!(parse_script("").unwrap().is_empty());
    }
}
