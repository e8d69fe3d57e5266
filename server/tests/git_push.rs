//! `git push` to Railyard over smart HTTP with an API token: a push to the service's
//! branch deploys that commit; other branches, missing or weak tokens and services that
//! do not take pushes are refused or ignored.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{path::Path, process::Command, time::Duration};

use railyard_server::testing::{Client, Fixture, TestApp, git_commit, git_repo};
use railyard_shared::projects::Source;
use serde_json::{Value, json};

/// Runs git in `dir` with no user configuration or prompts; returns (success, stderr).
fn git(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn token(owner: &mut Client<'_>, ws: &str, role: &str) -> String {
    let res = owner
        .post(
            "/api/v1/tokens",
            json!({"workspace_id": ws, "name": format!("git-{role}"), "role": role}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["token"].as_str().unwrap().to_owned()
}

async fn deployments(owner: &mut Client<'_>, service: &str) -> Vec<Value> {
    owner
        .get(&format!("/api/v1/services/{service}/deployments"))
        .await
        .json()["deployments"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_to_the_branch_deploys_that_commit() {
    let app = TestApp::new().await;
    let workers = app.start_workers();
    let addr = app.serve().await;
    let mut fixture = Fixture::new(&app).await;
    let service = fixture.push_service("web").await.to_string();
    let api = Source::Git {
        url: "https://github.com/acme/api.git".into(),
        branch: "main".into(),
    };
    let other = fixture.service("api", api).await.to_string();
    let (ws, project) = (fixture.workspace.to_string(), fixture.project.to_string());
    let mut owner = fixture.client;
    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
        .await;
    assert_eq!(res.status, 422, "nothing pushed yet: {}", res.text());

    let member = token(&mut owner, &ws, "member").await;
    let viewer = token(&mut owner, &ws, "viewer").await;
    let (repo, commit) = git_repo(&[("index.html", "<h1>pushed</h1>")]);
    let remote = |token: &str, path: &str| format!("http://git:{token}@{addr}/git/{path}");

    // No token, a wrong token, a viewer's token: refused, nothing deployed.
    let (ok, err) = git(
        repo.path(),
        &["push", &format!("http://{addr}/git/shop/web.git"), "main"],
    );
    assert!(
        !ok && err.contains("could not read Username"),
        "git was asked for credentials: {err}"
    );
    let (ok, _) = git(
        repo.path(),
        &["push", &remote("ry_not-a-token", "shop/web.git"), "main"],
    );
    assert!(!ok);
    let (ok, err) = git(repo.path(), &["push", &remote(&viewer, "shop/web.git"), "main"]);
    assert!(!ok && err.contains("403"), "{err}");
    // Unknown projects and services, hostile names, services that do not take pushes.
    for path in [
        "nope/web.git",
        "shop/nope.git",
        "..%2F..%2Fetc/web.git",
        "shop/api.git",
    ] {
        let (ok, err) = git(repo.path(), &["push", &remote(&member, path), "main"]);
        assert!(!ok, "{path}: {err}");
    }
    assert!(deployments(&mut owner, &service).await.is_empty());
    assert!(deployments(&mut owner, &other).await.is_empty());

    // The member's push deploys the pushed commit.
    let (ok, err) = git(repo.path(), &["push", &remote(&member, "shop/web.git"), "main"]);
    assert!(ok, "{err}");
    let listed = deployments(&mut owner, &service).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["source"], "push");
    assert_eq!(listed[0]["commit"], commit.as_str());
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let mut done = Value::Null;
    for _ in 0..300 {
        done = owner.get(&format!("/api/v1/deployments/{id}")).await.json()["deployment"].clone();
        if done["state"] == "deploying" || done["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["state"], "deploying", "{done}");
    assert_eq!(done["plan"]["provider"], "static");

    // Pushing another branch stores it but deploys nothing; the viewer may fetch.
    let (ok, err) = git(
        repo.path(),
        &[
            "push",
            &remote(&member, &format!("{project}/web.git")),
            "main:feature",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(deployments(&mut owner, &service).await.len(), 1);
    let clone = tempfile::tempdir().unwrap();
    let (ok, err) = git(
        clone.path(),
        &["clone", "--quiet", &remote(&viewer, "shop/web.git"), "copy"],
    );
    assert!(ok, "{err}");
    assert!(clone.path().join("copy/index.html").is_file());

    // A second push to main deploys the new commit.
    let second = git_commit(repo.path(), &[("index.html", "<h1>v2</h1>")], false);
    let (ok, err) = git(repo.path(), &["push", &remote(&member, "shop/web.git"), "main"]);
    assert!(ok, "{err}");
    let listed = deployments(&mut owner, &service).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["commit"], second.as_str());
    workers.shutdown().await;
}

/// Finding 12 of the tenant boundary: pushes had no size limit. A push past
/// `RAILYARD_PUSH_LIMIT_BYTES` is refused, moves no ref and deploys nothing; a clone of
/// what was pushed before still works (streamed from git as it writes it).
#[tokio::test(flavor = "multi_thread")]
async fn a_push_past_the_limit_is_refused() {
    let app = TestApp::with(&[("RAILYARD_PUSH_LIMIT_BYTES", "262144")], axum::Router::new()).await;
    let addr = app.serve().await;
    let mut fixture = Fixture::new(&app).await;
    let service = fixture.push_service("web").await.to_string();
    let ws = fixture.workspace.to_string();
    let mut owner = fixture.client;
    let member = token(&mut owner, &ws, "member").await;
    let remote = format!("http://git:{member}@{addr}/git/shop/web.git");

    let (repo, _) = git_repo(&[("index.html", "<h1>small</h1>")]);
    let (ok, err) = git(repo.path(), &["push", &remote, "main"]);
    assert!(ok, "{err}");
    assert_eq!(deployments(&mut owner, &service).await.len(), 1);

    // 1 MiB that does not compress: past the 256 KiB limit.
    let mut noise = Vec::with_capacity(1024 * 1024);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while noise.len() < 1024 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(repo.path().join("big.bin"), &noise).unwrap();
    assert!(git(repo.path(), &["add", "big.bin"]).0);
    assert!(
        git(
            repo.path(),
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e",
                "commit",
                "-qm",
                "big"
            ]
        )
        .0
    );
    let (ok, err) = git(repo.path(), &["push", &remote, "main"]);
    assert!(!ok, "a push past the limit went through");
    assert!(err.contains("413"), "{err}");
    assert_eq!(
        deployments(&mut owner, &service).await.len(),
        1,
        "nothing deployed"
    );

    // What is stored is the first push, and it clones.
    let clone = tempfile::tempdir().unwrap();
    let (ok, err) = git(clone.path(), &["clone", "-q", &remote, "copy"]);
    assert!(ok, "{err}");
    assert!(clone.path().join("copy/index.html").is_file());
    assert!(!clone.path().join("copy/big.bin").exists());
}

async fn deployments_in(owner: &mut Client<'_>, service: &str, environment: &str) -> Vec<Value> {
    owner
        .get(&format!(
            "/api/v1/services/{service}/deployments?environment={environment}"
        ))
        .await
        .json()["deployments"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_deploys_exactly_the_environments_tracking_its_branch() {
    let app = TestApp::new().await;
    let addr = app.serve().await;
    let mut fixture = Fixture::new(&app).await;
    let service = fixture.push_service("web").await.to_string();
    let staging = fixture.environment("staging").await.to_string();
    let dev = fixture.environment("dev").await.to_string();
    let production = fixture.production.to_string();
    let ws = fixture.workspace.to_string();
    let mut owner = fixture.client;
    // Staging tracks `develop`; dev tracks nothing; production the service's `main`.
    let res = owner
        .call(
            "PUT",
            &format!("/api/v1/services/{service}/settings?environment={staging}"),
            Some(json!({"branch": "develop"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["settings"]["branch"], "develop");
    let res = owner
        .call(
            "PUT",
            &format!("/api/v1/services/{service}/settings?environment={staging}"),
            Some(json!({"branch": "--upload-pack=x"})),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text());
    let member = token(&mut owner, &ws, "member").await;
    let remote = format!("http://git:{member}@{addr}/git/shop/web.git");
    let (repo, first) = git_repo(&[("index.html", "<h1>one</h1>")]);

    // A push to develop deploys staging only.
    let (ok, err) = git(repo.path(), &["push", &remote, "main:develop"]);
    assert!(ok, "{err}");
    let in_staging = deployments_in(&mut owner, &service, &staging).await;
    assert_eq!(in_staging.len(), 1, "{in_staging:?}");
    assert_eq!(in_staging[0]["branch"], "develop");
    assert_eq!(in_staging[0]["commit"], first.as_str());
    assert!(deployments_in(&mut owner, &service, &production).await.is_empty());
    assert!(deployments_in(&mut owner, &service, &dev).await.is_empty());

    // A push to main deploys production only.
    let second = git_commit(repo.path(), &[("index.html", "<h1>two</h1>")], false);
    let (ok, err) = git(repo.path(), &["push", &remote, "main"]);
    assert!(ok, "{err}");
    let in_production = deployments_in(&mut owner, &service, &production).await;
    assert_eq!(in_production.len(), 1, "{in_production:?}");
    assert_eq!(in_production[0]["commit"], second.as_str());
    assert_eq!(deployments_in(&mut owner, &service, &staging).await.len(), 1);
    assert!(deployments_in(&mut owner, &service, &dev).await.is_empty());

    // A manual deploy in staging builds the branch staging tracks.
    let res = owner
        .post(
            &format!("/api/v1/services/{service}/deployments"),
            json!({"environment_id": staging}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["deployment"]["branch"], "develop");
}
