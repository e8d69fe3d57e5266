//! Snapshots of the main JSON shapes the dashboard, the CLI and outside scripts read: a change
//! to a field's name, type or nesting shows up here as a diff to review (`INSTA_UPDATE=always
//! cargo nextest run -E 'binary(shapes)'` writes the new ones). Ids, times, commits and request
//! ids are redacted, so only the shape and the stable values are compared.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use railyard_server::testing::{Fixture, TestApp, git_main};
use serde_json::{Value, json};

/// `value` with every id, time, commit and request id replaced by a placeholder.
fn redacted(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(placeholder(&text).unwrap_or(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(redacted).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), &value) {
                        ("request_id", Value::String(_)) => json!("[request id]"),
                        // How long something took: a number of its own each run.
                        (key, Value::Number(_)) if key.ends_with("_ms") => json!("[ms]"),
                        _ => redacted(value),
                    };
                    (key, value)
                })
                .collect(),
        ),
        other => other,
    }
}

fn placeholder(text: &str) -> Option<String> {
    if text.parse::<uuid::Uuid>().is_ok() {
        return Some("[uuid]".into());
    }
    // A path with an id in it: each 36-character id becomes `[uuid]`.
    if text.contains('/') {
        let parts: Vec<String> = text
            .split('/')
            .map(|part| {
                if part.parse::<uuid::Uuid>().is_ok() {
                    "[uuid]".to_owned()
                } else {
                    part.to_owned()
                }
            })
            .collect();
        let joined = parts.join("/");
        if joined != text {
            return Some(joined);
        }
    }
    if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        return Some("[time]".into());
    }
    if text.len() == 40 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some("[commit]".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn the_main_json_shapes_hold() {
    let app = TestApp::new().await;
    let mut fixture = Fixture::new(&app).await;
    // Never fetched (no workers run): a fixed address keeps the snapshot stable.
    let service = fixture
        .service("web", git_main("https://github.com/acme/web.git"))
        .await;
    let staging = fixture.environment("staging").await;
    let project = fixture.project;
    let client = &mut fixture.client;
    let res = client
        .post(
            &format!("/api/v1/services/{service}/variables?environment={staging}"),
            json!({"name": "GREETING", "value": "hello"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let res = client
        .post(
            &format!("/api/v1/services/{service}/variables?environment={staging}"),
            json!({"name": "API_KEY", "value": "sk_live_not_shown", "sealed": true}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    // No workers run here: the deployment stays queued, which is a shape of its own.
    let res = client
        .post(
            &format!("/api/v1/services/{service}/deployments"),
            json!({"environment_id": staging}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let deployment = res.json()["deployment"]["id"].as_str().unwrap().to_owned();

    let reads = [
        ("workspaces", "/api/v1/workspaces".to_owned()),
        ("project", format!("/api/v1/projects/{project}")),
        ("service", format!("/api/v1/services/{service}")),
        ("deployment", format!("/api/v1/deployments/{deployment}")),
        (
            "deployments",
            format!("/api/v1/services/{service}/deployments?environment={staging}"),
        ),
        (
            "settings",
            format!("/api/v1/services/{service}/settings?environment={staging}"),
        ),
        (
            "status",
            format!("/api/v1/services/{service}/status?environment={staging}"),
        ),
        (
            "overview",
            format!("/api/v1/projects/{project}/overview?environment={staging}"),
        ),
        (
            "variables",
            format!("/api/v1/services/{service}/variables?environment={staging}"),
        ),
        ("not_found", format!("/api/v1/services/{}", uuid::Uuid::nil())),
    ];
    for (name, path) in reads {
        let res = client.get(&path).await;
        let body = redacted(res.json());
        insta::assert_json_snapshot!(name, json!({"status": res.status, "body": body}));
    }
}
