//! SigV4 header signatures whose credential scope names a region the S3 library
//! refuses after checking the signature (it allows only `[a-z0-9-]`): s3cmd signs with
//! `US` by default, old clients with `EU`. Such a request is verified here, with the
//! region the client used (canonical request, string to sign and the HMAC-SHA-256 key
//! chain of AWS's SigV4, from RustCrypto's `hmac` and `sha2`), its body checked against
//! the signed `x-amz-content-sha256`, and then served as the verified caller by the
//! gateway service that does not check signatures again (as [`crate::range`] does).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http::HeaderMap;
use http::header::AUTHORIZATION;
use sha2_11::{Digest, Sha256};

use crate::meta::{hex, unhex};

type HmacSha256 = hmac::Hmac<Sha256>;

/// How far a request's `x-amz-date` may be from now, as in S3.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    pub access_key: String,
    date: String,
    pub region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

/// The signature of a request whose scope region s3s would refuse; `None` for every
/// other request (s3s checks those itself).
pub(crate) fn foreign_region(headers: &HeaderMap) -> Option<Signed> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let rest = v.strip_prefix("AWS4-HMAC-SHA256")?.trim();
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, val) = part.trim().split_once('=')?;
        match k.trim() {
            "Credential" => cred = Some(val.trim()),
            "SignedHeaders" => signed = Some(val.trim()),
            "Signature" => sig = Some(val.trim()),
            _ => {}
        }
    }
    let mut scope = cred?.splitn(5, '/');
    let (access_key, date, region, service, terminator) = (
        scope.next()?,
        scope.next()?,
        scope.next()?,
        scope.next()?,
        scope.next()?,
    );
    let s3s_accepts = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if s3s_accepts || terminator != "aws4_request" {
        return None;
    }
    Some(Signed {
        access_key: access_key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed?.split(';').map(str::to_ascii_lowercase).collect(),
        signature: sig?.to_ascii_lowercase(),
    })
}

/// The region a SigV4 request is signed for (header or presigned query).
pub(crate) fn scope_region<B>(req: &http::Request<B>) -> Option<String> {
    let from_header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .map(str::to_string);
    let from_query = || {
        req.uri().query()?.split('&').find_map(|kv| {
            let v = kv.strip_prefix("X-Amz-Credential=")?;
            Some(
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
    };
    let cred = from_header.or_else(from_query)?;
    cred.split(['/', ',']).nth(2).map(|r| r.trim().to_string())
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// AWS's URI encoding: everything but unreserved characters as `%XX` (upper case).
fn aws_encode(s: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

fn canonical_query(query: &str) -> String {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (aws_encode(&decode(k)), aws_encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Checks the request's signature with `secret`; `now` in Unix seconds.
pub(crate) fn verify(
    s: &Signed,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    secret: &str,
    now: i64,
) -> Result<(), String> {
    let text = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let amz_date = text("x-amz-date").ok_or("the request has no x-amz-date")?;
    if !amz_date.starts_with(&s.date) {
        return Err("x-amz-date and the credential scope name different days".into());
    }
    let when = time::PrimitiveDateTime::parse(
        amz_date,
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .map_err(|_| "x-amz-date is not a date")?
    .assume_utc()
    .unix_timestamp();
    if (when - now).abs() > MAX_SKEW_SECS {
        return Err("the request time is too far from the server's".into());
    }
    let payload = text("x-amz-content-sha256").ok_or("the request has no x-amz-content-sha256")?;
    if payload.starts_with("STREAMING-") {
        return Err(format!(
            "streaming uploads signed for the region {:?} are not supported: sign with a \
             lower-case region such as us-east-1",
            s.region
        ));
    }
    if !s.signed_headers.iter().any(|h| h == "host") {
        return Err("the host header must be signed".into());
    }
    let mut canonical_headers = String::new();
    for name in &s.signed_headers {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(format!("the signed header {name} is missing"));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.as_str(),
        uri.path(),
        canonical_query(uri.query().unwrap_or("")),
        canonical_headers,
        s.signed_headers.join(";"),
        payload
    );
    let scope = format!("{}/{}/{}/aws4_request", s.date, s.region, s.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), s.date.as_bytes());
    for part in [s.region.as_str(), s.service.as_str(), "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(to_sign.as_bytes());
    let given = unhex(&s.signature).unwrap_or_default();
    // Constant-time comparison.
    m.verify_slice(&given).map_err(|_| {
        "The request signature we calculated does not match the signature you provided".to_string()
    })
}

/// A body that must hash to the signed `x-amz-content-sha256`; ends with an error if
/// it does not (so nothing is stored).
pub(crate) struct Sha256Checked<B> {
    inner: B,
    want: Option<[u8; 32]>,
    hasher: Sha256,
}

impl<B> Sha256Checked<B> {
    /// `want`: the signed hex digest (`None` for `UNSIGNED-PAYLOAD`).
    pub fn new(inner: B, want: &str) -> Sha256Checked<B> {
        let want = unhex(want).and_then(|w| <[u8; 32]>::try_from(w).ok());
        Sha256Checked {
            inner,
            want,
            hasher: Sha256::new(),
        }
    }
}

impl<B> http_body::Body for Sha256Checked<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    let d = d.clone();
                    self.hasher.update(&d);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                let got: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
                match self.want {
                    Some(w) if w != got => Poll::Ready(Some(Err(
                        "the body does not match x-amz-content-sha256".into(),
                    ))),
                    _ => Poll::Ready(None),
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of AWS's SigV4 documentation for S3 (GET Object with a Range), with
    /// its region changed to `US` and the signature recomputed by an independent
    /// implementation (Python's hmac/hashlib).
    #[test]
    fn verifies_a_known_signature_and_refuses_a_changed_one() {
        let mut h = HeaderMap::new();
        h.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        h.insert("range", "bytes=0-9".parse().unwrap());
        h.insert(
            "x-amz-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse()
                .unwrap(),
        );
        h.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        h.insert(
            AUTHORIZATION,
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/US/s3/aws4_request, \
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature={}",
                SIG_US
            )
            .parse()
            .unwrap(),
        );
        let s = foreign_region(&h).expect("US is a foreign region");
        assert_eq!(s.region, "US");
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let uri: http::Uri = "/test.txt".parse().unwrap();
        let at = 1_369_353_600; // 2013-05-24T00:00:00Z
        verify(&s, &http::Method::GET, &uri, &h, secret, at).unwrap();
        assert!(verify(&s, &http::Method::GET, &uri, &h, "other", at).is_err());
        assert!(verify(&s, &http::Method::PUT, &uri, &h, secret, at).is_err());
        assert!(verify(&s, &http::Method::GET, &uri, &h, secret, at + 3600).is_err());
        // Lower-case regions are left to s3s.
        let mut lower = h.clone();
        let v = h[AUTHORIZATION]
            .to_str()
            .unwrap()
            .replace("/US/", "/us-east-1/");
        lower.insert(AUTHORIZATION, v.parse().unwrap());
        assert!(foreign_region(&lower).is_none());
        // The same code gives AWS's documented signature for us-east-1.
        let aws = Signed {
            region: "us-east-1".into(),
            signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41".into(),
            ..s
        };
        verify(&aws, &http::Method::GET, &uri, &h, secret, at).unwrap();
    }

    const SIG_US: &str = "69a9caf61f703f46a5babf7d21c73cc259290a74119bd2af24867b9e64ca802a";

    #[test]
    fn the_scope_region_comes_from_the_header_or_the_query() {
        let r = http::Request::builder()
            .uri("/b/k")
            .header(
                AUTHORIZATION,
                "AWS4-HMAC-SHA256 Credential=AK/20260101/EU/s3/aws4_request, SignedHeaders=host, Signature=00",
            )
            .body(())
            .unwrap();
        assert_eq!(scope_region(&r).as_deref(), Some("EU"));
        let r = http::Request::builder()
            .uri("/b/k?X-Amz-Credential=AK%2F20260101%2Fus-west-2%2Fs3%2Faws4_request&X-Amz-Signature=00")
            .body(())
            .unwrap();
        assert_eq!(scope_region(&r).as_deref(), Some("us-west-2"));
        let r = http::Request::builder().uri("/b/k").body(()).unwrap();
        assert_eq!(scope_region(&r), None);
    }

    #[test]
    fn query_strings_are_canonical() {
        assert_eq!(canonical_query("b=2&a=1&c"), "a=1&b=2&c=");
        assert_eq!(canonical_query("k=a%20b&x=%2F"), "k=a%20b&x=%2F");
        assert_eq!(canonical_query("k=a+b"), "k=a%2Bb");
    }
}
