//! Who may do what between kelp roles: the `security.toml` file, the tokens signed
//! with its keys, the checks servers run on requests, and the credential kelp's own
//! clients present. One process has one [`Security`], installed at start-up
//! ([`install`]); without a file every check passes (loopback-only, see
//! [`check_bind`]).

pub mod jwt;
pub mod tls;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::id::FileId;
pub use jwt::{Claims, TokenError};
pub use tls::{HttpsConfig, PeerCertified, Role};

/// Where `security.toml` is looked for when `-security` is not given, in order.
pub fn default_paths() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("security.toml")];
    if let Some(home) = std::env::var_os("HOME") {
        out.push(Path::new(&home).join(".kelp").join("security.toml"));
    }
    out.push(PathBuf::from("/etc/kelp/security.toml"));
    out
}

/// Default `expires_after_seconds` of every key.
pub const DEFAULT_EXPIRY_SECS: u64 = 10;

/// One HMAC key and how long the tokens it signs live.
#[derive(Clone)]
pub struct SigningKey {
    key: Vec<u8>,
    expires: Duration,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key", &"<secret>")
            .field("expires", &self.expires)
            .finish()
    }
}

impl SigningKey {
    pub fn new(key: impl Into<Vec<u8>>, expires: Duration) -> SigningKey {
        SigningKey {
            key: key.into(),
            expires,
        }
    }

    /// Signs `claims` with `exp` set from now.
    pub fn sign(&self, mut claims: Claims) -> String {
        claims.exp = now_secs() + self.expires.as_secs().max(1);
        jwt::sign(&self.key, &claims)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jwt::verify(&self.key, token, now_secs())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What one process knows of the cluster's secrets.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// `[jwt.signing]`: volume writes and deletes; also signs admin tokens.
    pub write: Option<SigningKey>,
    /// `[jwt.signing.read]`: volume reads.
    pub read: Option<SigningKey>,
    /// `[jwt.filer_signing]`: filer REST writes.
    pub filer_write: Option<SigningKey>,
    /// `[jwt.filer_signing.read]`: filer REST reads.
    pub filer_read: Option<SigningKey>,
    /// `[https]`: TLS on listeners and between servers.
    pub https: Option<HttpsConfig>,
    /// The file this came from, if any.
    pub path: Option<PathBuf>,
}

/// Why a security file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    jwt: JwtSection,
    #[serde(default)]
    https: Option<tls::HttpsSection>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JwtSection {
    signing: Option<KeySection>,
    filer_signing: Option<KeySection>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KeySection {
    #[serde(default)]
    key: String,
    expires_after_seconds: Option<u64>,
    read: Option<ReadKeySection>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReadKeySection {
    #[serde(default)]
    key: String,
    expires_after_seconds: Option<u64>,
}

fn key(key: &str, expires: Option<u64>, env: &str) -> Option<SigningKey> {
    let key = std::env::var(env).unwrap_or_else(|_| key.to_string());
    (!key.is_empty()).then(|| {
        SigningKey::new(
            key.into_bytes(),
            Duration::from_secs(expires.unwrap_or(DEFAULT_EXPIRY_SECS)),
        )
    })
}

impl Security {
    /// Reads the file named by `-security` if given, else the first of
    /// [`default_paths`] that exists. With no file, `KELP_JWT_SIGNING_KEY` (and the
    /// other key variables) alone set up the tokens; with neither, the result is
    /// `Security::default()`: open.
    pub fn load(flag: Option<&Path>) -> Result<Security, SecurityError> {
        match flag {
            Some(p) => Security::from_file(p),
            None => match default_paths().into_iter().find(|p| p.is_file()) {
                Some(p) => Security::from_file(&p),
                None if std::env::var_os("KELP_JWT_SIGNING_KEY").is_some() => {
                    Security::parse("", Path::new(".")).map_err(|message| SecurityError::Invalid {
                        path: "KELP_JWT_SIGNING_KEY".into(),
                        message,
                    })
                }
                None => Ok(Security::default()),
            },
        }
    }

    /// Parses one security file; relative certificate paths are taken from its folder.
    pub fn from_file(path: &Path) -> Result<Security, SecurityError> {
        let text = std::fs::read_to_string(path).map_err(|e| SecurityError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Security::parse(&text, dir)
            .map_err(|message| SecurityError::Invalid {
                path: path.display().to_string(),
                message,
            })
            .map(|mut s| {
                s.path = Some(path.to_path_buf());
                s
            })
    }

    /// Parses the text of a security file. The result must be usable: some admin
    /// credential (`[jwt.signing] key`, or `[https]` with client certificates) is
    /// required, since admin calls are refused without one.
    pub fn parse(text: &str, dir: &Path) -> Result<Security, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let signing = file.jwt.signing.unwrap_or_default();
        let filer = file.jwt.filer_signing.unwrap_or_default();
        let read = signing.read.unwrap_or_default();
        let filer_read = filer.read.unwrap_or_default();
        let https = file
            .https
            .map(|h| HttpsConfig::from_section(h, dir))
            .transpose()?;
        let s = Security {
            write: key(
                &signing.key,
                signing.expires_after_seconds,
                "KELP_JWT_SIGNING_KEY",
            ),
            read: key(
                &read.key,
                read.expires_after_seconds,
                "KELP_JWT_SIGNING_READ_KEY",
            ),
            filer_write: key(
                &filer.key,
                filer.expires_after_seconds,
                "KELP_JWT_FILER_SIGNING_KEY",
            ),
            filer_read: key(
                &filer_read.key,
                filer_read.expires_after_seconds,
                "KELP_JWT_FILER_SIGNING_READ_KEY",
            ),
            https,
            path: None,
        };
        if s.write.is_none() && !s.https.as_ref().is_some_and(|h| h.verifies_clients()) {
            return Err(
                "no admin credential: set [jwt.signing] key (or KELP_JWT_SIGNING_KEY), \
                 or [https] with a ca and client_auth = \"optional\" or \"require\""
                    .into(),
            );
        }
        Ok(s)
    }

    /// True when a security setup is in force (admin calls need a credential): a
    /// signing key or TLS; [`Security::parse`] accepts nothing less.
    pub fn enabled(&self) -> bool {
        self.write.is_some() || self.https.is_some()
    }

    /// An admin token for kelp's own calls to other servers, if a signing key is set.
    pub fn admin_token(&self) -> Option<String> {
        self.write.as_ref().map(|k| {
            k.sign(Claims {
                adm: true,
                ..Default::default()
            })
        })
    }

    /// The write token for `fid` and the `count - 1` keys after it, if writes are
    /// guarded.
    pub fn write_token(&self, fid: &str, count: u64) -> Option<String> {
        self.write.as_ref().map(|k| fid_token(k, fid, count))
    }

    /// A token for the filer REST API (`write` or read): signed with the filer key
    /// when one is set, else the admin token.
    pub fn filer_token(&self, write: bool) -> Option<String> {
        let key = if write {
            &self.filer_write
        } else {
            &self.filer_read
        };
        match key {
            Some(k) => Some(k.sign(Claims::default())),
            None => self.admin_token(),
        }
    }

    /// The read token for `fid`, if reads are guarded.
    pub fn read_token(&self, fid: &str) -> Option<String> {
        self.read.as_ref().map(|k| fid_token(k, fid, 1))
    }

    /// May a request carrying `token` (and `certified` when its connection showed a
    /// client certificate of the cluster) make an admin call?
    pub fn check_admin(&self, token: Option<&str>, certified: bool) -> Result<(), TokenError> {
        if !self.enabled() || certified {
            return Ok(());
        }
        match (&self.write, token) {
            (None, _) => Err(TokenError::NotAdmin),
            (Some(_), None) => Err(TokenError::Missing),
            (Some(k), Some(t)) => match k.verify(t)? {
                c if c.adm => Ok(()),
                _ => Err(TokenError::NotAdmin),
            },
        }
    }

    /// May a request write or delete (`write`) or read the needle `fid`?
    pub fn check_needle(
        &self,
        write: bool,
        fid: &FileId,
        token: Option<&str>,
        certified: bool,
    ) -> Result<(), TokenError> {
        let key = if write { &self.write } else { &self.read };
        let Some(key) = key else {
            return Ok(());
        };
        if certified {
            return Ok(());
        }
        let token = token.ok_or(TokenError::Missing)?;
        let claims = match key.verify(token) {
            Ok(c) => c,
            // A read guarded by its own key still accepts an admin token (and only
            // that: a write token is no read token).
            Err(e) => match &self.write {
                Some(w) if !write => match w.verify(token) {
                    Ok(c) if c.adm => c,
                    _ => return Err(e),
                },
                _ => return Err(e),
            },
        };
        if claims.adm || covers(&claims, fid) {
            Ok(())
        } else {
            Err(TokenError::WrongFid)
        }
    }

    /// May a request write (`write`) or read through the filer REST API? With a
    /// security file, writes need a filer token or an admin credential even when no
    /// filer key is set; reads need one only under `[jwt.filer_signing.read]`.
    pub fn check_filer(
        &self,
        write: bool,
        token: Option<&str>,
        certified: bool,
    ) -> Result<(), TokenError> {
        let key = if write {
            &self.filer_write
        } else {
            &self.filer_read
        };
        if !self.enabled() || certified || (!write && key.is_none()) {
            return Ok(());
        }
        let token = token.ok_or(TokenError::Missing)?;
        if let Some(k) = key
            && k.verify(token).is_ok()
        {
            return Ok(());
        }
        self.check_admin(Some(token), false)
    }
}

fn fid_token(key: &SigningKey, fid: &str, count: u64) -> String {
    key.sign(Claims {
        fid: Some(fid.to_string()),
        count: (count > 1).then_some(count),
        ..Default::default()
    })
}

/// Does a token for `claims.fid` (and `count` keys from it) cover `fid`?
fn covers(claims: &Claims, fid: &FileId) -> bool {
    let Some(first) = claims.fid.as_deref().and_then(|f| f.parse::<FileId>().ok()) else {
        return false;
    };
    let count = claims.count.unwrap_or(1).max(1);
    first.volume == fid.volume
        && first.cookie == fid.cookie
        && fid.key.0 >= first.key.0
        && fid.key.0 - first.key.0 < count
}

static CURRENT: OnceLock<Security> = OnceLock::new();
static OPEN: OnceLock<Security> = OnceLock::new();

/// Makes `s` this process's security setup (the first call wins; later calls with a
/// different setup are an error).
pub fn install(s: Security) -> Result<(), String> {
    CURRENT
        .set(s)
        .map_err(|_| "the security setup was already installed".to_string())
}

/// This process's security setup (open if none was installed).
pub fn current() -> &'static Security {
    CURRENT
        .get()
        .unwrap_or_else(|| OPEN.get_or_init(Security::default))
}

/// Refuses to serve on a non-loopback address with no security file unless
/// `insecure` was given.
pub fn check_bind(ip: &str, security: &Security, insecure: bool) -> Result<(), String> {
    if security.enabled() || insecure || is_loopback(ip) {
        return Ok(());
    }
    Err(format!(
        "refusing to serve on {ip} without a security file: anyone who can reach it \
         could read, overwrite and delete data (create one with `kelp scaffold \
         -config=security` and pass -security=FILE, or set KELP_JWT_SIGNING_KEY, or pass \
         -insecure to accept the risk)"
    ))
}

fn is_loopback(ip: &str) -> bool {
    let host = ip.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// The token a request carries: `?jwt=`, else `Authorization: Bearer`, else the `AT`
/// cookie.
pub fn request_token(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(q) = query {
        for pair in q.split('&') {
            if let Some(v) = pair.strip_prefix("jwt=") {
                return Some(v.to_string());
            }
        }
    }
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = v.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(token.trim().to_string());
    }
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("AT=").map(str::to_string))
}

/// Axum middleware: refuses a request without an admin credential (401, JSON error).
pub async fn require_admin(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let token = request_token(req.headers(), req.uri().query());
    let certified = req.extensions().get::<PeerCertified>().is_some();
    match current().check_admin(token.as_deref(), certified) {
        Ok(()) => next.run(req).await,
        Err(e) => unauthorized(&e),
    }
}

/// A 401 answer with `{"error": ...}`.
pub fn unauthorized(e: &TokenError) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        http::StatusCode::UNAUTHORIZED,
        axum::Json(crate::master_api::ErrorBody {
            error: format!("unauthorized: {e}"),
        }),
    )
        .into_response()
}

/// What kelp's own clients add to a request.
pub trait Authorize {
    /// The admin token, when this process has a signing key.
    fn admin(self) -> Self;
    /// `token` if given, else the admin token.
    fn token_or_admin(self, token: Option<&str>) -> Self;
    /// A filer token for a write or a read.
    fn filer(self, write: bool) -> Self;
}

impl Authorize for reqwest::RequestBuilder {
    fn admin(self) -> Self {
        match current().admin_token() {
            Some(t) => self.bearer_auth(t),
            None => self,
        }
    }

    fn token_or_admin(self, token: Option<&str>) -> Self {
        match token.filter(|t| !t.is_empty()) {
            Some(t) => self.bearer_auth(t),
            None => self.admin(),
        }
    }

    fn filer(self, write: bool) -> Self {
        match current().filer_token(write) {
            Some(t) => self.bearer_auth(t),
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secure() -> Security {
        Security::parse("[jwt.signing]\nkey = \"k\"\n", Path::new(".")).unwrap()
    }

    #[test]
    fn files_without_an_admin_credential_or_with_unknown_keys_are_refused() {
        assert!(Security::parse("", Path::new(".")).is_err());
        assert!(Security::parse("[jwt.signing]\nkey = \"\"\n", Path::new(".")).is_err());
        let e = Security::parse("[jwt.signing]\nkey = \"k\"\nkye = 1\n", Path::new("."));
        assert!(e.unwrap_err().contains("kye"));
        let e = Security::parse("[jwt.signin]\nkey = \"k\"\n", Path::new("."));
        assert!(e.is_err());
    }

    #[test]
    fn write_tokens_cover_their_batch_and_nothing_else() {
        let s = secure();
        let first: FileId = "3,0a637037d6".parse().unwrap();
        let t = s.write_token(&first.to_string(), 3).unwrap();
        for n in 0..3 {
            let f = first.with_delta(n).unwrap();
            assert_eq!(s.check_needle(true, &f, Some(&t), false), Ok(()));
        }
        let beyond = first.with_delta(3).unwrap();
        assert_eq!(
            s.check_needle(true, &beyond, Some(&t), false),
            Err(TokenError::WrongFid)
        );
        let other_cookie: FileId = "3,0a637037d7".parse().unwrap();
        assert_eq!(
            s.check_needle(true, &other_cookie, Some(&t), false),
            Err(TokenError::WrongFid)
        );
        assert_eq!(
            s.check_needle(true, &first, None, false),
            Err(TokenError::Missing)
        );
        // A write token is no read token once reads are guarded.
        let mut guarded = s.clone();
        guarded.read = Some(SigningKey::new(b"r".to_vec(), Duration::from_secs(10)));
        assert_eq!(
            guarded.check_needle(false, &first, Some(&t), false),
            Err(TokenError::BadSignature)
        );
        let adm = s.admin_token().unwrap();
        assert_eq!(
            guarded.check_needle(false, &first, Some(&adm), false),
            Ok(())
        );
        // Reads are open without a read key; admin tokens do anything.
        assert_eq!(s.check_needle(false, &beyond, None, false), Ok(()));
        let adm = s.admin_token().unwrap();
        assert_eq!(s.check_needle(true, &beyond, Some(&adm), false), Ok(()));
        assert_eq!(s.check_admin(Some(&adm), false), Ok(()));
        assert_eq!(s.check_admin(Some(&t), false), Err(TokenError::NotAdmin));
        assert_eq!(s.check_admin(None, true), Ok(()));
    }

    #[test]
    fn filer_writes_need_a_credential_once_a_file_is_in_force() {
        let s = secure();
        assert_eq!(s.check_filer(false, None, false), Ok(()));
        assert_eq!(s.check_filer(true, None, false), Err(TokenError::Missing));
        let open = Security::default();
        assert_eq!(open.check_filer(true, None, false), Ok(()));
        assert_eq!(open.check_admin(None, false), Ok(()));
    }

    #[test]
    fn tokens_come_from_query_header_or_cookie() {
        let mut h = http::HeaderMap::new();
        assert_eq!(request_token(&h, Some("a=1&jwt=q")), Some("q".into()));
        h.insert(http::header::AUTHORIZATION, "bearer h".parse().unwrap());
        assert_eq!(request_token(&h, None), Some("h".into()));
        h.clear();
        h.insert(http::header::COOKIE, "x=1; AT=c".parse().unwrap());
        assert_eq!(request_token(&h, None), Some("c".into()));
    }

    #[test]
    fn only_loopback_is_served_without_a_file() {
        let open = Security::default();
        assert!(check_bind("127.0.0.1", &open, false).is_ok());
        assert!(check_bind("localhost", &open, false).is_ok());
        assert!(check_bind("::1", &open, false).is_ok());
        assert!(check_bind("0.0.0.0", &open, false).is_err());
        assert!(check_bind("10.1.2.3", &open, false).is_err());
        assert!(check_bind("10.1.2.3", &open, true).is_ok());
        assert!(check_bind("10.1.2.3", &secure(), false).is_ok());
    }
}
