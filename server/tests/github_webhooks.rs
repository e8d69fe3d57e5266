//! GitHub as the source of truth, against a local GitHub (`testing::fake_github`: GitHub's
//! REST shapes and git's smart HTTP through `git http-backend`): signed webhooks that
//! deploy what tracks the pushed branch, once per delivery; pull-request previews made,
//! redeployed and removed; the preview limit; the TTL; forks waiting for approval; a
//! private repository's token in no argv, log or response; statuses and the PR comment.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use axum::{Router, body::Body, http::Request};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_server::{
    edge::Edge,
    github::sign,
    models::github::Connections,
    schema::{deployments, environments, github_deliveries, github_repositories},
    testing::{Fixture, TestApp, TestResponse, fake_github::FakeGithub, typed},
};
use railyard_shared::{
    DeploymentState,
    deployments::ServiceStatusResponse,
    github::Deliveries,
    projects::{EnvironmentKind, ServiceResponse},
};
use serde_json::{Value, json};
use uuid::Uuid;

const SERVER: &str = r#"require('http').createServer((q, s) => s.end(JSON.stringify({
  version: require('fs').readFileSync('version.txt', 'utf8').trim(),
  deployment: process.env.RAILYARD_DEPLOYMENT_ID,
}))).listen(process.env.PORT, '127.0.0.1');
"#;
const TOML: &str = "start = \"node server.js\"\n";

struct World {
    app: TestApp,
    github: FakeGithub,
    token: String,
}

async fn world() -> World {
    let token = format!("ghp_{}", Uuid::new_v4().simple());
    let github = FakeGithub::start(&token).await;
    let app = TestApp::with(
        &[("GITHUB_URL", &github.url), ("GITHUB_API_URL", &github.url)],
        Router::new(),
    )
    .await;
    World { app, github, token }
}

impl World {
    /// Connects GitHub for the fixture's (admin) user, as the OAuth callback does.
    async fn connect(&self, fx: &mut Fixture<'_>) {
        let me = fx.client.get("/api/v1/me").await.json();
        let user: Uuid = me["user"]["id"].as_str().unwrap().parse().unwrap();
        let mut conn = self.app.state.db.get().await.unwrap();
        Connections::save(&mut conn, &self.app.state.keys, user, (42, "octo"), &self.token)
            .await
            .unwrap();
    }

    /// A service `name` of `repository` on `main` (not deployed at once); the hook's secret.
    async fn service(&self, fx: &mut Fixture<'_>, name: &str, repository: &str) -> (Uuid, String) {
        let res = fx
            .client
            .post(
                &format!("/api/v1/projects/{}/services", fx.project),
                json!({"name": name, "deploy": false,
                       "source": {"github": {"repository": repository, "branch": "main"}}}),
            )
            .await;
        let made: ServiceResponse = typed(&res);
        assert_eq!(made.warning, None, "the webhook is made");
        let secret = self
            .github
            .hook_secret(repository)
            .expect("a webhook with a secret");
        (made.service.id.uuid(), secret)
    }

    async fn deliver(&self, event: &str, delivery: &str, body: &[u8], secret: Option<&str>) -> TestResponse {
        let mut conn = self.app.state.db.get().await.unwrap();
        let hook: Option<i64> = github_repositories::table
            .select(github_repositories::hook_id)
            .first::<Option<i64>>(&mut conn)
            .await
            .ok()
            .flatten();
        let mut request = Request::post("/api/v1/github/webhook")
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery);
        if let Some(hook) = hook {
            request = request.header("x-github-hook-id", hook.to_string());
        }
        if let Some(secret) = secret {
            request = request.header("x-hub-signature-256", sign(secret.as_bytes(), body));
        }
        self.app
            .send(request.body(Body::from(body.to_vec())).unwrap())
            .await
    }

    async fn deployments_of(&self, service: Uuid) -> Vec<(Uuid, Uuid)> {
        let mut conn = self.app.state.db.get().await.unwrap();
        deployments::table
            .filter(deployments::service_id.eq(service))
            .order(deployments::created_at.asc())
            .select((deployments::id, deployments::environment_id))
            .load(&mut conn)
            .await
            .unwrap()
    }

    async fn deliveries(&self, fx: &mut Fixture<'_>) -> Deliveries {
        typed(
            &fx.client
                .get(&format!("/api/v1/projects/{}/github/deliveries", fx.project))
                .await,
        )
    }

    async fn preview(&self, project: Uuid, name: &str) -> Option<Uuid> {
        let mut conn = self.app.state.db.get().await.unwrap();
        environments::table
            .filter(environments::project_id.eq(project))
            .filter(environments::name.eq(name))
            .select(environments::id)
            .first(&mut conn)
            .await
            .ok()
    }
}

fn push(repository: &str, branch: &str, after: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": format!("refs/heads/{branch}"), "before": "0".repeat(40), "after": after,
        "repository": {"full_name": repository, "private": true},
        "head_commit": {"id": after, "message": message},
        "sender": {"login": "octo", "id": 42},
    }))
    .unwrap()
}

fn pull_request(
    action: &str,
    number: i32,
    head: (&str, &str, &str),
    association: &str,
    author: i64,
) -> Vec<u8> {
    let (repo, branch, sha) = head;
    serde_json::to_vec(&json!({
        "action": action, "number": number,
        "pull_request": {
            "number": number, "state": "open", "author_association": association,
            "user": {"login": "someone", "id": author},
            "head": {"ref": branch, "sha": sha, "repo": {"full_name": repo}},
            "base": {"ref": "main", "sha": "0".repeat(40), "repo": {"full_name": "octo/shop"}},
        },
        "repository": {"full_name": "octo/shop"},
        "sender": {"login": "someone", "id": author},
    }))
    .unwrap()
}

async fn get(edge: &Edge, host: &str) -> (u16, String) {
    let request = Request::get("/")
        .header("host", host)
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(railyard_server::edge::router(edge.clone()), request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Waits until `host` answers from `deployment`; returns the version it serves.
async fn serves(edge: &Edge, host: &str, deployment: Uuid) -> String {
    let mut last = (0, String::new());
    for _ in 0..400 {
        last = get(edge, host).await;
        if last.0 == 200 {
            let said: Value = serde_json::from_str(&last.1).unwrap();
            if said["deployment"] == deployment.to_string() {
                return said["version"].as_str().unwrap().to_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{host} never answered from {deployment}; last: {last:?}");
}

async fn live(fx: &mut Fixture<'_>, deployment: Uuid) {
    let done = fx
        .wait_within(
            deployment,
            &[
                DeploymentState::Active,
                DeploymentState::Failed,
                DeploymentState::Cancelled,
            ],
            120,
        )
        .await;
    assert_eq!(
        done.deployment.state,
        DeploymentState::Active,
        "{}",
        fx.log(deployment).await
    );
}

/// Waits until the fake GitHub got a call matching `check`.
async fn github_got(
    github: &FakeGithub,
    method: &str,
    prefix: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..400 {
        if let Some(call) = github.calls(method, prefix).into_iter().find(|c| check(&c.body)) {
            return call.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "GitHub never got {method} {prefix}: {:?}",
        github.calls(method, "")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_push_deploys_what_tracks_the_branch_once_and_the_token_stays_hidden() {
    let w = world().await;
    let (_workers, edge) = w.app.start_runtime().await;
    let first = w.github.create_repo(
        "octo/shop",
        true,
        &[
            ("railyard.toml", TOML),
            ("server.js", SERVER),
            ("version.txt", "v1"),
        ],
    );
    let mut fx = Fixture::new(&w.app).await;
    w.connect(&mut fx).await;
    let staging = fx.environment("staging").await;
    let (web, secret) = w.service(&mut fx, "web", "octo/shop").await;
    let hook = &w.github.calls("POST", "/repos/octo/shop/hooks")[0].body;
    assert_eq!(hook["events"], json!(["push", "pull_request"]));
    assert!(
        hook["config"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/github/webhook")
    );
    // Staging tracks its own branch.
    let res = fx
        .client
        .call(
            "PUT",
            &format!("/api/v1/services/{web}/settings?environment={staging}"),
            Some(json!({"branch": "staging"})),
        )
        .await;
    assert!(res.status < 300, "{}", res.text());

    // Unsigned, wrongly signed: 401, nothing recorded, nothing deployed.
    let body = push("octo/shop", "main", &first, "first");
    assert_eq!(w.deliver("push", "d-unsigned", &body, None).await.status, 401);
    let wrong = w.deliver("push", "d-wrong", &body, Some("not-the-secret")).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"]["code"], "unauthorized");
    assert!(w.deployments_of(web).await.is_empty());
    assert!(w.deliveries(&mut fx).await.deliveries.is_empty());

    // Signed: production (tracking main) deploys the pushed commit, staging does not.
    let res = w.deliver("push", "d-1", &body, Some(&secret)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let made = w.deployments_of(web).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].1, fx.production);
    live(&mut fx, made[0].0).await;
    assert_eq!(
        serves(&edge, "web-production-shop.localhost", made[0].0).await,
        "v1"
    );
    let detail = fx.deployment(made[0].0).await.deployment;
    assert_eq!(detail.commit.as_deref(), Some(first.as_str()));
    assert_eq!(detail.source, "github");

    // The same delivery again does nothing.
    let again = w.deliver("push", "d-1", &body, Some(&secret)).await;
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(w.deployments_of(web).await.len(), 1);

    // A push to `staging` deploys staging only; `[skip ci]` skips.
    let second = w.github.commit("octo/shop", "staging", &[("version.txt", "v2")]);
    let res = w
        .deliver(
            "push",
            "d-2",
            &push("octo/shop", "staging", &second, "v2"),
            Some(&secret),
        )
        .await;
    assert_eq!(res.status, 200);
    let made = w.deployments_of(web).await;
    assert_eq!(made.len(), 2);
    assert_eq!(made[1].1, staging);
    live(&mut fx, made[1].0).await;
    assert_eq!(serves(&edge, "web-staging-shop.localhost", made[1].0).await, "v2");
    let skipped = w
        .deliver(
            "push",
            "d-3",
            &push("octo/shop", "main", &second, "docs [skip ci]"),
            Some(&secret),
        )
        .await;
    assert_eq!(skipped.status, 200);
    assert_eq!(w.deployments_of(web).await.len(), 2);

    // Bad input with a good signature: recorded as ignored, never a 500.
    for (event, id, body) in [
        ("push", "d-bad-json", b"{not json".to_vec()),
        (
            "issues",
            "d-unknown",
            serde_json::to_vec(&json!({"repository": {"full_name": "octo/shop"}})).unwrap(),
        ),
        ("push", "d-bad-branch", push("octo/shop", "-x;rm", &second, "x")),
    ] {
        let res = w.deliver(event, id, &body, Some(&secret)).await;
        assert_eq!(res.status, 200, "{id}: {}", res.text());
    }
    assert_eq!(w.deployments_of(web).await.len(), 2);
    let mut conn = w.app.state.db.get().await.unwrap();
    let outcomes: Vec<(String, String)> = github_deliveries::table
        .order(github_deliveries::received_at.asc())
        .select((github_deliveries::delivery_id, github_deliveries::outcome))
        .load(&mut conn)
        .await
        .unwrap();
    let outcome = |id: &str| outcomes.iter().find(|(d, _)| d == id).map(|(_, o)| o.clone());
    assert_eq!(outcome("d-1").as_deref(), Some("processed"));
    assert_eq!(outcome("d-3").as_deref(), Some("skipped"));
    assert_eq!(outcome("d-unknown").as_deref(), Some("ignored"));
    assert_eq!(outcome("d-bad-branch").as_deref(), Some("ignored"));
    // A body that is not JSON is verified by its hook's id (`X-GitHub-Hook-ID`).
    assert_eq!(outcome("d-bad-json").as_deref(), Some("ignored"));

    // The project's deliveries list them; redelivering one deploys again.
    let listed = w.deliveries(&mut fx).await;
    let first_delivery = listed.deliveries.iter().find(|d| d.delivery_id == "d-1").unwrap();
    assert_eq!(first_delivery.deployments.len(), 1);
    let res = fx
        .client
        .post(
            &format!(
                "/api/v1/projects/{}/github/deliveries/{}/redeliver",
                fx.project, first_delivery.id
            ),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["delivery"]["redelivery_of"], json!(first_delivery.id));
    assert_eq!(w.deployments_of(web).await.len(), 3);

    // Statuses back: a GitHub Deployment for production, then success with its URL.
    let deployment = github_got(&w.github, "POST", "/repos/octo/shop/deployments", |b| {
        b["environment"] == "production"
    })
    .await;
    assert_eq!(deployment["ref"], first);
    let success = github_got(&w.github, "POST", "/repos/octo/shop/deployments/", |b| {
        b["state"] == "success"
    })
    .await;
    assert!(
        success["environment_url"].as_str().unwrap().contains("web-"),
        "{success}"
    );

    // The private repository was cloned with the token, which no argv, log or answer holds.
    assert!(
        w.github
            .git_requests()
            .iter()
            .any(|(_, credentials)| *credentials)
    );
    assert_eq!(w.github.argv_leaks(), Vec::<String>::new());
    for (id, _) in w.deployments_of(web).await {
        assert!(!fx.log(id).await.contains(&w.token));
    }
    for path in [
        format!("/api/v1/projects/{}/github/deliveries", fx.project),
        format!("/api/v1/services/{web}"),
        "/api/v1/github/connection".to_owned(),
    ] {
        assert!(!fx.client.get(&path).await.text().contains(&w.token), "{path}");
    }
    let connection = fx.client.get("/api/v1/github/connection").await.json();
    assert_eq!(connection["connected"], true);
    assert_eq!(connection["login"], "octo");

    // A token GitHub refuses breaks the connection, and says so.
    w.github.revoke();
    let res = fx.client.get("/api/v1/github/repositories").await;
    assert_eq!(res.status, 409);
    assert_eq!(res.json()["error"]["code"], "GITHUB_CONNECTION_BROKEN");
    let connection = fx.client.get("/api/v1/github/connection").await.json();
    assert!(connection["broken"].as_str().is_some(), "{connection}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_gets_a_preview_that_follows_it_and_goes_when_it_closes() {
    let w = world().await;
    let (_workers, edge) = w.app.start_runtime().await;
    w.github.create_repo(
        "octo/shop",
        false,
        &[
            ("railyard.toml", TOML),
            ("server.js", SERVER),
            ("version.txt", "v1"),
        ],
    );
    let mut fx = Fixture::new(&w.app).await;
    w.connect(&mut fx).await;
    let (web, secret) = w.service(&mut fx, "web", "octo/shop").await;
    let repos = fx.client.get("/api/v1/github/repositories?q=shop").await.json();
    assert_eq!(repos["repositories"][0]["full_name"], "octo/shop");
    let branches = fx
        .client
        .get("/api/v1/github/repositories/octo/shop/branches")
        .await
        .json();
    assert_eq!(branches["branches"], json!(["main"]));

    let v2 = w
        .github
        .commit("octo/shop", "feature-x", &[("version.txt", "v2")]);
    let opened = pull_request("opened", 7, ("octo/shop", "feature-x", &v2), "OWNER", 42);
    assert_eq!(
        w.deliver("pull_request", "pr-1", &opened, Some(&secret))
            .await
            .status,
        200
    );
    let preview = w.preview(fx.project, "pr-7").await.expect("pr-7 is made");
    let project = fx
        .client
        .get(&format!("/api/v1/projects/{}", fx.project))
        .await
        .json();
    let kind = project["project"]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "pr-7")
        .unwrap()["kind"]
        .clone();
    assert_eq!(kind, json!(EnvironmentKind::Preview.as_str()));
    let first = w.deployments_of(web).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, preview);
    live(&mut fx, first[0].0).await;
    assert_eq!(serves(&edge, "web-pr-7-shop.localhost", first[0].0).await, "v2");
    let comment = github_got(&w.github, "POST", "/repos/octo/shop/issues/7/comments", |_| true).await;
    assert!(
        comment["body"]
            .as_str()
            .unwrap()
            .contains("web-pr-7-shop.localhost"),
        "{comment}"
    );

    // synchronize: the new head is deployed; the one comment is edited in place.
    let v3 = w
        .github
        .commit("octo/shop", "feature-x", &[("version.txt", "v3")]);
    let synced = pull_request("synchronize", 7, ("octo/shop", "feature-x", &v3), "OWNER", 42);
    assert_eq!(
        w.deliver("pull_request", "pr-2", &synced, Some(&secret))
            .await
            .status,
        200
    );
    let now = w.deployments_of(web).await;
    assert_eq!(now.len(), 2);
    live(&mut fx, now[1].0).await;
    assert_eq!(serves(&edge, "web-pr-7-shop.localhost", now[1].0).await, "v3");
    github_got(&w.github, "PATCH", "/repos/octo/shop/issues/comments/", |_| true).await;
    assert_eq!(
        w.github.calls("POST", "/repos/octo/shop/issues/7/comments").len(),
        1
    );

    // closed: the environment and its processes go; GitHub hears the preview is inactive.
    let status: ServiceStatusResponse = typed(
        &fx.client
            .get(&format!("/api/v1/services/{web}/status?environment={preview}"))
            .await,
    );
    let pid = status.status.pid.expect("the preview runs");
    let closed = pull_request("closed", 7, ("octo/shop", "feature-x", &v3), "OWNER", 42);
    assert_eq!(
        w.deliver("pull_request", "pr-3", &closed, Some(&secret))
            .await
            .status,
        200
    );
    assert_eq!(w.preview(fx.project, "pr-7").await, None);
    let mut gone = false;
    for _ in 0..200 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the preview's process {pid} was stopped");
    assert_eq!(get(&edge, "web-pr-7-shop.localhost").await.0, 404);
    github_got(&w.github, "POST", "/repos/octo/shop/deployments/", |b| {
        b["state"] == "inactive"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sixteenth_preview_is_refused_and_expired_previews_are_removed() {
    let w = world().await;
    w.github.create_repo(
        "octo/shop",
        false,
        &[
            ("railyard.toml", TOML),
            ("server.js", SERVER),
            ("version.txt", "v1"),
        ],
    );
    let mut fx = Fixture::new(&w.app).await;
    w.connect(&mut fx).await;
    let (web, secret) = w.service(&mut fx, "web", "octo/shop").await;
    let v2 = w.github.commit("octo/shop", "feature", &[("version.txt", "v2")]);
    // The base (production: there is no staging) has a plain and a sealed variable.
    for (name, sealed) in [("GREETING", false), ("API_KEY", true)] {
        let res = fx
            .client
            .post(
                &format!("/api/v1/services/{web}/variables?environment={}", fx.production),
                json!({"name": name, "value": "value", "sealed": sealed}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    let names = |list: Value| -> Vec<String> {
        list["variables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect()
    };

    // One preview from a pull request, then 14 by hand: 15 live.
    let opened = pull_request("opened", 1, ("octo/shop", "feature", &v2), "MEMBER", 42);
    assert_eq!(
        w.deliver("pull_request", "lim-1", &opened, Some(&secret))
            .await
            .status,
        200
    );
    let first = w.preview(fx.project, "pr-1").await.expect("pr-1");
    let copied = names(
        fx.client
            .get(&format!("/api/v1/services/{web}/variables?environment={first}"))
            .await
            .json(),
    );
    assert_eq!(
        copied,
        ["GREETING"],
        "a preview gets no sealed variable unless the project allows it"
    );
    let res = fx
        .client
        .call(
            "PUT",
            &format!("/api/v1/projects/{}/previews", fx.project),
            Some(json!({"ttl_days": 7, "sealed_variables": true})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    for n in 0..14 {
        let res = fx
            .client
            .post(
                &format!("/api/v1/projects/{}/environments", fx.project),
                json!({"name": format!("manual-{n}"), "kind": "preview", "clone_from": fx.production}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        if n == 0 {
            let id = res.json()["environment"]["id"].as_str().unwrap().to_owned();
            let mut copied = names(
                fx.client
                    .get(&format!("/api/v1/services/{web}/variables?environment={id}"))
                    .await
                    .json(),
            );
            copied.sort();
            assert_eq!(copied, ["API_KEY", "GREETING"], "allowed now");
        }
    }
    let res = fx
        .client
        .post(
            &format!("/api/v1/projects/{}/environments", fx.project),
            json!({"name": "one-too-many", "kind": "preview"}),
        )
        .await;
    assert_eq!(res.status, 409);
    assert_eq!(res.json()["error"]["code"], "ENV_PREVIEW_LIMIT_REACHED");
    let opened = pull_request("opened", 2, ("octo/shop", "feature", &v2), "MEMBER", 42);
    assert_eq!(
        w.deliver("pull_request", "lim-2", &opened, Some(&secret))
            .await
            .status,
        200
    );
    assert_eq!(w.preview(fx.project, "pr-2").await, None);
    let listed = w.deliveries(&mut fx).await;
    let refused = listed
        .deliveries
        .iter()
        .find(|d| d.delivery_id == "lim-2")
        .unwrap();
    assert_eq!(refused.outcome, "refused");
    assert!(
        refused.detail.contains("ENV_PREVIEW_LIMIT_REACHED"),
        "{}",
        refused.detail
    );
    let workers = w.app.start_workers();
    let comment = github_got(&w.github, "POST", "/repos/octo/shop/issues/2/comments", |_| true).await;
    assert!(
        comment["body"]
            .as_str()
            .unwrap()
            .contains("ENV_PREVIEW_LIMIT_REACHED")
    );

    // The TTL job: pr-1's last push was 8 days ago (the default TTL is 7).
    let mut conn = w.app.state.db.get().await.unwrap();
    diesel::update(environments::table.find(first))
        .set(environments::preview_pushed_at.eq(chrono::Utc::now() - chrono::Duration::days(8)))
        .execute(&mut conn)
        .await
        .unwrap();
    let removed = railyard_server::webhooks::previews::expire(&w.app.state, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(w.preview(fx.project, "pr-1").await, None);
    // The hand-made previews have no pull request and no TTL.
    assert!(w.preview(fx.project, "manual-0").await.is_some());
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forks_pull_request_waits_for_a_members_approval() {
    let w = world().await;
    let (_workers, edge) = w.app.start_runtime().await;
    w.github.create_repo(
        "octo/shop",
        false,
        &[
            ("railyard.toml", TOML),
            ("server.js", SERVER),
            ("version.txt", "v1"),
        ],
    );
    let mut fx = Fixture::new(&w.app).await;
    w.connect(&mut fx).await;
    let (web, secret) = w.service(&mut fx, "web", "octo/shop").await;
    // The fork's commit reaches the repository only as the pull request's head ref.
    let forked = w.github.commit_to(
        "octo/shop",
        "fork-work",
        "refs/pull/9/head",
        &[("version.txt", "from-fork")],
        "fork",
    );
    let opened = pull_request("opened", 9, ("mallory/shop", "main", &forked), "NONE", 666);
    assert_eq!(
        w.deliver("pull_request", "fork-1", &opened, Some(&secret))
            .await
            .status,
        200
    );
    assert_eq!(
        w.preview(fx.project, "pr-9").await,
        None,
        "nothing is built before approval"
    );
    assert!(w.deployments_of(web).await.is_empty());
    let listed = w.deliveries(&mut fx).await;
    let waiting = listed
        .deliveries
        .iter()
        .find(|d| d.delivery_id == "fork-1")
        .unwrap();
    assert_eq!(waiting.outcome, "awaiting_approval");

    let res = fx
        .client
        .post(
            &format!(
                "/api/v1/projects/{}/github/deliveries/{}/approve",
                fx.project, waiting.id
            ),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["delivery"]["outcome"], "approved");
    let made = w.deployments_of(web).await;
    assert_eq!(made.len(), 1);
    live(&mut fx, made[0].0).await;
    assert_eq!(
        serves(&edge, "web-pr-9-shop.localhost", made[0].0).await,
        "from-fork"
    );
    // Approving twice does nothing more.
    let res = fx
        .client
        .post(
            &format!(
                "/api/v1/projects/{}/github/deliveries/{}/approve",
                fx.project, waiting.id
            ),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_starts_from_a_template_repository() {
    let w = world().await;
    let (_workers, edge) = w.app.start_runtime().await;
    w.github.create_repo(
        "railyard/node-starter",
        false,
        &[
            ("railyard.toml", TOML),
            ("server.js", SERVER),
            ("version.txt", "starter"),
        ],
    );
    let mut fx = Fixture::new(&w.app).await;
    w.connect(&mut fx).await;
    let res = fx
        .client
        .post(
            "/api/v1/github/templates",
            json!({"workspace_id": fx.workspace, "template": "railyard/node-starter", "name": "storefront", "private": true}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let made = res.json();
    assert_eq!(made["repository"]["full_name"], "octo/storefront");
    assert_eq!(
        made["service"]["source"],
        json!({"github": {"repository": "octo/storefront", "branch": "main"}})
    );
    let generated = &w.github.calls("POST", "/repos/railyard/node-starter/generate")[0].body;
    assert_eq!(generated["owner"], "octo");
    assert_eq!(generated["private"], true);
    assert!(
        w.github.hook_secret("octo/storefront").is_some(),
        "its webhook is made"
    );
    let deployment: Uuid = made["deployment_id"].as_str().unwrap().parse().unwrap();
    live(&mut fx, deployment).await;
    assert_eq!(
        serves(&edge, "storefront-production-storefront.localhost", deployment).await,
        "starter"
    );
    // A template that is not `owner/name` is refused before GitHub is asked.
    let res = fx
        .client
        .post(
            "/api/v1/github/templates",
            json!({"workspace_id": fx.workspace, "template": "../etc", "name": "x"}),
        )
        .await;
    assert_eq!(res.status, 422);
}
