//! Bucket CORS as S3 does it: the rules (`Put/Get/DeleteBucketCors`, kept as JSON in
//! the bucket entry's `X-Kelp-S3-Cors`), preflight `OPTIONS` requests answered from
//! them (no signature: browsers send none), and the `Access-Control-*` headers on the
//! answers to requests that carry an `Origin`.

use std::sync::Arc;

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use kelp_filer::Filer;
use kelp_filer::entry::Entry;
use s3s::dto::{
    CORSRule, DeleteBucketCorsInput, DeleteBucketCorsOutput, GetBucketCorsInput,
    GetBucketCorsOutput, PutBucketCorsInput, PutBucketCorsOutput,
};
use s3s::{S3Request, S3Response};
use serde::{Deserialize, Serialize};

use crate::error::{GatewayError, GatewayResult};
use crate::gateway::Gateway;
use crate::keys::Paths;
use crate::vhost::Domains;

/// The bucket attribute holding the rules.
pub const CORS_KEY: &str = "X-Kelp-S3-Cors";
/// S3's limit on rules per bucket.
const MAX_RULES: usize = 100;
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

/// One CORS rule, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i32>,
}

/// `pattern` with at most one `*` (any run of characters) against `value`.
fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    match pattern.split_once('*') {
        None => eq(pattern, value),
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len()
                && value.is_char_boundary(pre.len())
                && value.is_char_boundary(value.len() - post.len())
                && eq(&value[..pre.len()], pre)
                && eq(&value[value.len() - post.len()..], post)
        }
    }
}

impl Rule {
    fn from_dto(r: CORSRule) -> GatewayResult<Rule> {
        let bad = |m: String| GatewayError::MalformedXml(m);
        if r.allowed_origins.is_empty() {
            return Err(bad("a CORSRule needs at least one AllowedOrigin".into()));
        }
        if r.allowed_methods.is_empty() {
            return Err(bad("a CORSRule needs at least one AllowedMethod".into()));
        }
        for m in &r.allowed_methods {
            if !METHODS.contains(&m.as_str()) {
                return Err(GatewayError::InvalidRequest(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                )));
            }
        }
        for o in r
            .allowed_origins
            .iter()
            .chain(r.allowed_headers.iter().flatten())
        {
            if o.matches('*').count() > 1 {
                return Err(GatewayError::InvalidRequest(format!(
                    "{o:?} can not have more than one wildcard"
                )));
            }
        }
        Ok(Rule {
            id: r.id,
            origins: r.allowed_origins,
            methods: r.allowed_methods,
            headers: r.allowed_headers.unwrap_or_default(),
            expose: r.expose_headers.unwrap_or_default(),
            max_age: r.max_age_seconds,
        })
    }

    fn to_dto(&self) -> CORSRule {
        CORSRule {
            id: self.id.clone(),
            allowed_origins: self.origins.clone(),
            allowed_methods: self.methods.clone(),
            allowed_headers: Some(self.headers.clone()).filter(|h| !h.is_empty()),
            expose_headers: Some(self.expose.clone()).filter(|h| !h.is_empty()),
            max_age_seconds: self.max_age,
        }
    }

    fn allows(&self, origin: &str, method: &str, headers: &[&str]) -> bool {
        self.origins.iter().any(|o| wildcard(o, origin, false))
            && self.methods.iter().any(|m| m == method)
            && headers
                .iter()
                .all(|h| self.headers.iter().any(|p| wildcard(p, h, true)))
    }

    /// The headers of an answer this rule allows, for `origin`.
    fn answer_headers(&self, origin: &str) -> Vec<(HeaderName, String)> {
        let any = self.origins.iter().any(|o| o == "*");
        let mut out = vec![
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                if any { "*".into() } else { origin.into() },
            ),
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                self.methods.join(", "),
            ),
            (
                header::VARY,
                "Origin, Access-Control-Request-Headers, Access-Control-Request-Method".into(),
            ),
        ];
        if !any {
            out.push((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".into()));
        }
        if !self.expose.is_empty() {
            out.push((
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                self.expose.join(", "),
            ));
        }
        if let Some(age) = self.max_age {
            out.push((header::ACCESS_CONTROL_MAX_AGE, age.to_string()));
        }
        out
    }
}

/// The rules of a bucket entry, if it has any.
pub fn rules_of(bucket: &Entry) -> Option<Vec<Rule>> {
    bucket
        .extended
        .get(CORS_KEY)
        .and_then(|v| serde_json::from_slice(v).ok())
}

impl Gateway {
    pub async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> GatewayResult<S3Response<PutBucketCorsOutput>> {
        let i = req.input;
        let bucket = self.bucket_entry(&i.bucket).await?;
        let rules = i.cors_configuration.cors_rules;
        if rules.is_empty() || rules.len() > MAX_RULES {
            return Err(GatewayError::MalformedXml(format!(
                "a CORS configuration has 1 to {MAX_RULES} rules, not {}",
                rules.len()
            )));
        }
        let rules = rules
            .into_iter()
            .map(Rule::from_dto)
            .collect::<GatewayResult<Vec<_>>>()?;
        let json = serde_json::to_vec(&rules).map_err(|e| GatewayError::Internal(e.to_string()))?;
        self.filer
            .set_extended(&bucket.path, vec![(CORS_KEY.to_string(), json)], None)
            .await?;
        Ok(S3Response::new(PutBucketCorsOutput::default()))
    }

    pub async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> GatewayResult<S3Response<GetBucketCorsOutput>> {
        let bucket = self.bucket_entry(&req.input.bucket).await?;
        let rules = rules_of(&bucket)
            .ok_or_else(|| GatewayError::NoSuchCorsConfiguration(req.input.bucket.clone()))?;
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(rules.iter().map(Rule::to_dto).collect()),
        }))
    }

    pub async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> GatewayResult<S3Response<DeleteBucketCorsOutput>> {
        let bucket = self.bucket_entry(&req.input.bucket).await?;
        self.filer
            .set_extended(&bucket.path, Vec::new(), Some(vec![CORS_KEY.to_string()]))
            .await?;
        Ok(S3Response::new(DeleteBucketCorsOutput::default()))
    }
}

/// CORS at the HTTP layer: preflights and the headers of actual answers.
pub(crate) struct Cors {
    pub filer: Arc<Filer>,
    pub paths: Paths,
    pub domains: Domains,
}

/// What a request needs from [`Cors::decorate`], taken before the request is consumed.
pub(crate) struct Asked {
    origin: String,
    bucket: String,
    method: String,
}

impl Cors {
    /// The bucket a request names (virtual-hosted or path style).
    fn bucket_of<B>(&self, req: &Request<B>) -> Option<String> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if let Some(b) = self.domains.bucket_of(host) {
            return Some(b.to_string());
        }
        let first = req.uri().path().trim_start_matches('/').split('/').next()?;
        let b = percent_encoding::percent_decode_str(first)
            .decode_utf8()
            .ok()?
            .into_owned();
        (!b.is_empty()).then_some(b)
    }

    async fn rules(&self, bucket: &str) -> Option<Vec<Rule>> {
        let path = self.paths.bucket(bucket);
        match self.filer.find(&path).await {
            Ok(Some(e)) if e.is_directory => rules_of(&e),
            _ => None,
        }
    }

    /// What an actual request with an `Origin` needs for its answer's headers.
    pub fn asked<B>(&self, req: &Request<B>) -> Option<Asked> {
        let origin = req
            .headers()
            .get(header::ORIGIN)?
            .to_str()
            .ok()?
            .to_string();
        Some(Asked {
            origin,
            bucket: self.bucket_of(req)?,
            method: req.method().as_str().to_string(),
        })
    }

    /// Adds the `Access-Control-*` headers of the first rule that allows the request.
    pub async fn decorate(&self, asked: Asked, resp: &mut Response<s3s::Body>) {
        let Some(rules) = self.rules(&asked.bucket).await else {
            return;
        };
        if let Some(rule) = rules
            .iter()
            .find(|r| r.allows(&asked.origin, &asked.method, &[]))
        {
            for (name, value) in rule.answer_headers(&asked.origin) {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    resp.headers_mut().insert(name, v);
                }
            }
        }
    }

    /// Answers a preflight `OPTIONS` request: 200 with the allowing rule's headers,
    /// 403 when no rule allows it (or the bucket has none), 400 when it is not a
    /// preflight.
    pub async fn preflight<B>(&self, req: &Request<B>) -> Response<s3s::Body> {
        let h = req.headers();
        let text = |n: HeaderName| h.get(n).and_then(|v| v.to_str().ok());
        let (Some(origin), Some(method)) = (
            text(header::ORIGIN),
            text(header::ACCESS_CONTROL_REQUEST_METHOD),
        ) else {
            return crate::server::early_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Insufficient information. Origin request header needed.",
            );
        };
        let wanted: Vec<String> = text(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let rules = match self.bucket_of(req) {
            Some(b) => self.rules(&b).await.unwrap_or_default(),
            None => Vec::new(),
        };
        let Some(rule) = rules.iter().find(|r| r.allows(origin, method, &wanted)) else {
            return crate::server::early_error(
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the \
                 evalution of Origin, request method / Access-Control-Request-Method or \
                 Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            );
        };
        let mut resp = Response::new(s3s::Body::empty());
        for (name, value) in rule.answer_headers(origin) {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        if !wanted.is_empty()
            && let Ok(v) = HeaderValue::from_str(&wanted.join(", "))
        {
            resp.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        resp
    }
}

/// True for a CORS preflight (`OPTIONS`).
pub(crate) fn is_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            id: None,
            origins: vec!["https://*.example.com".into(), "http://app.test".into()],
            methods: vec!["GET".into(), "PUT".into()],
            headers: vec!["x-amz-*".into(), "content-type".into()],
            expose: vec!["ETag".into()],
            max_age: Some(600),
        }
    }

    #[test]
    fn origins_methods_and_headers_match_with_one_wildcard() {
        let r = rule();
        assert!(r.allows("https://a.example.com", "GET", &[]));
        assert!(r.allows("http://app.test", "PUT", &["content-type", "x-amz-date"]));
        assert!(!r.allows("http://app.test", "DELETE", &[]));
        assert!(!r.allows("http://evil.test", "GET", &[]));
        assert!(!r.allows("https://example.com", "GET", &[]));
        assert!(!r.allows("http://app.test", "PUT", &["authorization"]));
        assert!(wildcard("*", "anything", false));
        assert!(wildcard("X-Amz-*", "x-amz-meta-a", true));
        assert!(!wildcard("ab*ba", "aba", false));
    }

    #[test]
    fn a_star_origin_answers_star_without_credentials() {
        let mut r = rule();
        let h = r.answer_headers("http://app.test");
        assert!(h.contains(&(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            "http://app.test".into()
        )));
        assert!(
            h.iter()
                .any(|(n, _)| n == header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
        );
        r.origins = vec!["*".into()];
        let h = r.answer_headers("http://app.test");
        assert!(h.contains(&(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".into())));
        assert!(
            !h.iter()
                .any(|(n, _)| n == header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
        );
    }
}
