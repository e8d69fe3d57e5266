//! Environments as a workflow: clone production into staging (settings and variables, the
//! sealed ones re-encrypted, resolving the same in the app), deploy a new commit to
//! staging, read the matrix (staging one commit ahead, the variable names that differ),
//! and promote staging's build to production: no build step, production's own variables,
//! a plan made before a change in between refused with 409.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::{body::Body, http::Request};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use http_body_util::BodyExt as _;
use railyard_server::{
    edge::{self, Edge},
    schema::{deployments, variables},
    testing::{Fixture, TestApp, git_commit, git_repo, typed},
};
use railyard_shared::{
    DeploymentState,
    pipeline::{MatrixResponse, PromotionResponse},
    projects::{EnvironmentKind, EnvironmentResponse, ProjectResponse},
};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use uuid::Uuid;

/// Says which commit it runs, with which variables (the sealed one as a digest).
const SERVER: &str = r#"const crypto = require('crypto');
const sha = (v) => crypto.createHash('sha256').update(v || '').digest('hex');
require('http').createServer((q, s) => console.log('request', q.url) || s.end(JSON.stringify({
  version: require('fs').readFileSync('version.txt', 'utf8').trim(),
  greeting: process.env.GREETING || null, token: sha(process.env.TOKEN),
  region: process.env.REGION || null, env: process.env.RAILYARD_ENVIRONMENT,
  shared: process.env.SHARED_URL || null,
  deployment: process.env.RAILYARD_DEPLOYMENT_ID,
}))).listen(process.env.PORT, '127.0.0.1');
"#;

const TOML: &str = "build = \"echo BUILD-STEP-RAN\"\nstart = \"node server.js\"\n";

fn sha(value: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, value.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn get(edge: &Edge, host: &str) -> (u16, String) {
    let request = Request::get("/")
        .header("host", host)
        .body(Body::empty())
        .unwrap();
    let response = edge::router(edge.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// What the app at `host` says once deployment `deployment` answers there.
async fn app_says(edge: &Edge, host: &str, deployment: Uuid) -> Value {
    let mut last = (0, String::new());
    for _ in 0..200 {
        last = get(edge, host).await;
        if last.0 == 200 {
            let said: Value = serde_json::from_str(&last.1).unwrap();
            if said["deployment"] == deployment.to_string() {
                return said;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{host} never answered from {deployment}; last: {last:?}");
}

async fn set_variable(fx: &mut Fixture<'_>, service: Uuid, env: Uuid, name: &str, value: &str, sealed: bool) {
    let res = fx
        .client
        .post(
            &format!("/api/v1/services/{service}/variables?environment={env}"),
            json!({"name": name, "value": value, "sealed": sealed}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
}

fn cell(matrix: &Value, service: Uuid, env: Uuid) -> &Value {
    matrix["matrix"]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["service_id"] == service.to_string() && c["environment_id"] == env.to_string())
        .unwrap_or_else(|| panic!("no cell for {service} in {env}: {matrix}"))
}

fn names(changes: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn production_deployments(app: &TestApp, service: Uuid, env: Uuid) -> i64 {
    let mut conn = app.state.db.get().await.unwrap();
    deployments::table
        .filter(deployments::service_id.eq(service))
        .filter(deployments::environment_id.eq(env))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn staging_is_cloned_deployed_compared_and_promoted_to_production() {
    let app = TestApp::new().await;
    let (_workers, edge) = app.start_runtime().await;
    let mut fx = Fixture::new(&app).await;
    let (repo, _) = git_repo(&[
        ("railyard.toml", TOML),
        ("server.js", SERVER),
        ("version.txt", "v1"),
    ]);
    let web = fx.git_service("web", repo.path()).await;
    let production = fx.production;
    set_variable(
        &mut fx,
        web,
        production,
        "GREETING",
        "hello from production",
        false,
    )
    .await;
    set_variable(&mut fx, web, production, "TOKEN", "sk_live_4f9d2e", true).await;
    let first = fx.deploy_live(web, production).await.deployment.id.uuid();
    let said = app_says(&edge, "web-production-shop.localhost", first).await;
    assert_eq!(said["version"], "v1");

    // Clone production into staging: settings and variables, sealed one included.
    let res = fx
        .client
        .post(
            &format!("/api/v1/projects/{}/environments", fx.project),
            json!({"name": "staging", "clone_from": production}),
        )
        .await;
    let staging = typed::<EnvironmentResponse>(&res).environment;
    assert_eq!(staging.kind, EnvironmentKind::Staging);
    let project: ProjectResponse = typed(&fx.client.get(&format!("/api/v1/projects/{}", fx.project)).await);
    let order: Vec<&str> = project
        .project
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        order,
        ["staging", "production"],
        "staging comes before production"
    );
    let staging = staging.id.uuid();
    let listed = fx
        .client
        .get(&format!("/api/v1/services/{web}/variables?environment={staging}"))
        .await
        .json();
    let token = listed["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "TOKEN")
        .unwrap()
        .clone();
    assert_eq!(token["sealed"], true);
    assert_eq!(
        token["value"],
        Value::Null,
        "a cloned sealed value is never shown"
    );
    assert_eq!(
        fx.client
            .get(&format!(
                "/api/v1/services/{web}/deployments?environment={staging}"
            ))
            .await
            .json()["deployments"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "a clone copies no deployments"
    );

    // The clone resolves the same in the app, at staging's own address.
    let in_staging = fx.deploy_live(web, staging).await.deployment.id.uuid();
    let said = app_says(&edge, "web-staging-shop.localhost", in_staging).await;
    assert_eq!(said["greeting"], "hello from production");
    assert_eq!(said["token"], sha("sk_live_4f9d2e"));
    assert_eq!(said["env"], "staging");

    // A new commit and its own variables in staging.
    let second = git_commit(repo.path(), &[("version.txt", "v2")], false);
    let res = fx
        .client
        .call(
            "PATCH",
            &format!("/api/v1/services/{web}/variables/GREETING?environment={staging}"),
            Some(json!({"value": "hello from staging"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    set_variable(&mut fx, web, staging, "FEATURE_FLAG", "on", false).await;
    let built = fx.deploy_live(web, staging).await.deployment.id.uuid();
    assert_eq!(
        app_says(&edge, "web-staging-shop.localhost", built).await["version"],
        "v2"
    );

    // The matrix: staging one commit ahead of production, the names that differ.
    let matrix = fx
        .client
        .get(&format!(
            "/api/v1/projects/{}/matrix?compare={production}",
            fx.project
        ))
        .await;
    let matrix = typed::<MatrixResponse>(&matrix);
    let matrix = serde_json::to_value(&matrix).unwrap();
    let ahead = cell(&matrix, web, staging);
    assert_eq!(ahead["commit"]["sha"], second);
    assert_eq!(ahead["commit"]["message"], "change");
    assert_eq!(ahead["commit"]["author"], "Test");
    assert_eq!(ahead["state"], "running");
    assert_eq!(ahead["health"], "healthy");
    assert_eq!(ahead["deployment_id"], built.to_string());
    assert_eq!(ahead["drift"]["commits_ahead"], 1, "{ahead}");
    assert_eq!(ahead["drift"]["commits_behind"], 0);
    assert_eq!(
        names(&ahead["drift"]["variables"]),
        [
            ("FEATURE_FLAG".into(), "added".into()),
            ("GREETING".into(), "changed".into())
        ]
    );
    assert!(
        !matrix.to_string().contains("hello from"),
        "the matrix shows no values"
    );
    assert_eq!(
        cell(&matrix, web, production)["drift"],
        Value::Null,
        "the compared column itself"
    );
    // By default each column compares with the one before it: production is one behind.
    let default = fx
        .client
        .get(&format!("/api/v1/projects/{}/matrix", fx.project))
        .await
        .json();
    assert_eq!(cell(&default, web, production)["drift"]["commits_behind"], 1);
    assert_eq!(
        cell(&default, web, staging)["drift"],
        Value::Null,
        "the first column"
    );

    // A plan made before a change in between is refused, and changes nothing.
    let promotions = format!("/api/v1/services/{web}/promotions");
    let ask = json!({"from_environment_id": staging, "to_environment_id": production, "dry_run": true});
    let stale = typed::<PromotionResponse>(&fx.client.post(&promotions, ask.clone()).await).promotion;
    assert_eq!(stale.release_id.uuid(), built);
    assert_eq!(stale.commit_range.to.as_deref(), Some(second.as_str()));
    let brought = stale.commit_range.commits.clone().unwrap();
    assert_eq!(brought.len(), 1);
    assert_eq!(brought[0].sha, second);
    set_variable(&mut fx, web, production, "REGION", "eu-west", false).await;
    let before = production_deployments(&app, web, production).await;
    let refused = fx
        .client
        .post(
            &promotions,
            json!({"from_environment_id": staging, "to_environment_id": production,
                   "dry_run": false, "plan_id": stale.plan_id}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "conflict");
    assert!(refused.text().contains("stale"), "{}", refused.text());
    assert_eq!(production_deployments(&app, web, production).await, before);

    // A fresh plan applies: the same build, production's own variables, no build step.
    let plan = typed::<PromotionResponse>(&fx.client.post(&promotions, ask).await).promotion;
    assert_ne!(plan.plan_id, stale.plan_id);
    let names_in_plan: Vec<(String, String)> = plan
        .variables
        .iter()
        .map(|v| (v.name.clone(), v.change.clone()))
        .collect();
    assert!(
        names_in_plan.contains(&("REGION".into(), "removed".into())),
        "{names_in_plan:?}"
    );
    assert!(
        names_in_plan.contains(&("FEATURE_FLAG".into(), "added".into())),
        "{names_in_plan:?}"
    );
    let applied = fx
        .client
        .post(
            &promotions,
            json!({"from_environment_id": staging, "to_environment_id": production,
                   "dry_run": false, "plan_id": plan.plan_id}),
        )
        .await;
    assert_eq!(applied.status, 201, "{}", applied.text());
    let promoted = typed::<PromotionResponse>(&applied)
        .promotion
        .deployment_id
        .unwrap()
        .uuid();
    let done = fx
        .wait_for(promoted, &[DeploymentState::Active, DeploymentState::Failed])
        .await;
    let log = fx.log(promoted).await;
    assert_eq!(done.deployment.state, DeploymentState::Active, "{log}");
    assert_eq!(done.deployment.source, "promotion");
    assert_eq!(done.deployment.promoted_from.map(|d| d.uuid()), Some(built));
    assert_eq!(
        done.deployment.promoted_from_environment.as_deref(),
        Some("staging")
    );
    assert_eq!(done.deployment.commit.as_deref(), Some(second.as_str()));
    assert!(
        done.history.iter().all(|t| t.to != "building"),
        "a promotion does not build: {:?}",
        done.history
    );
    assert!(!log.contains("BUILD-STEP-RAN"), "no build step ran:\n{log}");
    assert!(log.contains("no fetch, no build"), "{log}");
    let said = app_says(&edge, "web-production-shop.localhost", promoted).await;
    assert_eq!(said["version"], "v2", "production serves the new commit");
    assert_eq!(
        said["greeting"], "hello from production",
        "with its own variables"
    );
    assert_eq!(said["region"], "eu-west");
    assert_eq!(said["token"], sha("sk_live_4f9d2e"));
    assert_eq!(said["env"], "production");

    // Promoting again has nothing to do; the audit log has the promotion.
    let again = fx
        .client
        .post(
            &promotions,
            json!({"from_environment_id": staging, "to_environment_id": production}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text());
    let audit = fx
        .client
        .get(&format!("/api/v1/workspaces/{}/audit", fx.workspace))
        .await
        .text();
    assert!(audit.contains("promotion.apply"), "{audit}");
    let matrix = fx
        .client
        .get(&format!("/api/v1/projects/{}/matrix", fx.project))
        .await
        .json();
    assert_eq!(
        cell(&matrix, web, production)["release_id"],
        cell(&matrix, web, staging)["release_id"],
        "both run staging's build"
    );
    assert_eq!(cell(&matrix, web, production)["drift"]["commits_behind"], 0);
}

#[tokio::test]
async fn bad_environment_and_promotion_input_is_refused_and_nothing_is_half_made() {
    let app = TestApp::new().await;
    let mut fx = Fixture::new(&app).await;
    let (repo, _) = git_repo(&[
        ("railyard.toml", TOML),
        ("server.js", SERVER),
        ("version.txt", "v1"),
    ]);
    let web = fx.git_service("web", repo.path()).await;
    let production = fx.production;
    set_variable(&mut fx, web, production, "TOKEN", "sealed-value", true).await;
    let staging = fx.environment("staging").await;
    let environments = format!("/api/v1/projects/{}/environments", fx.project);

    // Cloning into a taken name: 409, and no variable was copied anywhere.
    let count = || async {
        let mut conn = app.state.db.get().await.unwrap();
        variables::table
            .count()
            .get_result::<i64>(&mut conn)
            .await
            .unwrap()
    };
    let before = count().await;
    let res = fx
        .client
        .post(
            &environments,
            json!({"name": "staging", "clone_from": production}),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(count().await, before);
    let res = fx
        .client
        .post(&environments, json!({"name": "qa", "clone_from": Uuid::new_v4()}))
        .await;
    assert_eq!(res.status, 404, "{}", res.text());
    let res = fx
        .client
        .post(&environments, json!({"name": "prod2", "kind": "production"}))
        .await;
    assert_eq!(res.status, 409, "{}", res.text());
    let res = fx
        .client
        .post(&environments, json!({"name": "x", "kind": "nonsense"}))
        .await;
    assert_eq!(res.status, 422, "{}", res.text());

    // Production cannot be deleted nor lose its kind; a rename takes a free name.
    let res = fx
        .client
        .call("DELETE", &format!("/api/v1/environments/{production}"), None)
        .await;
    assert_eq!(res.status, 409, "{}", res.text());
    let res = fx
        .client
        .call(
            "PATCH",
            &format!("/api/v1/environments/{production}"),
            Some(json!({"kind": "staging"})),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text());
    let res = fx
        .client
        .call(
            "PATCH",
            &format!("/api/v1/environments/{staging}"),
            Some(json!({"name": "production"})),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text());
    let res = fx
        .client
        .call(
            "PATCH",
            &format!("/api/v1/environments/{staging}"),
            Some(json!({"name": "qa", "position": 5})),
        )
        .await;
    let renamed = typed::<EnvironmentResponse>(&res).environment;
    assert_eq!((renamed.name.as_str(), renamed.position), ("qa", 1), "moved last");

    // Promotions: unknown and foreign environments 404, the same one 422, nothing active 409.
    let promotions = format!("/api/v1/services/{web}/promotions");
    // Another project's environment (of a workspace of the same user).
    let elsewhere = railyard_server::testing::new_workspace(&mut fx.client, "other").await;
    let foreign = railyard_server::testing::new_project(&mut fx.client, elsewhere, "elsewhere")
        .await
        .environments[0]
        .id
        .uuid();
    for (from, to, status) in [
        (Uuid::new_v4(), production, 404),
        (staging, foreign, 404),
        (production, production, 422),
        (staging, production, 409),
    ] {
        let res = fx
            .client
            .post(
                &promotions,
                json!({"from_environment_id": from, "to_environment_id": to}),
            )
            .await;
        assert_eq!(res.status, status, "{from} → {to}: {}", res.text());
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let res = fx
        .client
        .post(
            &promotions,
            json!({"from_environment_id": staging, "to_environment_id": production, "dry_run": false}),
        )
        .await;
    assert_eq!(res.status, 422, "applying needs a plan id: {}", res.text());
    let res = fx
        .client
        .post(
            &format!("/api/v1/projects/{}/promotions", fx.project),
            json!({"from_environment_id": staging, "to_environment_id": production}),
        )
        .await;
    assert_eq!(res.status, 409, "nothing to promote: {}", res.text());
    let res = fx
        .client
        .get(&format!(
            "/api/v1/projects/{}/matrix?compare={foreign}",
            fx.project
        ))
        .await;
    assert_eq!(res.status, 404, "{}", res.text());
}

/// Polls `GET path` until `check` holds on its JSON (up to 20 s).
async fn until(fx: &mut Fixture<'_>, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        last = fx.client.get(path).await.json();
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never got there; last: {last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_environment_scoped_feature_works_in_staging() {
    let app = TestApp::new().await;
    let (_workers, edge) = app.start_runtime().await;
    let mut fx = Fixture::new(&app).await;
    let (repo, _) = git_repo(&[
        ("railyard.toml", TOML),
        ("server.js", SERVER),
        ("version.txt", "v1"),
    ]);
    let web = fx.git_service("web", repo.path()).await;
    let staging = fx.environment("staging").await;
    let host = "web-staging-shop.localhost";

    // Service and shared variables, and settings, of staging.
    set_variable(&mut fx, web, staging, "GREETING", "hi staging", false).await;
    let res = fx
        .client
        .post(
            &format!("/api/v1/environments/{staging}/shared-variables"),
            json!({"name": "DATABASE", "value": "postgres://staging-db"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    set_variable(
        &mut fx,
        web,
        staging,
        "SHARED_URL",
        "${{ shared.DATABASE }}",
        false,
    )
    .await;
    let res = fx
        .client
        .call(
            "PUT",
            &format!("/api/v1/services/{web}/settings?environment={staging}"),
            Some(json!({"health_check_path": "/"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());

    // Deploy: at staging's own address, with its variables; production untouched.
    let first = fx.deploy_live(web, staging).await;
    assert_eq!(first.plan.as_ref().unwrap().health_check.as_deref(), Some("/"));
    let first = first.deployment.id.uuid();
    let said = app_says(&edge, host, first).await;
    assert_eq!(
        (
            said["greeting"].as_str(),
            said["shared"].as_str(),
            said["env"].as_str()
        ),
        (Some("hi staging"), Some("postgres://staging-db"), Some("staging"))
    );
    assert_eq!(
        get(&edge, "web-production-shop.localhost").await.0,
        503,
        "nothing runs in production"
    );
    let status = format!("/api/v1/services/{web}/status?environment={staging}");
    let running = until(&mut fx, &status, |s| s["status"]["state"] == "running").await;
    assert_eq!(
        running["status"]["url"].as_str().unwrap().split(':').nth(1),
        Some("//web-staging-shop.localhost")
    );

    // Its runtime log.
    let logs = format!("/api/v1/services/{web}/logs?environment={staging}&format=text");
    let text = fx.client.get(&logs).await.text();
    assert!(text.contains("request /"), "{text}");

    // Stop, start, restart: each an event in the runtime log; a stopped service has no pid.
    for (action, state) in [("stop", "stopped"), ("start", "running"), ("restart", "running")] {
        let res = fx
            .client
            .post(
                &format!("/api/v1/services/{web}/{action}?environment={staging}"),
                json!({}),
            )
            .await;
        assert_eq!(res.status, 202, "{action}: {}", res.text());
        let word = format!("{}{} done.", action[..1].to_uppercase(), &action[1..]);
        for _ in 0..400 {
            if fx.client.get(&logs).await.text().contains(&word) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            fx.client.get(&logs).await.text().contains(&word),
            "{action}: no event {word:?}"
        );
        let now = until(&mut fx, &status, |s| s["status"]["state"] == state).await;
        if state == "stopped" {
            assert_eq!(now["status"]["pid"], Value::Null, "no stale pid: {now}");
            assert_eq!(get(&edge, host).await.0, 503);
        } else {
            assert!(now["status"]["pid"].as_i64().is_some(), "{now}");
        }
    }
    assert_eq!(get(&edge, host).await.0, 200);

    // A second commit, then a rollback to the first: in staging.
    git_commit(repo.path(), &[("version.txt", "v2")], false);
    let second = fx.deploy_live(web, staging).await.deployment.id.uuid();
    assert_eq!(app_says(&edge, host, second).await["version"], "v2");
    let res = fx
        .client
        .post(&format!("/api/v1/deployments/{first}/rollback"), json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let back = res.json()["deployment"]["id"].as_str().unwrap().parse().unwrap();
    fx.wait_for(back, &[DeploymentState::Active]).await;
    // A rollback runs with the variables the first deployment ran with (its id among them).
    assert_eq!(app_says(&edge, host, first).await["version"], "v1");

    // Deleting staging stops its app; the router no longer knows the address.
    let res = fx
        .client
        .call("DELETE", &format!("/api/v1/environments/{staging}"), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    let mut gone = 0;
    for _ in 0..400 {
        gone = get(&edge, host).await.0;
        if gone == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gone, 404);
    let res = fx.client.get(&status).await;
    assert_eq!(res.status, 404, "{}", res.text());
}

#[tokio::test]
async fn a_new_repository_service_deploys_to_production_at_once() {
    let app = TestApp::new().await;
    let mut fx = Fixture::new(&app).await;
    let (repo, _) = git_repo(&[("index.html", "hi")]);
    let res = fx
        .client
        .post(
            &format!("/api/v1/projects/{}/services", fx.project),
            json!({"name": "site", "source": {"git": {"url": format!("file://{}", repo.path().display()), "branch": "main"}}}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    let deployment: Uuid = body["deployment_id"]
        .as_str()
        .expect("a deployment started")
        .parse()
        .unwrap();
    let detail = fx.deployment(deployment).await.deployment;
    assert_eq!(detail.environment_id.uuid(), fx.production);
    assert_eq!(detail.branch.as_deref(), Some("main"));
    // A pushed service has nothing to deploy yet.
    let res = fx
        .client
        .post(
            &format!("/api/v1/projects/{}/services", fx.project),
            json!({"name": "pushed", "source": {"push": {"branch": "main"}}}),
        )
        .await;
    assert_eq!(res.status, 201);
    assert_eq!(res.json()["deployment_id"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_promotion_moves_every_service_that_differs_in_reference_order() {
    let app = TestApp::new().await;
    let (_workers, edge) = app.start_runtime().await;
    let mut fx = Fixture::new(&app).await;
    let (repo, _) = git_repo(&[
        ("railyard.toml", TOML),
        ("server.js", SERVER),
        ("version.txt", "v1"),
    ]);
    // `alpha` refers to `zeta` (so zeta goes first, though alpha sorts first by name).
    let alpha = fx.git_service("alpha", repo.path()).await;
    let zeta = fx.git_service("zeta", repo.path()).await;
    let production = fx.production;
    set_variable(
        &mut fx,
        alpha,
        production,
        "GREETING",
        "${{ zeta.RAILYARD_SERVICE_NAME }}",
        false,
    )
    .await;
    for service in [alpha, zeta] {
        fx.deploy_live(service, production).await;
    }
    let res = fx
        .client
        .post(
            &format!("/api/v1/projects/{}/environments", fx.project),
            json!({"name": "staging", "clone_from": production}),
        )
        .await;
    let staging = typed::<EnvironmentResponse>(&res).environment.id.uuid();
    // Staging runs a new commit with a setting of its own.
    git_commit(repo.path(), &[("version.txt", "v2")], false);
    let res = fx
        .client
        .call(
            "PUT",
            &format!("/api/v1/services/{zeta}/settings?environment={staging}"),
            Some(json!({"restart_policy": "always"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    for service in [alpha, zeta] {
        fx.deploy_live(service, staging).await;
    }
    let matrix = fx
        .client
        .get(&format!("/api/v1/projects/{}/matrix", fx.project))
        .await
        .json();
    let drift = &cell(&matrix, zeta, production)["drift"];
    assert_eq!(drift["against"], staging.to_string());
    assert_eq!(drift["settings"][0]["name"], "restart_policy", "{drift}");
    assert_eq!(drift["settings"][0]["from"], "always");
    assert_eq!(drift["settings"][0]["to"], "on_failure");

    let promotions = format!("/api/v1/projects/{}/promotions", fx.project);
    let ask = json!({"from_environment_id": staging, "to_environment_id": production});
    let plan = fx.client.post(&promotions, ask.clone()).await;
    assert_eq!(plan.status, 200, "{}", plan.text());
    let plan = plan.json()["promotion"].clone();
    let order: Vec<&str> = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["service_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [zeta.to_string(), alpha.to_string()],
        "zeta first: alpha refers to it"
    );

    // A viewer's token may read the plan but not apply it.
    let viewer = fx
        .client
        .post(
            "/api/v1/tokens",
            json!({"workspace_id": fx.workspace, "name": "viewer", "role": "viewer"}),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let apply = json!({"from_environment_id": staging, "to_environment_id": production,
                       "dry_run": false, "plan_id": plan["plan_id"]});
    let request = Request::post(&promotions)
        .header("authorization", format!("Bearer {viewer}"))
        .header("content-type", "application/json")
        .body(Body::from(apply.to_string()))
        .unwrap();
    assert_eq!(app.send(request).await.status, 403);

    let applied = fx.client.post(&promotions, apply).await;
    assert_eq!(applied.status, 201, "{}", applied.text());
    for promoted in applied.json()["promotion"]["services"].as_array().unwrap() {
        let id: Uuid = promoted["deployment_id"].as_str().unwrap().parse().unwrap();
        let done = fx
            .wait_for(id, &[DeploymentState::Active, DeploymentState::Failed])
            .await;
        assert_eq!(
            done.deployment.state,
            DeploymentState::Active,
            "{}",
            fx.log(id).await
        );
        assert_eq!(
            done.deployment.promoted_from_environment.as_deref(),
            Some("staging")
        );
        let host = if promoted["service_id"] == zeta.to_string() {
            "zeta-production-shop.localhost"
        } else {
            "alpha-production-shop.localhost"
        };
        let said = app_says(&edge, host, id).await;
        assert_eq!(said["version"], "v2");
        if host.starts_with("alpha") {
            assert_eq!(said["greeting"], "zeta", "a reference resolves in production");
        }
    }
    // The same plan again is stale now.
    let again = fx
        .client
        .post(
            &promotions,
            json!({"from_environment_id": staging, "to_environment_id": production,
                   "dry_run": false, "plan_id": plan["plan_id"]}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text());
}
