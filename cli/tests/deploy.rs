//! `railyard up` and `railyard deploy` against a real server with real build workers.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Output;

use railyard_server::testing::{Fixture, TestApp, git_repo};
use railyard_shared::projects::Source;
use serde_json::json;

async fn serve(app: &TestApp) -> String {
    format!("http://{}", app.serve().await)
}

async fn railyard(args: &[&str], token: &str) -> Output {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_railyard"))
            .args(args)
            .env_remove("RAILYARD_URL")
            .env_remove("RAILYARD_SERVICE")
            .env("RAILYARD_TOKEN", token)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// A workspace, a project with `source` as its service, and a member's API token.
async fn setup(app: &TestApp, source: serde_json::Value) -> (String, String) {
    let mut fixture = Fixture::new(app).await;
    let source: Source = serde_json::from_value(source).expect("a source");
    let service = fixture.service("web", source).await.to_string();
    let ws = fixture.workspace.to_string();
    let mut owner = fixture.client;
    let token = owner
        .post(
            "/api/v1/tokens",
            json!({"workspace_id": ws, "name": "cli", "role": "member"}),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (service, token)
}

/// A server that builds and runs apps (deployments go live or fail their health check).
async fn running_app() -> TestApp {
    TestApp::with(
        &[
            ("RAILYARD_HEALTH_TIMEOUT_SECS", "10"),
            ("RAILYARD_DRAIN_SECS", "0"),
        ],
        axum::Router::new(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn up_uploads_a_directory_and_follows_it_until_live() {
    let app = running_app().await;
    let (workers, _edge) = app.start_runtime().await;
    let url = serve(&app).await;
    let (service, token) = setup(&app, json!({"upload": {}})).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>up</h1>").unwrap();
    std::fs::create_dir_all(dir.path().join("node_modules/left-pad")).unwrap();
    std::fs::write(dir.path().join("node_modules/left-pad/index.js"), "x").unwrap();
    std::fs::create_dir_all(dir.path().join("css")).unwrap();
    std::fs::write(dir.path().join("css/site.css"), "h1{}").unwrap();
    let path = dir.path().to_str().unwrap();
    let out = railyard(&["up", "--url", &url, "--service", &service, path], &token).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Plan: static"), "{stdout}");
    // Followed past the build, until it is live.
    assert!(stderr.contains("Deployment active"), "{stderr}");
    let id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Deployment ").filter(|r| r.len() == 36))
        .unwrap();
    let release = app.data.path().join("releases").join(id);
    assert!(release.join("css/site.css").is_file());
    assert!(
        !release.join("node_modules").exists(),
        "node_modules is not uploaded"
    );

    // A failing build: exit code 1 and the reason.
    std::fs::write(
        dir.path().join("railyard.toml"),
        "build = \"echo nope >&2; exit 4\"\nstart = \"true\"\n",
    )
    .unwrap();
    let out = railyard(&["up", "--url", &url, "--service", &service, path], &token).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Deployment failed") && stderr.contains("exited with code 4"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("nope"));

    // A build that succeeds but whose app never becomes healthy: exit code 1 too, with
    // the health check's reason (the build's end is not the deployment's).
    std::fs::write(
        dir.path().join("railyard.toml"),
        "build = \"true\"\nstart = \"exit 3\"\n",
    )
    .unwrap();
    let out = railyard(&["up", "--url", &url, "--service", &service, path], &token).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Deployment failed") && stderr.contains("health check failed"),
        "{stderr}"
    );

    // No token: a clear error, not a crash.
    let out = railyard(&["up", "--url", &url, "--service", &service, path], "").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RAILYARD_TOKEN"));
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_builds_the_services_own_source() {
    let app = running_app().await;
    let (workers, _edge) = app.start_runtime().await;
    let url = serve(&app).await;
    let (repo, commit) = git_repo(&[("index.html", "<h1>git</h1>")]);
    let source = json!({"git": {"url": format!("file://{}", repo.path().display()), "branch": "main"}});
    let (service, token) = setup(&app, source).await;
    let out = railyard(
        &["deploy", "--url", &url, "--service", &service, "--json"],
        &token,
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let detail: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(detail["state"], "active");
    assert_eq!(detail["commit"], commit.as_str());
    let out = railyard(
        &[
            "deploy",
            "--url",
            &url,
            "--service",
            &service,
            "--commit",
            "$(id)",
        ],
        &token,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("commit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_that_is_not_an_id_is_refused_before_any_request() {
    // Nothing listens at this address: a request would fail differently (exit 1).
    let out = railyard(
        &[
            "deploy",
            "--url",
            "http://127.0.0.1:9",
            "--service",
            "web; rm -rf /",
        ],
        "ry_unused",
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value") && stderr.contains("--service"),
        "{stderr}"
    );
}
