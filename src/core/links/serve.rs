//! The link server: accepts peer links on a node's endpoint and serves an axum app over
//! them, HTTP/1.1 on each bi-directional stream. Every request on a link carries the
//! key its handshake proved (`LinkPeer`), which the worker's gate takes as the requester.

use std::convert::Infallible;
use std::future::Future;

use axum::Router;
use axum::http::Request;
use axum::routing::future::RouteFuture;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{ALPN, LinkEndpoint, LinkPeer, public_key_of};
use crate::core::net::{ServerLimits, with_guard};
use crate::core::protocol::PublicKey;

/// Serves `app` on every link `link` accepts until `shutdown` completes, then lets the
/// requests in progress finish.
pub async fn serve_links(
    link: LinkEndpoint,
    app: Router,
    limits: ServerLimits,
    body_limit: Option<usize>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let app = with_guard(app, &limits, body_limit);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.hard_header_bytes());
    let stop = CancellationToken::new();
    let mut links = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let incoming = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            incoming = link.inner().accept() => incoming,
        };
        // The endpoint closed.
        let Some(incoming) = incoming else { break };
        while links.try_join_next().is_some() {}
        let (app, builder, stop) = (app.clone(), builder.clone(), stop.clone());
        links.spawn(async move {
            let connection = match incoming.accept() {
                Ok(accepting) => accepting.await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let connection = match connection {
                Ok(c) if c.alpn() == ALPN => c,
                Ok(c) => {
                    tracing::debug!(alpn = ?c.alpn(), "link with an unknown protocol refused");
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "link handshake failed");
                    return;
                }
            };
            let peer = public_key_of(&connection.remote_id());
            tracing::debug!(peer = %peer.short(), "link accepted");
            serve_streams(connection, peer, app, builder, stop).await;
        });
    }
    stop.cancel();
    while links.join_next().await.is_some() {}
}

/// Serves each stream the peer opens on one link, until the link closes or the server
/// stops.
async fn serve_streams(
    connection: iroh::endpoint::Connection,
    peer: PublicKey,
    app: Router,
    builder: http1::Builder,
    stop: CancellationToken,
) {
    let mut streams = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = connection.accept_bi() => accepted,
        };
        let Ok((send, recv)) = accepted else { break };
        while streams.try_join_next().is_some() {}
        let io = TokioIo::new(tokio::io::join(recv, send));
        let service = OnLink {
            app: app.clone(),
            peer,
        };
        let http = builder.serve_connection(io, service);
        let stop = stop.clone();
        streams.spawn(async move {
            let mut http = std::pin::pin!(http);
            tokio::select! {
                result = http.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "link stream ended with an error");
                    }
                }
                _ = stop.cancelled() => {
                    http.as_mut().graceful_shutdown();
                    let _ = http.await;
                }
            }
        });
    }
    while streams.join_next().await.is_some() {}
}

/// The app as hyper calls it on a link stream: every request is marked with the
/// link's proved key.
#[derive(Clone)]
struct OnLink {
    app: Router,
    peer: PublicKey,
}

impl hyper::service::Service<Request<Incoming>> for OnLink {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(LinkPeer(self.peer));
        let mut app = self.app.clone();
        tower_service::Service::call(&mut app, request)
    }
}
