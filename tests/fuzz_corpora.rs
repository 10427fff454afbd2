//! Replays the fuzz corpora as ordinary tests: every file under `fuzz/corpus/<target>/`
//! goes through the same body as the cargo-fuzz target `<target>` (`fuzz/src/lib.rs`, built
//! here as a module), so CI checks without a nightly toolchain or cargo-fuzz that no input
//! the fuzzers kept, crash reproducers included, panics a parser again.

#[path = "../fuzz/src/lib.rs"]
mod bodies;

use std::path::Path;

/// Feeds every file of `fuzz/corpus/<target>/` to `body`; the directory must not be empty.
fn replay(target: &str) {
    let (_, body) = bodies::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target named {target}"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
                .path()
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        body(&data);
    }
}

#[test]
fn every_target_has_a_test() {
    let names: Vec<_> = bodies::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "needle",
            "index",
            "ids",
            "filer_path",
            "aws_chunked",
            "s3_xml"
        ]
    );
}

#[test]
fn needle() {
    replay("needle");
}

#[test]
fn index() {
    replay("index");
}

#[test]
fn ids() {
    replay("ids");
}

#[test]
fn filer_path() {
    replay("filer_path");
}

#[test]
fn aws_chunked() {
    replay("aws_chunked");
}

#[test]
fn s3_xml() {
    replay("s3_xml");
}
