//! Master group membership: `cluster.raft.ps`, `cluster.raft.add`, `cluster.raft.remove`
//! (the leader carries out the change through Raft's membership protocol; a follower
//! forwards it there).

use std::time::Duration;

use crate::error::ShellError;
use crate::flags::Flags;
use crate::{Shell, say};

/// `cluster.raft.ps`: every member, voter or learner, and the leader.
pub(crate) async fn ps(shell: &Shell) -> Result<(), ShellError> {
    let v: serde_json::Value = shell.master_get("/cluster/raft/ps").await?;
    let leader = v["leader"].as_str().unwrap_or("");
    let members = v["members"].as_array().cloned().unwrap_or_default();
    for m in &members {
        let addr = m["address"].as_str().unwrap_or("?");
        say(format!(
            "  {addr} id={} {}{}",
            m["id"].as_str().unwrap_or("?"),
            if m["voter"].as_bool().unwrap_or(false) {
                "voter"
            } else {
                "learner"
            },
            if addr == leader { " leader" } else { "" }
        ));
    }
    say(format!("{} master(s), leader {leader}", members.len()));
    Ok(())
}

/// The master address of a membership command: `-address`, else `-id` (SeaweedFS names
/// a member by id and address; kelp's ids are derived from the address).
fn address(flags: &Flags, cmd: &str) -> Result<String, ShellError> {
    flags
        .get("address")
        .or(flags.get("id"))
        .map(str::to_string)
        .ok_or_else(|| ShellError::BadFlags(format!("{cmd} needs -address=HOST:PORT")))
}

async fn post(shell: &Shell, path: &str, query: &[(&str, String)]) -> Result<(), ShellError> {
    // Adding waits for the new member to catch up.
    shell
        .master_send(path, Some((query, Duration::from_secs(120))))
        .await
        .map(|_| ())
}

/// `cluster.raft.add -address=HOST:PORT [-voter=false]`: the master there (started with
/// `-raft.join`) joins the group, catching up from a snapshot.
pub(crate) async fn add(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let addr = address(flags, "cluster.raft.add")?;
    let voter = flags.get("voter") != Some("false");
    post(
        shell,
        "/cluster/raft/add",
        &[("address", addr.clone()), ("voter", voter.to_string())],
    )
    .await?;
    say(format!(
        "{addr} added to the master group as a {}",
        if voter { "voter" } else { "learner" }
    ));
    Ok(())
}

/// `cluster.raft.remove -address=HOST:PORT`.
pub(crate) async fn remove(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let addr = address(flags, "cluster.raft.remove")?;
    post(shell, "/cluster/raft/remove", &[("address", addr.clone())]).await?;
    say(format!("{addr} removed from the master group"));
    Ok(())
}
