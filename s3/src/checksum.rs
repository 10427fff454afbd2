//! Additional checksums (`x-amz-checksum-*`): which one a request carries (a header, or
//! a trailer of an `aws-chunked` body), a body wrapper that computes it while the body
//! streams into the filer and fails the body on a mismatch (so nothing is stored), how a
//! verified value is kept on the entry and returned, and how a multipart upload combines
//! its parts' checksums (COMPOSITE, or FULL_OBJECT for the CRCs).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::Engine;
use bytes::Bytes;
use futures::Stream;
use http::HeaderMap;
use kelp_filer::LateExtended;
use kelp_filer::entry::Entry;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::Checksum as _;
use s3s::dto::{Checksum, ChecksumAlgorithm, ChecksumType, StreamingBlob};
use s3s::{S3Request, TrailingHeaders};

use crate::error::{GatewayError, GatewayResult};

/// Where an object's verified checksum is kept (one key per algorithm); the value is
/// what S3 returns: base64, with `-N` for a COMPOSITE multipart checksum.
const KEY_PREFIX: &str = "X-Kelp-S3-Checksum-";
/// `FULL_OBJECT` or `COMPOSITE`.
pub const TYPE_KEY: &str = "X-Kelp-S3-Checksum-Type";
/// On an upload directory: `<ALGORITHM> <TYPE>` asked for at CreateMultipartUpload.
pub const UPLOAD_CHECKSUM_KEY: &str = "X-Kelp-S3-Upload-Checksum";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The checksum algorithms S3 knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algo {
    pub const ALL: [Algo; 5] = [
        Algo::Crc32,
        Algo::Crc32c,
        Algo::Crc64Nvme,
        Algo::Sha1,
        Algo::Sha256,
    ];

    /// The S3 name (`CRC32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Algo::Crc32 => ChecksumAlgorithm::CRC32,
            Algo::Crc32c => ChecksumAlgorithm::CRC32C,
            Algo::Crc64Nvme => ChecksumAlgorithm::CRC64NVME,
            Algo::Sha1 => ChecksumAlgorithm::SHA1,
            Algo::Sha256 => ChecksumAlgorithm::SHA256,
        }
    }

    /// The request and response header (`x-amz-checksum-crc32`, ...).
    pub fn header(self) -> String {
        format!("x-amz-checksum-{}", self.name().to_ascii_lowercase())
    }

    fn digest_len(self) -> usize {
        match self {
            Algo::Crc32 | Algo::Crc32c => 4,
            Algo::Crc64Nvme => 8,
            Algo::Sha1 => 20,
            Algo::Sha256 => 32,
        }
    }

    fn is_crc(self) -> bool {
        matches!(self, Algo::Crc32 | Algo::Crc32c | Algo::Crc64Nvme)
    }

    pub fn parse(name: &str) -> GatewayResult<Algo> {
        Algo::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                GatewayError::InvalidRequest(format!(
                    "{name:?} is not a checksum algorithm (CRC32, CRC32C, CRC64NVME, SHA1, SHA256)"
                ))
            })
    }

    fn key(self) -> String {
        format!("{KEY_PREFIX}{}", self.name())
    }

    fn hasher(self) -> ChecksumHasher {
        let mut h = ChecksumHasher::default();
        match self {
            Algo::Crc32 => h.crc32 = Some(s3s::crypto::Crc32::new()),
            Algo::Crc32c => h.crc32c = Some(s3s::crypto::Crc32c::new()),
            Algo::Crc64Nvme => h.crc64nvme = Some(s3s::crypto::Crc64Nvme::new()),
            Algo::Sha1 => h.sha1 = Some(s3s::crypto::Sha1::new()),
            Algo::Sha256 => h.sha256 = Some(s3s::crypto::Sha256::new()),
        }
        h
    }

    /// This algorithm's field of a checksum set.
    pub fn field(self, c: &Checksum) -> Option<&String> {
        match self {
            Algo::Crc32 => c.checksum_crc32.as_ref(),
            Algo::Crc32c => c.checksum_crc32c.as_ref(),
            Algo::Crc64Nvme => c.checksum_crc64nvme.as_ref(),
            Algo::Sha1 => c.checksum_sha1.as_ref(),
            Algo::Sha256 => c.checksum_sha256.as_ref(),
        }
    }

    fn field_mut(self, c: &mut Checksum) -> &mut Option<String> {
        match self {
            Algo::Crc32 => &mut c.checksum_crc32,
            Algo::Crc32c => &mut c.checksum_crc32c,
            Algo::Crc64Nvme => &mut c.checksum_crc64nvme,
            Algo::Sha1 => &mut c.checksum_sha1,
            Algo::Sha256 => &mut c.checksum_sha256,
        }
    }

    /// The raw digest of a base64 value, if it has this algorithm's length.
    fn decode(self, v: &str) -> Option<Vec<u8>> {
        B64.decode(v.trim())
            .ok()
            .filter(|d| d.len() == self.digest_len())
    }

    fn crc_params(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            Algo::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            Algo::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            Algo::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            Algo::Sha1 | Algo::Sha256 => None,
        }
    }
}

/// Copies a checksum set into any S3 output that has the five checksum fields.
macro_rules! set_checksums {
    ($out:expr, $c:expr) => {{
        let c: s3s::dto::Checksum = $c;
        $out.checksum_crc32 = c.checksum_crc32;
        $out.checksum_crc32c = c.checksum_crc32c;
        $out.checksum_crc64nvme = c.checksum_crc64nvme;
        $out.checksum_sha1 = c.checksum_sha1;
        $out.checksum_sha256 = c.checksum_sha256;
    }};
}
pub(crate) use set_checksums;

/// The checksum set carried by any S3 input or part that has the five checksum fields.
macro_rules! checksums_of {
    ($i:expr) => {
        s3s::dto::Checksum {
            checksum_crc32: $i.checksum_crc32.clone(),
            checksum_crc32c: $i.checksum_crc32c.clone(),
            checksum_crc64nvme: $i.checksum_crc64nvme.clone(),
            checksum_sha1: $i.checksum_sha1.clone(),
            checksum_sha256: $i.checksum_sha256.clone(),
            checksum_type: None,
        }
    };
}
pub(crate) use checksums_of;

/// The checksum a request asks for: its algorithm and, unless it comes as a trailer or
/// the client only named the algorithm, the value to check.
#[derive(Debug, Clone)]
pub struct RequestedChecksum {
    pub algo: Algo,
    value: Option<String>,
    from_trailer: bool,
}

impl RequestedChecksum {
    /// Compute and keep `algo` without checking a value.
    pub fn compute(algo: Algo) -> RequestedChecksum {
        RequestedChecksum {
            algo,
            value: None,
            from_trailer: false,
        }
    }
}

/// The checksum a request carries: the `x-amz-checksum-*` header values s3s parsed
/// (`given`), the `x-amz-sdk-checksum-algorithm` it named, and `x-amz-trailer`.
pub fn requested(
    given: &Checksum,
    algorithm: Option<&ChecksumAlgorithm>,
    headers: &HeaderMap,
) -> GatewayResult<Option<RequestedChecksum>> {
    // s3s fills the algorithm for some operations only; the header is the same.
    let header_algo = headers
        .get("x-amz-sdk-checksum-algorithm")
        .and_then(|v| v.to_str().ok());
    let named = match algorithm.map(ChecksumAlgorithm::as_str).or(header_algo) {
        Some(a) => Some(Algo::parse(a)?),
        None => None,
    };
    let mut present = Algo::ALL
        .into_iter()
        .filter_map(|a| a.field(given).map(|v| (a, v)));
    let first = present.next();
    if present.next().is_some() {
        return Err(GatewayError::InvalidRequest(
            "expecting a single x-amz-checksum- header: several checksum types are not allowed"
                .into(),
        ));
    }
    if let Some((algo, v)) = first {
        if algo.decode(v).is_none() {
            return Err(GatewayError::InvalidRequest(format!(
                "value for {} header is invalid",
                algo.header()
            )));
        }
        if named.is_some_and(|n| n != algo) {
            return Err(GatewayError::InvalidRequest(format!(
                "x-amz-sdk-checksum-algorithm names {} but the request carries {}",
                named.map(Algo::name).unwrap_or_default(),
                algo.header()
            )));
        }
        return Ok(Some(RequestedChecksum {
            algo,
            value: Some(v.clone()),
            from_trailer: false,
        }));
    }
    let trailer = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    if let Some(t) = trailer
        && let Some(algo) = Algo::ALL.into_iter().find(|a| a.header() == t)
    {
        return Ok(Some(RequestedChecksum {
            algo,
            value: None,
            from_trailer: true,
        }));
    }
    Ok(named.map(RequestedChecksum::compute))
}

/// Trailers an `aws-chunked` body ended with, as the open-mode decoder saw them
/// (s3s keeps its own, verified, for signed requests).
#[derive(Debug, Clone, Default)]
pub struct OpenTrailers(Arc<Mutex<Vec<(String, String)>>>);

impl OpenTrailers {
    pub fn push(&self, name: &str, value: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        let v = self.0.lock().ok()?;
        v.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }
}

/// Where a request's trailers will be once its body has been read.
#[derive(Debug, Clone)]
pub enum Trailers {
    Signed(TrailingHeaders),
    Open(OpenTrailers),
    None,
}

impl Trailers {
    pub fn of<T>(req: &S3Request<T>) -> Trailers {
        if let Some(t) = &req.trailing_headers {
            Trailers::Signed(t.clone())
        } else if let Some(t) = req.extensions.get::<OpenTrailers>() {
            Trailers::Open(t.clone())
        } else {
            Trailers::None
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        match self {
            Trailers::Signed(t) => t
                .read(|h| {
                    h.get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                })
                .flatten(),
            Trailers::Open(t) => t.get(name),
            Trailers::None => None,
        }
    }
}

/// A body that computes `want.algo` as it streams. At its end it checks the value the
/// client sent (header or trailer): a mismatch ends the body with an error, so the
/// write fails and stores nothing; a match (or no value to check) leaves the checksum
/// in `late` for the entry.
pub struct Checked<S> {
    inner: S,
    hasher: Option<ChecksumHasher>,
    want: RequestedChecksum,
    trailers: Trailers,
    late: LateExtended,
}

impl<S> Checked<S> {
    pub fn new(
        inner: S,
        want: RequestedChecksum,
        trailers: Trailers,
        late: LateExtended,
    ) -> Checked<S> {
        Checked {
            inner,
            hasher: Some(want.algo.hasher()),
            want,
            trailers,
            late,
        }
    }

    /// The body has ended: check, and record what to keep.
    fn finish(&mut self, hasher: ChecksumHasher) -> Result<(), std::io::Error> {
        let algo = self.want.algo;
        let sums = hasher.finalize();
        let got = algo.field(&sums).cloned().unwrap_or_default();
        let expected = match (&self.want.value, self.want.from_trailer) {
            (Some(v), _) => Some(v.clone()),
            (None, true) => match self.trailers.get(&algo.header()) {
                Some(v) => Some(v),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "InvalidChecksum: x-amz-trailer announced {} but the body carried no such trailer",
                            algo.header()
                        ),
                    ));
                }
            },
            (None, false) => None,
        };
        if let Some(exp) = expected {
            match algo.decode(&exp) {
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("InvalidChecksum: the {} trailer is invalid", algo.header()),
                    ));
                }
                Some(d) if Some(&d) != algo.decode(&got).as_ref() => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "BadDigest: the {} you specified did not match the calculated checksum",
                            algo.name()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Ok(mut l) = self.late.lock() {
            l.push((algo.key(), got.into_bytes()));
            l.push((
                TYPE_KEY.into(),
                ChecksumType::FULL_OBJECT.as_bytes().to_vec(),
            ));
        }
        Ok(())
    }
}

impl<S, E> Stream for Checked<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(b))) => {
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&b);
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.hasher = None;
                Poll::Ready(Some(Err(std::io::Error::other(e.to_string()))))
            }
            Poll::Ready(None) => match self.hasher.take() {
                Some(h) => Poll::Ready(self.finish(h).err().map(Err)),
                None => Poll::Ready(None),
            },
        }
    }
}

/// Wraps a request body (an absent one reads as empty) so that it is checked against
/// `want`; the verified checksum lands in the returned attributes slot.
pub fn check_body(
    body: Option<StreamingBlob>,
    want: RequestedChecksum,
    trailers: Trailers,
) -> (StreamingBlob, LateExtended) {
    let late = LateExtended::default();
    let inner: StreamingBlob = body.unwrap_or_else(|| {
        StreamingBlob::wrap(futures::stream::empty::<Result<Bytes, std::io::Error>>())
    });
    let checked = Checked::new(inner, want, trailers, late.clone());
    (StreamingBlob::wrap(checked), late)
}

/// The checksum stored on an entry, if any, with its type.
pub fn stored(e: &Entry) -> Option<(Checksum, ChecksumType)> {
    let mut c = Checksum::default();
    let mut any = false;
    for a in Algo::ALL {
        if let Some(v) = e.extended.get(&a.key())
            && let Ok(v) = String::from_utf8(v.clone())
        {
            *a.field_mut(&mut c) = Some(v);
            any = true;
        }
    }
    let t = e
        .extended
        .get(TYPE_KEY)
        .and_then(|v| String::from_utf8(v.clone()).ok())
        .unwrap_or_else(|| ChecksumType::FULL_OBJECT.into());
    any.then(|| (c, ChecksumType::from(t)))
}

/// The checksum of `e` for the algorithm `a` (a part's), as raw digest bytes.
fn part_digest(e: &Entry, a: Algo) -> Option<Vec<u8>> {
    let v = e.extended.get(&a.key())?;
    a.decode(std::str::from_utf8(v).ok()?)
}

/// What a multipart upload was created to checksum: `(algorithm, type)`.
pub fn upload_checksum(
    algorithm: Option<&ChecksumAlgorithm>,
    kind: Option<&ChecksumType>,
) -> GatewayResult<Option<(Algo, ChecksumType)>> {
    let Some(a) = algorithm else {
        return match kind {
            Some(_) => Err(GatewayError::InvalidRequest(
                "x-amz-checksum-type needs x-amz-checksum-algorithm".into(),
            )),
            None => Ok(None),
        };
    };
    let algo = Algo::parse(a.as_str())?;
    let t = match kind.map(ChecksumType::as_str) {
        None if algo == Algo::Crc64Nvme => ChecksumType::FULL_OBJECT,
        None => ChecksumType::COMPOSITE,
        Some(t) if t.eq_ignore_ascii_case(ChecksumType::FULL_OBJECT) => {
            if !algo.is_crc() {
                return Err(GatewayError::InvalidRequest(format!(
                    "the FULL_OBJECT checksum type is not supported with {}",
                    algo.name()
                )));
            }
            ChecksumType::FULL_OBJECT
        }
        Some(t) if t.eq_ignore_ascii_case(ChecksumType::COMPOSITE) => {
            if algo == Algo::Crc64Nvme {
                return Err(GatewayError::InvalidRequest(
                    "the COMPOSITE checksum type is not supported with CRC64NVME".into(),
                ));
            }
            ChecksumType::COMPOSITE
        }
        Some(t) => {
            return Err(GatewayError::InvalidRequest(format!(
                "{t:?} is not a checksum type (COMPOSITE, FULL_OBJECT)"
            )));
        }
    };
    Ok(Some((algo, ChecksumType::from(t.to_string()))))
}

/// Encodes an upload's checksum choice for its directory entry.
pub fn encode_upload_checksum(algo: Algo, t: &ChecksumType) -> Vec<u8> {
    format!("{} {}", algo.name(), t.as_str()).into_bytes()
}

/// Decodes [`encode_upload_checksum`].
pub fn decode_upload_checksum(dir: &Entry) -> Option<(Algo, ChecksumType)> {
    let v = std::str::from_utf8(dir.extended.get(UPLOAD_CHECKSUM_KEY)?).ok()?;
    let (a, t) = v.split_once(' ')?;
    Some((Algo::parse(a).ok()?, ChecksumType::from(t.to_string())))
}

/// Checks a part's checksum as the client listed it in CompleteMultipartUpload against
/// the one stored with the part.
pub fn check_listed_part(n: i32, listed: &Checksum, part: &Entry) -> GatewayResult<()> {
    for a in Algo::ALL {
        if let Some(v) = a.field(listed) {
            let ok = match (a.decode(v), part_digest(part, a)) {
                (Some(l), Some(s)) => l == s,
                // The part was stored without this checksum: nothing to hold it to.
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !ok {
                return Err(GatewayError::InvalidPart(format!(
                    "part {n}: its {} does not match the uploaded part",
                    a.header()
                )));
            }
        }
    }
    Ok(())
}

/// The object checksum of a completed upload from its parts (in order, with sizes):
/// `None` when a part lacks the algorithm's checksum (a part copied from another
/// object), so there is nothing sound to return.
pub fn combine_parts(algo: Algo, t: &ChecksumType, parts: &[(&Entry, u64)]) -> Option<String> {
    let digests: Option<Vec<Vec<u8>>> = parts.iter().map(|(e, _)| part_digest(e, algo)).collect();
    let digests = digests?;
    if t.as_str() == ChecksumType::FULL_OBJECT {
        let crc = algo.crc_params()?;
        let mut acc: Option<u64> = None;
        for (d, (_, size)) in digests.iter().zip(parts) {
            let v = d.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
            acc = Some(match acc {
                None => v,
                Some(a) => crc_fast::checksum_combine(crc, a, v, *size),
            });
        }
        let v = acc?;
        let bytes = v.to_be_bytes();
        return Some(B64.encode(&bytes[8 - algo.digest_len()..]));
    }
    let mut h = algo.hasher();
    for d in &digests {
        h.update(d);
    }
    let sums = h.finalize();
    algo.field(&sums).map(|v| format!("{v}-{}", digests.len()))
}

/// The attributes that keep an object checksum on its entry.
pub fn attrs(algo: Algo, value: String, t: &ChecksumType) -> Vec<(String, Vec<u8>)> {
    vec![
        (algo.key(), value.into_bytes()),
        (TYPE_KEY.into(), t.as_str().as_bytes().to_vec()),
    ]
}

/// Computes `algo` over stored bytes (a copy's source), as a FULL_OBJECT value.
pub async fn compute_over<S>(algo: Algo, mut bytes: S) -> GatewayResult<String>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    use futures::StreamExt;
    let mut h = algo.hasher();
    while let Some(b) = bytes.next().await {
        let b = b.map_err(|e| {
            GatewayError::Filer(kelp_filer::FilerError::Unavailable(format!(
                "reading the copy source: {e}"
            )))
        })?;
        h.update(&b);
    }
    Ok(algo.field(&h.finalize()).cloned().unwrap_or_default())
}

/// Replaces whatever checksum `e` keeps with `algo`'s `value` of type `t`.
pub fn replace(e: &mut Entry, algo: Algo, value: String, t: &ChecksumType) {
    e.extended
        .retain(|k, _| k != TYPE_KEY && !Algo::ALL.iter().any(|a| *k == a.key()));
    e.extended.extend(attrs(algo, value, t));
}

/// A checksum set holding one value.
pub fn one(algo: Algo, value: String) -> Checksum {
    let mut c = Checksum::default();
    *algo.field_mut(&mut c) = Some(value);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn b64crc32(data: &[u8]) -> String {
        B64.encode(s3s::crypto::Crc32::checksum_u32(data).to_be_bytes())
    }

    async fn run(
        want: RequestedChecksum,
        data: &[&'static [u8]],
    ) -> (Result<Vec<u8>, String>, LateExtended) {
        let inner = futures::stream::iter(
            data.iter()
                .map(|d| Ok::<_, std::io::Error>(Bytes::from_static(d)))
                .collect::<Vec<_>>(),
        );
        let late = LateExtended::default();
        let mut s = Checked::new(inner, want, Trailers::None, late.clone());
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (Err(e.to_string()), late),
            }
        }
        (Ok(out), late)
    }

    #[tokio::test]
    async fn matching_checksum_is_kept() {
        let want = RequestedChecksum {
            algo: Algo::Crc32,
            value: Some(b64crc32(b"hello world")),
            from_trailer: false,
        };
        let (r, late) = run(want, &[b"hello ", b"world"]).await;
        assert_eq!(r.unwrap(), b"hello world");
        let l = late.lock().unwrap();
        assert_eq!(l[0].0, "X-Kelp-S3-Checksum-CRC32");
        assert_eq!(l[0].1, b64crc32(b"hello world").into_bytes());
    }

    #[tokio::test]
    async fn mismatch_fails_the_body() {
        let want = RequestedChecksum {
            algo: Algo::Crc32,
            value: Some(b64crc32(b"something else")),
            from_trailer: false,
        };
        let (r, late) = run(want, &[b"hello"]).await;
        assert!(r.unwrap_err().contains("BadDigest"));
        assert!(late.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn trailer_value_is_checked() {
        let t = OpenTrailers::default();
        t.push("X-Amz-Checksum-Crc32", &b64crc32(b"abc"));
        let want = RequestedChecksum {
            algo: Algo::Crc32,
            value: None,
            from_trailer: true,
        };
        let late = LateExtended::default();
        let inner =
            futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"abc"))]);
        let mut s = Checked::new(inner, want.clone(), Trailers::Open(t), late.clone());
        while let Some(i) = s.next().await {
            i.unwrap();
        }
        assert_eq!(late.lock().unwrap().len(), 2);
        let t = OpenTrailers::default();
        t.push("x-amz-checksum-crc32", &b64crc32(b"abd"));
        let inner =
            futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"abc"))]);
        let mut s = Checked::new(
            inner,
            want.clone(),
            Trailers::Open(t),
            LateExtended::default(),
        );
        let mut failed = false;
        while let Some(i) = s.next().await {
            failed |= i.is_err();
        }
        assert!(failed);
        // Announced but never sent: refused, not taken on trust.
        let inner =
            futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"abc"))]);
        let late = LateExtended::default();
        let mut s = Checked::new(
            inner,
            want,
            Trailers::Open(OpenTrailers::default()),
            late.clone(),
        );
        let mut failed = false;
        while let Some(i) = s.next().await {
            failed |= i.is_err();
        }
        assert!(failed && late.lock().unwrap().is_empty());
    }

    #[test]
    fn requested_rejects_bad_values_and_doubles() {
        let h = HeaderMap::new();
        let mut c = Checksum {
            checksum_crc32: Some("not base64!".into()),
            ..Default::default()
        };
        assert!(requested(&c, None, &h).is_err());
        c.checksum_crc32 = Some(b64crc32(b"x"));
        assert!(requested(&c, None, &h).unwrap().is_some());
        c.checksum_sha1 = Some(B64.encode([0u8; 20]));
        assert!(requested(&c, None, &h).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-amz-sdk-checksum-algorithm", "MD99".parse().unwrap());
        assert!(requested(&Checksum::default(), None, &h).is_err());
        h.insert("x-amz-sdk-checksum-algorithm", "sha256".parse().unwrap());
        let w = requested(&Checksum::default(), None, &h).unwrap().unwrap();
        assert_eq!((w.algo, w.from_trailer), (Algo::Sha256, false));
        let mut h = HeaderMap::new();
        h.insert("x-amz-trailer", "x-amz-checksum-crc32c".parse().unwrap());
        let w = requested(&Checksum::default(), None, &h).unwrap().unwrap();
        assert_eq!(w.algo, Algo::Crc32c);
        assert!(w.from_trailer);
    }

    #[test]
    fn full_object_crc_combines_parts() {
        let (a, b) = (b"hello ".as_slice(), b"world".as_slice());
        let mut pa = Entry::new_file("/p/1", 0);
        pa.extended
            .insert(Algo::Crc32.key(), b64crc32(a).into_bytes());
        let mut pb = Entry::new_file("/p/2", 0);
        pb.extended
            .insert(Algo::Crc32.key(), b64crc32(b).into_bytes());
        let parts = [(&pa, a.len() as u64), (&pb, b.len() as u64)];
        let full = ChecksumType::from_static(ChecksumType::FULL_OBJECT);
        assert_eq!(
            combine_parts(Algo::Crc32, &full, &parts).unwrap(),
            b64crc32(b"hello world")
        );
        let comp = ChecksumType::from_static(ChecksumType::COMPOSITE);
        let c = combine_parts(Algo::Crc32, &comp, &parts).unwrap();
        let mut raw = B64.decode(b64crc32(a)).unwrap();
        raw.extend(B64.decode(b64crc32(b)).unwrap());
        assert_eq!(c, format!("{}-2", b64crc32(&raw)));
        // A part without a checksum: no object checksum at all.
        let bare = Entry::new_file("/p/3", 0);
        assert!(combine_parts(Algo::Crc32, &comp, &[(&pa, 6), (&bare, 5)]).is_none());
    }
}
