//! Identities and authorization, SeaweedFS style: `s3.json` identities with access keys
//! and actions (`Admin`, `Read`, `Write`, `List`, `Tagging`, … optionally scoped as
//! `Action:bucket` or `Action:bucket/prefix*`), an `anonymous` identity for unsigned
//! requests, and an admin from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. s3s checks
//! signatures with the secret keys ([`IamAuth`]); `access.rs` decides what a checked
//! caller may do.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use s3s::S3Result;
use s3s::auth::{S3Auth, SecretKey};
use serde::Deserialize;

use crate::error::{GatewayError, GatewayResult};

/// What a request does, for authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Admin,
    Read,
    Write,
    List,
    Tagging,
    ReadAcp,
    WriteAcp,
    DeleteBucket,
    /// Anything at all on the bucket (HeadBucket, GetBucketLocation, ListBuckets).
    Any,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "Admin" => Action::Admin,
            "Read" => Action::Read,
            "Write" => Action::Write,
            "List" => Action::List,
            "Tagging" => Action::Tagging,
            "ReadAcp" => Action::ReadAcp,
            "WriteAcp" => Action::WriteAcp,
            "DeleteBucket" => Action::DeleteBucket,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
struct Grant {
    action: Action,
    /// `bucket` or `bucket/key-pattern` (with `*` and `?`); `None` for every bucket.
    resource: Option<String>,
}

/// `*` matches any run of characters, `?` any one character.
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Grant {
    fn covers(&self, action: Action, bucket: &str, key: Option<&str>) -> bool {
        let permits =
            self.action == Action::Admin || action == Action::Any || self.action == action;
        permits
            && match &self.resource {
                None => true,
                Some(r) => match r.split_once('/') {
                    None => glob(r, bucket),
                    Some((b, kp)) => {
                        glob(b, bucket)
                            && (action == Action::Any || key.is_some_and(|k| glob(kp, k)))
                    }
                },
            }
    }
}

/// One identity of `s3.json`.
#[derive(Debug)]
pub struct Identity {
    pub name: String,
    /// Its account id (`account.id` in `s3.json`; else its own name): what bucket
    /// policies name as `arn:aws:iam::<account>:root`.
    pub account: String,
    grants: Vec<Grant>,
}

impl Identity {
    /// An identity with no actions (unsigned requests when `s3.json` names no
    /// `anonymous`): bucket policies and ACLs may still allow it things.
    pub fn nobody() -> Arc<Identity> {
        Arc::new(Identity {
            name: "anonymous".into(),
            account: String::new(),
            grants: Vec::new(),
        })
    }

    /// May this identity do `action` on `bucket` (and `key`, for object operations)?
    pub fn allows(&self, action: Action, bucket: &str, key: Option<&str>) -> bool {
        self.grants.iter().any(|g| g.covers(action, bucket, key))
    }

    /// May this identity do `action` on some keys of `bucket`? (Per-key checks follow.)
    pub fn allows_some(&self, action: Action, bucket: &str) -> bool {
        self.grants.iter().any(|g| {
            (g.action == action || g.action == Action::Admin) && g.covers(Action::Any, bucket, None)
        })
    }

    fn may_admin_everything(&self) -> bool {
        self.grants
            .iter()
            .any(|g| g.action == Action::Admin && g.resource.is_none())
    }
}

// Unknown keys are refused, so a misspelt one cannot quietly drop an identity. The
// keys SeaweedFS's s3.json has beyond ours (accounts, a credential's status) are
// accepted and not used yet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct S3Json {
    #[serde(default)]
    identities: Vec<IdentityJson>,
    #[serde(default)]
    #[allow(dead_code)]
    accounts: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityJson {
    name: String,
    #[serde(default)]
    credentials: Vec<CredentialJson>,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    account: Option<AccountJson>,
}

/// SeaweedFS's account block of an identity.
#[derive(Deserialize)]
struct AccountJson {
    id: String,
    #[serde(default, rename = "displayName")]
    #[allow(dead_code)]
    display_name: Option<String>,
    #[serde(default, rename = "emailAddress")]
    #[allow(dead_code)]
    email_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialJson {
    #[serde(rename = "accessKey", alias = "access_key")]
    access_key: String,
    #[serde(rename = "secretKey", alias = "secret_key")]
    secret_key: String,
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<String>,
}

/// Every identity the gateway knows. None at all means the gateway is open.
#[derive(Debug, Default)]
pub struct Identities {
    all: Vec<Arc<Identity>>,
    keys: HashMap<String, (Arc<Identity>, String)>,
    anonymous: Option<Arc<Identity>>,
}

impl Identities {
    /// No identities: the gateway accepts every request, signed with any key or not.
    pub fn open() -> Identities {
        Identities::default()
    }

    /// True when no identity is configured.
    pub fn is_open(&self) -> bool {
        self.all.is_empty()
    }

    /// Parses SeaweedFS's `s3.json`.
    pub fn from_json(text: &str) -> GatewayResult<Identities> {
        let doc: S3Json = serde_json::from_str(text)
            .map_err(|e| GatewayError::Config(format!("the identities file is not valid: {e}")))?;
        let mut ids = Identities::default();
        for i in doc.identities.into_iter().filter(|i| !i.disabled) {
            let mut grants = Vec::new();
            for a in &i.actions {
                let (name, resource) = match a.split_once(':') {
                    Some((n, r)) => (n, Some(r.to_string()).filter(|r| !r.is_empty() && r != "*")),
                    None => (a.as_str(), None),
                };
                match Action::parse(name) {
                    Some(action) => grants.push(Grant { action, resource }),
                    None => {
                        tracing::warn!(identity = %i.name, action = %a, "unknown S3 action ignored")
                    }
                }
            }
            let id = Arc::new(Identity {
                account: i
                    .account
                    .as_ref()
                    .map_or_else(|| i.name.clone(), |a| a.id.clone()),
                name: i.name.clone(),
                grants,
            });
            if i.name == "anonymous" {
                ids.anonymous = Some(id.clone());
            }
            for c in i.credentials {
                ids.add_key(&id, c.access_key, c.secret_key)?;
            }
            ids.all.push(id);
        }
        Ok(ids)
    }

    fn add_key(&mut self, id: &Arc<Identity>, access: String, secret: String) -> GatewayResult<()> {
        if access.is_empty() || secret.is_empty() {
            return Err(GatewayError::Config(format!(
                "identity {}: access and secret keys must not be empty",
                id.name
            )));
        }
        if self.keys.contains_key(&access) {
            return Err(GatewayError::Config(format!(
                "access key {access} is given to two identities"
            )));
        }
        self.keys.insert(access, (id.clone(), secret));
        Ok(())
    }

    /// Adds an identity allowed everything, unless the access key is already known.
    pub fn with_admin(
        mut self,
        name: &str,
        access: &str,
        secret: &str,
    ) -> GatewayResult<Identities> {
        if self.keys.contains_key(access) {
            return Ok(self);
        }
        let id = Arc::new(Identity {
            name: name.to_string(),
            account: name.to_string(),
            grants: vec![Grant {
                action: Action::Admin,
                resource: None,
            }],
        });
        self.add_key(&id, access.to_string(), secret.to_string())?;
        self.all.push(id);
        Ok(self)
    }

    /// Reads `file` (if any), then adds an admin from the `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` environment variables when both are set. A file that
    /// yields no usable identity is refused: asking for identities and getting an open
    /// gateway would fail open.
    pub fn load(file: Option<&Path>) -> GatewayResult<Identities> {
        let ids = match file {
            Some(f) => {
                let text = std::fs::read_to_string(f).map_err(|e| {
                    GatewayError::Config(format!(
                        "cannot read the identities file {}: {e}",
                        f.display()
                    ))
                })?;
                let ids = Identities::from_json(&text)
                    .map_err(|e| GatewayError::Config(format!("{}: {e}", f.display())))?;
                if ids.is_open() {
                    return Err(GatewayError::Config(format!(
                        "{} defines no usable identity (none, or all disabled): refusing to \
                         start an S3 gateway open to anyone; leave -s3.config out for that",
                        f.display()
                    )));
                }
                ids
            }
            None => Identities::open(),
        };
        match (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Ok(a), Ok(s)) if !a.is_empty() && !s.is_empty() => ids.with_admin("env-admin", &a, &s),
            _ => Ok(ids),
        }
    }

    /// How many identities are configured, and whether one may administer everything.
    pub fn summary(&self) -> (usize, bool) {
        (
            self.all.len(),
            self.all.iter().any(|i| i.may_admin_everything()),
        )
    }

    /// The secret key of an access key.
    pub(crate) fn secret_of(&self, access: &str) -> Option<&str> {
        self.keys.get(access).map(|(_, s)| s.as_str())
    }

    /// The identity of unsigned requests, if `s3.json` names one.
    pub(crate) fn anonymous(&self) -> Option<Arc<Identity>> {
        self.anonymous.clone()
    }

    pub(crate) fn by_key(&self, access: &str) -> Option<&Arc<Identity>> {
        self.keys.get(access).map(|(i, _)| i)
    }
}

/// Secret keys for s3s's signature checks.
pub struct IamAuth(pub Arc<Identities>);

#[async_trait::async_trait]
impl S3Auth for IamAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.keys.get(access_key) {
            Some((_, secret)) => Ok(SecretKey::from(secret.as_str())),
            None => Err(GatewayError::InvalidAccessKeyId(format!(
                "the access key {access_key} does not exist"
            ))
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"identities":[
        {"name":"anonymous","actions":["Read:public"]},
        {"name":"admin","credentials":[{"accessKey":"AK1","secretKey":"SK1"}],"actions":["Admin"]},
        {"name":"u2","credentials":[{"accessKey":"AK2","secretKey":"SK2"}],
         "actions":["Read:b1","Write:b1/up/*","List:b1","Tagging:b*","Bogus"]},
        {"name":"off","disabled":true,"credentials":[{"accessKey":"AK3","secretKey":"SK3"}],"actions":["Admin"]}
    ]}"#;

    #[test]
    fn globs() {
        assert!(glob("a*", "abc"));
        assert!(glob("a?c", "abc"));
        assert!(glob("*", ""));
        assert!(glob("up/*", "up/x/y"));
        assert!(!glob("up/*", "upx"));
        assert!(glob("*.jpg", "a/b.jpg"));
        assert!(!glob("a", "ab"));
    }

    #[test]
    fn parses_and_scopes() {
        let ids = Identities::from_json(JSON).unwrap();
        assert!(!ids.is_open());
        assert_eq!(ids.summary(), (3, true));
        assert!(ids.by_key("AK3").is_none());
        let u2 = ids.by_key("AK2").unwrap();
        assert!(u2.allows(Action::Read, "b1", Some("any")));
        assert!(!u2.allows(Action::Read, "b2", Some("any")));
        assert!(u2.allows(Action::Write, "b1", Some("up/file")));
        assert!(!u2.allows(Action::Write, "b1", Some("other")));
        assert!(!u2.allows(Action::Write, "b1", None));
        assert!(u2.allows(Action::Tagging, "b9", Some("k")));
        assert!(!u2.allows(Action::Tagging, "c9", Some("k")));
        assert!(u2.allows(Action::Any, "b1", None));
        assert!(!u2.allows(Action::Any, "c2", None));
        assert!(!u2.allows(Action::Admin, "b1", None));
        assert!(u2.allows_some(Action::Write, "b1"));
        assert!(!u2.allows_some(Action::Write, "c1"));
        assert!(!u2.allows_some(Action::Admin, "b1"));
        let admin = ids.by_key("AK1").unwrap();
        assert!(admin.allows(Action::DeleteBucket, "x", None));
        let anon = ids.anonymous.clone().unwrap();
        assert!(anon.allows(Action::Read, "public", Some("k")));
        assert!(!anon.allows(Action::Write, "public", Some("k")));
    }

    #[test]
    fn env_style_admin_and_errors() {
        let ids = Identities::open().with_admin("env", "A", "S").unwrap();
        assert!(!ids.is_open());
        assert!(ids.by_key("A").unwrap().allows(Action::Admin, "b", None));
        assert!(Identities::from_json("{").is_err());
        let dup = r#"{"identities":[{"name":"a","credentials":[{"accessKey":"K","secretKey":"S"}]},
                                   {"name":"b","credentials":[{"accessKey":"K","secretKey":"T"}]}]}"#;
        assert!(Identities::from_json(dup).is_err());
        assert!(
            Identities::from_json(r#"{"identities":[]}"#)
                .unwrap()
                .is_open()
        );
        // A misspelt key is an error, not a silently missing identity.
        assert!(Identities::from_json(r#"{"identites":[]}"#).is_err());
        assert!(
            Identities::from_json(
                r#"{"identities":[{"name":"a","credential":[{"accessKey":"K","secretKey":"S"}]}]}"#
            )
            .is_err()
        );
        // SeaweedFS's extra keys are accepted.
        let sw = r#"{"identities":[{"name":"a","account":{"id":"x"},
            "credentials":[{"accessKey":"K","secretKey":"S","status":"Active"}],"actions":["Read"]}],
            "accounts":[{"id":"x","displayName":"X"}]}"#;
        assert!(!Identities::from_json(sw).unwrap().is_open());
    }

    #[test]
    fn a_file_without_usable_identities_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        for (i, text) in [
            "{}",
            r#"{"identities":[]}"#,
            r#"{"identities":[{"name":"a","disabled":true,"credentials":[{"accessKey":"K","secretKey":"S"}]}]}"#,
        ]
        .iter()
        .enumerate()
        {
            let f = dir.path().join(format!("s3-{i}.json"));
            std::fs::write(&f, text).unwrap();
            let e = Identities::load(Some(&f)).unwrap_err();
            assert!(e.to_string().contains("no usable identity"), "{e}");
        }
        let f = dir.path().join("typo.json");
        std::fs::write(&f, r#"{"identites":[]}"#).unwrap();
        assert!(Identities::load(Some(&f)).is_err());
    }
}
