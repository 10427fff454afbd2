//! The HTML pages in a real headless Chromium (Debian's, driven by playwright-core from
//! `tests/browser/ui.mjs`): the master's page shows every volume server of a 3-server
//! cluster; in the filer browser a folder is created, two files uploaded through the
//! form and listed, one downloaded byte-exact, one renamed and deleted. Screenshots of
//! each page are saved in the test's temp dir.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

#[test]
fn pages_in_chromium() {
    let c = cluster()
        .volumes(&[("r1", 2), ("r2", 1)])
        .filer(true)
        .start();
    let filer = c.filer_addr().to_string();
    let volumes: Vec<String> = c.volumes.iter().map(|v| v.addr.clone()).collect();
    // Every volume server has reported to the master before the page is read.
    poll_until(Duration::from_secs(30), || {
        let (_, topo) = get_json(c.master(), "/dir/status");
        let text = topo.to_string();
        volumes.iter().all(|v| text.contains(v.as_str()))
    })
    .expect("the volume servers never showed up in the topology");

    let out = c.root().join("screens");
    std::fs::create_dir_all(&out).unwrap();
    let download = c.root().join("downloaded.bin");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/ui.mjs");
    let run = std::process::Command::new("node")
        .arg(&script)
        .args([
            c.master(),
            &filer,
            &out.display().to_string(),
            &volumes.join(","),
            &download.display().to_string(),
        ])
        .output()
        .expect("node must be installed (.ci/run installs it and playwright-core)");
    assert!(
        run.status.success(),
        "the browser script failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );

    let want: Vec<u8> = (0..3000).map(|i| ((i * 7) % 251) as u8).collect();
    assert!(
        std::fs::read(&download).unwrap() == want,
        "the download differs"
    );
    for shot in ["master.png", "volume.png", "filer.png"] {
        let len = std::fs::metadata(out.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 1000, "no screenshot {shot}");
    }
    // What the browser did is what the REST API sees.
    assert_eq!(
        http("GET", &filer, "/photos/b.bin", b"").unwrap().body,
        want
    );
    assert_eq!(
        http("GET", &filer, "/photos/a.txt", b"").unwrap().status,
        404
    );
    assert_eq!(
        http("GET", &filer, "/photos/c.txt", b"").unwrap().status,
        404
    );
    if let Ok(dir) = std::env::var("KELP_SCREENSHOTS") {
        for shot in ["master.png", "volume.png", "filer.png"] {
            std::fs::copy(out.join(shot), std::path::Path::new(&dir).join(shot)).unwrap();
        }
    }
}

/// The forms refuse what the REST API refuses: a name with a slash, an unknown action.
#[test]
fn browser_forms_check_their_input() {
    let c = cluster().volumes(&[("", 1)]).filer(true).start();
    let filer = c.filer_addr().to_string();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = http_with("POST", &filer, "/?ui=mkdir", &form, b"name=a%2Fb").unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let r = http_with("POST", &filer, "/?ui=mkdir", &form, b"name=..").unwrap();
    assert_eq!(r.status, 400);
    let r = http_with("POST", &filer, "/?ui=explode", &form, b"").unwrap();
    assert_eq!(r.status, 400);
    let r = http_with("POST", &filer, "/?ui=mkdir", &form, b"name=ok").unwrap();
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/"));
    let page = http_with("GET", &filer, "/", &[("Accept", "text/html")], b"").unwrap();
    assert!(page.text().contains("ok/"), "{}", page.text());
    // A rename onto a path outside the directory is refused.
    let r = http_with("POST", &filer, "/ok?ui=rename", &form, b"to=..%2Fx").unwrap();
    assert_eq!(r.status, 400);
}
