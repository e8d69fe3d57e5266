//! The live WebSocket: a build log followed from cursor 0, the socket killed mid-stream and
//! opened again from the last cursor seen — the lines received, in order, are exactly the
//! stored log (no gap, no duplicate); with the in-process bus and through Redis. And who may
//! connect: no session → 401, a foreign `Origin` → 403, another workspace's deployment →
//! an error message, not its lines. The project canvas: its overview on subscribing, and
//! again whenever a deployment moves or a service is added.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use railyard_server::testing::{Client, TestApp, git_repo, redis_url};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// 3,000 lines over about two seconds.
const GENERATE: &str = "i=0\nwhile [ $i -lt 3000 ]; do\n  i=$((i+1))\n  echo \"line $i\"\n  if [ $((i % 150)) -eq 0 ]; then sleep 0.1; fi\ndone\n";

async fn connect(addr: std::net::SocketAddr, cookies: Option<&str>, origin: &str) -> Result<Socket, u16> {
    let mut request = format!("ws://{addr}/api/v1/live").into_client_request().unwrap();
    if let Some(cookies) = cookies {
        request
            .headers_mut()
            .insert("cookie", HeaderValue::from_str(cookies).unwrap());
    }
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(origin).unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(err) => panic!("{err}"),
    }
}

async fn subscribe(socket: &mut Socket, topic: &str, cursor: i64) {
    let message = json!({"type": "subscribe", "topic": topic, "cursor": cursor});
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message, or `None` after `wait` without one.
async fn next(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("the socket ended: {other:?}"),
            Err(_) => return None,
        }
    }
}

fn lines_of(message: &Value) -> Vec<(i64, String)> {
    message["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["cursor"].as_i64().unwrap(),
                l["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn stored(owner: &mut Client<'_>, id: &str) -> Vec<(i64, String)> {
    let res = owner
        .get(&format!("/api/v1/deployments/{id}/logs?limit=5000"))
        .await;
    lines_of(&res.json())
}

async fn follow_across_a_reconnect(app: &TestApp) {
    let workers = app.start_workers();
    let addr = app.serve().await;
    let origin = format!("http://{addr}");
    let (repo, _) = git_repo(&[
        ("railyard.toml", "build = \"sh gen.sh\"\nstart = \"true\"\n"),
        ("gen.sh", GENERATE),
    ]);
    let mut owner = app.admin().await;
    let service = owner.git_service("shop", "web", repo.path()).await;
    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
        .await;
    let id = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    let topic = format!("deployment:{id}");
    let cookies = owner.cookie_header();

    // From the start, until a few hundred lines arrived; then the socket is dropped.
    let mut received: Vec<(i64, String)> = Vec::new();
    let mut socket = connect(addr, Some(&cookies), &origin).await.unwrap();
    subscribe(&mut socket, &topic, 0).await;
    assert_eq!(
        next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"],
        "subscribed"
    );
    while received.len() < 400 {
        let message = next(&mut socket, Duration::from_secs(20))
            .await
            .expect("lines keep coming");
        assert_eq!(message["type"], "lines", "{message}");
        received.extend(lines_of(&message));
    }
    drop(socket);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Again, from the last cursor seen, until the build is over and every line is here.
    let mut socket = connect(addr, Some(&cookies), &origin).await.unwrap();
    subscribe(&mut socket, &topic, received.last().unwrap().0).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(message) = next(&mut socket, Duration::from_millis(200)).await {
            match message["type"].as_str().unwrap() {
                "lines" => received.extend(lines_of(&message)),
                "subscribed" => {}
                other => panic!("{other}: {message}"),
            }
            continue;
        }
        let state =
            owner.get(&format!("/api/v1/deployments/{id}")).await.json()["deployment"]["state"].clone();
        let done = state == "deploying" || state == "failed";
        if done && received.last().map(|l| l.0) == stored(&mut owner, &id).await.last().map(|l| l.0) {
            break;
        }
        assert!(Instant::now() < deadline, "never caught up ({state})");
    }
    let store = stored(&mut owner, &id).await;
    assert!(store.len() > 3000, "{}", store.len());
    assert!(store.iter().any(|(_, text)| text == "line 3000"));
    assert_eq!(received.len(), store.len(), "no line lost, none twice");
    assert_eq!(received, store, "the same lines in the same order");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_loses_no_line_and_repeats_none() {
    let app = TestApp::new().await;
    follow_across_a_reconnect(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn through_redis_too() {
    let url = redis_url();
    let app = TestApp::with(&[("REDIS_URL", &url)], axum::Router::new()).await;
    assert!(format!("{:?}", app.state.bus).contains("redis: true"));
    follow_across_a_reconnect(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_callers_of_this_origin_with_access_connect() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let addr = app.serve().await;
    let origin = format!("http://{addr}");
    let (repo, _) = git_repo(&[("index.html", "hi")]);
    let mut owner = app.admin().await;
    let service = owner.git_service("shop", "web", repo.path()).await;
    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
        .await;
    let id = res.json()["deployment"]["id"].as_str().unwrap().to_owned();

    assert_eq!(connect(addr, None, &origin).await.err(), Some(401));
    let cookies = owner.cookie_header();
    assert_eq!(
        connect(addr, Some(&cookies), "http://evil.example").await.err(),
        Some(403),
        "a page of another site cannot open the socket with the user's cookies"
    );

    // Someone else: signed in, but not in the workspace.
    let mut other = Client::new(&app);
    let res = other
        .post(
            "/api/v1/auth/signup",
            json!({"email": "eve@example.com", "password": "correct horse battery", "name": "Eve"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let mut socket = connect(addr, Some(&other.cookie_header()), &origin)
        .await
        .unwrap();
    subscribe(&mut socket, &format!("deployment:{id}"), 0).await;
    let message = next(&mut socket, Duration::from_secs(5)).await.unwrap();
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["message"], "not found");
    subscribe(&mut socket, "deployment:not-a-uuid", 0).await;
    assert_eq!(
        next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"],
        "error"
    );
    assert_eq!(other.get("/api/v1/me").await.status, 200);
}

/// Status messages until one satisfies `done` (within 60 s).
async fn status_until(socket: &mut Socket, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some(message) = next(socket, Duration::from_secs(1)).await else {
            continue;
        };
        if message["type"] == "status" && done(&message["overview"]) {
            return message["overview"].clone();
        }
    }
    panic!("no such status within 60 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_canvas_follows_deployments_and_new_services_live() {
    let app = TestApp::new().await;
    let workers = app.start_workers();
    let addr = app.serve().await;
    let (repo, _) = git_repo(&[("index.html", "hi")]);
    let mut owner = app.admin().await;
    let service = owner.git_service("shop", "web", repo.path()).await;
    let (project, environment) = owner.project_and_production(&service).await;
    let topic = format!("project:{project}:{environment}");
    let mut socket = connect(addr, Some(&owner.cookie_header()), &format!("http://{addr}"))
        .await
        .unwrap();
    subscribe(&mut socket, &topic, 0).await;
    assert_eq!(
        next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"],
        "subscribed"
    );
    // The overview at once, as the HTTP endpoint has it.
    let first = status_until(&mut socket, |_| true).await;
    let res = owner
        .get(&format!(
            "/api/v1/projects/{project}/overview?environment={environment}"
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(first, res.json());
    assert_eq!(first["services"][0]["service"]["name"], "web");
    assert_eq!(first["services"][0]["status"]["state"], "not_deployed");
    assert!(first["services"][0]["latest"].is_null());

    // A deployment moves through its states: each move is told, unasked.
    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
        .await;
    let id = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    let queued = status_until(&mut socket, |o| o["services"][0]["latest"]["id"] == id.as_str()).await;
    assert!(queued["services"][0]["latest"]["state"].is_string());
    // No runtime here: a built release waits in `deploying`.
    status_until(&mut socket, |o| {
        o["services"][0]["latest"]["state"] == "deploying"
    })
    .await;

    // A service added elsewhere appears.
    owner.add_git_service(&project, "api", repo.path()).await;
    let both = status_until(&mut socket, |o| o["services"].as_array().unwrap().len() == 2).await;
    let names: Vec<&str> = both["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"api") && names.contains(&"web"), "{names:?}");

    // Another environment's topic of a project that is not the caller's: refused.
    subscribe(
        &mut socket,
        &format!("project:{project}:{}", uuid::Uuid::new_v4()),
        0,
    )
    .await;
    let refused = loop {
        let message = next(&mut socket, Duration::from_secs(5)).await.unwrap();
        if message["type"] == "error" {
            break message;
        }
    };
    assert_eq!(refused["message"], "not found");
    workers.shutdown().await;
}
