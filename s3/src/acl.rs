//! Access control lists as S3 keeps them: an owner (an account) and grants to accounts
//! or to the groups AllUsers / AuthenticatedUsers, with READ, WRITE, READ_ACP,
//! WRITE_ACP or FULL_CONTROL. Made from canned ACLs (`x-amz-acl`), `x-amz-grant-*`
//! headers or an `AccessControlPolicy` body; stored as JSON in an entry's
//! `X-Kelp-S3-Acl`; converted to the S3 shapes for Get*Acl.

use serde::{Deserialize, Serialize};

use kelp_filer::entry::Entry;
use s3s::dto::{self, Grants, Owner, Permission, Type};

use crate::error::{GatewayError, GatewayResult};
use crate::policy::Principal;

/// The entry attribute holding the ACL.
pub const ACL_KEY: &str = "X-Kelp-S3-Acl";
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// An account: its canonical id (the account id) and display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

impl Account {
    /// The owner of what an open gateway (no identities) creates.
    pub fn gateway() -> Account {
        Account {
            id: "kelp".into(),
            name: "kelp".into(),
        }
    }

    pub fn to_dto(&self) -> Owner {
        Owner {
            id: Some(self.id.clone()),
            display_name: Some(self.name.clone()).filter(|n| !n.is_empty()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Perm {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl Perm {
    fn parse(s: &str) -> GatewayResult<Perm> {
        Ok(match s {
            Permission::READ => Perm::Read,
            Permission::WRITE => Perm::Write,
            Permission::READ_ACP => Perm::ReadAcp,
            Permission::WRITE_ACP => Perm::WriteAcp,
            Permission::FULL_CONTROL => Perm::FullControl,
            other => {
                return Err(GatewayError::MalformedXml(format!(
                    "unknown permission {other:?}"
                )));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Perm::Read => Permission::READ,
            Perm::Write => Permission::WRITE,
            Perm::ReadAcp => Permission::READ_ACP,
            Perm::WriteAcp => Permission::WRITE_ACP,
            Perm::FullControl => Permission::FULL_CONTROL,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Grantee {
    User {
        id: String,
        #[serde(default)]
        name: String,
    },
    Group {
        uri: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclGrant {
    pub grantee: Grantee,
    pub permission: Perm,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub owner: Account,
    pub grants: Vec<AclGrant>,
}

fn user(a: &Account, permission: Perm) -> AclGrant {
    AclGrant {
        grantee: Grantee::User {
            id: a.id.clone(),
            name: a.name.clone(),
        },
        permission,
    }
}

fn group(uri: &str, permission: Perm) -> AclGrant {
    AclGrant {
        grantee: Grantee::Group { uri: uri.into() },
        permission,
    }
}

/// The `x-amz-grant-*` header values of a request, by permission.
#[derive(Debug, Default, Clone, Copy)]
pub struct GrantHeaders<'a> {
    pub read: Option<&'a str>,
    pub write: Option<&'a str>,
    pub read_acp: Option<&'a str>,
    pub write_acp: Option<&'a str>,
    pub full_control: Option<&'a str>,
}

impl GrantHeaders<'_> {
    pub fn is_empty(&self) -> bool {
        self.read.is_none()
            && self.write.is_none()
            && self.read_acp.is_none()
            && self.write_acp.is_none()
            && self.full_control.is_none()
    }
}

impl Acl {
    /// Only the owner, with FULL_CONTROL.
    pub fn private(owner: Account) -> Acl {
        Acl {
            grants: vec![user(&owner, Perm::FullControl)],
            owner,
        }
    }

    /// A canned ACL; `bucket_owner` for the `bucket-owner-*` ones on objects.
    pub fn canned(
        name: &str,
        owner: Account,
        bucket_owner: Option<&Account>,
    ) -> GatewayResult<Acl> {
        let mut acl = Acl::private(owner);
        match name {
            "private" => {}
            "public-read" => acl.grants.push(group(ALL_USERS, Perm::Read)),
            "public-read-write" => {
                acl.grants.push(group(ALL_USERS, Perm::Read));
                acl.grants.push(group(ALL_USERS, Perm::Write));
            }
            "authenticated-read" => acl.grants.push(group(AUTHENTICATED_USERS, Perm::Read)),
            "log-delivery-write" => {
                acl.grants.push(group(LOG_DELIVERY, Perm::Write));
                acl.grants.push(group(LOG_DELIVERY, Perm::ReadAcp));
            }
            "bucket-owner-read" | "bucket-owner-full-control" => {
                if let Some(b) = bucket_owner.filter(|b| b.id != acl.owner.id) {
                    let p = if name == "bucket-owner-read" {
                        Perm::Read
                    } else {
                        Perm::FullControl
                    };
                    acl.grants.push(user(b, p));
                }
            }
            "aws-exec-read" => {}
            other => {
                return Err(GatewayError::InvalidArgument(format!(
                    "unknown canned ACL {other:?}"
                )));
            }
        }
        Ok(acl)
    }

    /// An ACL from `x-amz-grant-*` headers (`id="..."`, `uri="..."`; `emailAddress`
    /// is not supported), owned by `owner`.
    pub fn from_headers(owner: Account, h: GrantHeaders<'_>) -> GatewayResult<Acl> {
        let mut grants = Vec::new();
        for (perm, value) in [
            (Perm::Read, h.read),
            (Perm::Write, h.write),
            (Perm::ReadAcp, h.read_acp),
            (Perm::WriteAcp, h.write_acp),
            (Perm::FullControl, h.full_control),
        ] {
            let Some(value) = value else { continue };
            for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (kind, v) = item
                    .split_once('=')
                    .ok_or_else(|| GatewayError::InvalidArgument(format!("bad grant {item:?}")))?;
                let v = v.trim().trim_matches('"').to_string();
                let grantee = match kind.trim().to_ascii_lowercase().as_str() {
                    "id" => Grantee::User {
                        id: v,
                        name: String::new(),
                    },
                    "uri" => Grantee::Group { uri: v },
                    "emailaddress" => {
                        return Err(GatewayError::NotImplemented(
                            "grants to e-mail addresses are not supported".into(),
                        ));
                    }
                    other => {
                        return Err(GatewayError::InvalidArgument(format!(
                            "bad grantee type {other:?}"
                        )));
                    }
                };
                grants.push(AclGrant {
                    grantee,
                    permission: perm,
                });
            }
        }
        Ok(Acl { owner, grants })
    }

    /// An ACL from an `AccessControlPolicy` body; its owner must be `owner`.
    pub fn from_dto(p: &dto::AccessControlPolicy, owner: Account) -> GatewayResult<Acl> {
        if let Some(id) = p.owner.as_ref().and_then(|o| o.id.as_deref())
            && id != owner.id
        {
            return Err(GatewayError::AccessDenied(
                "the ACL names another owner".into(),
            ));
        }
        let mut grants = Vec::new();
        for g in p.grants.iter().flatten() {
            let (Some(grantee), Some(perm)) = (&g.grantee, &g.permission) else {
                return Err(GatewayError::MalformedXml(
                    "a Grant needs a Grantee and a Permission".into(),
                ));
            };
            let grantee = match grantee.type_.as_str() {
                Type::CANONICAL_USER => Grantee::User {
                    id: grantee.id.clone().ok_or_else(|| {
                        GatewayError::MalformedXml("a CanonicalUser grantee needs an ID".into())
                    })?,
                    name: grantee.display_name.clone().unwrap_or_default(),
                },
                Type::GROUP => Grantee::Group {
                    uri: grantee.uri.clone().ok_or_else(|| {
                        GatewayError::MalformedXml("a Group grantee needs a URI".into())
                    })?,
                },
                _ => {
                    return Err(GatewayError::NotImplemented(
                        "grants to e-mail addresses are not supported".into(),
                    ));
                }
            };
            grants.push(AclGrant {
                grantee,
                permission: Perm::parse(perm.as_str())?,
            });
        }
        Ok(Acl { owner, grants })
    }

    pub fn to_dto(&self) -> (Option<Owner>, Option<Grants>) {
        let grants = self
            .grants
            .iter()
            .map(|g| dto::Grant {
                grantee: Some(match &g.grantee {
                    Grantee::User { id, name } => dto::Grantee {
                        id: Some(id.clone()),
                        display_name: Some(name.clone()).filter(|n| !n.is_empty()),
                        type_: Type::from_static(Type::CANONICAL_USER),
                        email_address: None,
                        uri: None,
                    },
                    Grantee::Group { uri } => dto::Grantee {
                        id: None,
                        display_name: None,
                        type_: Type::from_static(Type::GROUP),
                        email_address: None,
                        uri: Some(uri.clone()),
                    },
                }),
                permission: Some(Permission::from_static(g.permission.as_str())),
            })
            .collect();
        (Some(self.owner.to_dto()), Some(grants))
    }

    /// The ACL of an entry, if it has one.
    pub fn of(e: &Entry) -> Option<Acl> {
        e.extended
            .get(ACL_KEY)
            .and_then(|v| serde_json::from_slice(v).ok())
    }

    pub fn to_attr(&self) -> (String, Vec<u8>) {
        (
            ACL_KEY.to_string(),
            serde_json::to_vec(self).unwrap_or_default(),
        )
    }

    /// Grants something to AllUsers or AuthenticatedUsers.
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|g| {
            matches!(&g.grantee, Grantee::Group { uri } if uri == ALL_USERS || uri == AUTHENTICATED_USERS)
        })
    }

    /// Does a grant give `who` the permission `want`? Public grants count unless
    /// `ignore_public` (IgnorePublicAcls).
    pub fn allows(&self, who: &Principal, want: Perm, ignore_public: bool) -> bool {
        self.grants.iter().any(|g| {
            let covers = g.permission == want || g.permission == Perm::FullControl;
            let to_who = match (&g.grantee, who) {
                (Grantee::User { id, .. }, Principal::User { account, .. }) => id == account,
                (Grantee::User { .. }, Principal::Anonymous) => false,
                (Grantee::Group { uri }, _) if uri == ALL_USERS => !ignore_public,
                (Grantee::Group { uri }, Principal::User { .. }) if uri == AUTHENTICATED_USERS => {
                    !ignore_public
                }
                (Grantee::Group { .. }, _) => false,
            };
            covers && to_who
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(id: &str) -> Account {
        Account {
            id: id.into(),
            name: id.into(),
        }
    }

    fn who(id: &str) -> Principal {
        Principal::User {
            account: id.into(),
            name: id.into(),
        }
    }

    #[test]
    fn canned_acls_grant_what_s3_documents() {
        let a = Acl::canned("public-read", acct("o"), None).unwrap();
        assert!(a.allows(&Principal::Anonymous, Perm::Read, false));
        assert!(!a.allows(&Principal::Anonymous, Perm::Read, true));
        assert!(!a.allows(&Principal::Anonymous, Perm::Write, false));
        assert!(a.allows(&who("o"), Perm::WriteAcp, false));
        assert!(a.is_public());
        let a = Acl::canned("authenticated-read", acct("o"), None).unwrap();
        assert!(a.allows(&who("x"), Perm::Read, false));
        assert!(!a.allows(&Principal::Anonymous, Perm::Read, false));
        let a = Acl::canned("bucket-owner-full-control", acct("w"), Some(&acct("b"))).unwrap();
        assert!(a.allows(&who("b"), Perm::WriteAcp, false));
        let a = Acl::canned("private", acct("o"), None).unwrap();
        assert!(!a.allows(&who("x"), Perm::Read, false) && !a.is_public());
        assert!(Acl::canned("nope", acct("o"), None).is_err());
    }

    #[test]
    fn grant_headers_parse_ids_and_groups() {
        let h = GrantHeaders {
            read: Some(&format!("uri=\"{ALL_USERS}\", id=\"friend\"")),
            full_control: Some("id=\"boss\""),
            ..Default::default()
        };
        let a = Acl::from_headers(acct("o"), h).unwrap();
        assert!(a.allows(&Principal::Anonymous, Perm::Read, false));
        assert!(a.allows(&who("friend"), Perm::Read, false));
        assert!(a.allows(&who("boss"), Perm::WriteAcp, false));
        let bad = GrantHeaders {
            read: Some("emailAddress=\"a@b\""),
            ..Default::default()
        };
        assert!(Acl::from_headers(acct("o"), bad).is_err());
    }

    #[test]
    fn stored_form_round_trips() {
        let a = Acl::canned("public-read-write", acct("o"), None).unwrap();
        let (k, v) = a.to_attr();
        let mut e = Entry::default();
        e.extended.insert(k, v);
        assert_eq!(Acl::of(&e), Some(a));
    }
}
