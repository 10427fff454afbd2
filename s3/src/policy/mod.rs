//! Bucket policies: the IAM policy language (Version, Statement, Sid, Effect,
//! Principal / NotPrincipal, Action / NotAction, Resource / NotResource, Condition),
//! parsed and checked once when a policy is put ([`Policy::parse`], `MalformedPolicy`
//! with a reason), and evaluated per request ([`Policy::evaluate`]): an explicit Deny
//! wins over any Allow.

pub mod bucket;
mod condition;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::Value;

pub(crate) use crate::auth::glob;
pub use condition::Condition;

/// Who makes a request, as policies name principals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    /// An identity of `s3.json`: its account id and its name.
    User {
        account: String,
        name: String,
    },
}

/// The request's condition keys (lower-cased) and their values.
#[derive(Debug, Clone, Default)]
pub struct Context {
    keys: HashMap<String, Vec<String>>,
}

impl Context {
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.keys
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.into());
    }

    pub fn get(&self, key: &str) -> Option<&Vec<String>> {
        self.keys.get(&key.to_ascii_lowercase())
    }
}

/// What a policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Deny,
    Allow,
    /// No statement applies.
    Silent,
}

#[derive(Debug, Clone, PartialEq)]
enum Principals {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    Everyone,
    /// Account ids (`123`, `arn:aws:iam::123:root`) and users (`arn:aws:iam::123:user/name`).
    Some {
        accounts: Vec<String>,
        users: Vec<(String, String)>,
    },
}

impl Principals {
    fn parse(v: &Value) -> Result<Principals, String> {
        let list = match v {
            Value::String(s) if s == "*" => return Ok(Principals::Everyone),
            Value::Object(o) => {
                let mut all = Vec::new();
                for (kind, names) in o {
                    if kind != "AWS" && kind != "CanonicalUser" {
                        return Err(format!("unsupported principal type {kind:?}"));
                    }
                    all.extend(strings(names, "Principal")?);
                }
                all
            }
            _ => return Err("Principal must be \"*\" or an object".into()),
        };
        if list.iter().any(|p| p == "*") {
            return Ok(Principals::Everyone);
        }
        let (mut accounts, mut users) = (Vec::new(), Vec::new());
        for p in list {
            match p.strip_prefix("arn:aws:iam::") {
                Some(rest) => match rest.split_once(':') {
                    Some((acct, "root")) => accounts.push(acct.to_string()),
                    Some((acct, u)) if u.starts_with("user/") => {
                        users.push((acct.to_string(), u["user/".len()..].to_string()));
                    }
                    _ => return Err(format!("Invalid principal in policy: {p}")),
                },
                None if !p.is_empty() && !p.contains(':') => accounts.push(p),
                None => return Err(format!("Invalid principal in policy: {p}")),
            }
        }
        Ok(Principals::Some { accounts, users })
    }

    fn contains(&self, who: &Principal) -> bool {
        match (self, who) {
            (Principals::Everyone, _) => true,
            (Principals::Some { .. }, Principal::Anonymous) => false,
            (Principals::Some { accounts, users }, Principal::User { account, name }) => {
                accounts.contains(account)
                    || users
                        .iter()
                        .any(|(a, n)| a == account && (n == name || n == "*"))
            }
        }
    }
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
struct Statement {
    allow: bool,
    /// `(principals, negated)`.
    principal: (Principals, bool),
    /// `(patterns, negated)`, lower-cased (`s3:getobject`, `s3:*`).
    action: (Vec<String>, bool),
    /// `(patterns, negated)`: `arn:aws:s3:::bucket/key*`.
    resource: (Vec<String>, bool),
    conditions: Vec<Condition>,
}

impl Statement {
    fn applies(&self, who: &Principal, action: &str, resource: &str, ctx: &Context) -> bool {
        let action = action.to_ascii_lowercase();
        let principal = self.principal.0.contains(who) != self.principal.1;
        let act = self.action.0.iter().any(|p| glob(p, &action)) != self.action.1;
        let res = self.resource.0.iter().any(|p| glob(p, resource)) != self.resource.1;
        principal && act && res && self.conditions.iter().all(|c| c.holds(ctx))
    }

    /// Allows anyone at all, with no condition: what makes a bucket public.
    fn is_public_allow(&self) -> bool {
        self.allow && self.principal == (Principals::Everyone, false) && self.conditions.is_empty()
    }
}

/// A parsed bucket policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// A string or a non-empty list of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{what} entries must be strings"))
            })
            .collect(),
        _ => Err(format!(
            "{what} must be a string or a non-empty list of strings"
        )),
    }
}

/// Exactly one of `name` and `Not<name>`: (values, negated).
fn one_of(o: &serde_json::Map<String, Value>, name: &str) -> Result<(Value, bool), String> {
    let not = format!("Not{name}");
    match (o.get(name), o.get(&not)) {
        (Some(v), None) => Ok((v.clone(), false)),
        (None, Some(v)) => Ok((v.clone(), true)),
        (Some(_), Some(_)) => Err(format!("a statement has {name} or {not}, not both")),
        (None, None) => Err(format!("a statement needs {name} or {not}")),
    }
}

impl Policy {
    /// Parses and checks a bucket policy for `bucket`: every resource must be in it.
    pub fn parse(text: &str, bucket: &str) -> Result<Policy, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let doc = doc.as_object().ok_or("the policy must be a JSON object")?;
        for k in doc.keys() {
            if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
                return Err(format!("unknown policy field {k:?}"));
            }
        }
        match doc.get("Version").and_then(Value::as_str) {
            None | Some("2012-10-17" | "2008-10-17") => {}
            Some(v) => return Err(format!("unsupported policy Version {v:?}")),
        }
        let list = match doc.get("Statement") {
            Some(Value::Array(a)) if !a.is_empty() => a.clone(),
            Some(o @ Value::Object(_)) => vec![o.clone()],
            _ => return Err("the policy needs at least one Statement".into()),
        };
        let bucket_arn = format!("arn:aws:s3:::{bucket}");
        let mut statements = Vec::new();
        for s in &list {
            let o = s.as_object().ok_or("a Statement must be an object")?;
            for k in o.keys() {
                if !matches!(
                    k.as_str(),
                    "Sid"
                        | "Effect"
                        | "Principal"
                        | "NotPrincipal"
                        | "Action"
                        | "NotAction"
                        | "Resource"
                        | "NotResource"
                        | "Condition"
                ) {
                    return Err(format!("unknown statement field {k:?}"));
                }
            }
            let allow = match o.get("Effect").and_then(Value::as_str) {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => return Err("Effect must be Allow or Deny".into()),
            };
            let (p, p_not) = one_of(o, "Principal")?;
            let principal = (Principals::parse(&p)?, p_not);
            let (a, a_not) = one_of(o, "Action")?;
            let actions: Vec<String> = strings(&a, "Action")?
                .into_iter()
                .map(|x| x.to_ascii_lowercase())
                .collect();
            for x in &actions {
                if x != "*" && !x.starts_with("s3:") {
                    return Err(format!("Policy has invalid action: {x}"));
                }
            }
            let (r, r_not) = one_of(o, "Resource")?;
            let resources = strings(&r, "Resource")?;
            for x in &resources {
                let in_bucket = x == &bucket_arn
                    || x.starts_with(&format!("{bucket_arn}/"))
                    || x == "*"
                    || x == "arn:aws:s3:::*";
                if !in_bucket {
                    return Err(format!("Policy has invalid resource: {x}"));
                }
            }
            let mut conditions = Vec::new();
            if let Some(c) = o.get("Condition") {
                let c = c.as_object().ok_or("Condition must be an object")?;
                for (op, body) in c {
                    conditions.push(Condition::parse(op, body)?);
                }
            }
            statements.push(Statement {
                allow,
                principal,
                action: (actions, a_not),
                resource: (resources, r_not),
                conditions,
            });
        }
        Ok(Policy { statements })
    }

    /// What the policy says about `who` doing `action` (`s3:GetObject`) on `resource`
    /// (`arn:aws:s3:::bucket/key`): Deny if any applicable statement denies, else
    /// Allow if one allows.
    pub fn evaluate(
        &self,
        who: &Principal,
        action: &str,
        resource: &str,
        ctx: &Context,
    ) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            if s.applies(who, action, resource, ctx) {
                if !s.allow {
                    return Decision::Deny;
                }
                allowed = true;
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::Silent
        }
    }

    /// True when a statement allows everyone without conditions (GetBucketPolicyStatus).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(Statement::is_public_allow)
    }

    /// True when a condition names `s3:ExistingObjectTag/...` keys, which need the
    /// object's tags in the context.
    pub fn needs_object_tags(&self) -> bool {
        self.statements
            .iter()
            .flat_map(|s| &s.conditions)
            .any(Condition::names_object_tags)
    }
}
