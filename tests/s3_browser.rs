//! Bucket CORS in a real browser: a page served from one origin (a small server in
//! this test) fetches and uploads objects of a kelp bucket on another origin with
//! headless Chromium; it works with a CORS rule and is blocked by the browser without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;

/// Serves one page on 127.0.0.1 until dropped.
struct PageServer {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PageServer {
    fn start(html: String) -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut s) = stream else { continue };
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                // Read the request head; the page has no body to receive.
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{html}",
                    html.len()
                );
            }
        });
        PageServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Loads `url` in headless Chromium, lets its scripts run, and returns the DOM.
fn browse(url: &str) -> String {
    let profile = scratch();
    let mut child = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium must be installed (.ci/run installs it)");
    let mut out = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let exited = poll_until(Duration::from_secs(60), || {
        child.try_wait().ok().flatten().is_some()
    });
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromium did not finish loading {url}");
    }
    out.push_str(&reader.join().unwrap());
    out
}

#[test]
fn a_page_on_another_origin_reads_and_writes_a_bucket_only_with_a_cors_rule() {
    let c = cluster().servers(&[("", 1)]).filer(true).s3(true).start();
    let s3 = c.s3_addr().to_string();
    let r = http("PUT", &s3, "/web-bucket", b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http("PUT", &s3, "/web-bucket/hello.txt", b"hello from kelp").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    let page = format!(
        r#"<!doctype html><html><head><title>cors</title></head><body>waiting<script>
async function run() {{
  const out = [];
  try {{
    const r = await fetch("http://{s3}/web-bucket/hello.txt");
    out.push("get:" + r.status + ":" + (await r.text()));
  }} catch (e) {{ out.push("get:blocked"); }}
  try {{
    const r = await fetch("http://{s3}/web-bucket/from-page.txt",
      {{method: "PUT", body: "written by the page", headers: {{"Content-Type": "text/plain"}}}});
    out.push("put:" + r.status);
  }} catch (e) {{ out.push("put:blocked"); }}
  document.body.textContent = "result " + out.join(" ");
}}
run();
</script></body></html>"#
    );
    let server = PageServer::start(page);
    let page_url = format!("http://{}/", server.addr);

    // Without a rule the browser blocks both calls (the PUT at its preflight).
    let dom = browse(&page_url);
    assert!(dom.contains("result get:blocked put:blocked"), "{dom}");
    let r = http("GET", &s3, "/web-bucket/from-page.txt", b"").unwrap();
    assert_eq!(r.status, 404, "the blocked PUT must not have been sent");

    let rule = format!(
        "<CORSConfiguration><CORSRule><AllowedOrigin>http://{}</AllowedOrigin>\
         <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>\
         <AllowedHeader>*</AllowedHeader></CORSRule></CORSConfiguration>",
        server.addr
    );
    let r = http("PUT", &s3, "/web-bucket?cors", rule.as_bytes()).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    let dom = browse(&page_url);
    assert!(
        dom.contains("result get:200:hello from kelp put:200"),
        "{dom}"
    );
    let r = http("GET", &s3, "/web-bucket/from-page.txt", b"").unwrap();
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"written by the page"[..])
    );
}
