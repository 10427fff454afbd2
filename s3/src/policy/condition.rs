//! Condition blocks of the IAM policy language: the operators (String*, Numeric*,
//! Date*, Bool, IpAddress/NotIpAddress, Null, each with `...IfExists`, and the
//! `ForAnyValue:`/`ForAllValues:` set qualifiers) and how one block is evaluated
//! against the request's context keys.

use std::collections::BTreeMap;
use std::net::IpAddr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Context, glob};

/// How an operator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    IpAddress,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Cmp::Eq => o == Equal,
            Cmp::Lt => o == Less,
            Cmp::Le => o != Greater,
            Cmp::Gt => o == Greater,
            Cmp::Ge => o != Less,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    None,
    AnyValue,
    AllValues,
}

/// One operator with its keys and values, e.g. `"StringLike": {"s3:prefix": ["a/*"]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    kind: Kind,
    negated: bool,
    if_exists: bool,
    set: SetQualifier,
    /// Key (lower-cased: keys are case-insensitive) → the policy's values.
    keys: BTreeMap<String, Vec<String>>,
}

fn parse_kind(name: &str) -> Option<(Kind, bool)> {
    use Cmp::*;
    Some(match name {
        "StringEquals" => (Kind::StringEquals, false),
        "StringNotEquals" => (Kind::StringEquals, true),
        "StringEqualsIgnoreCase" => (Kind::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Kind::StringEqualsIgnoreCase, true),
        "StringLike" => (Kind::StringLike, false),
        "StringNotLike" => (Kind::StringLike, true),
        "NumericEquals" => (Kind::Numeric(Eq), false),
        "NumericNotEquals" => (Kind::Numeric(Eq), true),
        "NumericLessThan" => (Kind::Numeric(Lt), false),
        "NumericLessThanEquals" => (Kind::Numeric(Le), false),
        "NumericGreaterThan" => (Kind::Numeric(Gt), false),
        "NumericGreaterThanEquals" => (Kind::Numeric(Ge), false),
        "DateEquals" => (Kind::Date(Eq), false),
        "DateNotEquals" => (Kind::Date(Eq), true),
        "DateLessThan" => (Kind::Date(Lt), false),
        "DateLessThanEquals" => (Kind::Date(Le), false),
        "DateGreaterThan" => (Kind::Date(Gt), false),
        "DateGreaterThanEquals" => (Kind::Date(Ge), false),
        "Bool" => (Kind::Bool, false),
        "IpAddress" => (Kind::IpAddress, false),
        "NotIpAddress" => (Kind::IpAddress, true),
        "Null" => (Kind::Null, false),
        _ => return None,
    })
}

/// A JSON value of a condition: a string, number or bool, or a list of them.
fn values(v: &serde_json::Value) -> Result<Vec<String>, String> {
    let one = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("condition values are strings, not {other}")),
    };
    match v {
        serde_json::Value::Array(a) if !a.is_empty() => a.iter().map(one).collect(),
        serde_json::Value::Array(_) => Err("a condition key needs at least one value".into()),
        v => Ok(vec![one(v)?]),
    }
}

fn date(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
        s.parse::<i64>()
            .ok()
            .and_then(|n| OffsetDateTime::from_unix_timestamp(n).ok())
    })
}

fn ip_in(range: &str, ip: &str) -> bool {
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    match range.parse::<ipnet::IpNet>() {
        Ok(net) => net.contains(&ip),
        Err(_) => range.parse::<IpAddr>().is_ok_and(|r| r == ip),
    }
}

impl Condition {
    /// Parses one operator entry of a `Condition` block.
    pub fn parse(op: &str, body: &serde_json::Value) -> Result<Condition, String> {
        let (set, rest) = if let Some(r) = op.strip_prefix("ForAnyValue:") {
            (SetQualifier::AnyValue, r)
        } else if let Some(r) = op.strip_prefix("ForAllValues:") {
            (SetQualifier::AllValues, r)
        } else {
            (SetQualifier::None, op)
        };
        let (name, if_exists) = match rest.strip_suffix("IfExists") {
            Some(n) if n != "Null" => (n, true),
            _ => (rest, false),
        };
        let (kind, negated) =
            parse_kind(name).ok_or_else(|| format!("Invalid Condition type : {op}"))?;
        let obj = body
            .as_object()
            .ok_or_else(|| format!("the {op} condition must be an object of keys"))?;
        let mut keys = BTreeMap::new();
        for (k, v) in obj {
            let vals = values(v)?;
            for val in &vals {
                let ok = match kind {
                    Kind::Numeric(_) => val.parse::<f64>().is_ok(),
                    Kind::Date(_) => date(val).is_some(),
                    Kind::Bool | Kind::Null => val == "true" || val == "false",
                    Kind::IpAddress => {
                        val.parse::<ipnet::IpNet>().is_ok() || val.parse::<IpAddr>().is_ok()
                    }
                    _ => true,
                };
                if !ok {
                    return Err(format!("invalid value {val:?} for {op} on {k}"));
                }
            }
            keys.insert(k.to_ascii_lowercase(), vals);
        }
        Ok(Condition {
            kind,
            negated,
            if_exists,
            set,
            keys,
        })
    }

    /// True when a key is `s3:ExistingObjectTag/...`.
    pub fn names_object_tags(&self) -> bool {
        self.keys
            .keys()
            .any(|k| k.starts_with("s3:existingobjecttag/"))
    }

    /// True when the request context satisfies every key of this operator.
    pub fn holds(&self, ctx: &Context) -> bool {
        self.keys.iter().all(|(key, wanted)| {
            let got = ctx.get(key);
            if self.kind == Kind::Null {
                // {"Null": {"k": "true"}}: true when the key is absent.
                let absent = got.is_none_or(|v| v.is_empty());
                return wanted.iter().any(|w| (w == "true") == absent);
            }
            let Some(got) = got.filter(|v| !v.is_empty()) else {
                // Absent: IfExists passes; a negated operator holds; others fail.
                return self.if_exists || self.negated;
            };
            let one = |v: &str| wanted.iter().any(|w| self.matches(w, v));
            let any = match self.set {
                SetQualifier::AllValues => got.iter().all(|v| one(v)),
                SetQualifier::AnyValue | SetQualifier::None => got.iter().any(|v| one(v)),
            };
            any != self.negated
        })
    }

    /// Does the request value `got` match the policy value `want`?
    fn matches(&self, want: &str, got: &str) -> bool {
        match self.kind {
            Kind::StringEquals => want == got,
            Kind::StringEqualsIgnoreCase => want.eq_ignore_ascii_case(got),
            Kind::StringLike => glob(want, got),
            Kind::Numeric(cmp) => match (got.parse::<f64>(), want.parse::<f64>()) {
                (Ok(g), Ok(w)) => g.partial_cmp(&w).is_some_and(|o| cmp.holds(o)),
                _ => false,
            },
            Kind::Date(cmp) => match (date(got), date(want)) {
                (Some(g), Some(w)) => cmp.holds(g.cmp(&w)),
                _ => false,
            },
            Kind::Bool => want.eq_ignore_ascii_case(got),
            Kind::IpAddress => ip_in(want, got),
            Kind::Null => false,
        }
    }
}
