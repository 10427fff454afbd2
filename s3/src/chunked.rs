//! A decoder for `aws-chunked` request bodies (`<hex size>[;chunk-signature=…]\r\n<data>\r\n`
//! …, a `0` chunk, optional trailers, `\r\n`), used when the gateway runs open: then
//! s3s verifies no signature and the body must be unwrapped here. (With identities
//! configured s3s decodes and verifies such bodies itself.)

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use s3s::StdError;

use crate::checksum::OpenTrailers;

/// The longest chunk header or trailer line accepted.
const MAX_LINE: usize = 4096;
/// The most trailer lines accepted.
const MAX_TRAILERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// Yields the payload of an `aws-chunked` body.
pub struct AwsChunked<S> {
    inner: S,
    buf: BytesMut,
    state: State,
    eof: bool,
    /// The decoded length, when the request announced it.
    decoded_len: Option<u64>,
    /// Where the trailers go (`name:value` lines after the last chunk).
    trailers: OpenTrailers,
    trailer_count: usize,
}

fn bad(msg: impl Into<String>) -> StdError {
    Box::new(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        msg.into(),
    ))
}

impl<S> AwsChunked<S> {
    pub fn new(inner: S, decoded_len: Option<u64>, trailers: OpenTrailers) -> AwsChunked<S> {
        AwsChunked {
            inner,
            buf: BytesMut::new(),
            state: State::Header,
            eof: false,
            decoded_len,
            trailers,
            trailer_count: 0,
        }
    }

    /// Takes one `\r\n`-terminated line off the buffer.
    fn line(&mut self) -> Result<Option<Bytes>, StdError> {
        match self.buf.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                let l = self.buf.split_to(i).freeze();
                self.buf.advance(2);
                Ok(Some(l))
            }
            None if self.buf.len() > MAX_LINE => Err(bad("aws-chunked: header line too long")),
            None => Ok(None),
        }
    }

    /// Advances the state machine on buffered bytes: `Some(item)` to yield, `None` when
    /// more input is needed (or the body is done).
    fn step(&mut self) -> Option<Result<Bytes, StdError>> {
        loop {
            match self.state {
                State::Done => return None,
                State::Header => {
                    let l = match self.line() {
                        Ok(Some(l)) => l,
                        Ok(None) => return None,
                        Err(e) => return Some(Err(e)),
                    };
                    let text = String::from_utf8_lossy(&l);
                    let size = text.split(';').next().unwrap_or("").trim();
                    match u64::from_str_radix(size, 16) {
                        Ok(0) => self.state = State::Trailers,
                        Ok(n) => self.state = State::Data(n),
                        Err(_) => {
                            return Some(Err(bad(format!(
                                "aws-chunked: bad chunk header {text:?}"
                            ))));
                        }
                    }
                }
                State::Data(n) => {
                    if self.buf.is_empty() {
                        return None;
                    }
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(self.buf.len());
                    let out = self.buf.split_to(take).freeze();
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Some(Ok(out));
                }
                State::DataEnd => {
                    if self.buf.len() < 2 {
                        return None;
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Some(Err(bad("aws-chunked: chunk data is not followed by CRLF")));
                    }
                    self.buf.advance(2);
                    self.state = State::Header;
                }
                State::Trailers => match self.line() {
                    Ok(Some(l)) if l.is_empty() => self.state = State::Done,
                    Ok(Some(l)) => {
                        self.trailer_count += 1;
                        if self.trailer_count > MAX_TRAILERS {
                            return Some(Err(bad("aws-chunked: too many trailers")));
                        }
                        let text = String::from_utf8_lossy(&l);
                        match text.split_once(':') {
                            Some((name, value)) => self.trailers.push(name, value),
                            None => {
                                return Some(Err(bad(format!(
                                    "aws-chunked: bad trailer line {text:?}"
                                ))));
                            }
                        }
                    }
                    Ok(None) => return None,
                    Err(e) => return Some(Err(e)),
                },
            }
        }
    }
}

impl<S, E> Stream for AwsChunked<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<StdError>,
{
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(item) = self.step() {
                return Poll::Ready(Some(item));
            }
            if self.state == State::Done {
                return Poll::Ready(None);
            }
            if self.eof {
                // A body may end right after the last chunk's trailers without the
                // final empty line; anything earlier is a truncated body.
                return Poll::Ready(match self.state {
                    State::Trailers if self.buf.is_empty() => None,
                    _ => Some(Err(bad(
                        "aws-chunked: the body ended in the middle of a chunk",
                    ))),
                });
            }
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(b))) => self.buf.extend_from_slice(&b),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => self.eof = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S, E> s3s::stream::ByteStream for AwsChunked<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<StdError>,
{
    fn remaining_length(&self) -> s3s::stream::RemainingLength {
        match (self.decoded_len, self.state) {
            (Some(n), State::Header) if self.buf.is_empty() => {
                s3s::stream::RemainingLength::new_exact(usize::try_from(n).unwrap_or(usize::MAX))
            }
            _ => s3s::stream::RemainingLength::unknown(),
        }
    }
}

/// Decodes a whole body that arrives in `pieces` (as the network split it) with the same
/// stream the gateway uses, polled by hand: the payload, or the first error. Only the fuzz
/// targets and their corpus replay call this (as `kelp_s3::decode_aws_chunked`).
pub fn decode_all(pieces: Vec<Bytes>) -> Result<Vec<u8>, String> {
    let inner = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
    let mut s = AwsChunked::new(inner, None, OpenTrailers::default());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut out = Vec::new();
    loop {
        match Pin::new(&mut s).poll_next(&mut cx) {
            Poll::Ready(Some(Ok(b))) => out.extend_from_slice(&b),
            Poll::Ready(Some(Err(e))) => return Err(e.to_string()),
            Poll::Ready(None) => return Ok(out),
            // `stream::iter` is always ready; a pending poll would be a decoder bug.
            Poll::Pending => return Err("aws-chunked: pending on a ready stream".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn decode(pieces: Vec<&'static [u8]>) -> Result<Vec<u8>, String> {
        let inner = futures::stream::iter(
            pieces
                .into_iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p))),
        );
        let mut s = AwsChunked::new(inner, None, OpenTrailers::default());
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            out.extend_from_slice(&item.map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn signed_chunks() {
        let body: &[u8] = b"5;chunk-signature=abc\r\nhello\r\n6;chunk-signature=def\r\n world\r\n0;chunk-signature=0\r\n\r\n";
        assert_eq!(decode(vec![body]).await.unwrap(), b"hello world");
        // Split at every byte.
        let pieces: Vec<&'static [u8]> = body.chunks(1).collect();
        assert_eq!(decode(pieces).await.unwrap(), b"hello world");
    }

    #[tokio::test]
    async fn trailers_and_lenient_end() {
        let body: &[u8] = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        assert_eq!(decode(vec![body]).await.unwrap(), b"abc");
        assert_eq!(decode(vec![b"3\r\nabc\r\n0\r\n"]).await.unwrap(), b"abc");
    }

    #[tokio::test]
    async fn broken_bodies_fail() {
        assert!(decode(vec![b"5\r\nabc"]).await.is_err());
        assert!(decode(vec![b"zz\r\nabc\r\n"]).await.is_err());
        assert!(decode(vec![b"3\r\nabcXX0\r\n\r\n"]).await.is_err());
        assert!(decode(vec![b"3\r\nabc\r\n"]).await.is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Whatever a client sends as an aws-chunked body, split however the network
        /// splits it, decoding ends with bytes or an error: never a panic or a hang.
        #[test]
        fn any_bytes_any_split(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            cuts in proptest::collection::vec(1usize..40, 0..20),
        ) {
            let mut pieces = Vec::new();
            let mut rest = body.as_slice();
            for c in cuts {
                if rest.is_empty() {
                    break;
                }
                let (a, b) = rest.split_at(c.min(rest.len()));
                pieces.push(Bytes::copy_from_slice(a));
                rest = b;
            }
            pieces.push(Bytes::copy_from_slice(rest));
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let inner = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
                let mut s = AwsChunked::new(inner, None, OpenTrailers::default());
                while let Some(item) = s.next().await {
                    if item.is_err() {
                        break;
                    }
                }
            });
        }

        /// A well-formed body decodes to its data whatever the split.
        #[test]
        fn well_formed_bodies_round_trip(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 1..50), 0..6),
            cut in 1usize..17,
        ) {
            let mut body = Vec::new();
            let mut want = Vec::new();
            for c in &chunks {
                body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                body.extend_from_slice(c);
                body.extend_from_slice(b"\r\n");
                want.extend_from_slice(c);
            }
            body.extend_from_slice(b"0\r\n\r\n");
            let pieces: Vec<Bytes> = body.chunks(cut).map(Bytes::copy_from_slice).collect();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let got = rt.block_on(async {
                let inner = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
                let mut s = AwsChunked::new(inner, None, OpenTrailers::default());
                let mut out = Vec::new();
                while let Some(item) = s.next().await {
                    out.extend_from_slice(&item.unwrap());
                }
                out
            });
            proptest::prop_assert_eq!(got, want);
        }
    }
}
