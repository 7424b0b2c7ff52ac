//! Serving an axum app over HTTP/1 with the limits applied. `axum::serve` (0.8) builds
//! its hyper connections without a timer, and hyper skips its header read timeout (30 s
//! by default) when it has no timer; nor can a request head be bounded through it. So a
//! client could hold a connection open forever with half a request line, or make it
//! buffer ~400 KB of headers. This driver does what `axum::serve` does, with those two
//! knobs set, plus the admission rules, the browser check and the request guard.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::middleware;
use axum::routing::future::RouteFuture;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::admission::{Admission, Standing};
use super::browser::{Browser, BrowserPolicy, browser};
use super::guard::{Guard, guard};
use super::stats::ConnectionStats;
use super::{AdmitOn, ServerLimits};

/// Serves `app` on an already-bound listener until `shutdown` completes, then stops
/// accepting and lets open connections finish what they are doing. Requests carry the
/// client's address as `ConnectInfo<SocketAddr>`.
///
/// With `body_limit`, bodies are read by the guard, within `body_read_timeout`, and
/// refused over that many bytes; without, the app reads them under its own limit and
/// in its own error shape (the tracker's, which the existing network reads).
///
/// Every request is first checked against `browser` (Host, Origin, content type; see
/// the `browser` module), which needs to know whether `listener` is on loopback.
/// What the admission rules do is counted in `stats`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    body_limit: Option<usize>,
    browser: BrowserPolicy,
    stats: ConnectionStats,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let browser = Browser::new(browser, listener.local_addr()?);
    stats.show_limits(&limits);
    let listener = Admission::new(
        listener,
        limits.max_connections,
        limits.max_connections_per_address,
        limits.write_stall_timeout,
        stats.clone(),
    );
    run(listener, app, limits, body_limit, browser, stats, shutdown).await;
    Ok(())
}

async fn run(
    mut listener: Admission,
    app: Router,
    limits: ServerLimits,
    body_limit: Option<usize>,
    browser_check: Browser,
    stats: ConnectionStats,
    shutdown: impl Future<Output = ()> + Send,
) {
    // The browser check is the outer layer: a forged request is refused before its
    // body is read, and before any handler could bill it.
    let app = with_guard(app, &limits, body_limit)
        .layer(middleware::from_fn_with_state(browser_check, browser));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.hard_header_bytes());
    let mut connections = JoinSet::new();
    let stop = CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished connections so the set stays as large as what is open.
        while connections.try_join_next().is_some() {}
        tracing::trace!(?addr, "connection accepted");
        let standing = io.standing();
        let service = PerConnection {
            app: app.clone(),
            addr,
            standing: standing.clone(),
            proven_by_head: limits.admit_on == AdmitOn::RequestHead,
        };
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let stop = stop.clone();
        let stats = stats.clone();
        let head_timeout = limits.head_timeout;
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let mut head_deadline = std::pin::pin!(tokio::time::sleep(head_timeout));
            let mut watching_head = true;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::trace!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                        break;
                    }
                    // Dropping the connection closes it and frees its slot.
                    _ = standing.evicted() => break,
                    _ = &mut head_deadline, if watching_head => {
                        watching_head = false;
                        if !standing.is_proven() {
                            stats.refuse("head_timeout");
                            break;
                        }
                    }
                }
            }
        });
    }
    // No new connections; the open ones finish their requests in progress.
    drop(listener);
    stop.cancel();
    while connections.join_next().await.is_some() {}
}

/// `app` behind the request guard: header bytes, body size and body read time bounded,
/// as on every server (also the peer-link server, where no browser can reach).
pub fn with_guard(app: Router, limits: &ServerLimits, body_limit: Option<usize>) -> Router {
    app.layer(middleware::from_fn_with_state(
        Guard {
            max_header_bytes: limits.max_header_bytes,
            body_limit,
            body_read_timeout: limits.body_read_timeout,
        },
        guard,
    ))
}

/// The app as hyper calls it for one connection, telling each request where it came
/// from (for `ConnectInfo`, as the tracker's rate limit needs) and the connection's
/// `Standing` (which the control API proves once the token checks out).
#[derive(Clone)]
struct PerConnection {
    app: Router,
    addr: SocketAddr,
    standing: Standing,
    /// A whole request head proves the connection (hyper calls us once it has one).
    proven_by_head: bool,
}

impl hyper::service::Service<Request<Incoming>> for PerConnection {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        if self.proven_by_head {
            self.standing.prove();
        }
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(self.addr));
        extensions.insert(self.standing.clone());
        // A router is always ready, so it is called without polling readiness.
        let mut app = self.app.clone();
        tower_service::Service::call(&mut app, request)
    }
}
