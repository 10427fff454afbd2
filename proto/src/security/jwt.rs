//! HS256 tokens (JWT, RFC 7519) as kelp uses them: a master-signed token bound to a
//! file id for volume writes and reads, an admin token between servers, and a filer
//! token. Only HS256 is accepted; a token must carry `exp`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2_11::Sha256>;

/// The `{"alg":"HS256","typ":"JWT"}` header, base64url-encoded.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// What a token says. Unknown claims are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// The file id the token allows (`3,01637037d6`); a batch covers `count` keys from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
    /// How many consecutive keys (same cookie) from `fid` the token covers (1 if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// An admin token: allowed every admin call and every needle operation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adm: bool,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token is for another file id")]
    WrongFid,
    #[error("token does not grant admin access")]
    NotAdmin,
}

/// Signs `claims` with `key`.
pub fn sign(key: &[u8], claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!("{HEADER_B64}.{}", URL_SAFE_NO_PAD.encode(payload));
    let mut mac = mac(key);
    mac.update(signing_input.as_bytes());
    let sig = mac.finalize().into_bytes();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Checks `token`'s signature with `key` and its expiry against `now` (Unix seconds).
pub fn verify(key: &[u8], token: &str, now: u64) -> Result<Claims, TokenError> {
    let mut parts = token.trim().split('.');
    let (Some(header), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let h: Header = serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
    if h.alg != "HS256" {
        return Err(TokenError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    let mut mac = mac(key);
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&sig)
        .map_err(|_| TokenError::BadSignature)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

fn mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            fid: Some("3,01637037d6".into()),
            exp,
            ..Default::default()
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let t = sign(b"secret", &claims(100));
        assert_eq!(verify(b"secret", &t, 99).unwrap(), claims(100));
        assert_eq!(verify(b"secret", &t, 100), Err(TokenError::Expired));
        assert_eq!(verify(b"other", &t, 99), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_and_foreign_tokens_are_refused() {
        let t = sign(b"secret", &claims(100));
        let (head, _) = t.rsplit_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"adm":true,"exp":100}"#);
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(verify(b"secret", &forged, 1), Err(TokenError::BadSignature));
        // alg=none with an empty signature.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            parts[1]
        );
        assert_eq!(verify(b"secret", &none, 1), Err(TokenError::Malformed));
        for bad in ["", "a.b", "a.b.c.d", head, "!!.!!.!!"] {
            assert!(verify(b"secret", bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_a_token_made_elsewhere() {
        // Made with Python's hmac module: HS256 of {"exp":2000000000,"fid":"3,01637037d6"}
        // with the key "k".
        let t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                 eyJleHAiOjIwMDAwMDAwMDAsImZpZCI6IjMsMDE2MzcwMzdkNiJ9.\
                 MBClMsitPWV2maIAEeCdXAj00aJLCvzxVR7URjC0auM";
        let c = verify(b"k", t, 1).unwrap();
        assert_eq!(c.fid.as_deref(), Some("3,01637037d6"));
        assert_eq!(sign(b"k", &c), t);
    }
}
