//! The kelp S3 gateway: the S3 REST API (parsed, signed and routed by `s3s`) served over
//! the filer's namespace. Buckets are directories `/buckets/<name>`, objects are files
//! below them, multipart parts are files under `/buckets/<name>/.uploads/<uploadId>/`.
//! See `docs/s3.md` for what is supported and how clients are set up.

mod access;
mod acl;
mod attributes;
mod auth;
mod body;
mod bucket;
mod checksum;
mod chunked;
mod conditional;
mod copy;
mod cors;
mod delete;
mod error;
mod gateway;
mod keys;
mod lifecycle;
mod list;
mod meta;
mod multipart;
mod object;
mod opname;
mod ownership;
mod policy;
mod range;
mod retention;
mod server;
mod settings;
mod sigv4;
pub mod sse;
mod versions;
mod vhost;
mod walk;

use std::path::PathBuf;

pub use auth::Identities;
#[doc(hidden)]
pub use chunked::decode_all as decode_aws_chunked;
pub use error::GatewayError;
pub use server::{serve, serve_with_identities};

/// How the S3 gateway presents itself.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// SeaweedFS-style `s3.json` identities file. Without one (and without the
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` environment variables) the gateway is
    /// open: any key, or none, is accepted.
    pub identities_file: Option<PathBuf>,
    /// The filer directory holding one directory per bucket (`/buckets`).
    pub buckets_dir: String,
    /// The region reported by GetBucketLocation and HeadBucket (`us-east-1`).
    pub region: String,
    /// Refuse requests signed for any other region than `region` (`-s3.region`);
    /// otherwise any region name is accepted, `US` and `EU` included.
    pub pin_region: bool,
    /// Domains for virtual-hosted-style requests (`<bucket>.<domain>`); path style
    /// always works. Empty: path style only.
    pub domains: Vec<String>,
    /// Idle timeout and connection cap of the S3 listener.
    pub limits: kelp_proto::server::Limits,
    /// HTTPS for the S3 listener (`-s3.cert.file`/`-s3.key.file`); without it the
    /// security file's `[https]` (role `s3`) applies, if any.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// The key file of SSE-S3 and SSE-KMS master keys (`-s3.keyFile`), created with
    /// fresh keys on first start. `None`: those requests are refused.
    pub key_file: Option<PathBuf>,
    /// Accept SSE-C over plain HTTP (`-s3.allowInsecureSSE`), for TLS ended in front.
    pub allow_insecure_sse: bool,
    /// Seconds in a lifecycle-rule day, and between lifecycle runs (86400; tests
    /// shorten it, as Ceph's `rgw_lc_debug_interval`).
    pub lifecycle_day_secs: u64,
    /// Failpoint for tests: abort the process once a fresh lifecycle run has expired
    /// this many objects (its next run resumes from the checkpoint).
    pub lifecycle_crash_after: Option<u64>,
}

impl S3Config {
    /// Documented default of `-s3.port`.
    pub const DEFAULT_PORT: u16 = 8333;

    /// Checks what can be checked before serving (the domain names).
    pub fn validate(&self) -> Result<(), String> {
        vhost::Domains::new(&self.domains).map(|_| ())
    }
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            identities_file: None,
            buckets_dir: "/buckets".into(),
            region: "us-east-1".into(),
            pin_region: false,
            domains: Vec::new(),
            limits: kelp_proto::server::Limits::default(),
            tls: None,
            key_file: None,
            allow_insecure_sse: false,
            lifecycle_day_secs: 86_400,
            lifecycle_crash_after: None,
        }
    }
}
