//! Virtual-hosted-style addressing (`<bucket>.<domain>`), for `-s3.domainName`: a
//! request whose `Host` is a subdomain of a configured domain names its bucket there;
//! every other host (the domain itself, an IP address, `localhost`) is path style, so
//! both styles work side by side.

use std::borrow::Cow;

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

/// The configured domains, lower-case, without ports.
#[derive(Debug, Clone)]
pub struct Domains(Vec<String>);

impl Domains {
    /// Checks and keeps `domains` (names like `s3.example.com`; a port is ignored).
    pub fn new(domains: &[String]) -> Result<Domains, String> {
        let mut out = Vec::new();
        for d in domains.iter().map(|d| d.trim()).filter(|d| !d.is_empty()) {
            let name = strip_port(d).to_ascii_lowercase();
            let valid = name.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            if !valid {
                return Err(format!("{d:?} is not a domain name"));
            }
            out.push(name);
        }
        Ok(Domains(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bucket a `Host` value names, if it is `<bucket>.<domain>`.
    pub fn bucket_of<'h>(&self, host: &'h str) -> Option<&'h str> {
        let name = strip_port(host);
        self.0.iter().find_map(|d| {
            let cut = name.len().checked_sub(d.len() + 1)?;
            if !name.is_char_boundary(cut) {
                return None;
            }
            let (bucket, rest) = name.split_at(cut);
            let rest = rest.strip_prefix('.')?;
            (rest.eq_ignore_ascii_case(d) && !bucket.is_empty()).then_some(bucket)
        })
    }
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl S3Host for Domains {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match self.bucket_of(host) {
            Some(bucket) => VirtualHost::new(Cow::Borrowed(host)).with_bucket(bucket),
            None => VirtualHost::new(Cow::Borrowed(host)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_from_subdomains_only() {
        let d = Domains::new(&["s3.example.com".into(), " ".into()]).unwrap();
        assert_eq!(d.bucket_of("photos.s3.example.com"), Some("photos"));
        assert_eq!(d.bucket_of("photos.s3.example.com:8333"), Some("photos"));
        assert_eq!(d.bucket_of("a.b.s3.example.com"), Some("a.b"));
        assert_eq!(d.bucket_of("s3.example.com:8333"), None);
        assert_eq!(d.bucket_of("127.0.0.1:8333"), None);
        assert_eq!(d.bucket_of("localhost"), None);
        assert_eq!(d.bucket_of("xs3.example.com"), None);
        assert_eq!(d.bucket_of(".s3.example.com"), None);
        assert!(Domains::new(&["bad domain".into()]).is_err());
        assert!(Domains::new(&[]).unwrap().is_empty());
    }
}
