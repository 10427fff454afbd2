//! Server-side encryption of objects: what a request asks for (SSE-C headers, SSE-S3,
//! SSE-KMS, or the bucket's default), the data key that seals an object's chunks, what
//! is stored with the object to find that key again (never the key itself), and the
//! `x-amz-server-side-encryption*` headers a response carries. The chunk format is
//! the filer's `cipher`; see `docs/formats/encryption.md`.

mod bucket;
pub mod kms;

use std::sync::Arc;

use base64::Engine;
use hmac::{KeyInit, Mac};
use kelp_filer::cipher::ChunkKey;
use kelp_filer::entry::{Entry, SEALED_KEY};
use md5::{Digest, Md5};
use s3s::dto::ServerSideEncryption;

use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use kms::{DEFAULT_KMS_KEY, KmsError, SSE_S3_KEY};

/// The wrapped data key of an SSE-S3 or SSE-KMS object.
const WRAPPED_KEY: &str = "X-Kelp-S3-Sse-Key";
/// The KMS key that wrapped it.
const KMS_KEY: &str = "X-Kelp-S3-Sse-Kms-Key";
/// The SSE-KMS encryption context (canonical JSON), authenticated with the data key.
const CONTEXT_KEY: &str = "X-Kelp-S3-Sse-Context";
const BUCKET_KEY: &str = "X-Kelp-S3-Sse-Bucket-Key";
/// SSE-C: the object's random salt, and the keyed HMAC that recognises its key.
const SALT_KEY: &str = "X-Kelp-S3-Sse-C-Salt";
const CHECK_KEY: &str = "X-Kelp-S3-Sse-C-Check";

/// The values of [`SEALED_KEY`].
const AES256: &str = "AES256";
const KMS: &str = "aws:kms";
const CUSTOMER: &str = "SSE-C";

/// The attributes an encrypted object (or an upload in progress) carries.
const ATTRS: [&str; 7] = [
    SEALED_KEY,
    WRAPPED_KEY,
    KMS_KEY,
    CONTEXT_KEY,
    BUCKET_KEY,
    SALT_KEY,
    CHECK_KEY,
];

type HmacSha256 = hmac::Hmac<sha2_11::Sha256>;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A customer-provided key (SSE-C), checked against its MD5.
#[derive(Clone)]
pub struct CustomerKey {
    key: [u8; 32],
    md5: String,
}

impl CustomerKey {
    /// The key in a request's three `...-customer-algorithm/-key/-key-MD5` headers, if
    /// any; a partial or malformed set is InvalidArgument, as S3 answers.
    pub fn parse(
        algorithm: Option<&str>,
        key: Option<&str>,
        md5: Option<&str>,
    ) -> GatewayResult<Option<CustomerKey>> {
        let (algorithm, key) = match (algorithm, key) {
            (None, None) if md5.is_none() => return Ok(None),
            (Some(a), Some(k)) => (a, k),
            (None, _) => {
                return Err(GatewayError::InvalidArgument(
                    "requests specifying Server Side Encryption with Customer provided keys \
                     must provide a valid encryption algorithm"
                        .into(),
                ));
            }
            (Some(_), None) => {
                return Err(GatewayError::InvalidArgument(
                    "requests specifying Server Side Encryption with Customer provided keys \
                     must provide an appropriate secret key"
                        .into(),
                ));
            }
        };
        if algorithm != AES256 {
            return Err(GatewayError::InvalidArgument(format!(
                "the customer-provided key algorithm must be AES256, not {algorithm:?}"
            )));
        }
        let raw = b64().decode(key.trim()).ok();
        let Some(key) = raw.and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok()) else {
            return Err(GatewayError::InvalidArgument(
                "the secret key was invalid for the specified algorithm: AES256 takes 32 bytes \
                 in base64"
                    .into(),
            ));
        };
        let actual = b64().encode(Md5::digest(key));
        if let Some(m) = md5
            && m.trim() != actual
        {
            return Err(GatewayError::InvalidArgument(
                "the calculated MD5 hash of the key did not match the hash that was provided"
                    .into(),
            ));
        }
        Ok(Some(CustomerKey { key, md5: actual }))
    }

    fn mac(&self, label: &[u8], salt: &[u8]) -> [u8; 32] {
        // A 32-byte key is always a valid HMAC key.
        let Ok(mut m) = <HmacSha256 as KeyInit>::new_from_slice(&self.key) else {
            return [0; 32];
        };
        m.update(label);
        m.update(salt);
        m.finalize().into_bytes().into()
    }

    /// The object's data key: the customer key and the object's salt through HMAC.
    fn data_key(&self, salt: &[u8]) -> [u8; 32] {
        self.mac(b"kelp sse-c data key\0", salt)
    }

    /// What is stored to recognise this key later (a keyed HMAC, not the key).
    fn check(&self, salt: &[u8]) -> [u8; 32] {
        self.mac(b"kelp sse-c key check\0", salt)
    }
}

/// The encryption a write asks for.
#[derive(Clone)]
pub enum Wanted {
    Plain,
    S3,
    Kms {
        key_id: Option<String>,
        /// Base64 of a JSON object, as the request header carries it.
        context: Option<String>,
        bucket_key: bool,
    },
    Customer(CustomerKey),
}

/// The request fields that choose a write's encryption.
#[derive(Default)]
pub struct Asked<'a> {
    pub sse: Option<&'a ServerSideEncryption>,
    pub kms_key_id: Option<&'a str>,
    pub context: Option<&'a str>,
    pub bucket_key: Option<bool>,
    pub customer_algorithm: Option<&'a str>,
    pub customer_key: Option<&'a str>,
    pub customer_key_md5: Option<&'a str>,
}

/// The `x-amz-server-side-encryption*` values of a response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Echo {
    pub sse: Option<ServerSideEncryption>,
    pub kms_key_id: Option<String>,
    pub context: Option<String>,
    pub bucket_key: Option<bool>,
    pub customer_algorithm: Option<String>,
    pub customer_key_md5: Option<String>,
}

/// The [`Asked`] of an s3s input that carries all the SSE fields.
macro_rules! asked_of {
    ($i:expr) => {
        $crate::sse::Asked {
            sse: $i.server_side_encryption.as_ref(),
            kms_key_id: $i.ssekms_key_id.as_deref(),
            context: $i.ssekms_encryption_context.as_deref(),
            bucket_key: $i.bucket_key_enabled,
            customer_algorithm: $i.sse_customer_algorithm.as_deref(),
            customer_key: $i.sse_customer_key.as_deref(),
            customer_key_md5: $i.sse_customer_key_md5.as_deref(),
        }
    };
}
pub(crate) use asked_of;

/// The SSE-C key an s3s input carries (`copy_source_` fields: `customer_of!(i, copy)`).
macro_rules! customer_of {
    ($i:expr) => {
        $crate::sse::CustomerKey::parse(
            $i.sse_customer_algorithm.as_deref(),
            $i.sse_customer_key.as_deref(),
            $i.sse_customer_key_md5.as_deref(),
        )
    };
    ($i:expr, copy) => {
        $crate::sse::CustomerKey::parse(
            $i.copy_source_sse_customer_algorithm.as_deref(),
            $i.copy_source_sse_customer_key.as_deref(),
            $i.copy_source_sse_customer_key_md5.as_deref(),
        )
    };
}
pub(crate) use customer_of;

/// Fills the SSE fields of an s3s output struct from an [`Echo`].
macro_rules! echo_into {
    ($out:expr, $echo:expr) => {{
        let echo = $echo;
        $out.server_side_encryption = echo.sse.clone();
        $out.ssekms_key_id = echo.kms_key_id.clone();
        $out.bucket_key_enabled = echo.bucket_key;
        $out.sse_customer_algorithm = echo.customer_algorithm.clone();
        $out.sse_customer_key_md5 = echo.customer_key_md5.clone();
    }};
}
pub(crate) use echo_into;

/// A new object's encryption: the key its chunks are sealed with (none: plain), the
/// attributes stored with it, and the response headers.
#[derive(Default)]
pub struct Sealing {
    pub key: Option<Arc<ChunkKey>>,
    pub attrs: Vec<(String, Vec<u8>)>,
    pub echo: Echo,
}

/// The encryption context as stored and authenticated: the JSON object sorted by key.
fn canonical_context(b64_json: &str) -> GatewayResult<String> {
    let bad = || {
        GatewayError::InvalidArgument(
            "x-amz-server-side-encryption-context must be base64 of a JSON object of strings"
                .into(),
        )
    };
    let raw = b64().decode(b64_json.trim()).map_err(|_| bad())?;
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&raw).map_err(|_| bad())?;
    serde_json::to_string(&map).map_err(|_| bad())
}

fn kms_error(e: KmsError) -> GatewayError {
    match e {
        KmsError::NotFound(id) => GatewayError::KmsKeyNotFound(format!(
            "the KMS key {id} does not exist (create it with kelp s3.keys -create)"
        )),
        KmsError::Invalid(m) | KmsError::Unavailable(m) => {
            GatewayError::Internal(format!("KMS: {m}"))
        }
    }
}

/// Removes every encryption attribute (a copy or overwrite describes new bytes).
pub fn strip(extended: &mut std::collections::BTreeMap<String, Vec<u8>>) {
    extended.retain(|k, _| !ATTRS.contains(&k.as_str()));
}

/// The attribute that marks a part's chunks as sealed like its upload's (the filer then
/// refuses to serve the part's bytes).
pub fn part_marker(upload: &Entry) -> Option<(String, Vec<u8>)> {
    upload
        .extended
        .get(SEALED_KEY)
        .map(|v| (SEALED_KEY.to_string(), v.clone()))
}

/// Whether `e`'s chunks are sealed.
pub fn is_sealed(e: &Entry) -> bool {
    e.extended.contains_key(SEALED_KEY)
}

fn attr<'a>(e: &'a Entry, k: &str) -> Option<&'a [u8]> {
    e.extended.get(k).map(Vec::as_slice)
}

fn attr_str(e: &Entry, k: &str) -> Option<String> {
    attr(e, k).map(|v| String::from_utf8_lossy(v).into_owned())
}

impl Gateway {
    /// What a write asks for: its own headers, else the bucket's default encryption.
    pub fn wanted(&self, a: &Asked<'_>, bucket: &Entry) -> GatewayResult<Wanted> {
        let customer =
            CustomerKey::parse(a.customer_algorithm, a.customer_key, a.customer_key_md5)?;
        if let Some(c) = customer {
            if a.sse.is_some() || a.kms_key_id.is_some() {
                return Err(GatewayError::InvalidArgument(
                    "server-side encryption with customer-provided keys cannot be combined \
                     with x-amz-server-side-encryption"
                        .into(),
                ));
            }
            self.check_secure()?;
            return Ok(Wanted::Customer(c));
        }
        let Some(sse) = a.sse else {
            if a.kms_key_id.is_some() || a.context.is_some() {
                return Err(GatewayError::InvalidArgument(
                    "a KMS key id or encryption context needs x-amz-server-side-encryption: \
                     aws:kms"
                        .into(),
                ));
            }
            return Ok(bucket::default_of(bucket));
        };
        match sse.as_str() {
            AES256 if a.kms_key_id.is_none() && a.context.is_none() => Ok(Wanted::S3),
            AES256 => Err(GatewayError::InvalidArgument(
                "a KMS key id or encryption context goes with aws:kms, not AES256".into(),
            )),
            KMS | "aws:kms:dsse" => Ok(Wanted::Kms {
                key_id: a.kms_key_id.map(str::to_string),
                context: a.context.map(str::to_string),
                bucket_key: a.bucket_key.unwrap_or(false),
            }),
            other => Err(GatewayError::InvalidArgument(format!(
                "the server-side encryption {other:?} is not AES256 or aws:kms"
            ))),
        }
    }

    /// SSE-C needs TLS (or `-s3.allowInsecureSSE`, for TLS ended in front of kelp).
    fn check_secure(&self) -> GatewayResult<()> {
        if self.sse.secure {
            Ok(())
        } else {
            Err(GatewayError::InvalidRequest(
                "requests specifying Server Side Encryption with Customer provided keys must \
                 be made over a secure connection"
                    .into(),
            ))
        }
    }

    /// A new data key for `wanted`, and what to store so it can be found again.
    pub async fn seal_new(&self, wanted: &Wanted) -> GatewayResult<Sealing> {
        let mut s = Sealing::default();
        let data_key = match wanted {
            Wanted::Plain => return Ok(s),
            Wanted::Customer(c) => {
                let salt: [u8; 16] = rand::random();
                s.attrs.push((SEALED_KEY.into(), CUSTOMER.into()));
                s.attrs.push((SALT_KEY.into(), salt.to_vec()));
                s.attrs.push((CHECK_KEY.into(), c.check(&salt).to_vec()));
                s.echo.customer_algorithm = Some(AES256.into());
                s.echo.customer_key_md5 = Some(c.md5.clone());
                c.data_key(&salt)
            }
            Wanted::S3 => {
                let dk = self
                    .kms()?
                    .generate_data_key(SSE_S3_KEY, b"")
                    .await
                    .map_err(kms_error)?;
                s.attrs.push((SEALED_KEY.into(), AES256.into()));
                s.attrs.push((WRAPPED_KEY.into(), dk.wrapped));
                s.attrs.push((KMS_KEY.into(), SSE_S3_KEY.into()));
                s.echo.sse = Some(ServerSideEncryption::from_static(
                    ServerSideEncryption::AES256,
                ));
                dk.plain
            }
            Wanted::Kms {
                key_id,
                context,
                bucket_key,
            } => {
                let kms = self.kms()?;
                let id = kms
                    .resolve(key_id.as_deref().unwrap_or(DEFAULT_KMS_KEY))
                    .await
                    .map_err(kms_error)?;
                let ctx = context.as_deref().map(canonical_context).transpose()?;
                let dk = kms
                    .generate_data_key(&id, ctx.as_deref().unwrap_or("").as_bytes())
                    .await
                    .map_err(kms_error)?;
                s.attrs.push((SEALED_KEY.into(), KMS.into()));
                s.attrs.push((WRAPPED_KEY.into(), dk.wrapped));
                s.attrs.push((KMS_KEY.into(), id.clone().into_bytes()));
                if let Some(c) = &ctx {
                    s.attrs.push((CONTEXT_KEY.into(), c.clone().into_bytes()));
                }
                if *bucket_key {
                    s.attrs.push((BUCKET_KEY.into(), b"true".to_vec()));
                    s.echo.bucket_key = Some(true);
                }
                s.echo.sse = Some(ServerSideEncryption::from_static(
                    ServerSideEncryption::AWS_KMS,
                ));
                s.echo.kms_key_id = Some(id);
                s.echo.context = ctx.map(|c| b64().encode(c));
                dk.plain
            }
        };
        s.key = Some(Arc::new(ChunkKey::new(&data_key)?));
        Ok(s)
    }

    fn kms(&self) -> GatewayResult<&Arc<dyn kms::Kms>> {
        self.sse.kms.as_ref().ok_or_else(|| {
            GatewayError::InvalidRequest(
                "SSE-S3 and SSE-KMS need a key file: start the gateway with -s3.keyFile".into(),
            )
        })
    }

    /// The key that opens `e`'s chunks (none: plain), given the SSE-C key a read
    /// brought; and the response headers. Refuses a missing or wrong customer key
    /// before any byte is read.
    pub async fn opening(
        &self,
        e: &Entry,
        customer: Option<&CustomerKey>,
    ) -> GatewayResult<(Option<Arc<ChunkKey>>, Echo)> {
        let mut echo = Echo::default();
        let kind = attr_str(e, SEALED_KEY);
        let data_key = match (kind.as_deref(), customer) {
            (None, None) => return Ok((None, echo)),
            (None | Some(AES256 | KMS), Some(_)) => {
                return Err(GatewayError::InvalidRequest(
                    "the encryption parameters are not applicable to this object: it was not \
                     stored with a customer-provided key"
                        .into(),
                ));
            }
            (Some(CUSTOMER), None) => {
                return Err(GatewayError::InvalidRequest(
                    "the object was stored using a form of Server Side Encryption: the correct \
                     parameters (x-amz-server-side-encryption-customer-*) must be provided to \
                     retrieve it"
                        .into(),
                ));
            }
            (Some(CUSTOMER), Some(c)) => {
                self.check_secure()?;
                let salt = attr(e, SALT_KEY).unwrap_or_default();
                let stored = attr(e, CHECK_KEY).unwrap_or_default();
                if !constant_eq(&c.check(salt), stored) {
                    return Err(GatewayError::AccessDenied(
                        "the customer-provided key does not match the key the object was \
                         stored with"
                            .into(),
                    ));
                }
                echo.customer_algorithm = Some(AES256.into());
                echo.customer_key_md5 = Some(c.md5.clone());
                c.data_key(salt)
            }
            (Some(kind @ (AES256 | KMS)), None) => {
                let id = attr_str(e, KMS_KEY).unwrap_or_default();
                let ctx = attr(e, CONTEXT_KEY).unwrap_or_default();
                let wrapped = attr(e, WRAPPED_KEY).unwrap_or_default();
                let k = self
                    .kms()?
                    .decrypt(&id, wrapped, ctx)
                    .await
                    .map_err(kms_error)?;
                echo = stored_echo(e);
                if kind == AES256 {
                    echo.kms_key_id = None;
                }
                k
            }
            (Some(other), _) => {
                return Err(GatewayError::Internal(format!(
                    "the object is sealed with an unknown scheme {other:?}"
                )));
            }
        };
        Ok((Some(Arc::new(ChunkKey::new(&data_key)?)), echo))
    }
}

/// The response headers of an object as stored (SSE-S3 / SSE-KMS; SSE-C's come from
/// the request).
pub fn stored_echo(e: &Entry) -> Echo {
    let mut echo = Echo::default();
    match attr_str(e, SEALED_KEY).as_deref() {
        Some(AES256) => {
            echo.sse = Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AES256,
            ));
        }
        Some(KMS) => {
            echo.sse = Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AWS_KMS,
            ));
            echo.kms_key_id = attr_str(e, KMS_KEY);
            echo.bucket_key = attr(e, BUCKET_KEY).map(|_| true);
        }
        Some(CUSTOMER) => echo.customer_algorithm = Some(AES256.into()),
        _ => {}
    }
    echo
}

/// Equality that takes the same time wherever the first difference is.
fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The gateway's encryption setup.
#[derive(Clone, Default)]
pub struct SseConfig {
    /// The key service for SSE-S3 and SSE-KMS (none: those requests are refused).
    pub kms: Option<Arc<dyn kms::Kms>>,
    /// SSE-C is accepted: the listener speaks TLS, or `-s3.allowInsecureSSE`.
    pub secure: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_headers(k: &[u8; 32]) -> (String, String) {
        (b64().encode(k), b64().encode(Md5::digest(k)))
    }

    #[test]
    fn customer_keys_are_checked_like_s3() {
        let (k, m) = key_headers(&[3; 32]);
        let c = CustomerKey::parse(Some("AES256"), Some(&k), Some(&m))
            .unwrap()
            .unwrap();
        assert_eq!(c.md5, m);
        assert!(CustomerKey::parse(None, None, None).unwrap().is_none());
        assert!(
            CustomerKey::parse(Some("AES256"), Some(&k), None)
                .unwrap()
                .is_some()
        );
        for (a, key, md5) in [
            (Some("AES128"), Some(k.as_str()), Some(m.as_str())),
            (Some("AES256"), Some("c2hvcnQ="), None),
            (Some("AES256"), None, Some(m.as_str())),
            (None, Some(k.as_str()), Some(m.as_str())),
            (
                Some("AES256"),
                Some(k.as_str()),
                Some("AAAAAAAAAAAAAAAAAAAAAA=="),
            ),
            (None, None, Some(m.as_str())),
        ] {
            assert!(
                matches!(
                    CustomerKey::parse(a, key, md5),
                    Err(GatewayError::InvalidArgument(_))
                ),
                "{a:?} {key:?} {md5:?}"
            );
        }
        // Data keys and checks differ per salt and per key, and never equal the key.
        let other = CustomerKey::parse(Some("AES256"), Some(&key_headers(&[4; 32]).0), None)
            .unwrap()
            .unwrap();
        assert_ne!(c.data_key(b"s1"), c.data_key(b"s2"));
        assert_ne!(c.data_key(b"s1"), other.data_key(b"s1"));
        assert_ne!(c.data_key(b"s1"), c.check(b"s1"));
        assert_ne!(c.data_key(b"s1"), c.key);
        assert!(constant_eq(&c.check(b"s"), &c.check(b"s")));
        assert!(!constant_eq(&c.check(b"s"), &other.check(b"s")));
        assert!(!constant_eq(&c.check(b"s"), &[]));
    }

    #[test]
    fn contexts_are_canonical() {
        let a = b64().encode(br#"{"b":"2","a":"1"}"#);
        let b = b64().encode(br#"{ "a": "1", "b": "2" }"#);
        assert_eq!(
            canonical_context(&a).unwrap(),
            canonical_context(&b).unwrap()
        );
        assert!(canonical_context("not base64!").is_err());
        assert!(canonical_context(&b64().encode(b"[1]")).is_err());
    }
}
