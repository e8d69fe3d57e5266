//! The deploy pipeline end to end: real sample apps in local git repositories, built by
//! real job workers into release directories, followed through the API.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use railyard_server::testing::{
    Client, TestApp, git_commit, git_main, git_repo, new_project, new_service, new_workspace, typed,
};
use railyard_shared::projects::ProjectsResponse;
use serde_json::{Value, json};

struct Fixture {
    app: TestApp,
    data: tempfile::TempDir,
}

async fn fixture(vars: &[(&str, &str)]) -> Fixture {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_owned();
    let mut all = vec![("RAILYARD_DATA_DIR", dir.as_str())];
    all.extend_from_slice(vars);
    let app = TestApp::with(&all, axum::Router::new()).await;
    Fixture { app, data }
}

/// A project with a service deploying `url` (branch main); returns the service id.
async fn git_service(owner: &mut Client<'_>, url: &str) -> String {
    let workspace = new_workspace(owner, "acme").await;
    let project = new_project(owner, workspace, "shop").await;
    new_service(owner, project.id, "web", git_main(url))
        .await
        .to_string()
}

async fn deploy(owner: &mut Client<'_>, service: &str, body: Value) -> String {
    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), body)
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let deployment = &res.json()["deployment"];
    assert!(
        ["queued", "building"].contains(&deployment["state"].as_str().unwrap()),
        "{deployment}"
    );
    deployment["id"].as_str().unwrap().to_owned()
}

/// Polls the deployment until it leaves the in-flight states (or `until` matches).
async fn wait_for(owner: &mut Client<'_>, id: &str, until: &[&str]) -> Value {
    for _ in 0..600 {
        let res = owner.get(&format!("/api/v1/deployments/{id}")).await;
        assert_eq!(res.status, 200, "{}", res.text());
        let deployment = res.json()["deployment"].clone();
        if until.contains(&deployment["state"].as_str().unwrap()) {
            return deployment;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("deployment {id} never reached {until:?}");
}

async fn log_text(owner: &mut Client<'_>, id: &str) -> String {
    let res = owner.get(&format!("/api/v1/deployments/{id}/logs")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Deploys a repository of `files` and returns the deployment once built (or failed).
async fn build(fx: &Fixture, files: &[(&str, &str)]) -> (Value, String) {
    let mut owner = fx.app.admin().await;
    build_as(&mut owner, files).await
}

async fn build_as(owner: &mut Client<'_>, files: &[(&str, &str)]) -> (Value, String) {
    let (repo, _) = git_repo(files);
    let service = git_service(owner, &format!("file://{}", repo.path().display())).await;
    let id = deploy(owner, &service, json!({})).await;
    let deployment = wait_for(owner, &id, &["deploying", "failed", "cancelled"]).await;
    let log = log_text(owner, &id).await;
    (deployment, log)
}

/// What the runtime does once a release answers its health check (a later issue's part).
async fn activate(app: &TestApp, id: &str) {
    use railyard_server::models::deployment::machine::{State, transition};
    let mut conn = app.state.db.get().await.unwrap();
    transition(
        &mut conn,
        id.parse().unwrap(),
        State::Deploying,
        State::Active,
        "healthy",
    )
    .await
    .unwrap();
}

fn release(fx: &Fixture, deployment: &Value) -> std::path::PathBuf {
    fx.data
        .path()
        .join("releases")
        .join(deployment["id"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_app_is_built_with_npm() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    let (deployment, log) = build(
        &fx,
        &[
            ("package.json", r#"{"name":"shop","version":"1.0.0","scripts":{"start":"node server.js","build":"node build.js"}}"#),
            ("build.js", "require('fs').writeFileSync('built.txt', 'ok'); console.log('bundled 3 modules');"),
            ("server.js", "require('http').createServer((q, s) => s.end('hi')).listen(process.env.PORT);"),
        ],
    )
    .await;
    assert_eq!(deployment["state"], "deploying", "{log}");
    let plan = &deployment["plan"];
    assert_eq!(plan["provider"], "node");
    assert_eq!(
        plan["build"],
        json!([{"argv": ["npm", "install"]}, {"argv": ["npm", "run", "build"]}])
    );
    assert_eq!(plan["start"], json!({"argv": ["npm", "start"]}));
    assert!(
        log.contains("$ npm install") && log.contains("bundled 3 modules"),
        "{log}"
    );
    assert!(
        release(&fx, &deployment).join("built.txt").is_file(),
        "the build ran in the release"
    );
    assert!(deployment["commit"].as_str().unwrap().len() == 40);
    let history: Vec<&str> = deployment["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["queued", "building", "deploying"]);
    assert!(deployment["durations"]["build_ms"].as_i64().unwrap() > 0);
    assert_eq!(deployment["release_available"], true);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_app_gets_a_virtualenv() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    let (deployment, log) = build(
        &fx,
        &[
            ("requirements.txt", "# no dependencies\n"),
            ("app.py", "print('hello')\n"),
        ],
    )
    .await;
    assert_eq!(deployment["state"], "deploying", "{log}");
    assert_eq!(deployment["plan"]["provider"], "python");
    assert_eq!(
        deployment["plan"]["start"],
        json!({"argv": [".venv/bin/python", "app.py"]})
    );
    assert!(
        release(&fx, &deployment).join(".venv/bin/python").exists(),
        "{log}"
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_site_is_served_by_railyard() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    let (deployment, log) = build(&fx, &[("index.html", "<h1>shop</h1>")]).await;
    assert_eq!(deployment["state"], "deploying", "{log}");
    assert_eq!(deployment["plan"]["provider"], "static");
    assert_eq!(deployment["plan"]["start"], Value::Null);
    assert!(release(&fx, &deployment).join("index.html").is_file());
    // Served as it lies, so without its repository (the router serves no dot-path either).
    assert!(!release(&fx, &deployment).join(".git").exists());
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_link_out_of_its_tree_fails_the_build() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    let mut owner = fx.app.admin().await;
    let repo = tempfile::tempdir().unwrap();
    // A link inside the tree is fine; one to the master key, or to `/`, is not.
    std::os::unix::fs::symlink("index.html", repo.path().join("home.html")).unwrap();
    std::os::unix::fs::symlink(fx.data.path().join("master.key"), repo.path().join("key.txt")).unwrap();
    std::fs::create_dir(repo.path().join("assets")).unwrap();
    std::os::unix::fs::symlink("../../..", repo.path().join("assets/root")).unwrap();
    git_commit(repo.path(), &[("index.html", "<h1>hi</h1>")], true);
    let service = git_service(&mut owner, &format!("file://{}", repo.path().display())).await;
    let id = deploy(&mut owner, &service, json!({})).await;
    let deployment = wait_for(&mut owner, &id, &["deploying", "failed", "cancelled"]).await;
    assert_eq!(deployment["state"], "failed", "{deployment}");
    let reason = deployment["reason"].as_str().unwrap();
    assert!(reason.contains("links out of the repository"), "{reason}");
    assert!(
        reason.contains("key.txt") || reason.contains("assets/root"),
        "{reason}"
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_procfile_names_the_web_process() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    let (deployment, log) = build(&fx, &[("Procfile", "web: python3 -m http.server $PORT\n")]).await;
    assert_eq!(deployment["state"], "deploying", "{log}");
    assert_eq!(deployment["plan"]["provider"], "procfile");
    assert_eq!(
        deployment["plan"]["start"],
        json!({"shell": "python3 -m http.server $PORT"})
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn railyard_toml_decides_build_start_and_health_check() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    let (deployment, log) = build(
        &fx,
        &[
            (
                "railyard.toml",
                "build = \"echo compiling && echo done > out.txt\"\nstart = \"./run.sh\"\nhealth_check = \"/health\"\n",
            ),
            ("run.sh", "#!/bin/sh\nexec sleep 1000\n"),
        ],
    )
    .await;
    assert_eq!(deployment["state"], "deploying", "{log}");
    assert_eq!(deployment["plan"]["provider"], "railyard.toml");
    assert_eq!(
        deployment["plan"]["build"],
        json!([{"shell": "echo compiling && echo done > out.txt"}])
    );
    assert_eq!(deployment["plan"]["start"], json!({"shell": "./run.sh"}));
    assert_eq!(deployment["plan"]["health_check"], "/health");
    assert!(log.contains("compiling"), "{log}");
    assert!(release(&fx, &deployment).join("out.txt").is_file());
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_build_ends_failed_with_its_last_lines() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    let mut owner = fx.app.admin().await;
    let (deployment, log) = build_as(
        &mut owner,
        &[(
            "railyard.toml",
            "build = \"echo step one; echo 'error: boom' >&2; exit 3\"\nstart = \"true\"\n",
        )],
    )
    .await;
    assert_eq!(deployment["state"], "failed", "{log}");
    let reason = deployment["reason"].as_str().unwrap();
    assert!(reason.contains("exited with code 3"), "{reason}");
    let tail: Vec<&str> = deployment["log_tail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        tail.contains(&"step one") && tail.contains(&"error: boom"),
        "{tail:?}"
    );
    assert!(
        !release(&fx, &deployment).exists(),
        "a failed build leaves no release"
    );
    assert_eq!(deployment["release_available"], false);

    // The log searched: substring, regular expression, stream, time range, text download.
    let logs = format!("/api/v1/deployments/{}/logs", deployment["id"].as_str().unwrap());
    let texts = |res: &railyard_server::testing::TestResponse| -> Vec<String> {
        res.json()["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        texts(&owner.get(&format!("{logs}?q=STEP%20one&stream=stdout")).await),
        ["step one"]
    );
    let res = owner
        .get(&format!("{logs}?q=%5E(error%7Cstep)%3A%20b.o&regex=true"))
        .await;
    assert_eq!(texts(&res), ["error: boom"], "{}", res.text());
    let stderr = texts(&owner.get(&format!("{logs}?stream=stderr")).await);
    assert_eq!(stderr, ["error: boom"]);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339()
        .replace('+', "%2B");
    assert!(texts(&owner.get(&format!("{logs}?since={future}")).await).is_empty());
    let until = texts(
        &owner
            .get(&format!("{logs}?until={future}&q=boom&stream=stderr"))
            .await,
    );
    assert_eq!(until, ["error: boom"]);
    let text = owner.get(&format!("{logs}?format=text")).await;
    assert!(text.text().contains(" stderr error: boom\n"), "{}", text.text());
    for bad in [
        "q=(unclosed&regex=true",
        "q=(a)%5C1&regex=true",
        "q=(%3FP%3Cn%3Ea)&regex=true",
        "q=%5Cp%7BL%7D&regex=true",
        "environment=00000000-0000-0000-0000-000000000000",
        "format=xml",
    ] {
        let res = owner.get(&format!("{logs}?{bad}")).await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text());
    }
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn undetectable_code_and_missing_branches_fail_with_a_reason() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    let mut owner = fx.app.admin().await;
    let (deployment, _) = build_as(&mut owner, &[("README.md", "just words")]).await;
    assert_eq!(deployment["state"], "failed");
    assert!(
        deployment["reason"]
            .as_str()
            .unwrap()
            .contains("could not tell how to build")
    );

    let (repo, _) = git_repo(&[("index.html", "x")]);
    let service = owner_service(&mut owner, &repo).await;
    let id = deploy(&mut owner, &service, json!({"branch": "no-such-branch"})).await;
    let deployment = wait_for(&mut owner, &id, &["failed", "deploying"]).await;
    assert_eq!(deployment["state"], "failed");
    assert!(
        deployment["reason"].as_str().unwrap().contains("git failed"),
        "{deployment}"
    );
    let id = deploy(&mut owner, &service, json!({"commit": "0123456789abcdef"})).await;
    let deployment = wait_for(&mut owner, &id, &["failed", "deploying"]).await;
    assert_eq!(deployment["state"], "failed");
    assert!(
        deployment["reason"]
            .as_str()
            .unwrap()
            .contains("is not on branch main"),
        "{deployment}"
    );
    workers.shutdown().await;
}

async fn owner_service(owner: &mut Client<'_>, repo: &tempfile::TempDir) -> String {
    let workspace = owner.get("/api/v1/workspaces").await.json()["workspaces"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let projects = owner
        .get(&format!("/api/v1/projects?workspace_id={workspace}"))
        .await;
    let project = typed::<ProjectsResponse>(&projects).projects[0].id;
    let url = format!("file://{}", repo.path().display());
    new_service(owner, project, "other", git_main(url))
        .await
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_stops_a_running_build() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    let (repo, _) = git_repo(&[(
        "railyard.toml",
        "build = \"echo started; sleep 60\"\nstart = \"true\"\n",
    )]);
    let mut owner = fx.app.admin().await;
    let service = git_service(&mut owner, &format!("file://{}", repo.path().display())).await;
    let id = deploy(&mut owner, &service, json!({})).await;
    wait_for(&mut owner, &id, &["building"]).await;
    // Wait until the step prints, so the cancel hits a running process.
    for _ in 0..100 {
        if log_text(&mut owner, &id).await.contains("started") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = std::time::Instant::now();
    let res = owner
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["deployment"]["state"], "cancelled");
    // The build notices and cleans up well before the step would have ended.
    let dir = fx.data.path().join("releases").join(&id);
    for _ in 0..100 {
        if !dir.exists() && log_text(&mut owner, &id).await.contains("Build cancelled") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!dir.exists(), "the cancelled build's directory is removed");
    assert!(started.elapsed() < Duration::from_secs(10));
    let res = owner
        .post(&format!("/api/v1/deployments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(res.status, 409, "a finished deployment cannot be cancelled again");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redeploy_and_rollback_reuse_what_was_built() {
    let fx = fixture(&[("RAILYARD_RELEASES_KEEP", "2")]).await;
    let workers = fx.app.start_workers();
    let (repo, first_commit) = git_repo(&[(
        "railyard.toml",
        "build = \"echo building v1 && echo v1 > version.txt\"\nstart = \"true\"\n",
    )]);
    let mut owner = fx.app.admin().await;
    let service = git_service(&mut owner, &format!("file://{}", repo.path().display())).await;
    let first = deploy(&mut owner, &service, json!({})).await;
    let built = wait_for(&mut owner, &first, &["deploying", "failed"]).await;
    assert_eq!(built["state"], "deploying");
    assert_eq!(built["commit"], first_commit.as_str());
    activate(&fx.app, &first).await;

    let second_commit = git_commit(
        repo.path(),
        &[(
            "railyard.toml",
            "build = \"echo v2 > version.txt\"\nstart = \"true\"\n",
        )],
        false,
    );
    let second = deploy(&mut owner, &service, json!({})).await;
    let built = wait_for(&mut owner, &second, &["deploying", "failed"]).await;
    assert_eq!(built["commit"], second_commit.as_str());
    activate(&fx.app, &second).await;

    // Roll back to the first: a new deployment on the first release, no build step.
    let res = owner
        .post(&format!("/api/v1/deployments/{first}/rollback"), json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let rollback = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    let done = wait_for(&mut owner, &rollback, &["deploying", "failed"]).await;
    assert_eq!(done["state"], "deploying");
    assert_eq!(done["release_of"], first.as_str());
    assert_eq!(done["source"], "rollback");
    assert_eq!(done["commit"], first_commit.as_str());
    assert_eq!(
        done["plan"]["build"][0]["shell"],
        "echo building v1 && echo v1 > version.txt"
    );
    assert!(
        !log_text(&mut owner, &rollback).await.contains("$ "),
        "nothing was built"
    );
    let history: Vec<&str> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["queued", "deploying"]);
    activate(&fx.app, &rollback).await;

    // Redeploy the first commit: a fresh build of the same commit.
    let res = owner
        .post(&format!("/api/v1/deployments/{first}/redeploy"), json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let again = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    let done = wait_for(&mut owner, &again, &["deploying", "failed"]).await;
    assert_eq!(done["commit"], first_commit.as_str());
    assert!(log_text(&mut owner, &again).await.contains("building v1"));
    activate(&fx.app, &again).await;

    // One more build: only the newest two releases stay (RAILYARD_RELEASES_KEEP=2), the
    // active one among them; older ones are pruned and cannot be rolled back to.
    git_commit(repo.path(), &[("README.md", "v3")], false);
    let third = deploy(&mut owner, &service, json!({})).await;
    wait_for(&mut owner, &third, &["deploying", "failed"]).await;
    let mut kept: Vec<String> = std::fs::read_dir(fx.data.path().join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    let mut expected = vec![again.clone(), third.clone()];
    expected.sort();
    assert_eq!(kept, expected);
    for pruned in [&first, &second] {
        let res = owner
            .post(&format!("/api/v1/deployments/{pruned}/rollback"), json!({}))
            .await;
        assert_eq!(res.status, 409, "{}", res.text());
        let res = owner.get(&format!("/api/v1/deployments/{pruned}")).await;
        assert_eq!(res.json()["deployment"]["release_available"], false);
    }
    let res = owner.get(&format!("/api/v1/deployments/{again}")).await;
    assert_eq!(res.json()["deployment"]["release_available"], true);

    // The list pages newest first.
    let res = owner
        .get(&format!("/api/v1/services/{service}/deployments?limit=2"))
        .await;
    let page = res.json();
    let ids: Vec<&str> = page["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [third.as_str(), again.as_str()]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let res = owner
        .get(&format!(
            "/api/v1/services/{service}/deployments?limit=2&cursor={cursor}"
        ))
        .await;
    let ids: Vec<String> = res.json()["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [rollback.clone(), second.clone()]);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_settings_override_detection_per_environment() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    let (repo, _) = git_repo(&[("app/index.html", "<p>app</p>"), ("README.md", "monorepo")]);
    let mut owner = fx.app.admin().await;
    let service = git_service(&mut owner, &format!("file://{}", repo.path().display())).await;
    let settings = json!({"root_dir": "app", "build_command": "echo custom build > made.txt", "health_check_path": "/up", "restart_policy": "always", "port": 3000});
    let res = owner
        .call(
            "PUT",
            &format!("/api/v1/services/{service}/settings"),
            Some(settings),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["settings"]["restart_policy"], "always");
    for bad in [
        json!({"root_dir": "../x"}),
        json!({"restart_policy": "sometimes"}),
        json!({"port": 70000}),
        json!({"memory_limit_mb": 8}),
        json!({"health_check_path": "no-slash"}),
        json!({"build_command": ""}),
        json!({"build_cmd": "make"}),
    ] {
        let res = owner
            .call(
                "PUT",
                &format!("/api/v1/services/{service}/settings"),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(res.status, 422, "{bad}: {}", res.text());
    }
    let id = deploy(&mut owner, &service, json!({})).await;
    let done = wait_for(&mut owner, &id, &["deploying", "failed"]).await;
    assert_eq!(done["state"], "deploying", "{}", log_text(&mut owner, &id).await);
    assert_eq!(done["plan"]["root"], "app");
    assert_eq!(done["plan"]["health_check"], "/up");
    assert_eq!(
        done["plan"]["build"],
        json!([{"shell": "echo custom build > made.txt"}])
    );
    assert!(
        fx.data
            .path()
            .join("releases")
            .join(&id)
            .join("app/made.txt")
            .is_file()
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_see_none_of_railyards_own_environment() {
    let fx = fixture(&[]).await;
    let workers = fx.app.start_workers();
    // The worker runs in this test process, whose environment holds variables that must not
    // pass (cargo's and the test database's): the check below is not vacuous.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some() || std::env::var_os("CARGO").is_some());
    let (deployment, log) = build(
        &fx,
        &[(
            "railyard.toml",
            "build = \"env | sort; echo home=$HOME\"\nstart = \"true\"\n",
        )],
    )
    .await;
    assert_eq!(deployment["state"], "deploying", "{log}");
    assert!(log.contains("CI=true"), "{log}");
    // Railyard provides a few variables of its own (RAILYARD_ENVIRONMENT, ...); nothing
    // else of its configuration passes.
    let provided = railyard_shared::variables::PROVIDED;
    for line in log.lines().filter(|l| l.starts_with("RAILYARD_")) {
        let name = line.split('=').next().unwrap();
        assert!(provided.contains(&name), "{name} reached the build:\n{log}");
    }
    assert!(log.contains("RAILYARD_ENVIRONMENT=production"), "{log}");
    // The app's own executables come first on PATH; output is not buffered.
    let path = log.lines().find(|l| l.starts_with("PATH=")).unwrap_or_default();
    assert!(
        path.contains(".venv/bin:") && path.contains("node_modules/.bin:"),
        "{path}"
    );
    assert!(log.contains("PYTHONUNBUFFERED=1"), "{log}");
    // Toolchain homes (CARGO_HOME, RUSTUP_HOME) may pass; cargo's own variables may not.
    for leaked in [
        "DATABASE_URL=",
        "CARGO=",
        "CARGO_MANIFEST_DIR=",
        "CARGO_PKG_NAME=",
        "TEST_DATABASE_URL=",
        "REDIS_URL=",
    ] {
        assert!(
            !log.lines().any(|l| l.starts_with(leaked)),
            "{leaked} reached the build:\n{log}"
        );
    }
    assert!(
        log.contains(&format!("home={}", fx.data.path().join("cache").display())),
        "{log}"
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_requests_are_validated() {
    let fx = fixture(&[]).await;
    let (repo, _) = git_repo(&[("index.html", "x")]);
    let mut owner = fx.app.admin().await;
    let service = git_service(&mut owner, &format!("file://{}", repo.path().display())).await;
    for body in [
        json!({"commit": "$(id)"}),
        json!({"commit": "`id`"}),
        json!({"commit": "--upload-pack=touch /tmp/x"}),
        json!({"branch": "main;touch /tmp/x"}),
        json!({"branch": "-c core.sshCommand=x"}),
        json!({"branch": "a\nb"}),
        json!({"branch": "../etc"}),
        json!({"branch": "ma\u{0}in"}),
    ] {
        let res = owner
            .post(&format!("/api/v1/services/{service}/deployments"), body.clone())
            .await;
        assert_eq!(res.status, 422, "{body}: {}", res.text());
    }
    let res = owner
        .post(
            &format!("/api/v1/services/{service}/deployments"),
            json!({"environment_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(res.status, 404, "{}", res.text());
    let res = owner
        .get(&format!("/api/v1/services/{service}/deployments?limit=0"))
        .await;
    assert_eq!(res.status, 400);
    let res = owner
        .get(&format!("/api/v1/deployments/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(res.status, 404);
    // Nothing was queued by the refused requests.
    let res = owner
        .get(&format!("/api/v1/services/{service}/deployments"))
        .await;
    assert_eq!(res.json()["deployments"], json!([]));
}

/// Finding 12 of the tenant boundary: a build printed 100 MB in 5 s and all of it was
/// stored. A log keeps its limit of output, says where it stopped, and keeps Railyard's
/// own events after that.
#[tokio::test(flavor = "multi_thread")]
async fn a_build_log_keeps_its_limit_and_says_so() {
    let fx = fixture(&[("RAILYARD_BUILD_LOG_LIMIT_BYTES", "65536")]).await;
    let workers = fx.app.start_workers();
    let mut owner = fx.app.admin().await;
    let (deployment, _) = build_as(
        &mut owner,
        &[
            (
                "railyard.toml",
                "build = \"i=0; while [ $i -lt 20000 ]; do echo line $i of a chatty build; i=$((i+1)); done\"\nstart = \"./run.sh\"\n",
            ),
            ("run.sh", "#!/bin/sh\nexec sleep 1000\n"),
        ],
    )
    .await;
    let id = deployment["id"].as_str().unwrap();
    let res = owner
        .get(&format!("/api/v1/deployments/{id}/logs?limit=5000"))
        .await;
    let lines = res.json()["lines"].as_array().unwrap().clone();
    assert!(lines.len() < 5000, "one page holds the whole log");
    let log: String = lines
        .iter()
        .map(|l| format!("{}\n", l["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        deployment["state"], "deploying",
        "the build itself went on: {log}"
    );
    assert!(log.contains("line 0 of a chatty build"), "{log}");
    assert!(
        !log.contains("line 19999 of"),
        "the end of the output was not kept"
    );
    assert!(
        log.contains("The build printed more than 64 KiB of output: the rest of it is not kept"),
        "{log}"
    );
    let kept: usize = log.lines().filter(|l| l.starts_with("line ")).map(str::len).sum();
    assert!(kept <= 65536, "{kept} bytes of output kept");
    // What Railyard says after the cut is still there.
    let after = log.split("the rest of it is not kept").nth(1).unwrap();
    assert!(!after.trim().is_empty(), "{log}");
    workers.shutdown().await;
}
