//! The front door both listeners share (the API's and the app router's), in place of
//! `axum::serve`, for what a public socket needs and `axum::serve` does not set:
//!
//! - a connection that sends nothing, does not finish its request headers, or sits idle
//!   between requests is closed after its `idle` timeout (hyper's header-read timer, which
//!   restarts whenever a keep-alive connection waits for its next request); HTTP/2
//!   connections are pinged on the same period and closed when the peer stops answering;
//! - one client address holds at most `per_client` connections at once, and the listener
//!   at most `total`: past either, a new connection is closed as soon as it is accepted,
//!   so a flood from one address (or from many, on one listener) cannot use up the
//!   process's file descriptors, and the API and the app router each have a budget of
//!   their own;
//! - `TCP_NODELAY` on every connection, so a small response leaves at once rather than
//!   behind Nagle's algorithm;
//! - on shutdown, it stops accepting, lets requests in flight finish (up to a grace
//!   period), then returns.
//!
//! [`raise_file_limit`] lifts the process's open-file limit to its hard limit at start,
//! and [`Budget::share`] gives each listener its part of it.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{body::Body, extract::Request, response::Response};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::net::TcpListener;

/// How long requests in flight may take to finish once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The longest first request line a listener with [`Limits::envelope_long_lines`] lets
/// through to hyper (whose own limit, 64 KiB, answers a bare 414).
pub const MAX_REQUEST_LINE: usize = 16 * 1024;

/// What one listener allows its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Answer a first request line longer than [`MAX_REQUEST_LINE`] with a 414 in the API's
    /// error envelope rather than hyper's bare one (the API's listener).
    pub envelope_long_lines: bool,
    /// Until the headers of a request are in, and between requests on a connection.
    pub idle: Duration,
    /// Connections open at once from one client address (0: no cap).
    pub per_client: usize,
    /// Connections open at once on the listener.
    pub total: usize,
}

/// The process's file descriptors, as shared out between its listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The open-file limit the process runs with.
    pub files: u64,
}

impl Budget {
    /// Connections a listener may hold: `percent` of the file limit, at least 64. The API
    /// and the app router take a quarter and a half of it; the rest stays for the database
    /// pool, log files, app pipes and the upstream connections of the router.
    pub fn share(self, percent: u64) -> usize {
        usize::try_from((self.files * percent / 100).max(64)).unwrap_or(usize::MAX)
    }
}

/// Raises the soft open-file limit to the hard one and says what it is now. A process that
/// cannot (a hard limit lower than asked is not an error) keeps the limit it has.
pub fn raise_file_limit() -> Budget {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), maximum) = (limit.current, limit.maximum) else {
        // Unlimited already.
        return Budget { files: u64::MAX / 4 };
    };
    let Some(maximum) = maximum else {
        return Budget { files: current };
    };
    if maximum > current {
        let raised = rustix::process::Rlimit {
            current: Some(maximum),
            maximum: Some(maximum),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Budget { files: maximum };
        }
    }
    Budget { files: current }
}

/// Connections open per client address, and a slot in it for one connection.
#[derive(Debug, Default)]
struct Clients {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One accepted connection's place in [`Clients`]; giving it back on drop.
struct Slot {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Clients {
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: Limits) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per_client) = &mut *open;
        let mine = per_client.get(&ip).copied().unwrap_or(0);
        if *total >= limits.total || (limits.per_client > 0 && mine >= limits.per_client) {
            return None;
        }
        *total += 1;
        per_client.insert(ip, mine + 1);
        Some(Slot {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.clients.open.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per_client) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(mine) = per_client.get_mut(&self.ip) {
            *mine -= 1;
            if *mine == 0 {
                per_client.remove(&self.ip);
            }
        }
    }
}

/// Serves the connections of `listener` until `shutdown` completes, each with the service
/// `service_for(peer)` makes for it.
pub async fn serve<S, F>(
    listener: TcpListener,
    limits: Limits,
    service_for: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(SocketAddr) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let idle = limits.idle;
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
    let clients = Arc::new(Clients::default());
    let graceful = GracefulShutdown::new();
    let mut refused = 0_u64;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = clients.admit(peer.ip(), limits) else {
            // Closed at once: the client sees a reset, not a hang. Said now and then, not
            // once per connection of a flood.
            if refused.is_multiple_of(1000) {
                tracing::warn!(client = %peer.ip(), refused, "connection limit reached; closing new connections");
            }
            refused += 1;
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = service_for(peer);
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _slot = slot;
            // Until the first byte, hyper is still telling HTTP/1 from HTTP/2, with no timer
            // of its own: a connection that sends nothing is closed here.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(idle, stream.peek(&mut first)).await,
                Ok(Ok(1))
            ) {
                return;
            }
            if limits.envelope_long_lines && !first_line_fits(&stream, idle).await {
                use tokio::io::AsyncWriteExt as _;
                let mut stream = stream;
                let _ = stream.write_all(&uri_too_long()).await;
                let _ = stream.shutdown().await;
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(error = %err, %peer, "connection ended");
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

/// Whether the first request line on `stream` ends within [`MAX_REQUEST_LINE`] bytes
/// (looked at without reading it: hyper reads it next). A client that stops sending before
/// the line ends is hyper's to time out.
async fn first_line_fits(stream: &tokio::net::TcpStream, idle: Duration) -> bool {
    let mut buf = vec![0u8; MAX_REQUEST_LINE + 1];
    let deadline = tokio::time::Instant::now() + idle;
    let mut seen = 0;
    loop {
        let Ok(n) = stream.peek(&mut buf).await else {
            return true;
        };
        if buf[..n].contains(&b'\n') || buf[..n].starts_with(b"PRI ") {
            return true; // HTTP/2's preface has a line of its own; its frames have no lines
        }
        if n > MAX_REQUEST_LINE {
            return false;
        }
        if tokio::time::Instant::now() >= deadline {
            return true;
        }
        // More of the line has not arrived yet: look again shortly (a peek would return
        // the same bytes at once).
        if n == seen {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen = n;
    }
}

/// A complete `414` response in the API's error envelope, closing the connection.
fn uri_too_long() -> Vec<u8> {
    let id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::to_string(&railyard_shared::ErrorBody {
        error: railyard_shared::ErrorDetail {
            code: railyard_shared::ErrorCode::UriTooLong,
            message: format!("the request line is longer than {MAX_REQUEST_LINE} bytes"),
            request_id: id.clone(),
        },
    })
    .unwrap_or_default();
    format!(
        "HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-request-id: {id}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An axum router as the service of one connection from `peer`: its requests carry the
/// peer's address as `ConnectInfo`, as `into_make_service_with_connect_info` would.
pub fn axum_service(
    router: axum::Router,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future: Send + 'static,
> + Send
+ 'static {
    hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let router = router.clone();
        async move {
            use tower::ServiceExt as _;
            router.oneshot(req.map(Body::new)).await
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_client_past_its_cap_or_the_listener_past_its_total_is_refused() {
        let clients = Arc::new(Clients::default());
        let limits = Limits {
            envelope_long_lines: false,
            idle: Duration::from_secs(1),
            per_client: 2,
            total: 3,
        };
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "127.0.0.1".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
        );
        let first = clients.admit(a, limits).unwrap();
        let _second = clients.admit(a, limits).unwrap();
        assert!(clients.admit(a, limits).is_none(), "a third from one address");
        let _third = clients.admit(b, limits).unwrap();
        assert!(clients.admit(c, limits).is_none(), "a fourth on the listener");
        drop(first);
        assert!(
            clients.admit(c, limits).is_some(),
            "a closed connection gives its slot back"
        );
    }

    #[test]
    fn shares_of_the_file_limit() {
        let budget = Budget { files: 1_048_576 };
        assert_eq!(budget.share(25), 262_144);
        assert_eq!(Budget { files: 100 }.share(25), 64);
    }
}
