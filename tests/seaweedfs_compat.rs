//! A volume directory written by SeaweedFS 4.48 (`volume/tests/fixtures/seaweedfs-4.48`,
//! made by the script beside it) served by `kelp volume`: every file reads back over
//! HTTP byte-exact with SeaweedFS's ETag; the deleted one is gone.

mod common;

use std::path::Path;

use common::*;
use sha2::{Digest, Sha256};

#[test]
fn kelp_serves_a_seaweedfs_volume_directory() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("volume/tests/fixtures/seaweedfs-4.48");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.join("manifest.json")).unwrap()).unwrap();
    let volume = cluster().masters(0).volumes(&[("", 1)]);
    let data = volume.volume_dir(0);
    std::fs::create_dir_all(&data).unwrap();
    for f in ["1.dat", "1.idx", "1.vif"] {
        std::fs::copy(fixture.join(f), data.join(f)).unwrap();
    }
    let c = volume.start();
    let addr = c.volumes[0].addr.clone();

    let files = manifest["files"].as_array().unwrap();
    let mut live = 0;
    for f in files {
        let fid = f["fid"].as_str().unwrap();
        let r = http("GET", &addr, &format!("/{fid}"), b"").unwrap();
        if f["deleted"] == true {
            assert_eq!(r.status, 404, "{fid} was deleted by SeaweedFS");
            continue;
        }
        assert_eq!(r.status, 200, "{fid}: {}", r.text());
        let sha = format!("{:x}", Sha256::digest(&r.body));
        assert_eq!(
            sha,
            f["sha256"].as_str().unwrap(),
            "{fid} ({}) bytes differ",
            f["file"]
        );
        assert_eq!(
            r.header("etag").unwrap().trim_matches('"'),
            f["etag"].as_str().unwrap(),
            "{fid} ETag differs"
        );
        if let Some(mime) = f["mime"].as_str().filter(|m| !m.is_empty()) {
            assert_eq!(r.header("content-type"), Some(mime), "{fid}");
        }
        live += 1;
    }
    assert!(live >= 15, "only {live} live files in the fixture");
    // The SeaweedFS volume takes new writes from kelp too.
    let r = http("PUT", &addr, "/1,ff00000000aabbccdd", b"written by kelp").unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
}
