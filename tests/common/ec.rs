//! Helpers of the EC end-to-end tests: `kelp shell` on stdin, test payloads, where the
//! master and the servers say a volume's shards are, reading every needle back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use super::{get_json, http, kelp_bin};

/// `kelp shell -master=<m>` with stdin, stdout and stderr piped.
pub fn spawn_shell(master: &str) -> std::process::Child {
    Command::new(kelp_bin())
        .args(["shell", &format!("-master={master}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kelp shell")
}

/// Runs `kelp shell -master=<m>` with `script` on stdin: (exit code, stdout, stderr).
pub fn shell(master: &str, script: &str) -> (i32, String, String) {
    let mut child = spawn_shell(master);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "$ kelp shell <<< {script:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

pub fn payload(i: usize) -> Vec<u8> {
    let len = if i.is_multiple_of(50) {
        2 << 20
    } else if i.is_multiple_of(10) {
        256 << 10
    } else {
        [1, 100, 1000, 4096, 10_000, 40_000][i % 6]
    };
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A needle written by a test: where it is and what it holds.
pub struct Stored {
    pub fid: String,
    pub vid: u32,
    pub data: Vec<u8>,
}

/// Writes `n` needles of [`payload`]s, each to a fid from `/dir/assign?<query>`.
pub fn write_needles(master: &str, query: &str, n: usize) -> Vec<Stored> {
    (0..n)
        .map(|i| {
            let (st, a) = get_json(master, &format!("/dir/assign?{query}"));
            assert_eq!(st, 200, "assign: {a}");
            let fid = a["fid"].as_str().unwrap().to_string();
            let url = a["url"].as_str().unwrap().to_string();
            let data = payload(i);
            let r = http("PUT", &url, &format!("/{fid}"), &data).unwrap();
            assert_eq!(r.status, 201, "upload {fid}: {}", r.text());
            let vid = fid.split(',').next().unwrap().parse().unwrap();
            Stored { fid, vid, data }
        })
        .collect()
}

/// `(normal locations, ec locations with their shard ids)` of a volume.
pub fn lookup(master: &str, vid: u32) -> (Vec<String>, BTreeMap<String, Vec<u8>>) {
    let (_, v) = get_json(master, &format!("/dir/lookup?volumeId={vid}"));
    let ec: BTreeMap<String, Vec<u8>> = v["ecLocations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let shards = l["ecShards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap() as u8)
                .collect();
            (l["url"].as_str().unwrap().to_string(), shards)
        })
        .collect();
    let normal = v["locations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|l| l.get("ecShards").is_none())
        .map(|l| l["url"].as_str().unwrap().to_string())
        .collect();
    (normal, ec)
}

/// Shards of `vid` each live server says it holds (asked directly, not the master).
pub fn shards_on(servers: &[String], vid: u32) -> BTreeMap<String, Vec<u8>> {
    servers
        .iter()
        .filter_map(|s| {
            let r = http("GET", s, &format!("/admin/ec/info?volume={vid}"), b"").ok()?;
            (r.status == 200).then(|| {
                let ids = r.json()["shards"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["id"].as_u64().unwrap() as u8)
                    .collect();
                (s.clone(), ids)
            })
        })
        .collect()
}

/// Reads every needle through `server_of(vid)`; deleted ones must be 404.
pub fn read_all(
    stored: &[Stored],
    deleted: &BTreeSet<String>,
    server_of: impl Fn(u32) -> String,
    what: &str,
) {
    for s in stored {
        let url = server_of(s.vid);
        let r = http("GET", &url, &format!("/{}", s.fid), b"")
            .unwrap_or_else(|e| panic!("{what}: GET {} on {url}: {e}", s.fid));
        if deleted.contains(&s.fid) {
            assert_eq!(r.status, 404, "{what}: deleted {} is still served", s.fid);
            continue;
        }
        assert_eq!(
            r.status,
            200,
            "{what}: GET {} on {url}: {}",
            s.fid,
            r.text()
        );
        assert!(
            r.body == s.data,
            "{what}: {} on {url} differs ({} bytes, want {})",
            s.fid,
            r.body.len(),
            s.data.len()
        );
    }
}

/// Deletes shard files of `vid` on `server` through `/admin/ec/delete-shards`.
pub fn delete_shards(server: &str, vid: u32, shards: &[u8]) {
    let ids: Vec<String> = shards.iter().map(u8::to_string).collect();
    let path = format!(
        "/admin/ec/delete-shards?volume={vid}&shards={}",
        ids.join(",")
    );
    let r = http("POST", server, &path, b"").unwrap();
    assert_eq!(r.status, 200, "{server}{path}: {}", r.text());
}
