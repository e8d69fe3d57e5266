//! The app router (`RAILYARD_ROUTER_LISTEN`): `Host` `<service>-<environment>-<project>.<base
//! domain>` → the live release of that service. The route table is loaded from the
//! database at start and reloaded on `NOTIFY railyard_routes` (and every 10 s as a
//! fallback), then swapped in whole, so requests in flight keep the table they started with.
//! Clients speak HTTP/1.1 or HTTP/2 (cleartext, prior knowledge) to the router.
//! Requests are forwarded over HTTP/1.1 keep-alive connections with `X-Forwarded-For/-Proto/
//! -Host` set by Railyard (a client's own are dropped); WebSocket upgrades pass through.
//! Static sites are served from their release directory. An app that has not begun to
//! answer within `RAILYARD_ROUTER_REQUEST_TIMEOUT_SECS` gets a 504; connection timeouts are
//! [`listen`]'s.

pub mod listen;
mod static_site;

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{
        HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header,
        uri::{Authority, PathAndQuery, Scheme},
    },
    response::{Html, IntoResponse, Response},
};
use diesel::{ExpressionMethods as _, JoinOnDsl as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use futures_util::StreamExt as _;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use railyard_shared::{DeploymentState, InstanceState};

use crate::{
    db::DbPool,
    schema::{deployments, environments, instances, projects, services},
};

/// Where a host's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An app listening on this loopback port (`authority` is `127.0.0.1:<port>`, made once
    /// per table rather than once per request).
    App { port: u16, authority: Authority },
    /// A static site: this directory (absolute); `spa`: paths that name no file get its
    /// `index.html`.
    Static { root: PathBuf, spa: bool },
    /// A known service with nothing healthy serving.
    Down,
}

pub use crate::config::EdgeTimeouts as Timeouts;

/// The router's state. Clones share the route table and the upstream connection pool;
/// [`Edge::with_own_pool`] gives a thread its own pool.
#[derive(Clone)]
pub struct Edge {
    /// Read on every request without a lock (an atomic load); replaced whole on reload.
    table: Arc<ArcSwap<HashMap<String, Target>>>,
    client: Client<HttpConnector, Body>,
    base_domain: String,
    data_dir: PathBuf,
    timeouts: Timeouts,
}

impl Edge {
    pub fn new(base_domain: &str, data_dir: PathBuf) -> Self {
        Self {
            table: Arc::new(ArcSwap::from_pointee(HashMap::new())),
            client: upstream_client(),
            base_domain: base_domain.to_owned(),
            data_dir,
            timeouts: Timeouts::default(),
        }
    }

    /// The same router with a connection pool of its own, for another thread: a pooled
    /// upstream connection is driven by a task on the runtime that opened it, so a pool
    /// shared between threads would hand a request to a connection on the other thread.
    pub fn with_own_pool(&self) -> Self {
        Self {
            client: upstream_client(),
            ..self.clone()
        }
    }

    pub fn with_timeouts(self, timeouts: Timeouts) -> Self {
        Self { timeouts, ..self }
    }

    fn lookup(&self, host: &str) -> Option<Target> {
        ArcSwap::load(&self.table).get(host).cloned()
    }

    /// Rebuilds the table from the database and swaps it in.
    pub async fn reload(&self, conn: &mut AsyncPgConnection) -> diesel::QueryResult<usize> {
        let known: Vec<(String, String, String)> = services::table
            .inner_join(projects::table)
            .inner_join(environments::table.on(environments::project_id.eq(projects::id)))
            .select((services::name, environments::name, projects::name))
            .load(conn)
            .await?;
        type Live = (
            String,
            String,
            String,
            Option<i32>,
            Option<String>,
            Option<serde_json::Value>,
        );
        let live: Vec<Live> = instances::table
            .inner_join(deployments::table)
            .inner_join(services::table.on(services::id.eq(instances::service_id)))
            .inner_join(environments::table.on(environments::id.eq(instances::environment_id)))
            .inner_join(projects::table.on(projects::id.eq(services::project_id)))
            .filter(instances::state.eq(InstanceState::Running.as_str()))
            .filter(deployments::state.eq(DeploymentState::Active.as_str()))
            // The newest instance wins (a restart runs two of one release for a moment).
            .order(instances::started_at.asc())
            .select((
                services::name,
                environments::name,
                projects::name,
                instances::port,
                instances::static_root,
                deployments::plan,
            ))
            .load(conn)
            .await?;
        let host = |s: &str, e: &str, p: &str| format!("{s}-{e}-{p}.{}", self.base_domain);
        let mut table: HashMap<String, Target> = HashMap::with_capacity(known.len());
        // A host two services would answer at (made before names were checked across the
        // instance) goes to neither: the router never chooses between tenants.
        let mut contested = std::collections::HashSet::new();
        for (s, e, p) in &known {
            if table.insert(host(s, e, p), Target::Down).is_some() {
                contested.insert(host(s, e, p));
            }
        }
        if !contested.is_empty() {
            tracing::warn!(hosts = ?contested, "host names shared by two services are not routed: rename one");
        }
        for (s, e, p, port, root, plan) in live {
            if contested.contains(&host(&s, &e, &p)) {
                continue;
            }
            let target = match (port.and_then(|p| u16::try_from(p).ok()), root) {
                (Some(port), _) => match Authority::try_from(format!("127.0.0.1:{port}").as_str()) {
                    Ok(authority) => Target::App { port, authority },
                    Err(_) => continue,
                },
                (None, Some(root)) => Target::Static {
                    root: self.data_dir.join(root),
                    spa: plan.is_some_and(|plan| plan.get("spa") == Some(&serde_json::Value::Bool(true))),
                },
                (None, None) => continue,
            };
            table.insert(host(&s, &e, &p), target);
        }
        let routes = table.len();
        self.table.store(Arc::new(table));
        Ok(routes)
    }

    /// Keeps the table current: reloads on `NOTIFY railyard_routes` and every 10 s.
    pub fn spawn_refresh(&self, db: DbPool, database_url: String) -> tokio::task::JoinHandle<()> {
        let edge = self.clone();
        tokio::spawn(async move {
            loop {
                let session = async {
                    let mut listener = AsyncPgConnection::establish(&database_url).await?;
                    listener.batch_execute("LISTEN railyard_routes").await?;
                    let mut notifications = std::pin::pin!(listener.notifications_stream());
                    loop {
                        if let Ok(mut conn) = db.get().await
                            && let Err(err) = edge.reload(&mut conn).await
                        {
                            tracing::warn!(error = %err, "reloading the route table failed");
                        }
                        match tokio::time::timeout(Duration::from_secs(10), notifications.next()).await {
                            Ok(Some(Err(err))) => return Err(anyhow::Error::from(err)),
                            Ok(None) => return Ok(()),
                            Ok(Some(Ok(_))) | Err(_) => {}
                        }
                    }
                };
                if let Err(err) = session.await {
                    tracing::warn!(error = %format!("{err:#}"), "route listener lost its connection; retrying");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }
}

/// Apps are spoken to over HTTP/1.1 keep-alive connections, kept for a minute when idle.
fn upstream_client() -> Client<HttpConnector, Body> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// The `X-Forwarded-For` value for a client at `peer`.
fn forwarded_for(peer: SocketAddr) -> Option<HeaderValue> {
    HeaderValue::try_from(peer.ip().to_string()).ok()
}

/// The router as an axum `Router` (for tests that call it in-process; [`listen::serve`]
/// serves it to clients).
pub fn router(edge: Edge) -> Router {
    async fn handle(State(edge): State<Edge>, req: Request) -> Response {
        let client_ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .and_then(|c| forwarded_for(c.0));
        route(&edge, client_ip.as_ref(), req).await
    }
    Router::new().fallback(handle).with_state(edge)
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>{title} · Railyard</title>\
             <body style=\"background:#020617;color:#e2e8f0;font-family:system-ui;padding:3rem\">\
             <h1>{title}</h1><p>{text}</p></body>"
        )),
    )
        .into_response()
}

/// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1). Names
/// are constants: a `&str` name would be parsed again on every request.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What a client may claim about where a request came from; Railyard says it instead.
const CLIENT_FORWARDED: [HeaderName; 5] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    header::FORWARDED,
    HeaderName::from_static("x-real-ip"),
];

/// Removes the hop-by-hop headers (and those the `Connection` header names), and with
/// `forwarded` the ones a client may not set. Most messages carry none of them, so the
/// names present are looked at once rather than each listed name hashed and removed.
fn strip_headers(headers: &mut HeaderMap, keep_upgrade: bool, forwarded: bool) {
    let kept = |name: &HeaderName| keep_upgrade && (name == header::UPGRADE || name == header::CONNECTION);
    let mut drop: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            (HOP_BY_HOP.contains(name) && !kept(name)) || (forwarded && CLIENT_FORWARDED.contains(name))
        })
        .cloned()
        .collect();
    drop.extend(
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .filter(|name| !(keep_upgrade && name == header::UPGRADE)),
    );
    for name in drop {
        headers.remove(name);
    }
}

/// Routes one request of a client at `client_ip` (its `X-Forwarded-For` value, made once
/// per connection).
async fn route(edge: &Edge, client_ip: Option<&HeaderValue>, mut req: Request) -> Response {
    if req.headers().get_all(header::HOST).iter().nth(1).is_some() {
        // RFC 9112 §3.2: a request with more than one Host is answered 400. Two proxies
        // in a row could otherwise each pick a different one.
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The request names more than one host.",
        );
    }
    let host_header = req.headers().get(header::HOST).cloned();
    let host = host_header
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(Authority::as_str))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (port, authority) = match edge.lookup(without_port(&host)) {
        None => {
            return page(
                StatusCode::NOT_FOUND,
                "No app is deployed at this address",
                "Railyard's router is running, but no service answers for this host name.",
            );
        }
        Some(Target::Down) => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "This app is not running",
                "The service exists, but no healthy release of it is serving right now. Deploy it, or check its logs.",
            );
        }
        Some(Target::Static { root, spa }) => return static_site::serve(root, spa, req).await,
        Some(Target::App { port, authority }) => (port, authority),
    };

    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let mut uri = std::mem::take(req.uri_mut()).into_parts();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(authority);
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    let Ok(uri) = Uri::from_parts(uri) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The request path is not valid.",
        );
    };
    *req.uri_mut() = uri;
    // Clients may speak HTTP/2 to the router; apps are spoken to in HTTP/1.1.
    *req.version_mut() = axum::http::Version::HTTP_11;
    let headers = req.headers_mut();
    strip_headers(headers, upgrade, true);
    if let Some(ip) = client_ip {
        headers.insert(X_FORWARDED_FOR, ip.clone());
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    // The host as the client named it, lower-cased. An HTTP/2 client names it in the URI
    // only: the app gets it as `Host` (otherwise the client would fill in the app's own
    // 127.0.0.1 address).
    let host_value = match host_header {
        Some(value) if value.as_bytes() == host.as_bytes() => Some(value),
        _ => HeaderValue::from_str(&host).ok(),
    };
    if let Some(value) = host_value {
        headers.insert(header::HOST, value.clone());
        headers.insert(X_FORWARDED_HOST, value);
    }

    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let response = match tokio::time::timeout(edge.timeouts.request, edge.client.request(req)).await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => {
            tracing::debug!(error = %err, port, "upstream request failed");
            return page(
                StatusCode::BAD_GATEWAY,
                "The app did not answer",
                "Railyard reached the service, but it closed the connection or refused it.",
            );
        }
        Err(_) => {
            return page(
                StatusCode::GATEWAY_TIMEOUT,
                "The app took too long",
                &format!(
                    "The service did not start answering within {} s (RAILYARD_ROUTER_REQUEST_TIMEOUT_SECS).",
                    edge.timeouts.request.as_secs()
                ),
            );
        }
    };
    let (mut parts, body) = response.into_parts();
    if parts.status == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        return splice(parts, client_upgrade);
    }
    strip_headers(&mut parts.headers, false, false);
    Response::from_parts(parts, Body::new(body))
}

/// `host` without a trailing `:port`.
fn without_port(host: &str) -> &str {
    host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    })
}

/// The app agreed to switch protocols (a WebSocket): the client's and the app's upgraded
/// connections are joined, both ways, until either ends.
fn splice(parts: axum::http::response::Parts, client: hyper::upgrade::OnUpgrade) -> Response {
    let mut upstream = hyper::Response::from_parts(parts.clone(), ());
    let upstream_upgrade = hyper::upgrade::on(&mut upstream);
    tokio::spawn(async move {
        if let (Ok(client), Ok(upstream)) = (client.await, upstream_upgrade.await) {
            let _ =
                tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(upstream)).await;
        }
    });
    Response::from_parts(parts, Body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap_or_else(|_| panic!("{k}")),
                    HeaderValue::from_str(v).unwrap_or_else(|_| panic!("{v}")),
                )
            })
            .collect()
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn hop_by_hop_and_named_headers_are_stripped() {
        let mut request = headers(&[
            ("connection", "close, X-Trace"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-trace", "1"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("accept", "*/*"),
            ("cookie", "a=b"),
        ]);
        strip_headers(&mut request, false, true);
        assert_eq!(names(&request), ["accept", "cookie"]);

        // A response keeps what the app says about where it came from.
        let mut response = headers(&[
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("content-length", "5"),
            ("x-forwarded-for", "10.0.0.1"),
        ]);
        strip_headers(&mut response, false, false);
        assert_eq!(names(&response), ["content-length", "x-forwarded-for"]);
    }

    #[test]
    fn a_websocket_upgrade_keeps_its_upgrade_headers() {
        let mut request = headers(&[
            ("connection", "Upgrade, keep-alive"),
            ("upgrade", "websocket"),
            ("keep-alive", "timeout=5"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        strip_headers(&mut request, true, true);
        assert_eq!(names(&request), ["connection", "sec-websocket-key", "upgrade"]);
    }
}
