//! The volume server's status page (`GET /ui`): its disks, volumes (size, files,
//! deleted, read-only) and EC shards, server-rendered from the data `/status` answers.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;
use kelp_proto::html::{bytes, esc, num, or_default, page, table};

use super::AppState;

pub(crate) async fn status_page(State(state): State<Arc<AppState>>) -> Html<String> {
    let mut body = String::new();
    body.push_str(&format!(
        "<p>Masters: {}. {} of {} volume slots free.</p>\n",
        esc(&state.cfg.masters.join(", ")),
        state.store.free_slots(),
        state.store.max_volume_count()
    ));

    body.push_str("<h2>Disks</h2>\n");
    let disks: Vec<Vec<String>> = state
        .store
        .disk_statuses()
        .iter()
        .map(|d| vec![esc(&d.dir), bytes(d.all), bytes(d.used), bytes(d.free)])
        .collect();
    body.push_str(&table(&["directory", "size", "used", "free"], &disks));

    body.push_str("<h2>Volumes</h2>\n");
    let mut infos = state.store.volume_infos();
    infos.sort_by_key(|v| v.id);
    let vols: Vec<Vec<String>> = infos
        .iter()
        .map(|v| {
            vec![
                num(v.id),
                or_default(&v.collection),
                bytes(v.size),
                num(v.file_count.saturating_sub(v.delete_count)),
                num(v.delete_count),
                bytes(v.deleted_byte_count),
                format!("{:03}", v.replica_placement),
                if v.read_only {
                    "read-only".into()
                } else {
                    "writable".into()
                },
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "id",
            "collection",
            "size",
            "files",
            "deleted",
            "deleted bytes",
            "replication",
            "state",
        ],
        &vols,
    ));

    body.push_str("<h2>EC shards</h2>\n");
    let ec: Vec<Vec<String>> = state
        .ec
        .shard_infos()
        .iter()
        .map(|s| {
            vec![
                num(s.id),
                or_default(&s.collection),
                esc(&s
                    .shards
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")),
            ]
        })
        .collect();
    body.push_str(&table(&["volume", "collection", "shards here"], &ec));
    body.push_str(
        "<p class=\"muted\">JSON: <a href=\"/status\">/status</a>; metrics: \
         <a href=\"/metrics\">/metrics</a>.</p>\n",
    );
    Html(page(
        &format!("kelp volume server {}", state.cfg.url()),
        &body,
    ))
}
