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

/// Signs `email` up (open sign-up) and into workspace `ws` as `role`, invited by `owner`:
/// their client and user id.
async fn join<'a>(
    app: &'a TestApp,
    owner: &mut Client<'_>,
    ws: uuid::Uuid,
    email: &str,
    role: &str,
) -> (Client<'a>, String) {
    let mut client = Client::new(app);
    let res = client
        .post(
            "/api/v1/auth/signup",
            json!({"email": email, "password": "correct horse battery", "name": role}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["user"]["id"].as_str().unwrap().to_owned();
    invite(owner, &mut client, ws, email, role).await;
    (client, id)
}

/// `owner` invites `email` into `ws` as `role`, and `client` (signed in as `email`) accepts.
async fn invite(owner: &mut Client<'_>, client: &mut Client<'_>, ws: uuid::Uuid, email: &str, role: &str) {
    let res = owner
        .post(
            &format!("/api/v1/workspaces/{ws}/invitations"),
            json!({"email": email, "role": role}),
        )
        .await;
    let invitation = res.json()["accept_url"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let res = client
        .post("/api/v1/invitations/accept", json!({"token": invitation}))
        .await;
    assert!(res.status < 300, "{}", res.text());
}

/// A socket opened with the API token `token`.
async fn connect_with_token(addr: std::net::SocketAddr, token: &str) -> Socket {
    let mut request = format!("ws://{addr}/api/v1/live").into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// Waits (up to `wait`) for the server to close `socket`; the close code.
async fn closed_with(socket: &mut Socket, wait: Duration) -> Option<u16> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(None | Some(Err(_))) => return None,
        }
    }
    panic!("the socket stayed open for {wait:?}");
}

/// Messages (skipping status and lines) until one of `kind` about `topic`, within `wait`.
async fn message_about(socket: &mut Socket, kind: &str, topic: &str, wait: Duration) -> Value {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Some(message) = next(socket, Duration::from_millis(200)).await
            && message["type"] == kind
            && message["topic"] == topic
        {
            return message;
        }
    }
    panic!("no {kind} about {topic} within {wait:?}");
}

/// Finding 6 of the tenant boundary: a socket kept streaming after its token was revoked
/// or its user removed from the workspace. Both now act at once (well within the 30 s of
/// the periodic check), as does signing out; and one socket's topics and subscribe
/// requests are bounded.
#[tokio::test(flavor = "multi_thread")]
async fn revocation_and_removal_end_live_subscriptions_at_once() {
    use railyard_server::testing::Fixture;
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let addr = app.serve().await;
    let origin = format!("http://{addr}");
    let mut fixture = Fixture::new(&app).await;
    let (repo, _) = git_repo(&[("index.html", "hi")]);
    let service = fixture.git_service("web", repo.path()).await;
    let staging = fixture.environment("staging").await;
    let (ws, project) = (fixture.workspace, fixture.project);
    let logs = format!("service:{service}:{staging}");
    let canvas = format!("project:{project}:{staging}");
    let soon = Duration::from_secs(5);

    // A member, with a browser socket and an API token socket.
    let (mut dev, dev_id) = join(&app, &mut fixture.client, ws, "dev@example.com", "member").await;
    let mut token_ids = Vec::new();
    let mut secrets = Vec::new();
    for name in ["ci", "deploy"] {
        let res = dev
            .post("/api/v1/tokens", json!({"workspace_id": ws, "name": name}))
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        token_ids.push(res.json()["api_token"]["id"].as_str().unwrap().to_owned());
        secrets.push(res.json()["token"].as_str().unwrap().to_owned());
    }
    let mut browser = connect(addr, Some(&dev.cookie_header()), &origin).await.unwrap();
    let mut with_token = connect_with_token(addr, &secrets[0]).await;
    for socket in [&mut browser, &mut with_token] {
        subscribe(socket, &logs, 0).await;
        message_about(socket, "subscribed", &logs, soon).await;
    }
    subscribe(&mut browser, &canvas, 0).await;
    message_about(&mut browser, "subscribed", &canvas, soon).await;

    // The token is revoked: its socket is closed at once, as signed out.
    let res = dev
        .call("DELETE", &format!("/api/v1/tokens/{}", token_ids[0]), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(closed_with(&mut with_token, soon).await, Some(4401));

    // The member is removed: the browser socket loses both topics at once (the session
    // itself is still good, for the member's other workspaces).
    let res = fixture
        .client
        .call(
            "DELETE",
            &format!("/api/v1/workspaces/{ws}/members/{dev_id}"),
            None,
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    for topic in [&logs, &canvas] {
        let error = message_about(&mut browser, "error", topic, soon).await;
        assert_eq!(error["message"], "you no longer have access to this topic");
    }
    subscribe(&mut browser, &logs, 0).await;
    assert_eq!(
        message_about(&mut browser, "error", &logs, soon).await["message"],
        "not found"
    );

    // Invited back, the member's old token of this workspace stays dead.
    invite(&mut fixture.client, &mut dev, ws, "dev@example.com", "member").await;
    let res = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/projects/{project}"))
        .bearer_auth(&secrets[1])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a token from before the removal");

    // A second browser session of the owner signs out: its socket is closed.
    let mut second = Client::new(&app);
    let res = second
        .post(
            "/api/v1/auth/login",
            json!({"email": "admin@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let mut socket = connect(addr, Some(&second.cookie_header()), &origin)
        .await
        .unwrap();
    subscribe(&mut socket, &canvas, 0).await;
    message_about(&mut socket, "subscribed", &canvas, soon).await;
    let res = second.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(closed_with(&mut socket, soon).await, Some(4401));

    // One socket holds at most 100 topics, and sends at most 200 subscribes in 10 s.
    let mut environments = vec![fixture.production, staging];
    for n in 0..99 {
        environments.push(fixture.environment(&format!("env{n}")).await);
    }
    let mut socket = connect(addr, Some(&fixture.client.cookie_header()), &origin)
        .await
        .unwrap();
    for environment in &environments[..100] {
        let topic = format!("project:{project}:{environment}");
        subscribe(&mut socket, &topic, 0).await;
        message_about(&mut socket, "subscribed", &topic, soon).await;
    }
    let past = format!("project:{project}:{}", environments[100]);
    subscribe(&mut socket, &past, 0).await;
    let error = message_about(&mut socket, "error", &past, soon).await;
    assert!(
        error["message"].as_str().unwrap().contains("100 topics"),
        "{error}"
    );
    // Subscribing again to an open topic replays it: that is what the rate bounds.
    let again = format!("project:{project}:{}", environments[0]);
    for _ in 0..100 {
        subscribe(&mut socket, &again, 0).await;
    }
    let error = message_about(&mut socket, "error", &again, soon).await;
    assert!(
        error["message"].as_str().unwrap().contains("slow down"),
        "{error}"
    );
}

/// Masking cannot hide a secret printed transformed, so who reads logs (build and runtime,
/// HTTP and live) is the workspace's setting: members and above by default.
#[tokio::test(flavor = "multi_thread")]
async fn who_reads_logs_is_a_workspace_setting() {
    use railyard_server::testing::Fixture;
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let addr = app.serve().await;
    let origin = format!("http://{addr}");
    let mut fixture = Fixture::new(&app).await;
    let (repo, _) = git_repo(&[("index.html", "hi")]);
    let service = fixture.git_service("web", repo.path()).await;
    let staging = fixture.environment("staging").await;
    let ws = fixture.workspace;
    let (mut viewer, _) = join(&app, &mut fixture.client, ws, "viewer@example.com", "viewer").await;
    let (mut member, _) = join(&app, &mut fixture.client, ws, "member@example.com", "member").await;
    let res = fixture
        .client
        .post(
            &format!("/api/v1/services/{service}/deployments"),
            json!({"environment_id": staging}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let deployment = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    let service_logs = format!("/api/v1/services/{service}/logs?environment={staging}");
    let build_log = format!("/api/v1/deployments/{deployment}/logs");
    let topic = format!("service:{service}:{staging}");
    let canvas = format!("project:{}:{staging}", fixture.project);
    let soon = Duration::from_secs(5);

    // By default: members read logs, viewers see the canvas but no log.
    for path in [&service_logs, &build_log] {
        let res = viewer.get(path).await;
        assert_eq!(res.status, 403, "{path}: {}", res.text());
        assert!(res.text().contains("member role"), "{}", res.text());
        assert_eq!(member.get(path).await.status, 200, "{path}");
    }
    let mut socket = connect(addr, Some(&viewer.cookie_header()), &origin)
        .await
        .unwrap();
    subscribe(&mut socket, &topic, 0).await;
    let error = message_about(&mut socket, "error", &topic, soon).await;
    assert!(
        error["message"].as_str().unwrap().contains("member role"),
        "{error}"
    );
    subscribe(&mut socket, &canvas, 0).await;
    message_about(&mut socket, "subscribed", &canvas, soon).await;

    // The workspace opens its logs to viewers.
    let workspace = format!("/api/v1/workspaces/{ws}");
    let res = fixture
        .client
        .call("PATCH", &workspace, Some(json!({"log_read_role": "viewer"})))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["workspace"]["log_read_role"], "viewer");
    assert_eq!(res.json()["workspace"]["name"], "acme", "the name is kept");
    assert_eq!(viewer.get(&service_logs).await.status, 200);
    subscribe(&mut socket, &topic, 0).await;
    message_about(&mut socket, "subscribed", &topic, soon).await;

    // Then closes them to admins: the member's live log ends at once.
    let mut member_socket = connect(addr, Some(&member.cookie_header()), &origin)
        .await
        .unwrap();
    subscribe(&mut member_socket, &topic, 0).await;
    message_about(&mut member_socket, "subscribed", &topic, soon).await;
    let res = fixture
        .client
        .call("PATCH", &workspace, Some(json!({"log_read_role": "admin"})))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let error = message_about(&mut member_socket, "error", &topic, soon).await;
    assert_eq!(error["message"], "you no longer have access to this topic");
    assert_eq!(member.get(&build_log).await.status, 403);
    assert_eq!(
        fixture.client.get(&build_log).await.status,
        200,
        "the owner reads on"
    );
    assert_eq!(
        fixture.client.get(&workspace).await.json()["workspace"]["log_read_role"],
        "admin"
    );

    // Nonsense is refused and changes nothing.
    for body in [json!({"log_read_role": "everyone"}), json!({})] {
        let res = fixture.client.call("PATCH", &workspace, Some(body)).await;
        assert_eq!(res.status, 422, "{}", res.text());
    }
    assert_eq!(member.get(&build_log).await.status, 403);
}
