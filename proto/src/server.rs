//! What every kelp HTTP server shares when it accepts connections: TCP_NODELAY, an idle
//! timeout on every connection (a header or body that stops arriving, a client that
//! stops reading), a cap on open connections (503 beyond it, so descriptors never run
//! out), TLS when configured, and graceful shutdown. [`serve`] runs an axum router with
//! them; the S3 server runs its own service through [`Acceptor`] and
//! [`spawn_connection`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Default of `-idleTimeout`, in seconds.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 30;
/// Default cap on open connections per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// How long a quiet connection lives, and how many may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection that moves no byte in either direction for this long is closed:
    /// a request head or body that stops arriving, an idle keep-alive connection, a
    /// client that stops reading its answer.
    pub idle: Duration,
    /// Connections beyond this many are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            idle: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// A connection stream that fails with `TimedOut` once no byte has moved either way
/// for the idle timeout. While a request is being handled ([`IdleIo::busy`]) a read
/// that waits is normal (the server only watches for the client going away; a slow
/// request body is [`IdleBody`]'s business), so only writes can time out then.
pub struct IdleIo {
    io: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    busy: Arc<AtomicBool>,
}

impl IdleIo {
    pub fn new(io: TcpStream, idle: Duration) -> IdleIo {
        IdleIo {
            io,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The flag the connection's service sets while it handles a request.
    pub fn busy(&self) -> Arc<AtomicBool> {
        self.busy.clone()
    }

    fn progressed(&mut self) {
        let at = Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }

    /// `Pending` from the stream: time out if the connection has been quiet too long.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for IdleIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.busy.load(Ordering::Relaxed) => {
                self.progressed();
                Poll::Pending
            }
            Poll::Pending => self.pending(cx),
        }
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.pending(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.pending(cx),
        }
    }

    /// Forwarded, so that hyper writes large bodies with `writev` from their own
    /// buffers instead of first copying them into its write buffer.
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => self.pending(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request body whose next piece must arrive within the idle timeout, else it ends
/// with a `TimedOut` error (a client that promised a body and stalls).
pub struct IdleBody<B> {
    inner: B,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<B> IdleBody<B> {
    pub fn new(inner: B, idle: Duration) -> IdleBody<B> {
        IdleBody {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl<B> http_body::Body for IdleBody<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let at = Instant::now() + self.idle;
                self.deadline.as_mut().reset(at);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body stopped arriving",
                ))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Who is at the other end of a request's connection (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: std::net::SocketAddr,
    /// The connection is TLS.
    pub tls: bool,
}

/// A connection taken off a listener under [`Limits`]: the stream, and the permit that
/// counts it until it is dropped. TLS, if the listener has it, is set up by
/// [`Accepted::establish`], on the connection's own task.
pub struct Accepted {
    pub io: IdleIo,
    pub peer: std::net::SocketAddr,
    pub permit: OwnedSemaphorePermit,
    tls: Option<tokio_rustls::TlsAcceptor>,
    idle: Duration,
}

/// An established connection: plain or TLS.
pub enum Stream {
    Plain(IdleIo),
    Tls(Box<tokio_rustls::server::TlsStream<IdleIo>>),
}

impl Accepted {
    /// Runs the TLS handshake (within the idle timeout) if the listener has TLS.
    /// Returns the stream, whether the peer showed a client certificate of the
    /// cluster's CA (the server configuration verified it), and the slot's permit.
    pub async fn establish(self) -> io::Result<(Stream, bool, OwnedSemaphorePermit)> {
        let permit = self.permit;
        match self.tls {
            None => Ok((Stream::Plain(self.io), false, permit)),
            Some(acceptor) => {
                let tls = tokio::time::timeout(self.idle, acceptor.accept(self.io))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"))??;
                let certified = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .is_some_and(|c| !c.is_empty());
                Ok((Stream::Tls(Box::new(tls)), certified, permit))
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Accepts connections under `limits`: sets TCP_NODELAY, answers 503 to those over the
/// cap (on a task of their own, then closes them), and returns the others. `None` when
/// `shutdown` resolves first.
pub struct Acceptor {
    listener: TcpListener,
    limits: Limits,
    slots: Arc<Semaphore>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Acceptor {
    /// `tls`: the listener speaks TLS with this configuration.
    pub fn new(
        listener: TcpListener,
        limits: Limits,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Acceptor {
        let max = limits.max_connections.max(1);
        let slots = Arc::new(Semaphore::new(max));
        if let Ok(a) = listener.local_addr() {
            crate::metrics::listening(a.port(), slots.clone(), max);
        }
        Acceptor {
            listener,
            limits,
            slots,
            tls: tls.map(tokio_rustls::TlsAcceptor::from),
        }
    }

    pub async fn next(
        &self,
        shutdown: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> Option<Accepted> {
        loop {
            let (stream, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors or a transient error: wait a little.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = shutdown.as_mut() => return None,
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            match self.slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    return Some(Accepted {
                        io: IdleIo::new(stream, self.limits.idle),
                        peer,
                        permit,
                        tls: self.tls.clone(),
                        idle: self.limits.idle,
                    });
                }
                // Over the cap a TLS client gets no readable answer, only the close.
                Err(_) => {
                    tokio::spawn(refuse(stream));
                }
            }
        }
    }
}

/// Answers 503 on a connection over the cap and closes it.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "{\"error\":\"too many open connections: try again\"}";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}

/// Serves `app` on `listener` under `limits` (over TLS when `tls` is given) until
/// `shutdown` resolves; then lets open requests finish (up to 10 s) and returns.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let acceptor = Acceptor::new(listener, limits, tls);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    while let Some(c) = acceptor.next(&mut shutdown).await {
        let app = app.clone();
        spawn_connection(c, graceful.watcher(), move |req| {
            let req = req.map(axum::body::Body::new);
            tower::ServiceExt::oneshot(app.clone(), req)
        });
    }
    drain(graceful).await;
    Ok(())
}

/// Lets open connections finish their requests, for at most 10 s.
pub async fn drain(graceful: GracefulShutdown) {
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open 10 s after shutdown; closing them");
        }
    }
}

/// Serves one accepted connection on a task of its own: the TLS handshake if any,
/// then HTTP/1.1 with keep-alive and the idle limits. Every request's body is an
/// [`IdleBody`] and carries a [`ConnInfo`]; a request on a connection that showed a
/// cluster client certificate carries [`PeerCertified`](crate::security::PeerCertified).
pub fn spawn_connection<F, Fut, B, E>(c: Accepted, watcher: Watcher, handler: F)
where
    F: Fn(http::Request<IdleBody<hyper::body::Incoming>>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<http::Response<B>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        let busy = c.io.busy();
        let (peer, idle) = (c.peer, c.idle);
        let (stream, certified, permit) = match c.establish().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
        };
        let conn_info = ConnInfo {
            peer,
            tls: matches!(stream, Stream::Tls(_)),
        };
        let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            // While a request is handled, a quiet socket is normal (a long copy); its
            // body must keep arriving, though (IdleBody).
            busy.store(true, Ordering::Relaxed);
            let mut req = req.map(|b| IdleBody::new(b, idle));
            req.extensions_mut().insert(conn_info);
            if certified {
                req.extensions_mut().insert(crate::security::PeerCertified);
            }
            let (handler, busy) = (handler.clone(), busy.clone());
            async move {
                let resp = handler(req).await;
                busy.store(false, Ordering::Relaxed);
                resp
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(idle)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), svc);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn get(addr: std::net::SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// GETs until the answer satisfies `ok` (the server accepts connections on its own
    /// time), with a deadline.
    async fn until(ok: impl Fn(String) -> bool, addr: std::net::SocketAddr) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let a = get(addr).await;
            if ok(a.clone()) {
                return a;
            }
            assert!(Instant::now() < deadline, "last answer: {a}");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn connections_over_the_cap_get_503_and_idle_ones_are_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let limits = Limits {
            idle: Duration::from_millis(500),
            max_connections: 2,
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, limits, None, async {
            let _ = rx.await;
        }));
        assert!(get(addr).await.contains("200 OK"));
        // Two silent connections take both slots...
        let mut idle = Vec::new();
        for _ in 0..2 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        let refused = until(|a: String| a.starts_with("HTTP/1.1 503"), addr).await;
        assert!(refused.contains("too many open connections"), "{refused}");
        // ...until the idle timeout closes them.
        for s in &mut idle {
            let mut b = [0u8; 16];
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
                .await
                .expect("an idle connection must be closed")
                .unwrap_or(0);
            assert_eq!(n, 0);
        }
        until(|a: String| a.contains("200 OK"), addr).await;
        let _ = tx.send(());
        server.await.unwrap().unwrap();
    }
}
