//! What every kelp HTTP server shares when it accepts connections.

/// Turns off Nagle's algorithm on accepted connections: a streamed body's first small
/// write must not wait for the client's delayed ACK (about 40 ms per request otherwise).
pub fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    })
}
