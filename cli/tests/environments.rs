//! `railyard environment-create`, `environments`, `matrix` and `promote` against a real
//! server that builds and runs apps.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Output;

use railyard_server::testing::{Fixture, TestApp, git_commit, git_repo};
use serde_json::{Value, json};

async fn railyard(args: Vec<String>, token: &str) -> Output {
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_railyard"))
            .args(args)
            .env_remove("RAILYARD_URL")
            .env_remove("RAILYARD_SERVICE")
            .env_remove("RAILYARD_PROJECT")
            .env("RAILYARD_TOKEN", token)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const SERVER: &str = "const v = require('fs').readFileSync('version.txt', 'utf8').trim();\n\
require('http').createServer((q, s) => s.end(v)).listen(process.env.PORT, '127.0.0.1');\n";

#[tokio::test(flavor = "multi_thread")]
async fn staging_is_created_compared_and_promoted_from_the_cli() {
    let app = TestApp::with(&[("RAILYARD_DRAIN_SECS", "0")], axum::Router::new()).await;
    let (workers, _edge) = app.start_runtime().await;
    let url = format!("http://{}", app.serve().await);
    let mut fx = Fixture::new(&app).await;
    let (repo, _) = git_repo(&[
        ("Procfile", "web: node server.js\n"),
        ("server.js", SERVER),
        ("version.txt", "v1"),
    ]);
    let web = fx.git_service("web", repo.path()).await;
    fx.deploy_live(web, fx.production).await;
    let token = fx
        .client
        .post(
            "/api/v1/tokens",
            json!({"workspace_id": fx.workspace, "name": "cli", "role": "admin"}),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (project, production) = (fx.project.to_string(), fx.production.to_string());

    // Create staging as a copy of production; list the pipeline.
    let out = railyard(
        args(&[
            "--url",
            &url,
            "--json",
            "environment-create",
            "--project",
            &project,
            "--name",
            "staging",
            "--clone-from",
            &production,
        ]),
        &token,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(made["kind"], "staging");
    let staging = made["id"].as_str().unwrap().to_owned();
    let out = railyard(
        args(&["--url", &url, "environments", "--project", &project]),
        &token,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let staging_at = listed.find("staging").unwrap();
    let production_at = listed.find("production").unwrap();
    assert!(staging_at < production_at, "pipeline order:\n{listed}");
    let out = railyard(
        args(&[
            "--url",
            &url,
            "environment-create",
            "--project",
            &project,
            "--name",
            "x",
            "--kind",
            "nonsense",
        ]),
        &token,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A new commit in staging; the matrix shows production one behind.
    git_commit(repo.path(), &[("version.txt", "v2")], false);
    let out = railyard(
        args(&[
            "--url",
            &url,
            "deploy",
            "--service",
            &web.to_string(),
            "--environment",
            &staging,
        ]),
        &token,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = railyard(args(&["--url", &url, "matrix", "--project", &project]), &token).await;
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("running") && table.contains("[-1]"), "{table}");

    // The plan, then --yes: followed until live in production.
    let promote = |yes: bool| {
        let mut list = args(&[
            "--url",
            &url,
            "promote",
            "--service",
            &web.to_string(),
            "--from",
            &staging,
            "--to",
            &production,
        ]);
        if yes {
            list.push("--yes".into());
        }
        list
    };
    let out = railyard(promote(false), &token).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Commits it brings: 1"), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    let out = railyard(promote(true), &token).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no fetch, no build"), "{}", text(&out));
    assert!(text(&out).contains("Deployment active."), "{}", text(&out));
    // Nothing left to promote: the server's reason, exit 2.
    let out = railyard(promote(false), &token).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nothing to promote"), "{}", text(&out));

    // Rename staging; delete it (only with --yes); production stays.
    let out = railyard(
        args(&[
            "--url",
            &url,
            "environment-rename",
            "--environment",
            &staging,
            "--name",
            "qa",
        ]),
        &token,
    )
    .await;
    assert!(
        out.status.success() && text(&out).contains("Renamed to qa"),
        "{}",
        text(&out)
    );
    let out = railyard(
        args(&["--url", &url, "environment-delete", "--environment", &staging]),
        &token,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = railyard(
        args(&[
            "--url",
            &url,
            "environment-delete",
            "--environment",
            &production,
            "--yes",
        ]),
        &token,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("cannot be deleted"), "{}", text(&out));
    let out = railyard(
        args(&[
            "--url",
            &url,
            "environment-delete",
            "--environment",
            &staging,
            "--yes",
        ]),
        &token,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = railyard(
        args(&["--url", &url, "environments", "--project", &project]),
        &token,
    )
    .await;
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("qa"),
        "{}",
        text(&out)
    );
    workers.shutdown().await;
}
