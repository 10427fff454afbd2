//! Request bodies as the filer consumes them: [`watch`] wraps a body stream and keeps
//! the first error it yields, so a failed write can be reported as what went wrong with
//! the body (a chunk signature that does not verify, a payload hash mismatch, a body
//! cut short) rather than as a generic filer error.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;

use crate::error::GatewayError;

/// The first error a watched body yielded.
#[derive(Debug, Clone, Default)]
pub struct BodyErrors(Arc<Mutex<Option<String>>>);

impl BodyErrors {
    /// What the recorded body error means for the client, if there was one.
    pub fn classify(&self) -> Option<GatewayError> {
        let msg = self.0.lock().ok()?.clone()?;
        Some(if msg.contains("SignatureMismatch") {
            GatewayError::SignatureDoesNotMatch(
                "a chunk signature of the streamed body does not match".into(),
            )
        } else if let Some(m) = msg.strip_prefix("BadDigest: ") {
            GatewayError::BadDigest(m.to_string())
        } else if let Some(m) = msg.strip_prefix("InvalidChecksum: ") {
            GatewayError::InvalidRequest(m.to_string())
        } else if msg.contains("Sha256Mismatch") {
            GatewayError::ContentSha256Mismatch(
                "the body does not match its x-amz-content-sha256".into(),
            )
        } else {
            GatewayError::IncompleteBody(format!("the request body could not be read: {msg}"))
        })
    }
}

/// A body stream that records its first error in [`BodyErrors`].
pub struct Watched<S> {
    inner: S,
    errors: BodyErrors,
}

pub fn watch<S>(inner: S) -> (Watched<S>, BodyErrors) {
    let errors = BodyErrors::default();
    (
        Watched {
            inner,
            errors: errors.clone(),
        },
        errors,
    )
}

impl<S, E> Stream for Watched<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Err(e))) = &item
            && let Ok(mut slot) = self.errors.0.lock()
            && slot.is_none()
        {
            *slot = Some(e.to_string());
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn records_the_first_error() {
        let items: Vec<Result<Bytes, String>> = vec![
            Ok(Bytes::from_static(b"a")),
            Err("AwsChunkedStreamError: SignatureMismatch".into()),
            Err("later".into()),
        ];
        let (mut w, errs) = watch(futures::stream::iter(items));
        assert!(errs.classify().is_none());
        while w.next().await.is_some() {}
        assert!(matches!(
            errs.classify(),
            Some(GatewayError::SignatureDoesNotMatch(_))
        ));
    }
}
