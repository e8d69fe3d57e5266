//! The app router on a real socket: WebSocket upgrades pass through to the app, an app that
//! does not begin to answer gets a 504 after the request timeout, client connections
//! that stall (headers never finished) or idle between requests are closed after the idle
//! timeout, and the app sees the host the client asked for, over HTTP/1.1 and HTTP/2.
//! The router on several threads (as `railyard-server router` runs): every thread serves
//! its share of the connections, and all of them stop on shutdown.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures_util::{SinkExt as _, StreamExt as _};
use railyard_server::{
    jobs::WorkerPool,
    testing::{TestApp, git_repo},
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

const HOST: &str = "web-production-shop.localhost";

/// `/` answers, `/slow` never does, and an upgrade on any path is a WebSocket echo (its
/// handshake and frames written by hand: Node has no WebSocket server of its own).
const SERVER: &str = r"
const http = require('http'), crypto = require('crypto');
const server = http.createServer((q, s) => { if (q.url !== '/slow') s.end('hello'); });
server.on('upgrade', (q, socket) => {
  const accept = crypto.createHash('sha1')
    .update(q.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Accept: ' + accept + '\r\n\r\n');
  socket.on('data', (b) => {
    const len = b[1] & 127, mask = b.subarray(2, 6);
    const text = Buffer.from(b.subarray(6, 6 + len).map((x, i) => x ^ mask[i % 4]));
    const reply = Buffer.concat([Buffer.from('echo: '), text]);
    socket.write(Buffer.concat([Buffer.from([0x81, reply.length]), reply]));
  });
});
server.listen(process.env.PORT, '127.0.0.1');
";

/// Sends `raw`, then reads until the router closes the connection; how long that took and
/// what came back. Fails after 10 s.
async fn read_until_closed(router: SocketAddr, raw: &str) -> (Duration, String) {
    let mut stream = TcpStream::connect(router).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let began = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received)).await;
    assert!(
        read.is_ok(),
        "the router never closed the connection after {raw:?}"
    );
    (began.elapsed(), String::from_utf8_lossy(&received).into_owned())
}

/// Deploys `server_js` as service `web` of project `shop` and serves the router on a real
/// socket; the runtime's workers (keep them) and the router's address.
async fn deploy_behind_router(app: &TestApp, server_js: &str) -> (WorkerPool, SocketAddr) {
    let (workers, edge) = app.start_runtime().await;
    let router = TestApp::serve_edge(edge).await;
    let (repo, _) = git_repo(&[("Procfile", "web: node server.js\n"), ("server.js", server_js)]);
    let mut owner = app.admin().await;
    let service = owner.git_service("shop", "web", repo.path()).await;
    let done = owner.deploy_and_wait(&service).await;
    assert_eq!(done["state"], "active", "{done}");
    (workers, router)
}

/// Sends `text` on the socket; what comes back (within 5 s).
async fn echo(socket: &mut Socket, text: &str) -> Message {
    socket.send(Message::text(text)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_router_passes_websockets_and_enforces_its_timeouts() {
    let app = TestApp::with(
        &[
            ("RAILYARD_ROUTER_REQUEST_TIMEOUT_SECS", "1"),
            ("RAILYARD_ROUTER_IDLE_TIMEOUT_SECS", "1"),
            ("RAILYARD_DRAIN_SECS", "0"),
        ],
        axum::Router::new(),
    )
    .await;
    let (_workers, router) = deploy_behind_router(&app, SERVER).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &str| {
        client
            .get(format!("http://{router}{path}"))
            .header("host", HOST)
            .send()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(res) = get("/").await
            && res.status() == 200
        {
            assert_eq!(res.text().await.unwrap(), "hello");
            break;
        }
        assert!(Instant::now() < deadline, "the router never served the live app");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A WebSocket through the router, both ways.
    let mut request = format!("ws://{router}/socket").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("host", HeaderValue::from_static(HOST));
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(echo(&mut socket, "hi").await, Message::text("echo: hi"));

    // An app that never begins its answer: 504 after the request timeout (1 s).
    let began = Instant::now();
    let res = get("/slow").await.unwrap();
    let took = began.elapsed();
    assert_eq!(res.status(), 504);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(res.text().await.unwrap().contains("within 1 s"));

    // Connections that send nothing, stop in the middle of their headers, or idle after a
    // request are closed after the idle timeout (1 s).
    let keep_alive = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    let partial = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n");
    let (silent, stalled, idle) = tokio::join!(
        read_until_closed(router, ""),
        read_until_closed(router, &partial),
        read_until_closed(router, &keep_alive),
    );
    for (what, (took, _)) in [("silent", &silent), ("stalled", &stalled), ("idle", &idle)] {
        let took = *took;
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{what}: closed after {took:?}"
        );
    }
    assert!(
        idle.1.starts_with("HTTP/1.1 200"),
        "answered before idling: {}",
        idle.1
    );
    assert!(idle.1.ends_with("hello"), "{}", idle.1);
    // The WebSocket is not a request waiting for headers: it outlives the idle timeout.
    assert_eq!(
        echo(&mut socket, "still here").await,
        Message::text("echo: still here")
    );
}

/// Answers with the host the request was for; closes a keep-alive connection after 300 ms
/// idle, as Node does after 5 s.
const WHO: &str = r"
const http = require('http');
const server = http.createServer((q, s) => s.end(`${q.headers.host} ${q.headers['x-forwarded-host']}`));
server.keepAliveTimeout = 300;
server.listen(process.env.PORT, '127.0.0.1');
";

#[tokio::test(flavor = "multi_thread")]
async fn the_app_sees_the_clients_host_and_may_close_idle_connections() {
    let app = TestApp::new().await;
    let (_workers, router) = deploy_behind_router(&app, WHO).await;

    let http1 = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = || http1.get(format!("http://{router}/")).header("host", HOST).send();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !get().await.is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "the router never served the live app");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Two Host headers: which one is meant is not for the router to guess.
    let twice =
        format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nHost: other.localhost\r\nConnection: close\r\n\r\n");
    let (_, answer) = read_until_closed(router, &twice).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // Requests on either side of the app closing the router's idle connections to it.
    for pause in [0, 400, 0, 0, 700, 0] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let res = get().await.unwrap();
        assert_eq!(res.status(), 200, "after {pause} ms idle");
        assert_eq!(res.text().await.unwrap(), format!("{HOST} {HOST}"));
    }

    // HTTP/2 clients name the host in the URI only: the app still gets it as `Host`.
    let http2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .resolve(HOST, router)
        .build()
        .unwrap();
    let res = http2
        .get(format!("http://{HOST}:{}/", router.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let authority = format!("{HOST}:{}", router.port());
    assert_eq!(res.text().await.unwrap(), format!("{authority} {authority}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_router_thread_serves_and_all_stop_on_shutdown() {
    let app = TestApp::new().await;
    let (_workers, edge) = app.start_runtime().await;
    let (repo, _) = git_repo(&[("Procfile", "web: node server.js\n"), ("server.js", SERVER)]);
    let mut owner = app.admin().await;
    let service = owner.git_service("shop", "web", repo.path()).await;
    let done = owner.deploy_and_wait(&service).await;
    assert_eq!(done["state"], "active", "{done}");

    let listeners = railyard_server::edge::listen::bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
    assert_eq!(listeners.len(), 3);
    let router = listeners[0].local_addr().unwrap();
    for listener in &listeners {
        assert_eq!(
            listener.local_addr().unwrap(),
            router,
            "one address for every thread"
        );
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(railyard_server::edge::listen::serve_on_threads(
        listeners,
        edge,
        TestApp::LIMITS,
        async move {
            let _ = stopped.await;
        },
    ));

    // Each connection is new, so the kernel picks one of the three sockets for it: a thread
    // that did not serve would leave about a third of them unanswered.
    let request = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answered = 0;
    while answered < 30 {
        let (took, response) = read_until_closed(router, &request).await;
        if response.starts_with("HTTP/1.1 200") {
            assert!(response.ends_with("hello"), "{response}");
            assert!(took < Duration::from_secs(5), "took {took:?}");
            answered += 1;
        } else {
            // The route table may not have the new release yet.
            assert!(answered == 0 && Instant::now() < deadline, "{response}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), served)
        .await
        .expect("every thread stops")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(router).await.is_err(),
        "a router thread still accepts connections after shutdown"
    );
}
