//! A running service's output: shipped from the monitor's file into the store, read back
//! through `GET /api/v1/services/{id}/logs` (stream filter, search, time range, text
//! download, cursor pages) with its secret masked, and followed live over the WebSocket.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::{body::Body, http::Request};
use futures_util::{SinkExt as _, StreamExt as _};
use railyard_server::{
    edge,
    testing::{TestApp, git_repo},
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue};
use tower::ServiceExt as _;

const SERVER: &str = r#"console.log('booting with', process.env.TOKEN);
console.error('a warning on stderr');
require('http').createServer((q, s) => {
  console.log('GET ' + q.url);
  s.end('ok');
}).listen(process.env.PORT, '127.0.0.1');
"#;

#[tokio::test(flavor = "multi_thread")]
async fn runtime_output_is_stored_searchable_and_live() {
    let app = TestApp::new().await;
    let (workers, edge) = app.start_runtime().await;
    let addr = app.serve().await;
    let (repo, _) = git_repo(&[("Procfile", "web: node server.js\n"), ("server.js", SERVER)]);
    let mut owner = app.admin().await;
    let service = owner.git_service("shop", "web", repo.path()).await;
    let res = owner
        .post(
            &format!("/api/v1/services/{service}/variables"),
            json!({"name": "TOKEN", "value": "sk_live_service_logs_1234", "sealed": true}),
        )
        .await;
    assert_eq!(res.status, 201);
    let deployment = owner.deploy_and_wait(&service).await;
    assert_eq!(deployment["state"], "active", "{deployment}");
    let logs = format!("/api/v1/services/{service}/logs");

    // What it printed at start arrives in the store, masked, with its stream.
    let mut lines = Vec::new();
    for _ in 0..200 {
        lines = owner.get(&logs).await.json()["lines"].as_array().unwrap().clone();
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let texts: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["stream"].as_str().unwrap(), l["text"].as_str().unwrap()))
        .collect();
    assert!(texts.contains(&("stdout", "booting with *****")), "{texts:?}");
    assert!(texts.contains(&("stderr", "a warning on stderr")), "{texts:?}");

    // Followed live: a request's line arrives over the socket.
    let (_, environment) = owner.project_and_production(&service).await;
    let mut request = format!("ws://{addr}/api/v1/live").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", HeaderValue::from_str(&owner.cookie_header()).unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let last = lines.last().unwrap()["cursor"].as_i64().unwrap();
    let subscribe =
        json!({"type": "subscribe", "topic": format!("service:{service}:{environment}"), "cursor": last});
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    let response = edge::router(edge.clone())
        .oneshot(
            Request::get("/hello-live")
                .header("host", "web-production-shop.localhost")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Lines after `last`, in order, until the request's (the go-live event may come first).
    let mut seen: Vec<Value> = Vec::new();
    while !seen.iter().any(|l| l["text"] == "GET /hello-live") {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a live line within 10 s")
            .unwrap()
            .unwrap();
        let Message::Text(text) = message else { continue };
        let message: Value = serde_json::from_str(text.as_str()).unwrap();
        if message["type"] == "lines" {
            seen.extend(message["lines"].as_array().unwrap().iter().cloned());
        } else {
            assert_eq!(message["type"], "subscribed", "{message}");
        }
    }
    let cursors: Vec<i64> = seen.iter().map(|l| l["cursor"].as_i64().unwrap()).collect();
    assert!(
        cursors[0] > last && cursors.windows(2).all(|w| w[0] < w[1]),
        "{cursors:?}"
    );
    assert!(
        seen.iter()
            .all(|l| l["text"] == "GET /hello-live" || l["stream"] == "event"),
        "{seen:?}"
    );

    // Search, stream filter, time range, cursor pages, text download.
    let found = owner.get(&format!("{logs}?q=HELLO-live")).await.json();
    assert_eq!(found["lines"].as_array().unwrap().len(), 1, "{found}");
    let stderr = owner.get(&format!("{logs}?stream=stderr")).await.json();
    assert!(
        stderr["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["stream"] == "stderr")
    );
    assert_eq!(
        owner.get(&format!("{logs}?q=50%25_off")).await.json()["lines"],
        json!([])
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let res = owner
        .get(&format!("{logs}?since={}", future.replace('+', "%2B")))
        .await;
    assert_eq!(res.json()["lines"], json!([]), "{}", res.text());
    let page = owner.get(&format!("{logs}?limit=1")).await.json();
    let next = page["next_cursor"].as_i64().unwrap();
    let rest = owner.get(&format!("{logs}?cursor={next}")).await.json();
    assert!(rest["lines"][0]["cursor"].as_i64().unwrap() > next);
    let text = owner.get(&format!("{logs}?format=text")).await;
    assert_eq!(text.status, 200);
    assert!(
        text.text().contains(" stdout GET /hello-live\n"),
        "{}",
        text.text()
    );
    assert!(!text.text().contains("sk_live_service_logs_1234"));
    // A regular expression; Railyard's own events (the go-live) are lines of stream `event`.
    let res = owner
        .get(&format!("{logs}?q=%5EGET%20%2Fhello-(live%7Cdead)%24&regex=true"))
        .await;
    assert_eq!(res.json()["lines"].as_array().unwrap().len(), 1, "{}", res.text());
    let events = owner.get(&format!("{logs}?stream=event")).await.json();
    assert!(
        events["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"].as_str().unwrap().starts_with(&format!(
                "Deployment {} is live",
                deployment["id"].as_str().unwrap()
            ))),
        "{events}"
    );
    for bad in [
        "q=%5B&regex=true",
        "limit=0",
        "stream=both",
        "cursor=-1",
        "format=xml",
        "since=yesterday",
    ] {
        let res = owner.get(&format!("{logs}?{bad}")).await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text());
    }
    workers.shutdown().await;
}
