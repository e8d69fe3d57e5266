//! The canary: a sealed variable, echoed by a build (raw, base64, hex, URL-encoded, split
//! across writes), printed by the running app and thrown in its error, must appear nowhere
//! Railyard stores or answers — build log, runtime log file, deployment reasons, API
//! responses, audit, the whole database — while the app itself gets the real value. Then
//! "changes not deployed" and "Deploy changes" (no rebuild).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::{body::Body, http::Request};
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::BodyExt as _;
use railyard_server::{
    edge::{self, Edge},
    testing::{Client, TestApp, git_commit, git_repo},
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue};
use tower::ServiceExt as _;

const SECRET: &str = "sk_live canary/4f9d+2e7a1b";

const BUILD: &str = r#"echo "build sees $TOKEN"
printf '%s' "$TOKEN" | base64
node -e "console.log(Buffer.from(process.env.TOKEN).toString('hex'))"
node -e "console.log(encodeURIComponent(process.env.TOKEN))"
node -e "process.stdout.write('split ' + process.env.TOKEN.slice(0, 9)); setTimeout(() => console.log(process.env.TOKEN.slice(9)), 300)"
echo "url is $DATABASE_URL"
"#;

const SERVER: &str = r#"const http = require('http');
const crypto = require('crypto');
const t = process.env.TOKEN;
const sha = (v) => crypto.createHash('sha256').update(v || '').digest('hex');
console.log('starting with token', t);
console.error('stderr token', Buffer.from(t).toString('base64'));
http.createServer((q, s) => {
  if (q.url === '/boom') { throw new Error('failed with ' + t); }
  console.log('request', q.url, 'token', t);
  s.end(JSON.stringify({
    token: sha(t), db: sha(process.env.DATABASE_URL), env: process.env.RAILYARD_ENVIRONMENT,
    name: process.env.RAILYARD_SERVICE_NAME, url: process.env.RAILYARD_PUBLIC_URL,
    commit: process.env.RAILYARD_GIT_COMMIT, deployment: process.env.RAILYARD_DEPLOYMENT_ID,
  }));
}).listen(process.env.PORT, '127.0.0.1');
"#;

fn sha(value: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, value.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every form of `secret` that must not appear.
fn forms(secret: &str) -> Vec<String> {
    vec![
        secret.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        secret.bytes().map(|b| format!("{b:02x}")).collect(),
        secret.replace(' ', "%20").replace('/', "%2F").replace('+', "%2B"),
        "4f9d+2e7a1b".to_owned(),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for form in forms(SECRET) {
        assert!(!text.contains(&form), "{what} holds the secret ({form}):\n{text}");
    }
}

async fn get(edge: &Edge, path: &str) -> (u16, String) {
    let request = Request::get(path)
        .header("host", "web-production-shop.localhost")
        .body(Body::empty())
        .unwrap();
    let response = edge::router(edge.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn app_says(edge: &Edge, deployment: &str) -> Value {
    for _ in 0..200 {
        let (status, body) = get(edge, "/").await;
        if status == 200 {
            let said: Value = serde_json::from_str(&body).unwrap();
            if said["deployment"] == deployment {
                return said;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deployment {deployment} never answered");
}

async fn text_of(owner: &mut Client<'_>, path: &str, seen: &mut String) -> Value {
    let res = owner.get(path).await;
    assert_eq!(res.status, 200, "{path}: {}", res.text());
    seen.push_str(&res.text());
    serde_json::from_str(&res.text()).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_canary_appears_nowhere_but_in_the_app() {
    let app = TestApp::with(&[("RAILYARD_DRAIN_SECS", "0")], axum::Router::new()).await;
    let (workers, edge) = app.start_runtime().await;
    let (repo, _) = git_repo(&[
        (
            "railyard.toml",
            "build = \"sh build.sh\"\nstart = \"node server.js\"\n",
        ),
        ("build.sh", BUILD),
        ("server.js", SERVER),
    ]);
    let mut owner = app.admin().await;
    let service = owner.git_service("shop", "web", repo.path()).await;
    let vars = format!("/api/v1/services/{service}/variables");
    let (_, environment) = owner.project_and_production(&service).await;
    let res = owner
        .post(&vars, json!({"name": "TOKEN", "value": SECRET, "sealed": true}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let res = owner
        .post(
            &format!("/api/v1/environments/{environment}/shared-variables"),
            json!({"name": "DB_HOST", "value": "db.internal"}),
        )
        .await;
    assert_eq!(res.status, 201);
    let res = owner
        .post(
            &vars,
            json!({"name": "DATABASE_URL", "value": "postgres://app:${{ TOKEN }}@${{ shared.DB_HOST }}/app"}),
        )
        .await;
    assert_eq!(res.status, 201);

    let mut seen = String::new();
    let deployment = owner.deploy_and_wait(&service).await;
    assert_eq!(deployment["state"], "active", "{deployment}");
    let id = deployment["id"].as_str().unwrap().to_owned();

    // The app got the real values (it answers only their digests).
    let said = app_says(&edge, &id).await;
    assert_eq!(said["token"], sha(SECRET));
    assert_eq!(
        said["db"],
        sha(&format!("postgres://app:{SECRET}@db.internal/app"))
    );
    assert_eq!(said["env"], "production");
    assert_eq!(said["name"], "web");
    assert!(
        said["url"]
            .as_str()
            .unwrap()
            .starts_with("http://web-production-shop.localhost:")
    );
    assert_eq!(said["commit"].as_str().unwrap().len(), 40);

    // The build echoed it in every form: the log shows masks only.
    let log = text_of(&mut owner, &format!("/api/v1/deployments/{id}/logs"), &mut seen).await;
    let lines: Vec<&str> = log["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    let build_log = lines.join("\n");
    assert!(build_log.contains("build sees *****"), "{build_log}");
    assert!(
        build_log.contains("split *****"),
        "split across writes: {build_log}"
    );
    assert!(
        build_log.contains("url is postgres://app:*****@db.internal/app"),
        "{build_log}"
    );
    assert!(build_log.matches("*****").count() >= 6, "{build_log}");
    assert_clean("the build log", &build_log);

    // The app printed it and threw it: the log file holds masks only.
    let (status, _) = get(&edge, "/boom").await;
    assert!(status >= 500, "the request that throws fails");
    let log_file = app
        .data
        .path()
        .join("logs")
        .join(&service)
        .join(format!("{environment}.log"));
    let mut runtime_log = String::new();
    for _ in 0..200 {
        runtime_log = std::fs::read_to_string(&log_file).unwrap_or_default();
        if runtime_log.contains("failed with *****") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(runtime_log.contains("starting with token *****"), "{runtime_log}");
    assert!(
        runtime_log.contains("stderr token *****"),
        "base64: {runtime_log}"
    );
    assert!(runtime_log.contains("failed with *****"), "{runtime_log}");
    assert_clean("the runtime log file", &runtime_log);

    // Over the live socket: the build log and the runtime output, replayed from the start.
    let addr = app.serve().await;
    let mut request = format!("ws://{addr}/api/v1/live").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", HeaderValue::from_str(&owner.cookie_header()).unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    for topic in [
        format!("deployment:{id}"),
        format!("service:{service}:{environment}"),
    ] {
        let subscribe = json!({"type": "subscribe", "topic": topic, "cursor": 0});
        socket
            .send(Message::Text(subscribe.to_string().into()))
            .await
            .unwrap();
    }
    let mut frames = String::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_millis(1500), socket.next()).await {
        if let Message::Text(text) = message {
            frames.push_str(text.as_str());
        }
    }
    assert!(frames.contains("build sees *****"), "{frames}");
    assert!(frames.contains("starting with token *****"), "{frames}");
    assert_clean("the WebSocket messages", &frames);
    app_says(&edge, &id).await; // restarted after the crash

    // A build that fails saying the secret: the reason and the log tail are masked.
    git_commit(
        repo.path(),
        &[("build.sh", "echo \"fatal: cannot use $TOKEN\" >&2\nexit 3\n")],
        false,
    );
    let failed = owner.deploy_and_wait(&service).await;
    assert_eq!(failed["state"], "failed");
    let failed_id = failed["id"].as_str().unwrap();
    let detail = text_of(&mut owner, &format!("/api/v1/deployments/{failed_id}"), &mut seen).await;
    assert!(detail.to_string().contains("fatal: cannot use *****"), "{detail}");

    // "Changes not deployed", then "Deploy changes": the same build, new values.
    let listed = text_of(&mut owner, &vars, &mut seen).await;
    assert_eq!(listed["staged"], json!([]), "nothing changed yet: {listed}");
    let res = owner
        .call(
            "PATCH",
            &format!("{vars}/TOKEN"),
            Some(json!({"value": "sk_live second/9b8c7d6e5f"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let listed = text_of(&mut owner, &vars, &mut seen).await;
    let staged: Vec<&str> = listed["staged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(staged, vec!["TOKEN"], "{listed}");
    assert_eq!(listed["staged"][0]["change"], "changed");
    let res = owner
        .post(&format!("/api/v1/services/{service}/deploy-changes"), json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let changed = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    let said = app_says(&edge, &changed).await;
    assert_eq!(said["token"], sha("sk_live second/9b8c7d6e5f"));
    let log = text_of(
        &mut owner,
        &format!("/api/v1/deployments/{changed}/logs"),
        &mut seen,
    )
    .await;
    assert!(!log.to_string().contains("$ sh build.sh"), "no rebuild: {log}");
    let listed = text_of(&mut owner, &vars, &mut seen).await;
    assert_eq!(listed["staged"], json!([]), "{listed}");
    // Asked to, it rebuilds: the commit that runs (not the branch's newer, broken head).
    let res = owner
        .post(
            &format!("/api/v1/services/{service}/deploy-changes?rebuild=true"),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let rebuilt = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app_says(&edge, &rebuilt).await["token"],
        sha("sk_live second/9b8c7d6e5f")
    );
    let log = text_of(
        &mut owner,
        &format!("/api/v1/deployments/{rebuilt}/logs"),
        &mut seen,
    )
    .await;
    assert!(log.to_string().contains("$ sh build.sh"), "rebuilt: {log}");

    // Everything the API said on the way, and the whole database: no secret.
    let workspace = owner.get("/api/v1/workspaces").await.json()["workspaces"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        format!("/api/v1/services/{service}/deployments"),
        format!("/api/v1/deployments/{id}"),
        format!("/api/v1/services/{service}/status"),
        format!("{vars}?format=env"),
        format!("/api/v1/workspaces/{workspace}/audit?limit=100"),
    ] {
        text_of(&mut owner, &path, &mut seen).await;
    }
    assert_clean("the API responses", &seen);
    assert!(
        seen.contains("variable.sealed_read"),
        "reads of sealed values are audited"
    );
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "--no-owner", &app.db.url])
        .output()
        .unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("TOKEN"), "the dump has the variables");
    assert_clean("the database", &dump);
    workers.shutdown().await;
}
