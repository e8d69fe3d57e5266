//! The router's own listener, in place of `axum::serve`, for what a front door needs and
//! `axum::serve` does not set: a connection that does not finish its request headers, or
//! sits idle between requests, is closed after `RAILYARD_ROUTER_IDLE_TIMEOUT_SECS` (hyper's
//! header-read timer, which restarts whenever a keep-alive connection waits for its next
//! request); HTTP/2 connections are pinged on the same period and closed when the peer
//! stops answering. `TCP_NODELAY` is set on every connection, so a small response leaves at
//! once rather than behind Nagle's algorithm. On shutdown, it stops accepting, lets requests
//! in flight finish (up to a grace period), then returns.
//!
//! `railyard-server router` serves on several threads ([`bind`], [`serve_on_threads`]), the
//! way nginx runs one event loop per worker process: each thread has a single-threaded
//! runtime, its own listening socket on the router's address (`SO_REUSEPORT`, so the kernel
//! spreads new connections over them) and its own upstream connection pool, so a request,
//! its client connection and its app connection never hop between threads.

use std::{convert::Infallible, future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{body::Body, extract::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::{oneshot, watch},
};

use super::Edge;

/// How long requests in flight may take to finish once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `edge` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, edge: Edge, shutdown: impl Future<Output = ()>) {
    let idle = edge.timeouts.idle;
    // Each request holds the router by reference count, not by a copy of its fields.
    let edge = Arc::new(edge);
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
        let (edge, client_ip) = (edge.clone(), super::forwarded_for(peer));
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let (edge, client_ip) = (edge.clone(), client_ip.clone());
            async move { Ok::<_, Infallible>(super::route(&edge, client_ip.as_ref(), req.map(Body::new)).await) }
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

/// `threads` listening sockets on `addr`, all bound with `SO_REUSEPORT` (the first one
/// decides the port when `addr`'s is 0). Call it on a runtime; the sockets are returned
/// unregistered, for [`serve_on_threads`] to hand one to each thread.
pub fn bind(addr: SocketAddr, threads: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut addr = addr;
    let mut listeners = Vec::with_capacity(threads);
    for _ in 0..threads.max(1) {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        addr = listener.local_addr()?;
        listeners.push(listener.into_std()?);
    }
    Ok(listeners)
}

/// Serves `edge` on each of `listeners` (from [`bind`]) until `shutdown` completes: the
/// first on the caller's runtime, every other on a thread of its own with a single-threaded
/// runtime and its own upstream pool. Returns once every thread has finished its requests.
pub async fn serve_on_threads(
    listeners: Vec<std::net::TcpListener>,
    edge: Edge,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut listeners = listeners.into_iter();
    let first = listeners
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no listening socket"))?;
    let mut finished = Vec::new();
    for (n, listener) in listeners.enumerate() {
        let (edge, mut stop) = (edge.with_own_pool(), stop_rx.clone());
        let (done, finished_rx) = oneshot::channel::<io::Result<()>>();
        std::thread::Builder::new()
            .name(format!("router-{}", n + 2))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let listener = TcpListener::from_std(listener)?;
                            serve(listener, edge, async move {
                                let _ = stop.wait_for(|stop| *stop).await;
                            })
                            .await;
                            Ok(())
                        })
                    });
                let _ = done.send(result);
            })?;
        finished.push(finished_rx);
    }
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    serve(TcpListener::from_std(first)?, edge, shutdown).await;
    for thread in finished {
        // A thread that ended without a word panicked; its error is in the log.
        thread
            .await
            .unwrap_or_else(|_| Err(io::Error::other("a router thread panicked")))?;
    }
    Ok(())
}
