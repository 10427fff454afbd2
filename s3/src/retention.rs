//! S3 object lock: a bucket's lock switch and default retention, per-version retention
//! (GOVERNANCE / COMPLIANCE until a date) and legal holds. Versions carry the filer's
//! generic lock attributes (`RETAIN_UNTIL_KEY`, `LEGAL_HOLD_KEY`), so the filer's own
//! operations refuse to remove them too; the mode is S3's own attribute.

use http::HeaderMap;
use kelp_filer::entry::{Entry, LEGAL_HOLD_KEY, RETAIN_UNTIL_KEY};
use s3s::dto::*;
use s3s::{S3Request, S3Response};
use serde::{Deserialize, Serialize};

use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::versions::{self, Found, State};

/// Bucket attribute: object lock is enabled (`Enabled`); it cannot be turned off.
pub const ENABLED_KEY: &str = "X-Kelp-S3-Object-Lock";
/// Bucket attribute: the default retention, JSON ([`DefaultRule`]).
pub const DEFAULT_KEY: &str = "X-Kelp-S3-Object-Lock-Default";
/// Version attribute: the retention mode (`GOVERNANCE` or `COMPLIANCE`).
pub const MODE_KEY: &str = "X-Kelp-S3-Lock-Mode";

/// Prefix of the lock attributes a multipart upload's directory keeps for its object.
pub const PENDING_LOCK_PREFIX: &str = "X-Kelp-S3-Pending-";

/// The attributes that belong to one version and never travel to a copy.
pub const VERSION_ATTRS: &[&str] = &[
    crate::versions::VERSION_ID_KEY,
    crate::versions::DELETE_MARKER_KEY,
    MODE_KEY,
    RETAIN_UNTIL_KEY,
    LEGAL_HOLD_KEY,
];

const GOVERNANCE: &str = ObjectLockRetentionMode::GOVERNANCE;
const COMPLIANCE: &str = ObjectLockRetentionMode::COMPLIANCE;

/// A bucket's default retention for new versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRule {
    pub mode: String,
    pub days: Option<i32>,
    pub years: Option<i32>,
}

impl DefaultRule {
    fn seconds(&self) -> i64 {
        let days = i64::from(self.days.unwrap_or(0)) + 365 * i64::from(self.years.unwrap_or(0));
        days * 86_400
    }
}

pub fn enabled_on(bucket: &Entry) -> bool {
    bucket.extended.contains_key(ENABLED_KEY)
}

fn now() -> i64 {
    crate::copy::now_secs()
}

fn denied(e: &Entry, why: &str) -> GatewayError {
    GatewayError::AccessDenied(format!("{} {why}", e.path))
}

/// Refuses to remove (or replace) a version that is locked: a legal hold, COMPLIANCE
/// retention, or GOVERNANCE retention without `bypass_governance`.
pub fn check_removable(e: &Entry, bypass_governance: bool) -> GatewayResult<()> {
    if e.legal_hold() {
        return Err(denied(e, "is under a legal hold"));
    }
    if e.retained_until().is_some_and(|t| t > now()) {
        let governance = e
            .extended
            .get(MODE_KEY)
            .is_some_and(|m| m.as_slice() == GOVERNANCE.as_bytes());
        if !(governance && bypass_governance) {
            return Err(denied(
                e,
                "is retained (object lock) and cannot be removed yet",
            ));
        }
    }
    Ok(())
}

/// Whether a request carries Content-MD5 or an `x-amz-checksum-*` value, which S3
/// requires of requests that set object lock parameters.
pub fn has_integrity(headers: &HeaderMap, content_md5: Option<&str>) -> bool {
    content_md5.is_some()
        || headers
            .keys()
            .any(|k| k.as_str().starts_with("x-amz-checksum-"))
}

/// Refuses a lock-setting call that carries neither Content-MD5 nor a checksum.
fn require_integrity(
    headers: &HeaderMap,
    content_md5: Option<&str>,
    algorithm: &Option<ChecksumAlgorithm>,
    op: &str,
) -> GatewayResult<()> {
    if has_integrity(headers, content_md5) || algorithm.is_some() {
        return Ok(());
    }
    Err(GatewayError::InvalidRequest(format!(
        "Content-MD5 or a checksum is required for {op}"
    )))
}

fn unix(t: &Timestamp) -> i64 {
    crate::meta::unix_secs(t)
}

fn timestamp(secs: i64) -> Timestamp {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(t)
}

/// `GOVERNANCE` or `COMPLIANCE` (the header's and the XML's mode types are both
/// strings underneath).
fn mode_str(m: &str) -> GatewayResult<&'static str> {
    match m {
        GOVERNANCE => Ok(GOVERNANCE),
        COMPLIANCE => Ok(COMPLIANCE),
        other => Err(GatewayError::InvalidArgument(format!(
            "unknown object lock mode {other}"
        ))),
    }
}

/// The lock attributes of a new version: the request's `x-amz-object-lock-*` values,
/// else the bucket's default retention. Refused on a bucket without object lock, and
/// without Content-MD5 or a checksum when the request sets them itself.
pub struct LockRequest<'a> {
    pub mode: Option<&'a ObjectLockMode>,
    pub until: Option<&'a Timestamp>,
    pub legal_hold: Option<&'a ObjectLockLegalHoldStatus>,
}

impl LockRequest<'_> {
    pub fn given(&self) -> bool {
        self.mode.is_some() || self.until.is_some() || self.legal_hold.is_some()
    }

    pub fn attrs(&self, bucket: &Entry, integrity: bool) -> GatewayResult<Vec<(String, Vec<u8>)>> {
        if !enabled_on(bucket) {
            if self.given() {
                return Err(GatewayError::InvalidRequest(
                    "the bucket does not have object lock enabled".into(),
                ));
            }
            return Ok(Vec::new());
        }
        if self.given() && !integrity {
            return Err(GatewayError::InvalidRequest(
                "Content-MD5 or an x-amz-checksum-* header is required to set object lock parameters"
                    .into(),
            ));
        }
        let mut out = Vec::new();
        match (self.mode, self.until) {
            (Some(m), Some(t)) => {
                let mode = mode_str(m.as_str())?;
                if unix(t) <= now() {
                    return Err(GatewayError::InvalidArgument(
                        "the retain-until date must be in the future".into(),
                    ));
                }
                out.push((MODE_KEY.to_string(), mode.as_bytes().to_vec()));
                out.push((
                    RETAIN_UNTIL_KEY.to_string(),
                    unix(t).to_string().into_bytes(),
                ));
            }
            (None, None) => {
                if let Some(rule) = default_rule(bucket) {
                    out.push((MODE_KEY.to_string(), rule.mode.as_bytes().to_vec()));
                    let until = now() + rule.seconds();
                    out.push((RETAIN_UNTIL_KEY.to_string(), until.to_string().into_bytes()));
                }
            }
            _ => {
                return Err(GatewayError::InvalidArgument(
                    "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date go together"
                        .into(),
                ));
            }
        }
        if let Some(h) = self.legal_hold {
            let on = h.as_str() == ObjectLockLegalHoldStatus::ON;
            out.push((
                LEGAL_HOLD_KEY.to_string(),
                if on { b"ON".to_vec() } else { b"OFF".to_vec() },
            ));
        }
        Ok(out)
    }
}

/// A version's lock, as GET and HEAD report it.
pub struct LockView {
    pub mode: Option<ObjectLockMode>,
    pub until: Option<Timestamp>,
    pub legal_hold: Option<ObjectLockLegalHoldStatus>,
}

impl LockView {
    pub fn of(e: &Entry) -> LockView {
        let mode = e
            .extended
            .get(MODE_KEY)
            .map(|m| ObjectLockMode::from(String::from_utf8_lossy(m).into_owned()));
        LockView {
            until: mode.as_ref().and(e.retained_until()).map(timestamp),
            mode,
            legal_hold: e
                .extended
                .get(LEGAL_HOLD_KEY)
                .map(|v| ObjectLockLegalHoldStatus::from(String::from_utf8_lossy(v).into_owned())),
        }
    }
}

fn default_rule(bucket: &Entry) -> Option<DefaultRule> {
    serde_json::from_slice(bucket.extended.get(DEFAULT_KEY)?).ok()
}

impl Gateway {
    /// The version a retention or legal-hold call names (the latest without an id).
    async fn locked_target(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> GatewayResult<Entry> {
        let b = self.bucket_entry(bucket).await?;
        if !enabled_on(&b) {
            return Err(GatewayError::InvalidRequest(
                "the bucket does not have object lock enabled".into(),
            ));
        }
        let found = match version_id {
            Some(id) => self
                .find_version(bucket, key, id)
                .await?
                .ok_or_else(|| GatewayError::NoSuchVersion(id.to_string()))?,
            None => Found::Current(self.object_entry(bucket, key).await?),
        };
        let e = found.entry().clone();
        if versions::is_delete_marker(&e) {
            return Err(GatewayError::MethodNotAllowed(
                "a delete marker has no retention or legal hold".into(),
            ));
        }
        Ok(e)
    }

    pub async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> GatewayResult<S3Response<PutObjectLockConfigurationOutput>> {
        let i = &req.input;
        let b = self.bucket_entry(&i.bucket).await?;
        require_integrity(
            &req.headers,
            i.content_md5.as_deref(),
            &i.checksum_algorithm,
            "PutObjectLockConfiguration",
        )?;
        let Some(c) = &i.object_lock_configuration else {
            return Err(GatewayError::MalformedXml(
                "no ObjectLockConfiguration".into(),
            ));
        };
        if !enabled_on(&b) && State::of(&b) != State::Enabled {
            return Err(GatewayError::InvalidBucketState(
                "object lock needs versioning enabled on the bucket".into(),
            ));
        }
        let mut attrs = vec![(ENABLED_KEY.to_string(), b"Enabled".to_vec())];
        let mut drop = Vec::new();
        match c.rule.as_ref().and_then(|r| r.default_retention.as_ref()) {
            Some(d) => {
                let mode = d
                    .mode
                    .as_ref()
                    .ok_or_else(|| {
                        GatewayError::MalformedXml("DefaultRetention needs a Mode".into())
                    })
                    .and_then(|m| mode_str(m.as_str()))?;
                let rule = DefaultRule {
                    mode: mode.to_string(),
                    days: d.days,
                    years: d.years,
                };
                let positive = |n: Option<i32>| n.is_some_and(|n| n > 0);
                if positive(rule.days) == positive(rule.years) {
                    return Err(GatewayError::MalformedXml(
                        "DefaultRetention takes a positive Days or Years, not both".into(),
                    ));
                }
                let json = serde_json::to_vec(&rule)
                    .map_err(|e| GatewayError::Internal(format!("encoding the rule: {e}")))?;
                attrs.push((DEFAULT_KEY.to_string(), json));
            }
            None => drop.push(DEFAULT_KEY.to_string()),
        }
        attrs.push((versions::STATE_KEY.to_string(), b"Enabled".to_vec()));
        self.filer.set_extended(&b.path, attrs, Some(drop)).await?;
        Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
    }

    pub async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> GatewayResult<S3Response<GetObjectLockConfigurationOutput>> {
        let b = self.bucket_entry(&req.input.bucket).await?;
        if !enabled_on(&b) {
            return Err(GatewayError::NotConfigured {
                code: "ObjectLockConfigurationNotFoundError",
                msg: format!(
                    "the bucket {} has no object lock configuration",
                    req.input.bucket
                ),
            });
        }
        let rule = default_rule(&b).map(|r| ObjectLockRule {
            default_retention: Some(DefaultRetention {
                mode: Some(ObjectLockRetentionMode::from(r.mode.clone())),
                days: r.days,
                years: r.years,
            }),
        });
        Ok(S3Response::new(GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(ObjectLockConfiguration {
                object_lock_enabled: Some(ObjectLockEnabled::from_static(
                    ObjectLockEnabled::ENABLED,
                )),
                rule,
            }),
        }))
    }

    pub async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> GatewayResult<S3Response<PutObjectRetentionOutput>> {
        let i = &req.input;
        require_integrity(
            &req.headers,
            i.content_md5.as_deref(),
            &i.checksum_algorithm,
            "PutObjectRetention",
        )?;
        let e = self
            .locked_target(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        let bypass = self.may_bypass(
            &req.extensions,
            i.bypass_governance_retention,
            &i.bucket,
            Some(&i.key),
        );
        let r = i.retention.clone().unwrap_or_default();
        let new_until = r.retain_until_date.as_ref().map(unix);
        let new_mode = r.mode.as_ref().map(|m| mode_str(m.as_str())).transpose()?;
        if new_mode.is_some() != new_until.is_some() {
            return Err(GatewayError::MalformedXml(
                "Retention needs both Mode and RetainUntilDate, or neither".into(),
            ));
        }
        if new_until.is_some_and(|t| t <= now()) {
            return Err(GatewayError::InvalidArgument(
                "the retain-until date must be in the future".into(),
            ));
        }
        let old_until = e.retained_until().filter(|t| *t > now());
        let old_mode = e
            .extended
            .get(MODE_KEY)
            .map(|m| String::from_utf8_lossy(m).into_owned());
        if let Some(old) = old_until {
            let shorter = new_until.is_none_or(|n| n < old);
            let compliance = old_mode.as_deref() == Some(COMPLIANCE);
            if compliance && (shorter || new_mode != Some(COMPLIANCE)) {
                return Err(denied(
                    &e,
                    "has COMPLIANCE retention: it can be extended, never shortened or changed",
                ));
            }
            if !compliance && shorter && !bypass {
                return Err(denied(
                    &e,
                    "has GOVERNANCE retention: shortening it needs x-amz-bypass-governance-retention",
                ));
            }
        }
        let (set, drop) = match (new_mode, new_until) {
            (Some(m), Some(t)) => (
                vec![
                    (MODE_KEY.to_string(), m.as_bytes().to_vec()),
                    (RETAIN_UNTIL_KEY.to_string(), t.to_string().into_bytes()),
                ],
                Vec::new(),
            ),
            _ => (
                Vec::new(),
                vec![MODE_KEY.to_string(), RETAIN_UNTIL_KEY.to_string()],
            ),
        };
        self.filer.set_extended(&e.path, set, Some(drop)).await?;
        Ok(S3Response::new(PutObjectRetentionOutput::default()))
    }

    pub async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> GatewayResult<S3Response<GetObjectRetentionOutput>> {
        let i = &req.input;
        let e = self
            .locked_target(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        let (Some(until), Some(mode)) = (e.retained_until(), e.extended.get(MODE_KEY)) else {
            return Err(GatewayError::NotConfigured {
                code: "NoSuchObjectLockConfiguration",
                msg: format!("{} has no retention", i.key),
            });
        };
        Ok(S3Response::new(GetObjectRetentionOutput {
            retention: Some(ObjectLockRetention {
                mode: Some(ObjectLockRetentionMode::from(
                    String::from_utf8_lossy(mode).into_owned(),
                )),
                retain_until_date: Some(timestamp(until)),
            }),
        }))
    }

    pub async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> GatewayResult<S3Response<PutObjectLegalHoldOutput>> {
        let i = &req.input;
        require_integrity(
            &req.headers,
            i.content_md5.as_deref(),
            &i.checksum_algorithm,
            "PutObjectLegalHold",
        )?;
        let e = self
            .locked_target(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        let on = match i.legal_hold.as_ref().and_then(|h| h.status.as_ref()) {
            Some(s) if s.as_str() == ObjectLockLegalHoldStatus::ON => true,
            Some(s) if s.as_str() == ObjectLockLegalHoldStatus::OFF => false,
            _ => {
                return Err(GatewayError::MalformedXml(
                    "LegalHold Status must be ON or OFF".into(),
                ));
            }
        };
        let v = if on { b"ON".to_vec() } else { b"OFF".to_vec() };
        self.filer
            .set_extended(&e.path, vec![(LEGAL_HOLD_KEY.to_string(), v)], None)
            .await?;
        Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
    }

    pub async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> GatewayResult<S3Response<GetObjectLegalHoldOutput>> {
        let i = &req.input;
        let e = self
            .locked_target(&i.bucket, &i.key, i.version_id.as_deref())
            .await?;
        let status = if e.legal_hold() {
            ObjectLockLegalHoldStatus::ON
        } else {
            ObjectLockLegalHoldStatus::OFF
        };
        Ok(S3Response::new(GetObjectLegalHoldOutput {
            legal_hold: Some(ObjectLockLegalHold {
                status: Some(ObjectLockLegalHoldStatus::from_static(status)),
            }),
        }))
    }
}
