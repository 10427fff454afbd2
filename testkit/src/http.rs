//! The one HTTP client of the tests: a minimal blocking HTTP/1.1 request per connection
//! (no dependencies, nothing hidden: no retries, no redirects, no pooling), and `curl` for
//! tests that drive the servers the way a user would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// `method path` on `addr` with an empty header list: see [`http_with`].
pub fn http(method: &str, addr: &str, path: &str, body: &[u8]) -> std::io::Result<HttpReply> {
    http_with(method, addr, path, &[], body)
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`, `Content-Length`
/// always sent) with extra `headers`; returns status, headers (lower-cased names) and
/// the body (de-chunked).
///
/// A server may answer (say 413) and close before it has read a large body: a failed
/// body write is then not an error if a whole reply comes back. A reply cut short is
/// always an error.
pub fn http_with(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpReply> {
    let sock: SocketAddr = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
    })?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    let write_err = s.write_all(body).err();
    let mut raw = Vec::new();
    let read_err = s.read_to_end(&mut raw).err();
    let head_only = method.eq_ignore_ascii_case("HEAD");
    match (HttpReply::parse(&raw, head_only), write_err.or(read_err)) {
        (Ok(reply), None) => Ok(reply),
        (Ok(reply), Some(_)) if reply.complete => Ok(reply),
        (_, Some(e)) => Err(e),
        (Err(e), None) => Err(e),
    }
}

/// `GET path` with the admin token of this test process's security setup (none when
/// the test installed none): what the cluster helpers poll status pages with.
pub fn admin_get(addr: &str, path: &str) -> std::io::Result<HttpReply> {
    match kelp_proto::security::current().admin_token() {
        Some(t) => {
            let bearer = format!("Bearer {t}");
            http_with("GET", addr, path, &[("Authorization", &bearer)], b"")
        }
        None => http("GET", addr, path, b""),
    }
}

/// A reply read by [`http_with`].
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The whole body arrived (as long as `Content-Length` says, or the last chunk).
    complete: bool,
}

impl HttpReply {
    fn parse(raw: &[u8], head_only: bool) -> std::io::Result<HttpReply> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("no header end"))?;
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        let mut lines = head.lines();
        let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut reply = HttpReply {
            status,
            headers,
            body: raw[end + 4..].to_vec(),
            complete: true,
        };
        if head_only || status < 200 || status == 204 || status == 304 {
            return Ok(reply);
        }
        let chunked = reply
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if chunked {
            reply.body = dechunk(&reply.body).ok_or_else(|| bad("bad chunked body"))?;
        } else if let Some(len) = reply.header("content-length") {
            let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
            reply.complete = reply.body.len() >= len;
        } else {
            // Delimited by the close: only a clean end of stream says it is whole.
            reply.complete = false;
        }
        Ok(reply)
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", self.text()))
    }
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// GETs `path` on `addr` and parses the JSON body (`Null` if it is not JSON); panics on
/// transport errors.
pub fn get_json(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let r = http("GET", addr, path, b"").unwrap_or_else(|e| panic!("GET {addr}{path}: {e}"));
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, v)
}

/// Runs `curl -s -S <args>` and returns (HTTP status, body); panics if curl is missing or
/// fails at the transport level.
pub fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-S", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "curl {args:?} failed: status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let body = out.stdout;
    let nl = body
        .iter()
        .rposition(|b| *b == b'\n')
        .expect("curl -w writes the status after a newline");
    let status = String::from_utf8_lossy(&body[nl + 1..])
        .trim()
        .parse()
        .expect("curl -w %{http_code} is a number");
    (status, body[..nl].to_vec())
}
