//! Every kelp command line in `docker-compose.yml` and `k8s/` is accepted by the real
//! CLI parser, so the packaging cannot drift from the flags; and every server there
//! gets the cluster's signing key.

mod common;

use std::path::Path;
use std::process::Command;

/// The `command: [...]` / `args: [...]` arrays of a file (written as JSON arrays).
fn command_lines(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("command:")
                .or_else(|| l.strip_prefix("args:"))?;
            serde_json::from_str::<Vec<String>>(rest.trim()).ok()
        })
        .collect()
}

#[test]
fn packaged_command_lines_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("docker-compose.yml")];
    for e in std::fs::read_dir(root.join("k8s")).unwrap() {
        files.push(e.unwrap().path());
    }
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines = command_lines(&text);
        if text.contains("kind: Secret") {
            continue;
        }
        assert!(!lines.is_empty(), "{} has no command lines", f.display());
        // Every server gets the cluster's signing key: none runs open on the network.
        let keyed = text.matches("KELP_JWT_SIGNING_KEY, valueFrom").count()
            + text.matches("<<: *kelp-security").count()
            + text.matches("environment: *kelp-security").count();
        assert_eq!(
            keyed,
            lines.len(),
            "{}: every server needs KELP_JWT_SIGNING_KEY",
            f.display()
        );
        for args in lines {
            let out = Command::new(common::kelp_bin())
                .args(&args)
                .env("KELP_CHECK_FLAGS", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: `kelp {}` is refused: {}",
                f.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 9, "only {checked} command lines found");
    // The parser does refuse what is wrong (the check is not a rubber stamp).
    let out = Command::new(common::kelp_bin())
        .args(["master", "-nope=1"])
        .env("KELP_CHECK_FLAGS", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
