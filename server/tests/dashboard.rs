//! The dashboard shell: precompressed assets, SPA fallback, cache headers.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{fs, path::Path};

use axum::{body::Body, http::Request};
use railyard_server::testing::TestApp;

const INDEX: &str =
    "<!doctype html><title>Railyard</title><script src=\"/railyard-app-0123456789abcdef.js\"></script>";
const APP_JS: &str = "console.log('railyard dashboard');";

/// A `dist/` as Trunk and scripts/precompress.sh leave it.
fn fake_dist(dir: &Path) {
    fs::write(dir.join("index.html"), INDEX).unwrap();
    fs::write(dir.join("index.html.br"), b"brotli-index").unwrap();
    fs::write(dir.join("railyard-app-0123456789abcdef.js"), APP_JS).unwrap();
    fs::write(dir.join("railyard-app-0123456789abcdef.js.gz"), b"gzip-js").unwrap();
    fs::write(dir.join("railyard-app-0123456789abcdef.js.br"), b"brotli-js").unwrap();
    fs::create_dir(dir.join("fonts")).unwrap();
    fs::write(dir.join("fonts/inter-latin-wght.woff2"), b"wOF2").unwrap();
}

async fn app_with_dist() -> (TestApp, tempfile::TempDir) {
    let dist = tempfile::tempdir().unwrap();
    fake_dist(dist.path());
    let app = TestApp::with(
        &[("RAILYARD_DASHBOARD_DIR", dist.path().to_str().unwrap())],
        axum::Router::new(),
    )
    .await;
    (app, dist)
}

fn get(path: &str, encoding: &str) -> Request<Body> {
    Request::get(path)
        .header("accept-encoding", encoding)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_routes_get_the_shell_and_it_is_revalidated() {
    let (app, _dist) = app_with_dist().await;
    for path in [
        "/",
        "/projects",
        "/projects/shop/services/web",
        "/settings?tab=members",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.text(), INDEX, "{path}");
        assert!(res.header("content-type").unwrap().starts_with("text/html"));
        assert_eq!(res.header("cache-control"), Some("no-cache"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hashed_assets_are_immutable_and_precompressed() {
    let (app, _dist) = app_with_dist().await;
    let path = "/railyard-app-0123456789abcdef.js";

    let res = app.send(get(path, "br, gzip")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-encoding"), Some("br"));
    assert_eq!(
        res.body, b"brotli-js",
        "the precompressed file, not one compressed on the fly"
    );
    assert_eq!(
        res.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );

    let res = app.send(get(path, "gzip")).await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(res.body, b"gzip-js");

    let res = app.send(get(path, "identity")).await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), APP_JS);

    let res = app.send(get("/projects/x", "br")).await;
    assert_eq!(
        res.header("content-encoding"),
        Some("br"),
        "the shell is precompressed too"
    );
    assert_eq!(res.body, b"brotli-index");
}

#[tokio::test(flavor = "multi_thread")]
async fn unhashed_files_get_a_short_cache() {
    let (app, _dist) = app_with_dist().await;
    let res = app.get("/fonts/inter-latin-wght.woff2").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("cache-control"), Some("public, max-age=3600"));
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_files_are_404_not_the_shell() {
    let (app, _dist) = app_with_dist().await;
    for path in [
        "/railyard-app-ffffffffffffffff.js",
        "/favicon.ico",
        "/fonts/missing.woff2",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status, 404, "{path}");
        assert_ne!(res.text(), INDEX);
    }
    // Traversal never leaves dist/: at most the shell comes back.
    let res = app.get("/../../../../etc/passwd").await;
    assert!(!res.text().contains("root:"), "no path traversal");
    let res = app.get("/%2e%2e/%2e%2e/%2e%2e/etc/passwd").await;
    assert!(!res.text().contains("root:"), "no encoded path traversal");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_paths_never_fall_back_to_the_shell() {
    let (app, _dist) = app_with_dist().await;
    let res = app.get("/api/v1/no-such-thing").await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_get_outside_the_api_is_405() {
    let (app, _dist) = app_with_dist().await;
    let res = app
        .send(Request::post("/projects").body(Body::empty()).unwrap())
        .await;
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unbuilt_dashboard_says_how_to_build_it() {
    let app = TestApp::new().await; // points at a directory that does not exist
    let res = app.get("/").await;
    assert_eq!(res.status, 503);
    assert!(res.text().contains("scripts/start.sh"), "{}", res.text());
    // The API works regardless.
    assert_eq!(app.get("/api/v1/health").await.status, 200);
}
