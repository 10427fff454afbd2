//! The lifecycle configuration of a bucket as kelp keeps it: rules checked the way S3
//! checks them when they are PUT, turned back into the DTOs a GET answers, and the
//! pure arithmetic of when an object, a noncurrent version or a multipart upload is due.
//!
//! "Days" are counted in a day of `day` seconds (86400 in production; tests shorten it,
//! like Ceph's `rgw_lc_debug_interval`). As in S3, a deadline of `n` days after a time
//! is rounded up to the next day boundary (midnight UTC: a multiple of `day` since the
//! unix epoch).

use std::collections::HashSet;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use s3s::dto::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleAndOperator, LifecycleRuleFilter,
    NoncurrentVersionExpiration, Tag, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::error::{GatewayError, GatewayResult};

/// S3's limit on rules per configuration.
pub const MAX_RULES: usize = 1000;
/// S3's limit on the length of a rule id.
const MAX_ID_LEN: usize = 255;
/// S3's limit on `NewerNoncurrentVersions`.
const MAX_NEWER_NONCURRENT: u32 = 100;
/// A real day, for checking that a `Date` is a midnight UTC.
const UTC_DAY: i64 = 86_400;

/// A bucket's lifecycle configuration: its rules, in the order they were given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub rules: Vec<Rule>,
}

/// One lifecycle rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique within the configuration (generated when the rule had none).
    pub id: String,
    /// `Status` is `Enabled`; a disabled rule is kept but never acts.
    pub enabled: bool,
    /// Which objects (and uploads) the rule applies to.
    pub filter: Filter,
    /// What happens to current versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Expiration>,
    /// What happens to noncurrent versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent: Option<Noncurrent>,
    /// `AbortIncompleteMultipartUpload`'s `DaysAfterInitiation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_days: Option<u32>,
}

/// How a filter was written, so that a GET gives back the form that was PUT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Form {
    /// The rule's legacy top-level `Prefix`, no `Filter`.
    Legacy,
    /// An empty `<Filter/>`.
    Empty,
    /// One element directly in `Filter` (`Prefix`, `Tag` or an object size).
    #[default]
    Single,
    /// `Filter` holding an `And`.
    And,
}

/// The objects a rule applies to: all conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// The key starts with it ("" for every key).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// The object has each of these tags, with this value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// The object is strictly larger (bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_greater_than: Option<u64>,
    /// The object is strictly smaller (bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_less_than: Option<u64>,
    /// How it was written (only for answering a GET).
    #[serde(default)]
    pub form: Form,
}

/// When current versions expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiration {
    /// This many days after the object was written (rounded up to a day boundary).
    Days(u32),
    /// At this time (unix seconds, a midnight UTC).
    Date(i64),
    /// Remove a delete marker once it is the only version left of its key.
    ExpiredObjectDeleteMarker,
}

/// When noncurrent versions are deleted: both given conditions must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noncurrent {
    /// Days since the version became noncurrent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// How many newer noncurrent versions are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent_versions: Option<u32>,
}

fn malformed(m: impl Into<String>) -> GatewayError {
    GatewayError::MalformedXml(m.into())
}

fn invalid(m: impl Into<String>) -> GatewayError {
    GatewayError::InvalidArgument(m.into())
}

/// `v` if it is a positive number of days, else InvalidArgument with `what`.
fn positive(v: i32, what: &str) -> GatewayResult<u32> {
    u32::try_from(v)
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| invalid(format!("'{what}' must be a positive integer")))
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// The length of a day in seconds, never zero.
fn day_secs(day: u64) -> i64 {
    i64::try_from(day).unwrap_or(i64::MAX).max(1)
}

/// The first day boundary (a multiple of `day` seconds since the epoch) at or after
/// `start_secs + days` days: when something `days` days old after `start_secs` is due.
pub fn expiry_after(start_secs: i64, days: u32, day: u64) -> i64 {
    let d = day_secs(day);
    let t = start_secs.saturating_add(i64::from(days).saturating_mul(d));
    match t.rem_euclid(d) {
        0 => t,
        r => t.saturating_add(d - r),
    }
}

/// The value of an `x-amz-expiration` header: `expiry-date="<HTTP date>",
/// rule-id="<id>"` (quotes are dropped from the id).
#[cfg_attr(not(test), allow(dead_code))] // for x-amz-expiration
pub fn expiration_header(expiry_secs: i64, rule_id: &str) -> String {
    let when = UNIX_EPOCH + Duration::from_secs(u64::try_from(expiry_secs).unwrap_or(0));
    format!(
        "expiry-date=\"{}\", rule-id=\"{}\"",
        httpdate::fmt_http_date(when),
        rule_id.replace('"', "")
    )
}

/// A rule id like S3's generated ones: base64 of a random UUID.
fn generated_id() -> String {
    let r = rand::random::<u128>().to_be_bytes();
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    base64::engine::general_purpose::STANDARD.encode(uuid)
}

fn tag_of(t: Tag) -> GatewayResult<(String, String)> {
    let key = t
        .key
        .ok_or_else(|| malformed("a lifecycle filter Tag needs a Key"))?;
    let value = t.value.unwrap_or_default();
    if key.is_empty() || key.chars().count() > 128 {
        return Err(GatewayError::InvalidTag(format!(
            "the tag key {key:?} must be 1 to 128 characters"
        )));
    }
    if value.chars().count() > 256 {
        return Err(GatewayError::InvalidTag(format!(
            "the value of the tag {key:?} is longer than 256 characters"
        )));
    }
    Ok((key, value))
}

fn size_of(v: i64, what: &str) -> GatewayResult<u64> {
    u64::try_from(v).map_err(|_| invalid(format!("'{what}' must not be negative")))
}

impl Filter {
    /// The filter of a rule from its legacy `Prefix` and its `Filter`.
    fn from_dto(
        prefix: Option<String>,
        filter: Option<LifecycleRuleFilter>,
    ) -> GatewayResult<Self> {
        let f = match (prefix, filter) {
            (Some(_), Some(_)) => {
                return Err(malformed("a rule cannot have both a Prefix and a Filter"));
            }
            (None, None) => return Err(malformed("a rule needs a Filter or a Prefix")),
            (Some(prefix), None) => {
                return Ok(Filter {
                    prefix,
                    form: Form::Legacy,
                    ..Filter::default()
                });
            }
            (None, Some(f)) => f,
        };
        let given = [
            f.prefix.is_some(),
            f.tag.is_some(),
            f.object_size_greater_than.is_some(),
            f.object_size_less_than.is_some(),
            f.and.is_some(),
        ];
        let (prefix, tags, gt, lt, form) = match given.iter().filter(|g| **g).count() {
            0 => (None, Vec::new(), None, None, Form::Empty),
            1 => match f.and {
                Some(a) => (
                    a.prefix,
                    a.tags.unwrap_or_default(),
                    a.object_size_greater_than,
                    a.object_size_less_than,
                    Form::And,
                ),
                None => (
                    f.prefix,
                    f.tag.into_iter().collect(),
                    f.object_size_greater_than,
                    f.object_size_less_than,
                    Form::Single,
                ),
            },
            _ => {
                return Err(malformed(
                    "a Filter holds only one of Prefix, Tag, ObjectSizeGreaterThan, \
                     ObjectSizeLessThan and And: combine conditions with And",
                ));
            }
        };
        let tags = tags
            .into_iter()
            .map(tag_of)
            .collect::<GatewayResult<Vec<_>>>()?;
        let mut keys = HashSet::new();
        if let Some((k, _)) = tags.iter().find(|(k, _)| !keys.insert(k.as_str())) {
            return Err(invalid(format!(
                "Duplicate Tag Keys are not allowed: {k:?}"
            )));
        }
        let size_greater_than = gt
            .map(|v| size_of(v, "ObjectSizeGreaterThan"))
            .transpose()?;
        let size_less_than = lt.map(|v| size_of(v, "ObjectSizeLessThan")).transpose()?;
        if size_less_than == Some(0) {
            return Err(invalid("'ObjectSizeLessThan' must be a positive integer"));
        }
        if let (Some(g), Some(l)) = (size_greater_than, size_less_than)
            && g >= l
        {
            return Err(invalid(
                "'ObjectSizeGreaterThan' must be less than 'ObjectSizeLessThan'",
            ));
        }
        Ok(Filter {
            prefix: prefix.unwrap_or_default(),
            tags,
            size_greater_than,
            size_less_than,
            form,
        })
    }

    /// The legacy `Prefix` and the `Filter` of a rule, in the form they were given.
    fn to_dto(&self) -> (Option<String>, Option<LifecycleRuleFilter>) {
        let others = self.tags.len()
            + usize::from(self.size_greater_than.is_some())
            + usize::from(self.size_less_than.is_some());
        let conditions = others + usize::from(!self.prefix.is_empty());
        let gt = self
            .size_greater_than
            .map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let lt = self
            .size_less_than
            .map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let tag = |(k, v): &(String, String)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        };
        let filter = match self.form {
            Form::Legacy if others == 0 => return (Some(self.prefix.clone()), None),
            Form::Empty if conditions == 0 => LifecycleRuleFilter::default(),
            form if form == Form::And || conditions > 1 => LifecycleRuleFilter {
                and: Some(LifecycleRuleAndOperator {
                    prefix: Some(self.prefix.clone()).filter(|p| !p.is_empty()),
                    tags: Some(self.tags.iter().map(tag).collect())
                        .filter(|t: &Vec<Tag>| !t.is_empty()),
                    object_size_greater_than: gt,
                    object_size_less_than: lt,
                }),
                ..LifecycleRuleFilter::default()
            },
            _ => LifecycleRuleFilter {
                prefix: (others == 0).then(|| self.prefix.clone()),
                tag: self.tags.first().map(tag),
                object_size_greater_than: gt,
                object_size_less_than: lt,
                ..LifecycleRuleFilter::default()
            },
        };
        (None, Some(filter))
    }

    /// Does an object with this key, size (bytes) and tags pass the filter? Every tag of
    /// the filter must be among `tags` with the same value; sizes compare strictly.
    pub fn matches(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        key.starts_with(&self.prefix)
            && self.tags.iter().all(|t| tags.contains(t))
            && self.size_greater_than.is_none_or(|g| size > g)
            && self.size_less_than.is_none_or(|l| size < l)
    }

    fn by_tags_or_size(&self) -> bool {
        !self.tags.is_empty() || self.size_greater_than.is_some() || self.size_less_than.is_some()
    }
}

impl Expiration {
    /// `None` for an `Expiration` that asks for nothing (`ExpiredObjectDeleteMarker`
    /// false alone).
    fn from_dto(e: LifecycleExpiration) -> GatewayResult<Option<Self>> {
        match (e.days, e.date, e.expired_object_delete_marker) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(malformed(
                "ExpiredObjectDeleteMarker cannot be specified with Days or Date in a \
                 Lifecycle Expiration Policy",
            )),
            (Some(_), Some(_), None) => Err(malformed("an Expiration has Days or Date, not both")),
            (Some(d), None, None) => Ok(Some(Expiration::Days(positive(d, "Days")?))),
            (None, Some(t), None) => {
                let t = time::OffsetDateTime::from(t);
                let secs = t.unix_timestamp();
                if t.nanosecond() != 0 || secs.rem_euclid(UTC_DAY) != 0 {
                    return Err(invalid("'Date' must be at midnight GMT"));
                }
                Ok(Some(Expiration::Date(secs)))
            }
            (None, None, Some(true)) => Ok(Some(Expiration::ExpiredObjectDeleteMarker)),
            (None, None, Some(false)) => Ok(None),
            (None, None, None) => Err(malformed(
                "an Expiration needs Days, Date or ExpiredObjectDeleteMarker",
            )),
        }
    }

    fn to_dto(self) -> LifecycleExpiration {
        let mut e = LifecycleExpiration::default();
        match self {
            Expiration::Days(d) => e.days = Some(to_i32(d)),
            Expiration::Date(secs) => {
                e.date = Some(
                    time::OffsetDateTime::from_unix_timestamp(secs)
                        .map(Timestamp::from)
                        .unwrap_or_default(),
                );
            }
            Expiration::ExpiredObjectDeleteMarker => e.expired_object_delete_marker = Some(true),
        }
        e
    }
}

impl Noncurrent {
    fn from_dto(n: NoncurrentVersionExpiration) -> GatewayResult<Self> {
        if n.noncurrent_days.is_none() && n.newer_noncurrent_versions.is_none() {
            return Err(malformed(
                "a NoncurrentVersionExpiration needs NoncurrentDays or NewerNoncurrentVersions",
            ));
        }
        let days = n
            .noncurrent_days
            .map(|d| positive(d, "NoncurrentDays"))
            .transpose()?;
        let newer = n
            .newer_noncurrent_versions
            .map(|v| {
                u32::try_from(v)
                    .ok()
                    .filter(|v| (1..=MAX_NEWER_NONCURRENT).contains(v))
                    .ok_or_else(|| {
                        invalid(format!(
                            "'NewerNoncurrentVersions' must be between 1 and {MAX_NEWER_NONCURRENT}"
                        ))
                    })
            })
            .transpose()?;
        Ok(Noncurrent {
            days,
            newer_noncurrent_versions: newer,
        })
    }

    fn to_dto(self) -> NoncurrentVersionExpiration {
        NoncurrentVersionExpiration {
            noncurrent_days: self.days.map(to_i32),
            newer_noncurrent_versions: self.newer_noncurrent_versions.map(to_i32),
        }
    }
}

impl Rule {
    /// A rule as PUT (its id may still be empty).
    fn from_dto(r: LifecycleRule) -> GatewayResult<Self> {
        let id = r.id.unwrap_or_default();
        if id.chars().count() > MAX_ID_LEN {
            return Err(invalid(format!(
                "ID length should not exceed allowed limit of {MAX_ID_LEN}"
            )));
        }
        let enabled = match r.status.as_str() {
            ExpirationStatus::ENABLED => true,
            ExpirationStatus::DISABLED => false,
            other => return Err(malformed(format!("{other:?} is not a rule Status"))),
        };
        let filter = Filter::from_dto(r.prefix, r.filter)?;
        if r.transitions.is_some_and(|t| !t.is_empty())
            || r.noncurrent_version_transitions
                .is_some_and(|t| !t.is_empty())
        {
            return Err(GatewayError::NotImplemented(
                "lifecycle transitions are not supported: kelp has one storage class".into(),
            ));
        }
        let expiration = r
            .expiration
            .map(Expiration::from_dto)
            .transpose()?
            .flatten();
        let noncurrent = r
            .noncurrent_version_expiration
            .map(Noncurrent::from_dto)
            .transpose()?;
        let abort_incomplete_days = r
            .abort_incomplete_multipart_upload
            .map(|a| {
                let d = a.days_after_initiation.ok_or_else(|| {
                    malformed("AbortIncompleteMultipartUpload needs DaysAfterInitiation")
                })?;
                positive(d, "DaysAfterInitiation")
            })
            .transpose()?;
        if expiration.is_none() && noncurrent.is_none() && abort_incomplete_days.is_none() {
            return Err(invalid(
                "At least one action needs to be specified in a rule",
            ));
        }
        if abort_incomplete_days.is_some() && filter.by_tags_or_size() {
            return Err(invalid(
                "AbortIncompleteMultipartUpload cannot be specified with a Tag or an object \
                 size in the Filter",
            ));
        }
        Ok(Rule {
            id,
            enabled,
            filter,
            expiration,
            noncurrent,
            abort_incomplete_days,
        })
    }

    /// The rule as a GET answers it.
    pub fn to_dto(&self) -> LifecycleRule {
        let (prefix, filter) = self.filter.to_dto();
        LifecycleRule {
            abort_incomplete_multipart_upload: self.abort_incomplete_days.map(|d| {
                AbortIncompleteMultipartUpload {
                    days_after_initiation: Some(to_i32(d)),
                }
            }),
            expiration: self.expiration.map(Expiration::to_dto),
            filter,
            id: Some(self.id.clone()),
            noncurrent_version_expiration: self.noncurrent.map(Noncurrent::to_dto),
            noncurrent_version_transitions: None,
            prefix,
            status: ExpirationStatus::from_static(if self.enabled {
                ExpirationStatus::ENABLED
            } else {
                ExpirationStatus::DISABLED
            }),
            transitions: None,
        }
    }

    /// When a current version written at `mtime_secs` expires by this rule's `Days` or
    /// `Date` (filter and status not considered).
    pub fn current_expiry(&self, mtime_secs: i64, day: u64) -> Option<i64> {
        match self.expiration? {
            Expiration::Days(n) => Some(expiry_after(mtime_secs, n, day)),
            Expiration::Date(d) => Some(d),
            Expiration::ExpiredObjectDeleteMarker => None,
        }
    }

    /// Is a current version written at `mtime_secs` due for expiry at `now` (`Days` or
    /// `Date`)? False for a disabled rule; the filter is the caller's to check.
    #[cfg_attr(not(test), allow(dead_code))] // for the lifecycle worker
    pub fn current_due(&self, mtime_secs: i64, now: i64, day: u64) -> bool {
        self.enabled
            && self
                .current_expiry(mtime_secs, day)
                .is_some_and(|t| now >= t)
    }

    /// Is a version that became noncurrent at `became_noncurrent_secs`, with
    /// `newer_noncurrent_count` noncurrent versions of its key newer than it, due for
    /// deletion at `now`? As S3: it has been noncurrent for `NoncurrentDays` (rounded up
    /// to a day boundary) and at least `NewerNoncurrentVersions` newer noncurrent versions
    /// are kept; a condition not given holds. False for a disabled rule.
    #[cfg_attr(not(test), allow(dead_code))] // for the lifecycle worker
    pub fn noncurrent_due(
        &self,
        became_noncurrent_secs: i64,
        newer_noncurrent_count: usize,
        now: i64,
        day: u64,
    ) -> bool {
        let Some(n) = self.noncurrent.filter(|_| self.enabled) else {
            return false;
        };
        (n.days.is_some() || n.newer_noncurrent_versions.is_some())
            && n.days
                .is_none_or(|d| now >= expiry_after(became_noncurrent_secs, d, day))
            && n.newer_noncurrent_versions
                .is_none_or(|k| newer_noncurrent_count >= usize::try_from(k).unwrap_or(usize::MAX))
    }

    /// Is a multipart upload initiated at `initiated_secs` due for abortion at `now`?
    /// False for a disabled rule.
    #[cfg_attr(not(test), allow(dead_code))] // for the lifecycle worker
    pub fn abort_due(&self, initiated_secs: i64, now: i64, day: u64) -> bool {
        self.enabled
            && self
                .abort_incomplete_days
                .is_some_and(|d| now >= expiry_after(initiated_secs, d, day))
    }
}

impl Config {
    /// Checks a PUT configuration as S3 does and gives rules without an id one.
    pub fn from_dto(c: BucketLifecycleConfiguration) -> GatewayResult<Self> {
        if c.rules.is_empty() || c.rules.len() > MAX_RULES {
            return Err(malformed(format!(
                "a lifecycle configuration has 1 to {MAX_RULES} rules, not {}",
                c.rules.len()
            )));
        }
        let mut rules = c
            .rules
            .into_iter()
            .map(Rule::from_dto)
            .collect::<GatewayResult<Vec<_>>>()?;
        let mut ids = HashSet::new();
        for r in rules.iter().filter(|r| !r.id.is_empty()) {
            if !ids.insert(r.id.clone()) {
                return Err(invalid(
                    "Rule ID must be unique. Found same ID for more than one rule",
                ));
            }
        }
        for r in rules.iter_mut().filter(|r| r.id.is_empty()) {
            let mut id = generated_id();
            while !ids.insert(id.clone()) {
                id = generated_id();
            }
            r.id = id;
        }
        Ok(Config { rules })
    }

    /// The rules as a GET answers them.
    pub fn to_dto(&self) -> Vec<LifecycleRule> {
        self.rules.iter().map(Rule::to_dto).collect()
    }

    /// The earliest time an object (key, size, tags, written at `mtime_secs`) expires by
    /// an enabled rule that matches it (`Days` or `Date`), and that rule's id: what
    /// `x-amz-expiration` tells.
    #[cfg_attr(not(test), allow(dead_code))] // for x-amz-expiration
    pub fn current_expiry(
        &self,
        key: &str,
        size: u64,
        tags: &[(String, String)],
        mtime_secs: i64,
        day: u64,
    ) -> Option<(i64, String)> {
        self.rules
            .iter()
            .filter(|r| r.enabled && r.filter.matches(key, size, tags))
            .filter_map(|r| r.current_expiry(mtime_secs, day).map(|t| (t, r)))
            .min_by_key(|(t, _)| *t)
            .map(|(t, r)| (t, r.id.clone()))
    }
}

#[cfg(test)]
mod tests;
