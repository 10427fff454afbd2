//! Key management for SSE-S3 and SSE-KMS: the [`Kms`] trait (make a data key, unwrap
//! one) that a client of a real KMS can implement, and [`LocalKms`], the built-in one
//! backed by a key file of named, versioned master keys. Format and handling:
//! `docs/s3.md#encryption` and `docs/formats/encryption.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

/// The key SSE-S3 wraps its data keys with.
pub const SSE_S3_KEY: &str = "sse-s3";
/// The key SSE-KMS uses when a request names none (AWS's `aws/s3`).
pub const DEFAULT_KMS_KEY: &str = "default";

/// A fresh data key: `plain` seals one object's chunks and is never stored; `wrapped`
/// is stored with the object and only the KMS can turn it back into `plain`.
pub struct DataKey {
    pub plain: [u8; 32],
    pub wrapped: Vec<u8>,
}

/// Why a KMS call failed.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("the KMS key {0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
}

/// What the gateway needs of a key management service. `context` is authenticated
/// with the wrapped key: unwrapping needs the same bytes.
#[async_trait::async_trait]
pub trait Kms: Send + Sync {
    /// The canonical id of the key a request names (a name, `alias/<name>`, or an ARN
    /// ending in `key/<name>` or `alias/<name>`); NotFound if there is no such key.
    async fn resolve(&self, key_id: &str) -> Result<String, KmsError>;
    /// A new data key wrapped by the newest version of `key_id`.
    async fn generate_data_key(&self, key_id: &str, context: &[u8]) -> Result<DataKey, KmsError>;
    /// The data key inside `wrapped` (made by [`Kms::generate_data_key`] with this key
    /// and context, under any version of the key still kept).
    async fn decrypt(
        &self,
        key_id: &str,
        wrapped: &[u8],
        context: &[u8],
    ) -> Result<[u8; 32], KmsError>;
}

/// One version of a master key, as kept in the key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyVersion {
    version: u32,
    /// Unix seconds.
    created: u64,
    /// Base64 of the 32 key bytes.
    key: String,
}

/// The key file: every named key with all its versions (the newest wraps new data
/// keys; older ones stay to unwrap what they wrapped).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyFile {
    format: u32,
    keys: BTreeMap<String, Vec<KeyVersion>>,
}

/// First bytes of a wrapped data key: the format.
const WRAP_MAGIC: &[u8; 2] = b"K1";
const NONCE_LEN: usize = 12;
/// `K1` ‖ version (4, big-endian) ‖ nonce (12) ‖ sealed data key (32 + 16).
const WRAPPED_LEN: usize = 2 + 4 + NONCE_LEN + 32 + 16;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn new_version(version: u32) -> KeyVersion {
    let key: [u8; 32] = rand::random();
    KeyVersion {
        version,
        created: now_secs(),
        key: base64::engine::general_purpose::STANDARD.encode(key),
    }
}

/// A key name as the file holds it: letters, digits, `-`, `_`, `.`, `/`, 1 to 128.
pub fn check_name(name: &str) -> Result<(), KmsError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KmsError::Invalid(format!(
            "{name:?} is not a key name (1 to 128 of letters, digits, - _ . /)"
        )))
    }
}

/// The key name inside a request's key id.
fn bare_name(key_id: &str) -> &str {
    let id = key_id.trim();
    let id = match id.strip_prefix("arn:") {
        // arn:aws:kms:<region>:<account>:key/<id> (or alias/<name>)
        Some(rest) => rest.splitn(5, ':').nth(4).unwrap_or(rest),
        None => id,
    };
    id.strip_prefix("key/")
        .or_else(|| id.strip_prefix("alias/"))
        .unwrap_or(id)
}

impl KeyFile {
    /// A new file holding the two keys the gateway needs.
    pub fn fresh() -> KeyFile {
        let mut keys = BTreeMap::new();
        keys.insert(SSE_S3_KEY.to_string(), vec![new_version(1)]);
        keys.insert(DEFAULT_KMS_KEY.to_string(), vec![new_version(1)]);
        KeyFile { format: 1, keys }
    }

    pub fn read(path: &Path) -> Result<KeyFile, KmsError> {
        let text = std::fs::read(path)
            .map_err(|e| KmsError::Unavailable(format!("reading {}: {e}", path.display())))?;
        let f: KeyFile = serde_json::from_slice(&text).map_err(|e| {
            KmsError::Invalid(format!("{} is not a kelp key file: {e}", path.display()))
        })?;
        if f.format != 1 {
            return Err(KmsError::Invalid(format!(
                "{} has key file format {}; this kelp reads format 1",
                path.display(),
                f.format
            )));
        }
        for (name, versions) in &f.keys {
            for v in versions {
                decode_key(&v.key).map_err(|e| {
                    KmsError::Invalid(format!(
                        "{}: key {name} v{}: {e}",
                        path.display(),
                        v.version
                    ))
                })?;
            }
        }
        Ok(f)
    }

    /// Writes the file atomically (temp file, fsync, rename, directory fsync), readable
    /// by its owner only.
    pub fn write(&self, path: &Path) -> Result<(), KmsError> {
        let io =
            |e: std::io::Error| KmsError::Unavailable(format!("writing {}: {e}", path.display()));
        let text = serde_json::to_vec_pretty(self).map_err(|e| KmsError::Invalid(e.to_string()))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!(
            ".{}.tmp{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("keys"),
            std::process::id()
        ));
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).map_err(io)?;
            f.write_all(&text).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Adds a key (version 1).
    pub fn create(&mut self, name: &str) -> Result<(), KmsError> {
        check_name(name)?;
        if self.keys.contains_key(name) {
            return Err(KmsError::Invalid(format!("the key {name} already exists")));
        }
        self.keys.insert(name.to_string(), vec![new_version(1)]);
        Ok(())
    }

    /// Adds a new version of `name`, which wraps every data key made from now on; the
    /// old versions stay for what they wrapped. Returns the new version.
    pub fn rotate(&mut self, name: &str) -> Result<u32, KmsError> {
        let versions = self
            .keys
            .get_mut(name)
            .ok_or_else(|| KmsError::NotFound(name.to_string()))?;
        let next = versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        versions.push(new_version(next));
        Ok(next)
    }

    /// `(name, versions, newest version's creation time)` of every key.
    pub fn list(&self) -> Vec<(String, usize, u64)> {
        self.keys
            .iter()
            .map(|(n, v)| {
                let newest = v.iter().max_by_key(|v| v.version).map_or(0, |v| v.created);
                (n.clone(), v.len(), newest)
            })
            .collect()
    }

    fn version(&self, name: &str, version: Option<u32>) -> Result<(u32, [u8; 32]), KmsError> {
        let versions = self
            .keys
            .get(name)
            .ok_or_else(|| KmsError::NotFound(name.to_string()))?;
        let v = match version {
            None => versions.iter().max_by_key(|v| v.version),
            Some(n) => versions.iter().find(|v| v.version == n),
        }
        .ok_or_else(|| match version {
            Some(n) => KmsError::Invalid(format!(
                "version {n} of the key {name} is no longer in the key file"
            )),
            None => KmsError::NotFound(name.to_string()),
        })?;
        Ok((v.version, decode_key(&v.key).map_err(KmsError::Invalid)?))
    }
}

fn decode_key(b64: &str) -> Result<[u8; 32], String> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| "a key must be 32 bytes in base64".to_string())
}

/// Authenticated data of a wrapped data key: the key's name and the context.
fn wrap_aad(name: &str, context: &[u8]) -> Vec<u8> {
    let mut aad = b"kelp kms v1\0".to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(context);
    aad
}

/// [`Kms`] over a local key file, re-read when it changes (so `kelp s3.keys -rotate`
/// takes effect without a restart).
pub struct LocalKms {
    path: PathBuf,
    cached: Mutex<Cached>,
}

struct Cached {
    file: std::sync::Arc<KeyFile>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

/// How often the key file's modification time is looked at.
const RECHECK: Duration = Duration::from_secs(1);

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl LocalKms {
    /// Opens the key file at `path`, creating it with fresh keys when there is none.
    /// Returns whether it was created (the caller says so: it must be backed up).
    pub fn open_or_create(path: &Path) -> Result<(LocalKms, bool), KmsError> {
        let created = !path.exists();
        if created {
            KeyFile::fresh().write(path)?;
        }
        let file = KeyFile::read(path)?;
        let kms = LocalKms {
            path: path.to_path_buf(),
            cached: Mutex::new(Cached {
                file: std::sync::Arc::new(file),
                stamp: stamp(path),
                checked: Instant::now(),
            }),
        };
        Ok((kms, created))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key file as last read, re-read first if it changed on disk.
    fn file(&self) -> std::sync::Arc<KeyFile> {
        self.file_checked(false)
    }

    /// [`LocalKms::file`], looking at the disk now when `force` (a key or version was
    /// not found: it may have just been added).
    fn file_checked(&self, force: bool) -> std::sync::Arc<KeyFile> {
        let mut c = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if force || c.checked.elapsed() >= RECHECK {
            c.checked = Instant::now();
            let now = stamp(&self.path);
            if now != c.stamp {
                match KeyFile::read(&self.path) {
                    Ok(f) => {
                        tracing::info!(file = %self.path.display(), "S3 key file re-read");
                        c.file = std::sync::Arc::new(f);
                        c.stamp = now;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the S3 key file changed but cannot be read; keeping the keys read before")
                    }
                }
            }
        }
        c.file.clone()
    }

    /// Version `version` (newest: `None`) of key `name`, re-reading the file once if
    /// it is not there.
    fn key(&self, name: &str, version: Option<u32>) -> Result<(u32, [u8; 32]), KmsError> {
        self.file()
            .version(name, version)
            .or_else(|_| self.file_checked(true).version(name, version))
    }

    fn wrap(&self, name: &str, plain: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, KmsError> {
        let (version, master) = self.key(name, None)?;
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.extend_from_slice(WRAP_MAGIC);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = aead(&master)?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(wrap_aad(name, context)),
                &mut out[6 + NONCE_LEN..],
            )
            .map_err(|_| KmsError::Unavailable("wrapping a data key failed".into()))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn unwrap_key(&self, name: &str, wrapped: &[u8], context: &[u8]) -> Result<[u8; 32], KmsError> {
        if wrapped.len() != WRAPPED_LEN || &wrapped[..2] != WRAP_MAGIC {
            return Err(KmsError::Invalid("the stored data key is malformed".into()));
        }
        let version = u32::from_be_bytes([wrapped[2], wrapped[3], wrapped[4], wrapped[5]]);
        let (_, master) = self.key(name, Some(version))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&wrapped[6..6 + NONCE_LEN]);
        let mut buf = wrapped[6 + NONCE_LEN..].to_vec();
        let plain = aead(&master)?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(wrap_aad(name, context)),
                &mut buf,
            )
            .map_err(|_| {
                KmsError::Invalid(format!(
                    "the data key does not open with version {version} of the key {name} \
                     (a different key file, or a changed encryption context)"
                ))
            })?;
        <[u8; 32]>::try_from(&*plain)
            .map_err(|_| KmsError::Invalid("the stored data key has the wrong length".into()))
    }
}

fn aead(master: &[u8; 32]) -> Result<LessSafeKey, KmsError> {
    UnboundKey::new(&AES_256_GCM, master)
        .map(LessSafeKey::new)
        .map_err(|_| KmsError::Invalid("AES-256-GCM refused a master key".into()))
}

#[async_trait::async_trait]
impl Kms for LocalKms {
    async fn resolve(&self, key_id: &str) -> Result<String, KmsError> {
        let name = bare_name(key_id);
        if self.file().keys.contains_key(name) || self.file_checked(true).keys.contains_key(name) {
            Ok(name.to_string())
        } else {
            Err(KmsError::NotFound(key_id.to_string()))
        }
    }

    async fn generate_data_key(&self, key_id: &str, context: &[u8]) -> Result<DataKey, KmsError> {
        let plain: [u8; 32] = rand::random();
        let wrapped = self.wrap(key_id, &plain, context)?;
        Ok(DataKey { plain, wrapped })
    }

    async fn decrypt(
        &self,
        key_id: &str,
        wrapped: &[u8],
        context: &[u8],
    ) -> Result<[u8; 32], KmsError> {
        self.unwrap_key(key_id, wrapped, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn data_keys_survive_rotation_and_need_their_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let (kms, created) = LocalKms::open_or_create(&path).unwrap();
        assert!(created);
        let (_, again) = LocalKms::open_or_create(&path).unwrap();
        assert!(!again, "an existing file is kept");
        let a = kms.generate_data_key(SSE_S3_KEY, b"ctx").await.unwrap();
        assert_eq!(a.wrapped.len(), WRAPPED_LEN);
        assert_eq!(
            kms.decrypt(SSE_S3_KEY, &a.wrapped, b"ctx").await.unwrap(),
            a.plain
        );
        assert!(kms.decrypt(SSE_S3_KEY, &a.wrapped, b"other").await.is_err());
        assert!(
            kms.decrypt(DEFAULT_KMS_KEY, &a.wrapped, b"ctx")
                .await
                .is_err()
        );

        // Rotate on disk, as `kelp s3.keys -rotate` does; the running KMS picks it up.
        let mut f = KeyFile::read(&path).unwrap();
        assert_eq!(f.rotate(SSE_S3_KEY).unwrap(), 2);
        f.create("app-1").unwrap();
        assert!(f.create("app-1").is_err());
        assert!(f.create("bad name").is_err());
        f.write(&path).unwrap();
        kms.cached.lock().unwrap().checked = Instant::now() - RECHECK;
        let b = kms.generate_data_key(SSE_S3_KEY, b"").await.unwrap();
        assert_eq!(
            &b.wrapped[2..6],
            &2u32.to_be_bytes(),
            "new keys use the newest version"
        );
        assert_eq!(
            kms.decrypt(SSE_S3_KEY, &a.wrapped, b"ctx").await.unwrap(),
            a.plain
        );
        assert_eq!(
            kms.decrypt(SSE_S3_KEY, &b.wrapped, b"").await.unwrap(),
            b.plain
        );
        for id in [
            "app-1",
            "alias/app-1",
            "arn:aws:kms:us-east-1:000000000000:key/app-1",
            "arn:aws:kms:us-east-1:000000000000:alias/app-1",
        ] {
            assert_eq!(kms.resolve(id).await.unwrap(), "app-1", "{id}");
        }
        assert!(matches!(
            kms.resolve("nope").await,
            Err(KmsError::NotFound(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn malformed_files_and_wrapped_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(LocalKms::open_or_create(&path).is_err());
        std::fs::write(
            &path,
            br#"{"format":1,"keys":{"k":[{"version":1,"created":0,"key":"c2hvcnQ="}]}}"#,
        )
        .unwrap();
        assert!(LocalKms::open_or_create(&path).is_err(), "a short key");
        std::fs::remove_file(&path).unwrap();
        let (kms, _) = LocalKms::open_or_create(&path).unwrap();
        assert!(kms.unwrap_key(SSE_S3_KEY, b"K1short", b"").is_err());
        let mut w = kms.wrap(SSE_S3_KEY, &[1; 32], b"").unwrap();
        w[2..6].copy_from_slice(&9u32.to_be_bytes());
        assert!(
            kms.unwrap_key(SSE_S3_KEY, &w, b"").is_err(),
            "an unknown version"
        );
    }
}
