//! `Range` headers s3s cannot parse (`bytes=100-50`, several ranges, garbage): S3
//! ignores such a header and serves the whole object (RFC 9110 says the same), where
//! s3s would answer 400. The header is part of the signed request, so it cannot be
//! dropped before the signature is checked: a custom route takes these requests after
//! s3s has verified them, and hands them, without the header, to a second service that
//! trusts the caller s3s verified ([`VerifiedCaller`]) instead of checking again.

use http::header::{AUTHORIZATION, RANGE};
use http::{Extensions, HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::service::S3Service;
use s3s::{Body, S3Request, S3Response, S3Result};

/// The credentials s3s verified on the outer request, for the inner service's access
/// check (extensions come only from this process, never from the network).
#[derive(Debug, Clone)]
pub(crate) struct VerifiedCaller(pub s3s::auth::Credentials);

/// True for a GET or HEAD whose `Range` s3s would refuse.
pub(crate) fn unusable_range(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && headers.get(RANGE).is_some_and(|v| {
            v.to_str()
                .map_or(true, |s| s3s::dto::Range::parse(s.trim()).is_err())
        })
}

/// The route; `inner` is the same gateway without signature checks and without this
/// route.
pub(crate) struct IgnoredRange {
    pub inner: S3Service,
}

#[async_trait::async_trait]
impl S3Route for IgnoredRange {
    fn is_match(
        &self,
        method: &Method,
        _uri: &Uri,
        headers: &HeaderMap,
        _extensions: &mut Extensions,
    ) -> bool {
        unusable_range(method, headers)
    }

    /// The inner service checks access, as the caller s3s verified.
    async fn check_access(&self, _req: &mut S3Request<Body>) -> S3Result<()> {
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let mut headers = req.headers;
        headers.remove(RANGE);
        headers.remove(AUTHORIZATION);
        let mut inner = http::Request::new(req.input);
        *inner.method_mut() = req.method;
        *inner.uri_mut() = crate::server::without_presign_params(&req.uri);
        *inner.headers_mut() = headers;
        if let Some(c) = req.credentials {
            inner.extensions_mut().insert(VerifiedCaller(c));
        }
        let resp = self
            .inner
            .call(inner)
            .await
            .map_err(|e| s3s::s3_error!(InternalError, "{e:?}"))?;
        let (parts, body) = resp.into_parts();
        let mut out = S3Response::new(body);
        out.status = Some(parts.status);
        out.headers = parts.headers;
        out.extensions = parts.extensions;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ranges_s3s_refuses_are_taken() {
        let h = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RANGE, v.parse().unwrap());
            h
        };
        for bad in [
            "bytes=100-50",
            "bytes=0-1,5-6",
            "bytes=x",
            "items=0-1",
            "bytes=",
        ] {
            assert!(unusable_range(&Method::GET, &h(bad)), "{bad}");
            assert!(unusable_range(&Method::HEAD, &h(bad)), "{bad}");
        }
        for good in ["bytes=0-99", "bytes=5-", "bytes=-10", "bytes=0-999999999"] {
            assert!(!unusable_range(&Method::GET, &h(good)), "{good}");
        }
        assert!(!unusable_range(&Method::PUT, &h("bytes=100-50")));
        assert!(!unusable_range(&Method::GET, &HeaderMap::new()));
    }
}
