//! The router's listeners. Connection limits and timeouts are the shared front door's
//! ([`crate::listener`]): the router's idle timeout is `RAILYARD_ROUTER_IDLE_TIMEOUT_SECS`
//! and its connection budget its own, apart from the API's.
//!
//! `railyard-server router` serves on several threads ([`bind`], [`serve_on_threads`]), the
//! way nginx runs one event loop per worker process: each thread has a single-threaded
//! runtime, its own listening socket on the router's address (`SO_REUSEPORT`, so the kernel
//! spreads new connections over them) and its own upstream connection pool, so a request,
//! its client connection and its app connection never hop between threads.

use std::{convert::Infallible, future::Future, io, net::SocketAddr, sync::Arc};

use axum::{body::Body, extract::Request};
use hyper::body::Incoming;
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::{oneshot, watch},
};

use super::Edge;
use crate::listener::{self, Limits};

/// Serves `edge` on `listener` until `shutdown` completes. `limits.idle` is the router's
/// idle timeout whatever the caller passed, and long request lines are hyper's to answer
/// (an app's clients get no API envelope).
pub async fn serve(listener: TcpListener, edge: Edge, limits: Limits, shutdown: impl Future<Output = ()>) {
    let limits = Limits {
        idle: edge.timeouts.idle,
        envelope_long_lines: false,
        ..limits
    };
    // Each request holds the router by reference count, not by a copy of its fields.
    let edge = Arc::new(edge);
    let service_for = move |peer: SocketAddr| {
        let (edge, client_ip) = (edge.clone(), super::forwarded_for(peer));
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let (edge, client_ip) = (edge.clone(), client_ip.clone());
            async move { Ok::<_, Infallible>(super::route(&edge, client_ip.as_ref(), req.map(Body::new)).await) }
        })
    };
    listener::serve(listener, limits, service_for, shutdown).await;
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

/// Serves `edge` on each of `listeners` (from [`bind`]) until `shutdown` completes, the
/// threads sharing `limits`: the first on the caller's runtime, every other on a thread of
/// its own with a single-threaded runtime and its own upstream pool. Returns once every
/// thread has finished its requests.
pub async fn serve_on_threads(
    listeners: Vec<std::net::TcpListener>,
    edge: Edge,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    // The kernel spreads connections over the threads: each holds its share of the limits.
    let threads = listeners.len().max(1);
    let limits = Limits {
        per_client: limits.per_client.div_ceil(threads),
        total: limits.total.div_ceil(threads),
        ..limits
    };
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
                            serve(listener, edge, limits, async move {
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
    serve(TcpListener::from_std(first)?, edge, limits, shutdown).await;
    for thread in finished {
        // A thread that ended without a word panicked; its error is in the log.
        thread
            .await
            .unwrap_or_else(|_| Err(io::Error::other("a router thread panicked")))?;
    }
    Ok(())
}
