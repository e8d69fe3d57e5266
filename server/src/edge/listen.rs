//! The router's own listener, in place of `axum::serve`, for what a front door needs and
//! `axum::serve` does not set: a connection that does not finish its request headers, or
//! sits idle between requests, is closed after `RAILYARD_ROUTER_IDLE_TIMEOUT_SECS` (hyper's
//! header-read timer, which restarts whenever a keep-alive connection waits for its next
//! request); HTTP/2 connections are pinged on the same period and closed when the peer
//! stops answering. `TCP_NODELAY` is set on every connection, so a small response leaves at
//! once rather than behind Nagle's algorithm. On shutdown, it stops accepting, lets requests
//! in flight finish (up to a grace period), then returns.

use std::{convert::Infallible, future::Future, time::Duration};

use axum::{body::Body, extract::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::net::TcpListener;

use super::Edge;

/// How long requests in flight may take to finish once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `edge` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, edge: Edge, shutdown: impl Future<Output = ()>) {
    let idle = edge.timeouts.idle;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(idle)
        .keep_alive_timeout(Duration::from_secs(20));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %err, "the router could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let edge = edge.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let edge = edge.clone();
            async move { Ok::<_, Infallible>(super::route(&edge, Some(peer), req.map(Body::new)).await) }
        });
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            // Until the first byte, hyper is still telling HTTP/1 from HTTP/2, with no timer
            // of its own: a connection that sends nothing is closed here.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(idle, stream.peek(&mut first)).await,
                Ok(Ok(1))
            ) {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(error = %err, %peer, "router connection ended");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("requests still in flight after the shutdown grace were cut");
    }
}
