//! The `kelp` command line: help lists every flag, bad flags exit 2 with one sentence.

mod common;

use common::run_kelp;

fn help_of(cmd: &str) -> String {
    let (code, out, err) = run_kelp(&[cmd, "-h"]);
    assert_eq!(code, 0, "kelp {cmd} -h failed: {err}");
    out
}

#[test]
fn top_level_help_lists_every_command() {
    for args in [&["--help"][..], &["-h"][..]] {
        let (code, out, _) = run_kelp(args);
        assert_eq!(code, 0);
        for cmd in [
            "server",
            "master",
            "volume",
            "filer",
            "shell",
            "benchmark",
            "filer.copy.meta",
            "filer.meta.tail",
            "filer.backup",
            "scaffold",
            "version",
        ] {
            assert!(out.contains(cmd), "{cmd} missing from:\n{out}");
        }
    }
}

#[test]
fn each_command_lists_its_design_flags_with_defaults() {
    let expect: &[(&str, &[&str])] = &[
        (
            "server",
            &[
                "--dir",
                "--ip",
                "--master.port",
                "--master.peers",
                "--volume.port",
                "--volume.max",
                "--filer.port",
                "--s3.port",
                "--s3.config",
                "--dataCenter",
                "--rack",
                "--volumeSizeLimitMB",
                "--defaultReplication",
                "--filer",
                "--s3",
            ],
        ),
        (
            "master",
            &[
                "--ip",
                "--port",
                "--mdir",
                "--peers",
                "--volumeSizeLimitMB",
                "--defaultReplication",
                "--garbageThreshold",
            ],
        ),
        (
            "volume",
            &[
                "--ip",
                "--port",
                "--dir",
                "--max",
                "--mserver",
                "--dataCenter",
                "--rack",
                "--publicUrl",
            ],
        ),
        (
            "filer",
            &[
                "--ip",
                "--port",
                "--master",
                "--store",
                "--s3",
                "--s3.port",
                "--s3.config",
                "--maxMB",
            ],
        ),
        ("shell", &["--master"]),
        (
            "benchmark",
            &[
                "--master",
                "--n",
                "--c",
                "--size",
                "--replication",
                "--collection",
                "--upload",
                "--serverPid",
                "--s3.payload",
                "--s3.accessKey",
            ],
        ),
    ];
    for (cmd, flags) in expect {
        let help = help_of(cmd);
        for flag in *flags {
            assert!(
                help.lines().any(|l| {
                    let l = l.trim();
                    l.strip_prefix(*flag)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '[']))
                }),
                "kelp {cmd} -h does not list {flag}:\n{help}"
            );
        }
    }
    assert!(help_of("master").contains("[default: 9333]"));
    assert!(help_of("server").contains("[default: 8333]"));
    assert!(help_of("volume").contains("[default: 8080]"));
}

#[test]
fn unknown_flag_exits_2_with_one_sentence() {
    let (code, out, err) = run_kelp(&["master", "-bogus=1"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("unknown flag -bogus"), "{err}");
}

#[test]
fn bad_values_exit_2_with_one_sentence() {
    for args in [
        &["master", "-port=notaport"][..],
        &["master", "--port", "99999"][..],
        &["volume", "-fsync=maybe"][..],
        &["filer", "-store", "leveldb"][..],
        &["bogus-command"][..],
        &[][..],
    ] {
        let (code, _, err) = run_kelp(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("kelp"), "{err}");
    }
}

#[test]
fn all_flag_spellings_are_accepted() {
    // `kelp shell` reads commands from stdin; with none it exits at once. The point
    // here is that the parser accepts each spelling (exit code is not 2).
    for args in [
        &["shell", "-master=127.0.0.1:1"][..],
        &["shell", "--master=127.0.0.1:1"][..],
        &["shell", "-master", "127.0.0.1:1"][..],
        &["shell", "--master", "127.0.0.1:1"][..],
    ] {
        let (code, _, err) = run_kelp(args);
        assert_ne!(code, 2, "{args:?} refused: {err}");
    }
}

#[test]
fn version_prints_the_version() {
    let (code, out, _) = run_kelp(&["version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("kelp "), "{out}");
}

#[test]
fn a_repeated_flag_overrides_the_earlier_one() {
    // As with Go's flag package (and so SeaweedFS): the last value wins.
    let out = std::process::Command::new(common::kelp_bin())
        .args(["master", "-port=1", "-port=2"])
        .env("KELP_CHECK_FLAGS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `-logFormat=json`: every log line of a running server is one JSON object.
#[test]
fn json_logs_are_one_object_per_line() {
    let dir = common::scratch();
    let mut ports = common::reserve_ports(1);
    let (addr, port) = (ports.addr(0), ports.port(0));
    ports.release(port);
    let args = [
        "master".to_string(),
        "-logFormat=json".into(),
        "-ip=127.0.0.1".into(),
        format!("-port={port}"),
        format!("-mdir={}", dir.path().join("m").display()),
    ];
    let mut p = common::start_kelp("master", dir.path(), &args);
    p.wait_http_ok(&addr, "/cluster/status", common::READY);
    p.terminate(common::READY);
    let log = p.log();
    // The log holds stdout too, where servers print their addresses ("master: http://…").
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains(": http://"))
        .collect();
    assert!(!lines.is_empty(), "no log lines");
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
        for k in ["ts", "level", "target"] {
            assert!(v.get(k).is_some(), "{k} missing: {l}");
        }
    }
    let (code, _, err) = run_kelp(&["master", "-logFormat=xml"]);
    assert_eq!(code, 2, "{err}");
}
