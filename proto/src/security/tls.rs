//! TLS with rustls (ring provider): the `[https]` section of `security.toml`, the
//! server configuration of each role's listener (optionally verifying client
//! certificates of the cluster's CA) and the client configuration kelp's own clients
//! use to reach other servers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// Marks a request whose connection presented a client certificate signed by the
/// cluster's CA: a server of the cluster, allowed admin calls.
#[derive(Debug, Clone, Copy)]
pub struct PeerCertified;

/// The roles that serve HTTP, each of which may have its own certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Master,
    Volume,
    Filer,
    S3,
}

/// Whether a listener asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificates.
    None,
    /// Verified when presented (then the peer counts as a cluster server); clients
    /// without one are served as any client.
    #[default]
    Optional,
    /// Every connection must present one.
    Require,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct CertSection {
    cert: Option<String>,
    key: Option<String>,
    client_auth: Option<ClientAuth>,
}

/// `[https]` and its per-role tables as written in the file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpsSection {
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_auth: Option<ClientAuth>,
    master: Option<CertSection>,
    volume: Option<CertSection>,
    filer: Option<CertSection>,
    s3: Option<CertSection>,
    /// The certificate kelp's clients present (default: `cert`/`key` above).
    client: Option<CertSection>,
}

/// TLS set up for every role of this process, loaded and checked at start-up.
#[derive(Clone)]
pub struct HttpsConfig {
    servers: HashMap<Role, Arc<rustls::ServerConfig>>,
    client: Arc<rustls::ClientConfig>,
    verifies_clients: bool,
}

impl std::fmt::Debug for HttpsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsConfig")
            .field("roles", &self.servers.keys().collect::<Vec<_>>())
            .field("verifies_clients", &self.verifies_clients)
            .finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let out = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
    if out.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(out)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a private key from {}: {e}", path.display()))
}

/// Trust anchors from a CA file.
pub fn roots(ca: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots
            .add(c)
            .map_err(|e| format!("bad CA certificate in {}: {e}", ca.display()))?;
    }
    Ok(roots)
}

/// A server configuration from PEM files; `ca` verifies client certificates as
/// `client_auth` says.
pub fn server_config(
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
    client_auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match (ca, client_auth) {
        (Some(ca), ClientAuth::Optional | ClientAuth::Require) => {
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(ca)?),
                provider(),
            );
            let v = if client_auth == ClientAuth::Optional {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
        }
        (None, ClientAuth::Require) => {
            return Err("client_auth = \"require\" needs a ca".into());
        }
        _ => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs(cert)?, private_key(key)?)
        .map_err(|e| format!("{} and {} do not match: {e}", cert.display(), key.display()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration trusting `ca`, presenting `identity` (cert, key) if given.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(ca)?);
    let cfg = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(certs(cert)?, private_key(key)?)
            .map_err(|e| format!("{} and {} do not match: {e}", cert.display(), key.display()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

impl HttpsConfig {
    pub(crate) fn from_section(h: HttpsSection, dir: &Path) -> Result<HttpsConfig, String> {
        let ca = h.ca.as_deref().map(|c| resolve(dir, c));
        let default = CertSection {
            cert: h.cert.clone(),
            key: h.key.clone(),
            client_auth: h.client_auth,
        };
        let mut servers = HashMap::new();
        let mut verifies_clients = false;
        for (role, section) in [
            (Role::Master, h.master),
            (Role::Volume, h.volume),
            (Role::Filer, h.filer),
            (Role::S3, h.s3),
        ] {
            let s = section.unwrap_or_default();
            let cert = s.cert.or_else(|| default.cert.clone());
            let key = s.key.or_else(|| default.key.clone());
            let auth = s.client_auth.or(default.client_auth).unwrap_or_default();
            let (Some(cert), Some(key)) = (cert, key) else {
                return Err(format!(
                    "[https] needs cert and key (for every role, or in [https.{}])",
                    format!("{role:?}").to_lowercase()
                ));
            };
            if role != Role::S3 && ca.is_some() && auth != ClientAuth::None {
                verifies_clients = true;
            }
            let cfg = server_config(
                &resolve(dir, &cert),
                &resolve(dir, &key),
                ca.as_deref(),
                auth,
            )?;
            servers.insert(role, cfg);
        }
        let Some(ca) = ca else {
            return Err("[https] needs ca: the CA every server certificate is signed by".into());
        };
        let client = h.client.unwrap_or(default);
        let identity = match (client.cert, client.key) {
            (Some(c), Some(k)) => Some((resolve(dir, &c), resolve(dir, &k))),
            _ => None,
        };
        let client = client_config(
            &ca,
            identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )?;
        Ok(HttpsConfig {
            servers,
            client,
            verifies_clients,
        })
    }

    /// The server side of `role`'s listener.
    pub fn server(&self, role: Role) -> Option<Arc<rustls::ServerConfig>> {
        self.servers.get(&role).cloned()
    }

    /// What kelp's clients use to reach other servers.
    pub fn client(&self) -> Arc<rustls::ClientConfig> {
        self.client.clone()
    }

    /// True when some server role verifies client certificates (mutual TLS).
    pub fn verifies_clients(&self) -> bool {
        self.verifies_clients
    }
}
