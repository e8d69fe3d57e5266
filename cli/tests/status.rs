//! `railyard status` against a real server on a real database.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::{Command, Output};

use railyard_server::testing::TestApp;

/// Serves `app` on a free loopback port and returns its base URL.
async fn serve(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// Runs the CLI off the async runtime's threads (it blocks until the binary exits).
async fn railyard(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_railyard"))
            .args(args)
            .env_remove("RAILYARD_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_a_healthy_server() {
    let app = TestApp::new().await;
    let url = serve(&app).await;
    let out = railyard(args(&["status", "--url", &url])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Status:    ok"), "{stdout}");
    assert!(stdout.contains("Database:  ok"), "{stdout}");
    assert!(stdout.contains("Redis:     disabled"), "{stdout}");
    assert!(
        stdout.contains(&format!("Version:   {}", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );

    let out = railyard(args(&["status", "--json", "--url", &url])).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["database"], "ok");
    assert_eq!(json["status"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_exits_1_when_the_database_is_down() {
    let app = TestApp::with(&[("RAILYARD_DB_ACQUIRE_TIMEOUT_MS", "500")], axum::Router::new()).await;
    let url = serve(&app).await;
    app.db.drop_now().await;
    let out = railyard(args(&["status", "--url", &url])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Database:  unavailable"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_exits_2_when_the_server_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = railyard(args(&["status", "--url", &format!("http://127.0.0.1:{port}")])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_explains_a_server_that_is_not_railyard() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let other = axum::Router::new().fallback(|| async { (axum::http::StatusCode::IM_A_TEAPOT, "teapot") });
    tokio::spawn(async move { axum::serve(listener, other).await.unwrap() });
    let out = railyard(args(&["status", "--url", &format!("http://{addr}")])).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a Railyard health report"), "{stderr}");
}
