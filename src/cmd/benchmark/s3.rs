//! The S3 phases of `kelp benchmark`: PUT and GET of objects, unsigned, or signed with
//! SigV4 (header auth) over a signed payload or `UNSIGNED-PAYLOAD`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2_11::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How S3 requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Payload {
    /// SigV4 with `x-amz-content-sha256` = the body's SHA-256.
    Signed,
    /// SigV4 with `x-amz-content-sha256: UNSIGNED-PAYLOAD`.
    Unsigned,
    /// No signature at all (an open gateway).
    Anonymous,
}

/// Signs requests with one access key, in region `us-east-1`.
#[derive(Debug, Clone)]
pub struct Signer {
    access_key: String,
    secret_key: String,
    payload: Payload,
}

/// The headers a signed request carries.
pub struct SignedHeaders {
    pub authorization: String,
    pub amz_date: String,
    pub content_sha256: String,
}

const REGION: &str = "us-east-1";

impl Signer {
    pub fn new(access_key: &str, secret_key: &str, payload: Payload) -> Signer {
        Signer {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            payload,
        }
    }

    /// The headers for `method` on `path` (already URI-safe: bucket and key names of
    /// the benchmark need no escaping) to `host`, with a body of SHA-256 `body_sha256`
    /// (hex; bodies of a phase are all the same, so the caller hashes once). `None`
    /// for anonymous requests.
    pub fn sign(
        &self,
        method: &str,
        host: &str,
        path: &str,
        body_sha256: &str,
    ) -> Option<SignedHeaders> {
        let content_sha256 = match self.payload {
            Payload::Anonymous => return None,
            Payload::Unsigned => "UNSIGNED-PAYLOAD".to_string(),
            Payload::Signed => body_sha256.to_string(),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let amz_date = amz_date(now);
        let date = &amz_date[..8];
        let canonical = format!(
            "{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{content_sha256}\n\
             x-amz-date:{amz_date}\n\nhost;x-amz-content-sha256;x-amz-date\n{content_sha256}"
        );
        let scope = format!("{date}/{REGION}/s3/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(
            format!("AWS4{}", self.secret_key).as_bytes(),
            date.as_bytes(),
        );
        for part in [REGION, "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex(&hmac(&key, to_sign.as_bytes()));
        Some(SignedHeaders {
            authorization: format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, \
                 SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}",
                self.access_key
            ),
            amz_date,
            content_sha256,
        })
    }
}

/// Writes and reads objects of the bucket `kelp-benchmark` through an S3 gateway.
pub(super) async fn benchmark(
    args: &super::Args,
    http: reqwest::Client,
    cpu: &super::cpu::ServerCpu,
) -> anyhow::Result<()> {
    let host = args
        .s3
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let root = kelp_proto::client::base_url(&args.s3);
    let signer = Arc::new(Signer::new(
        &args.s3_access_key,
        &args.s3_secret_key,
        args.s3_payload,
    ));
    let body_sha = Arc::new(sha256_hex(&vec![7u8; args.size]));
    let empty_sha = Arc::new(sha256_hex(b""));
    let base = format!("{root}/kelp-benchmark");
    let mut create = http.put(&base).header("Content-Length", "0");
    if let Some(h) = signer.sign("PUT", &host, "/kelp-benchmark", &empty_sha) {
        create = create
            .header("Authorization", h.authorization)
            .header("x-amz-date", h.amz_date)
            .header("x-amz-content-sha256", h.content_sha256);
    }
    let resp = create.send().await?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() && !text.contains("BucketAlreadyOwnedByYou") {
        anyhow::bail!("creating the bucket answered {status}: {text}");
    }
    let authorize: super::Authorizer = {
        let (root, host) = (root.clone(), host.clone());
        let sse = args.s3_sse.clone();
        Arc::new(move |rb: reqwest::RequestBuilder, write: bool, url: &str| {
            let path = url.strip_prefix(root.as_str()).unwrap_or(url);
            let rb = if write && !sse.is_empty() {
                rb.header("x-amz-server-side-encryption", sse.as_str())
            } else {
                rb
            };
            let (method, sha) = if write {
                ("PUT", body_sha.as_str())
            } else {
                ("GET", empty_sha.as_str())
            };
            match signer.sign(method, &host, path, sha) {
                Some(h) => rb
                    .header("Authorization", h.authorization)
                    .header("x-amz-date", h.amz_date)
                    .header("x-amz-content-sha256", h.content_sha256),
                None => rb,
            }
        })
    };
    super::put_get_phases(
        args,
        &http,
        &base,
        ["s3 put", "s3 random get"],
        cpu,
        authorize,
    )
    .await
}

/// Hex SHA-256 of a body.
pub fn sha256_hex(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `YYYYMMDDTHHMMSSZ` of a Unix time (UTC).
fn amz_date(unix: u64) -> String {
    let (y, mo, d, h, mi, s) = kelp_proto::civil::utc(unix as i64);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_date(1_709_210_096), "20240229T123456Z");
    }

    #[test]
    fn anonymous_signs_nothing() {
        let s = Signer::new("a", "b", Payload::Anonymous);
        assert!(s.sign("GET", "h", "/b/k", "").is_none());
        let s = Signer::new("a", "b", Payload::Unsigned);
        let h = s.sign("GET", "h", "/b/k", "").unwrap();
        assert_eq!(h.content_sha256, "UNSIGNED-PAYLOAD");
        assert!(
            h.authorization
                .starts_with("AWS4-HMAC-SHA256 Credential=a/")
        );
    }
}
