//! Crash safety: concurrent writers, `kill -9` of the volume server mid-stream,
//! restart: every acknowledged write reads back byte-exact, nothing torn is served.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// The bytes of needle `key`: its length and content both follow from the key.
fn content(key: u64) -> Vec<u8> {
    let len = match key % 7 {
        0 => 1,
        1 => 300_000,
        _ => (key.wrapping_mul(7919) % 40_000) as usize + 10,
    };
    (0..len)
        .map(|i| (key as usize).wrapping_mul(31).wrapping_add(i * 7) as u8)
        .collect()
}

fn fid(key: u64) -> String {
    format!("/1,{key:x}1234abcd")
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut c = cluster().masters(0).volumes(&[("", 1)]).start();
    let addr = c.volumes[0].addr.clone();
    let vol = &mut c.volumes[0].proc;
    assert_eq!(
        http("POST", &addr, "/admin/volume/allocate?volume=1", b"")
            .unwrap()
            .status,
        200
    );

    let acked: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
    let attempted: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
    for round in 0..3u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..8u64)
            .map(|w| {
                let (acked, attempted, stop, addr) =
                    (acked.clone(), attempted.clone(), stop.clone(), addr.clone());
                std::thread::spawn(move || {
                    let mut i = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = (round << 40) | (w << 32) | i;
                        i += 1;
                        attempted.lock().unwrap().push(key);
                        let path = if key.is_multiple_of(5) {
                            format!("{}?fsync=true", fid(key))
                        } else {
                            fid(key)
                        };
                        match http("PUT", &addr, &path, &content(key)) {
                            Ok(r) if r.status == 201 => acked.lock().unwrap().push(key),
                            Ok(r) => panic!("write {key:x} answered {}: {}", r.status, r.text()),
                            Err(_) => return, // the server died under us
                        }
                    }
                })
            })
            .collect();
        let target = acked.lock().unwrap().len() + 300;
        wait_until("writes before the kill", Duration::from_secs(60), || {
            acked.lock().unwrap().len() >= target
        });
        vol.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        vol.restart();
        vol.wait_http_ok(&addr, "/status", Duration::from_secs(30));

        let acked_now = acked.lock().unwrap().clone();
        for key in &acked_now {
            let r = http("GET", &addr, &fid(*key), b"").unwrap();
            assert_eq!(
                r.status, 200,
                "acknowledged write {key:x} lost after kill -9 in round {round}"
            );
            assert!(
                r.body == content(*key),
                "acknowledged write {key:x} corrupt after kill -9"
            );
        }
        // Writes that were in flight: either absent or whole, never torn.
        let unacked: Vec<u64> = attempted
            .lock()
            .unwrap()
            .iter()
            .filter(|k| !acked_now.contains(k))
            .copied()
            .collect();
        for key in unacked {
            let r = http("GET", &addr, &fid(key), b"").unwrap();
            match r.status {
                404 => {}
                200 => assert!(
                    r.body == content(key),
                    "unacknowledged write {key:x} served torn"
                ),
                s => panic!(
                    "unexpected status {s} for in-flight write {key:x}: {}",
                    r.text()
                ),
            }
        }
        println!(
            "round {round}: {} acknowledged writes intact",
            acked_now.len()
        );
    }
    // The volume still takes writes after three crashes.
    assert_eq!(
        http("PUT", &addr, &fid(0xabc), b"after").unwrap().status,
        201
    );
}
