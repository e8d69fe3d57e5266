//! Every failure reaches the client as the one envelope, with a 4xx for bad input.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use axum::{
    Router,
    body::Body,
    http::{Request, header},
    routing::{get, post},
};
use railyard_server::{AppState, extract::Json, testing::TestApp};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Named {
    #[allow(dead_code)]
    name: String,
}

/// Routes that exercise the shared extractor and the panic catcher under the real stack.
fn probe_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/_probe/json",
            post(|Json(_): Json<Named>| async { "accepted" }),
        )
        .route(
            "/api/v1/_probe/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                "too late"
            }),
        )
        .route(
            "/api/v1/_probe/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("secret internal detail 0xdeadbeef");
                }
                "unreachable"
            }),
        )
}

async fn app() -> TestApp {
    TestApp::with(&[("RAILYARD_BODY_LIMIT_BYTES", "2048")], probe_routes()).await
}

fn post_json(path: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post(path);
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(body.into()).unwrap()
}

/// Asserts the envelope shape and that `request_id` matches the `x-request-id` header.
fn assert_envelope(res: &railyard_server::testing::TestResponse, status: u16, code: &str) -> String {
    assert_eq!(res.status, status, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("application/json"));
    let body = res.json();
    let error = body.get("error").unwrap_or_else(|| panic!("no envelope: {body}"));
    assert_eq!(error["code"], code, "{body}");
    let message = error["message"].as_str().unwrap();
    assert!(!message.is_empty());
    let request_id = error["request_id"].as_str().unwrap();
    assert_eq!(
        Some(request_id),
        res.header("x-request-id"),
        "envelope and header carry the same id"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "nothing besides `error`: {body}"
    );
    message.to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_api_paths_are_404_envelopes() {
    let app = app().await;
    for path in [
        "/api/v1/x",
        "/api/v1/projects/123/nothing",
        "/api",
        "/api/v2/health",
    ] {
        let res = app.get(path).await;
        let message = assert_envelope(&res, 404, "not_found");
        assert!(message.contains(path), "{message}");
    }
    let res = app
        .send(post_json("/api/v1/x", Some("application/json"), "{}"))
        .await;
    assert_envelope(&res, 404, "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_is_a_400_envelope() {
    let app = app().await;
    for body in ["{", "{\"name\":", "not json", "{\"name\":\"a\"}}"] {
        let res = app
            .send(post_json("/api/v1/_probe/json", Some("application/json"), body))
            .await;
        let message = assert_envelope(&res, 400, "invalid_json");
        assert!(message.starts_with("malformed JSON"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_of_the_wrong_shape_is_a_422_envelope() {
    let app = app().await;
    let res = app
        .send(post_json(
            "/api/v1/_probe/json",
            Some("application/json"),
            r#"{"name": 5}"#,
        ))
        .await;
    assert_envelope(&res, 422, "validation_failed");
    let res = app
        .send(post_json("/api/v1/_probe/json", Some("application/json"), "{}"))
        .await;
    let message = assert_envelope(&res, 422, "validation_failed");
    assert!(message.contains("name"), "names the missing field: {message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_content_type_is_a_415_envelope() {
    let app = app().await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let res = app
            .send(post_json("/api/v1/_probe/json", content_type, r#"{"name":"a"}"#))
            .await;
        assert_envelope(&res, 415, "unsupported_media_type");
    }
    // The happy path, so the checks above fail for the right reason.
    let res = app
        .send(post_json(
            "/api/v1/_probe/json",
            Some("application/json"),
            r#"{"name":"a"}"#,
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), "accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_a_413_envelope() {
    let app = app().await;
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(4096));
    let res = app
        .send(post_json("/api/v1/_probe/json", Some("application/json"), big))
        .await;
    assert_envelope(&res, 413, "payload_too_large");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_is_a_405_envelope() {
    let app = app().await;
    let res = app
        .send(post_json("/api/v1/health", Some("application/json"), "{}"))
        .await;
    assert_envelope(&res, 405, "method_not_allowed");
    assert_eq!(res.header("allow"), Some("GET,HEAD"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_handler_is_a_generic_500_envelope() {
    let app = app().await;
    let res = app.get("/api/v1/_probe/panic").await;
    let message = assert_envelope(&res, 500, "internal");
    assert!(
        !res.text().contains("deadbeef"),
        "panic detail must not leak: {}",
        res.text()
    );
    assert!(!message.contains("secret"));
    // The server keeps serving.
    assert_eq!(app.get("/api/v1/health").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_request_id_is_kept_and_echoed() {
    let app = app().await;
    let req = Request::get("/api/v1/nope")
        .header("x-request-id", "trace-abc-123")
        .body(Body::empty())
        .unwrap();
    let res = app.send(req).await;
    assert_envelope(&res, 404, "not_found");
    assert_eq!(res.json()["error"]["request_id"], "trace-abc-123");

    let first = app.get("/api/v1/health").await;
    let second = app.get("/api/v1/health").await;
    let (a, b) = (
        first.header("x-request-id").unwrap(),
        second.header("x-request-id").unwrap(),
    );
    assert_ne!(a, b, "each request gets its own id");
    assert!(uuid::Uuid::parse_str(a).is_ok(), "{a}");

    // Anything but one short safe token is replaced (it would be stored in the audit log).
    for unsafe_id in [
        "x".repeat(65),
        "a b".to_owned(),
        "<script>".to_owned(),
        "id\u{7f}".to_owned(),
    ] {
        let Ok(value) = axum::http::HeaderValue::from_bytes(unsafe_id.as_bytes()) else {
            continue;
        };
        let req = Request::get("/api/v1/nope")
            .header("x-request-id", value)
            .body(Body::empty())
            .unwrap();
        let res = app.send(req).await;
        let id = res.json()["error"]["request_id"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{unsafe_id:?} became {id}");
        assert_eq!(res.header("x-request-id"), Some(id.as_str()));
    }
    let req = Request::get("/api/v1/nope")
        .header("x-request-id", "one")
        .header("x-request-id", "two")
        .body(Body::empty())
        .unwrap();
    let id = app.send(req).await.json()["error"]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "two ids became {id}");
}

#[tokio::test(flavor = "multi_thread")]
async fn error_envelopes_are_compressed_when_asked() {
    let app = app().await;
    let req = Request::get(format!("/api/v1/{}", "x".repeat(2000)))
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let res = app.send(req).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.header("content-encoding"), Some("gzip"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_the_timeout_is_a_503_envelope() {
    let app = TestApp::with(&[("RAILYARD_REQUEST_TIMEOUT_SECS", "1")], probe_routes()).await;
    let started = std::time::Instant::now();
    let res = app.get("/api/v1/_probe/slow").await;
    assert_envelope(&res, 503, "service_unavailable");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "cut off at the timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_carry_security_headers() {
    let app = app().await;
    for path in ["/api/v1/health", "/api/v1/nope", "/"] {
        let res = app.get(path).await;
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(res.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            res.header("referrer-policy"),
            Some("strict-origin-when-cross-origin"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_is_off_unless_origins_are_configured() {
    let preflight = |origin: &str| {
        Request::options("/api/v1/health")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-csrf-token")
            .body(Body::empty())
            .unwrap()
    };
    let app = app().await;
    let res = app.send(preflight("https://evil.example.com")).await;
    assert_eq!(res.header("access-control-allow-origin"), None);

    let app = TestApp::with(
        &[("RAILYARD_CORS_ORIGINS", "https://ui.example.com")],
        probe_routes(),
    )
    .await;
    let res = app.send(preflight("https://ui.example.com")).await;
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://ui.example.com")
    );
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    let res = app.send(preflight("https://evil.example.com")).await;
    assert_eq!(
        res.header("access-control-allow-origin"),
        None,
        "only the configured origin"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_path_and_query_parameters_are_explained() {
    let app = TestApp::new().await;
    let mut admin = app.admin().await;
    for (path, expected) in [
        ("/api/v1/workspaces/not-a-uuid", "invalid path"),
        ("/api/v1/services/42", "invalid path"),
        ("/api/v1/projects", "workspace_id"),
        ("/api/v1/projects?workspace_id=xyz", "invalid query"),
        ("/api/v1/workspaces?limit=abc", "limit"),
        // NUL reaches no handler (PostgreSQL refused it in a log search: a 500).
        ("/api/v1/workspaces?name=a%00b", "NUL"),
        (
            "/api/v1/services/00000000-0000-0000-0000-000000000000/logs?q=%00",
            "NUL",
        ),
    ] {
        let res = admin.get(path).await;
        let message = assert_envelope(&res, 400, "bad_request");
        assert!(message.contains(expected), "{path}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_uri_too_long_is_a_414_envelope() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = app().await;
    let res = app.get(&format!("/api/v1/health?q={}", "a".repeat(9000))).await;
    assert_envelope(&res, 414, "uri_too_long");

    // On a real socket too, past what hyper would answer with a bare 414 of its own.
    let addr = app.serve().await;
    for length in [20_000, 70_000] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /api/v1/health?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(length)
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .unwrap()
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 414"), "{length}: {answer}");
        let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "uri_too_long", "{body}");
    }
    // A request of ordinary length on the same listener is served.
    let res = reqwest::get(format!("http://{addr}/api/v1/health?q={}", "a".repeat(4000)))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
