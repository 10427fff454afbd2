//! The master's status page (`GET /`): the cluster (Raft peers, leader, term), the
//! topology as a data center → rack → server tree with volumes, free slots and EC
//! shards, the writable layouts by collection, and the admin lock. Server-rendered
//! HTML from `kelp_proto::html`, readable without scripts.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;
use kelp_proto::html::{esc, href, num, or_default, page, table};

use super::AppState;

pub(crate) async fn status_page(State(state): State<Arc<AppState>>) -> Html<String> {
    let m = &state.master;
    let raft = &m.raft;
    let metrics = raft.metrics();
    let me = raft.self_addr().to_string();
    let leader = raft.leader_addr().unwrap_or_default();
    let mut body = String::new();

    body.push_str("<h2>Cluster</h2>\n");
    let peers: Vec<Vec<String>> = {
        let mut all = raft.peers();
        if !all.contains(&me) {
            all.push(me.clone());
        }
        all.sort();
        all.iter()
            .map(|p| {
                let role = if *p == leader { "leader" } else { "follower" };
                let this = if *p == me { " (this master)" } else { "" };
                vec![
                    format!("<a href=\"http://{0}/\">{0}</a>{1}", esc(p), this),
                    role.to_string(),
                ]
            })
            .collect()
    };
    body.push_str(&table(&["master", "role"], &peers));
    body.push_str(&format!(
        "<p>Raft term {}, last log index {}, applied {}; max volume id {}.</p>\n",
        metrics.current_term,
        metrics.last_log_index.unwrap_or(0),
        metrics.last_applied.map_or(0, |l| l.index),
        raft.state().max_volume_id
    ));
    match m.admin_lock.holder() {
        Some(h) => body.push_str(&format!(
            "<p>Admin lock: held by <b>{}</b> for {} s more.</p>\n",
            esc(&h.owner),
            h.left.as_secs()
        )),
        None => body.push_str("<p>Admin lock: free.</p>\n"),
    }

    let rounds = kelp_proto::runs::recent();
    body.push_str("<h2>Maintenance rounds</h2>\n");
    if rounds.is_empty() {
        body.push_str("<p>None run by this master (see <code>-maintenance.scripts</code>).</p>\n");
    } else {
        let rows: Vec<Vec<String>> = rounds
            .iter()
            .map(|r| {
                vec![
                    kelp_proto::civil::rfc3339(r.started),
                    format!("{:.1} s", r.took.as_secs_f64()),
                    num(r.commands),
                    num(r.failed),
                ]
            })
            .collect();
        body.push_str(&table(
            &["started (UTC)", "took", "commands", "failed"],
            &rows,
        ));
    }

    let topo = m.topology.status(m.cfg.size_limit());
    body.push_str(&format!(
        "<h2>Topology</h2>\n<p>{} volume slots, {} free.</p>\n<div class=\"tree\"><ul>\n",
        topo.max, topo.free
    ));
    for dc in &topo.data_centers {
        body.push_str(&format!(
            "<li>data center <b>{}</b><ul>\n",
            or_default(&dc.id)
        ));
        for rack in &dc.racks {
            body.push_str(&format!("<li>rack <b>{}</b>\n", or_default(&rack.id)));
            let rows: Vec<Vec<String>> = rack
                .data_nodes
                .iter()
                .map(|n| {
                    vec![
                        format!("<a href=\"http://{0}/ui\">{0}</a>", esc(&n.url)),
                        num(n.volumes),
                        num(n.max.saturating_sub(n.volumes)),
                        num(n.ec_shards),
                        esc(&n.volume_ids),
                    ]
                })
                .collect();
            body.push_str(&table(
                &[
                    "volume server",
                    "volumes",
                    "free slots",
                    "EC shards",
                    "volume ids",
                ],
                &rows,
            ));
            body.push_str("</li>\n");
        }
        body.push_str("</ul></li>\n");
    }
    body.push_str("</ul></div>\n");

    body.push_str("<h2>Writable volumes by collection</h2>\n");
    let layouts: Vec<Vec<String>> = topo
        .layouts
        .iter()
        .map(|l| {
            vec![
                or_default(&l.collection),
                esc(&l.replication),
                esc(&l.ttl),
                esc(&l
                    .writables
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")),
            ]
        })
        .collect();
    body.push_str(&table(
        &["collection", "replication", "ttl", "writable volumes"],
        &layouts,
    ));
    body.push_str(&format!(
        "<p class=\"muted\">JSON: <a href=\"{0}\">/cluster/status</a>, \
         <a href=\"{1}\">/dir/status</a>, <a href=\"{2}\">/vol/status</a>; \
         metrics: <a href=\"{3}\">/metrics</a>.</p>\n",
        href("/cluster/status"),
        href("/dir/status"),
        href("/vol/status"),
        href("/metrics")
    ));
    Html(page(&format!("kelp master {me}"), &body))
}
