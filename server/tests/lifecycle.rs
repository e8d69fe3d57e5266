//! Lifecycle defects of the deploy wing: concurrent deploys of one service and environment
//! are ordered (the newest wins, go-lives never overlap, nothing stops what serves), and
//! deleting a service, environment or project stops its apps and removes its files.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{body::Body, http::Request};
use http_body_util::BodyExt as _;
use railyard_server::{
    edge::{self, Edge},
    testing::{Fixture, TestApp, git_repo},
};
use railyard_shared::{DeploymentState, deployments::DeploymentResponse};
use tower::ServiceExt as _;
use uuid::Uuid;

const SERVER: &str = "const v = require('fs').readFileSync('version.txt', 'utf8').trim();\n\
require('http').createServer((q, s) => s.end(`hello ${v}`)).listen(process.env.PORT, '127.0.0.1');\n";

/// A node app whose build takes a moment (so deploys overlap while building).
fn app_repo(version: &str) -> (tempfile::TempDir, String) {
    git_repo(&[
        (
            "railyard.toml",
            "build = \"sleep 1\"\nstart = \"node server.js\"\n",
        ),
        ("server.js", SERVER),
        ("version.txt", version),
    ])
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

async fn serves(edge: &Edge, host: &str, prefix: &str) {
    let mut last = (0, String::new());
    for _ in 0..200 {
        last = get(edge, host).await;
        if last.0 == 200 && last.1.starts_with(prefix) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{host} never served {prefix:?}; last: {last:?}");
}

/// Deployments of a service in an environment: `(id, state)`, newest first.
async fn deployments(
    fixture: &mut Fixture<'_>,
    service: Uuid,
    environment: Uuid,
) -> Vec<(Uuid, DeploymentState)> {
    let res = fixture
        .client
        .get(&format!(
            "/api/v1/services/{service}/deployments?environment={environment}&limit=50"
        ))
        .await;
    res.json()["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().parse().unwrap(),
                serde_json::from_value(d["state"].clone()).unwrap(),
            )
        })
        .collect()
}

/// Pids of processes whose working directory is inside `dir`.
fn processes_in(dir: &std::path::Path) -> Vec<i32> {
    std::fs::canonicalize(dir)
        .map(|dir| railyard_server::sandbox::processes_in(&dir))
        .unwrap_or_default()
}

/// Whether every process of `pids` has exited (gone, or a zombie waiting to be reaped).
fn all_exited(pids: &[i32]) -> bool {
    pids.iter().all(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    })
}

/// A server whose deploys of one service overlap: three workers, a short drain.
async fn overlapping_app() -> TestApp {
    TestApp::with(
        &[
            ("RAILYARD_DRAIN_SECS", "1"),
            ("RAILYARD_STOP_GRACE_SECS", "2"),
            ("RAILYARD_HEALTH_TIMEOUT_SECS", "20"),
            ("RAILYARD_WORKERS", "3"),
        ],
        axum::Router::new(),
    )
    .await
}

/// What a burst of concurrent requests came to.
struct Burst {
    /// The deployments the requests created, oldest first.
    requested: Vec<Uuid>,
    /// Every deployment of the service and environment once nothing is in flight.
    states: Vec<(Uuid, DeploymentState)>,
    sent: usize,
    failures: Vec<String>,
}

/// Sends `paths` (POSTs with an empty JSON body) all at once while a request stream runs
/// against `host`, and waits until no deployment of the service is in flight.
async fn burst(
    app: &TestApp,
    fixture: &mut Fixture<'_>,
    edge: &Edge,
    host: &'static str,
    (service, environment): (Uuid, Uuid),
    paths: Vec<String>,
) -> Burst {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let stream = tokio::spawn({
        let (edge, stop, sent) = (edge.clone(), stop.clone(), sent.clone());
        async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = get(&edge, host).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failures.push(format!("{status} {}", body.chars().take(60).collect::<String>()));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            failures
        }
    });
    let cookie = fixture.client.cookie_header();
    let csrf = fixture
        .client
        .cookies
        .get("railyard_csrf")
        .cloned()
        .unwrap_or_default();
    let requests = paths.iter().map(|path| {
        let request = Request::post(path.as_str())
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::json!({"environment_id": environment}).to_string(),
            ))
            .unwrap();
        app.send(request)
    });
    let mut requested = Vec::new();
    for res in futures_util::future::join_all(requests).await {
        assert_eq!(res.status, 201, "{}", res.text());
        let detail: DeploymentResponse = serde_json::from_slice(&res.body).unwrap();
        requested.push((
            detail.deployment.deployment.created_at,
            detail.deployment.deployment.id,
        ));
    }
    requested.sort();
    let mut states = Vec::new();
    for _ in 0..600 {
        states = deployments(fixture, service, environment).await;
        if states.iter().all(|(_, state)| !state.is_pending()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The last go-live's drain, then a moment of traffic on the result.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let failures = stream.await.unwrap();
    Burst {
        requested: requested.into_iter().map(|(_, id)| id.uuid()).collect(),
        states,
        sent: sent.load(Ordering::Relaxed),
        failures,
    }
}

impl Burst {
    /// No request failed, exactly one deployment is active, and it is the newest request.
    fn assert_one_newest_live(&self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} requests failed: {:?}",
            self.failures.len(),
            self.sent,
            self.failures
        );
        assert!(self.sent > 20, "the stream ran");
        let active: Vec<_> = self
            .states
            .iter()
            .filter(|(_, s)| *s == DeploymentState::Active)
            .collect();
        assert_eq!(
            active.len(),
            1,
            "exactly one active deployment: {:?}",
            self.states
        );
        assert_eq!(
            Some(&active[0].0),
            self.requested.last(),
            "the newest request is the one live: {:?}",
            self.states
        );
    }
}

async fn live_instances(app: &TestApp, service: Uuid) -> i64 {
    use diesel::{ExpressionMethods as _, QueryDsl as _};
    use diesel_async::RunQueryDsl as _;
    use railyard_server::schema::instances;
    let mut conn = app.state.db.get().await.unwrap();
    instances::table
        .filter(instances::service_id.eq(service))
        .filter(instances::state.eq_any(["starting", "running", "crashed"]))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deploys_end_with_the_newest_active_and_no_failed_request() {
    let app = overlapping_app().await;
    let (workers, edge) = app.start_runtime().await;
    let (repo, _) = app_repo("v1");
    let mut fixture = Fixture::new(&app).await;
    // Not production: environments other than production go through the same path.
    let staging = fixture.environment("staging").await;
    let service = fixture.git_service("web", repo.path()).await;
    fixture.deploy_live(service, staging).await;
    let host = "web-staging-shop.localhost";
    serves(&edge, host, "hello v1").await;

    // Five deploy requests at once (a double click, and then some).
    let paths = vec![format!("/api/v1/services/{service}/deployments"); 5];
    let burst = burst(&app, &mut fixture, &edge, host, (service, staging), paths).await;
    burst.assert_one_newest_live();
    assert_eq!(
        get(&edge, host).await,
        (200, "hello v1".to_owned()),
        "the active release serves"
    );

    // The older requests ended without going live, or were replaced once live; a
    // cancelled one says why in its log.
    for id in &burst.requested[..burst.requested.len() - 1] {
        let state = fixture.deployment(*id).await.deployment.state;
        assert!(
            matches!(state, DeploymentState::Cancelled | DeploymentState::Superseded),
            "{id} ended {state:?}"
        );
        if state == DeploymentState::Cancelled {
            let log = fixture.log(*id).await;
            assert!(log.contains("superseded by the newer deployment"), "{id}: {log}");
        }
    }
    assert_eq!(live_instances(&app, service).await, 1, "one live instance");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_rollbacks_take_turns_going_live() {
    // Rollbacks skip the build: several reach `deploying` at once, and their go-lives
    // would overlap (each one's drain stopping what the other made live).
    let app = overlapping_app().await;
    let (workers, edge) = app.start_runtime().await;
    let (repo, _) = app_repo("v1");
    let mut fixture = Fixture::new(&app).await;
    let staging = fixture.environment("staging").await;
    let service = fixture.git_service("web", repo.path()).await;
    let first = fixture.deploy_live(service, staging).await.deployment.id;
    let second = fixture.deploy_live(service, staging).await.deployment.id;
    let host = "web-staging-shop.localhost";
    serves(&edge, host, "hello v1").await;

    let paths = [first, second, first, second, first]
        .iter()
        .map(|id| format!("/api/v1/deployments/{id}/rollback"))
        .collect();
    let burst = burst(&app, &mut fixture, &edge, host, (service, staging), paths).await;
    burst.assert_one_newest_live();
    assert_eq!(live_instances(&app, service).await, 1, "one live instance");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_stops_the_apps_and_removes_their_files() {
    let app = TestApp::with(
        &[("RAILYARD_DRAIN_SECS", "0"), ("RAILYARD_STOP_GRACE_SECS", "2")],
        axum::Router::new(),
    )
    .await;
    let (workers, edge) = app.start_runtime().await;
    let data = app.state.config.data_dir.clone();
    let (repo, _) = app_repo("v1");
    let mut fixture = Fixture::new(&app).await;
    let staging = fixture.environment("staging").await;
    let web = fixture.git_service("web", repo.path()).await;
    let api = fixture.git_service("api", repo.path()).await;
    let mut releases = std::collections::HashMap::new();
    for (service, environment) in [
        (web, staging),
        (web, fixture.production),
        (api, fixture.production),
    ] {
        let id = fixture.deploy_live(service, environment).await.deployment.id;
        releases.insert((service, environment), data.join("releases").join(id.to_string()));
    }
    serves(&edge, "web-staging-shop.localhost", "hello v1").await;
    serves(&edge, "web-production-shop.localhost", "hello v1").await;
    let release = |service, environment| releases[&(service, environment)].clone();
    let log = |service: Uuid, environment: Uuid| {
        data.join("logs")
            .join(service.to_string())
            .join(format!("{environment}.log"))
    };
    let staging_pids = processes_in(&release(web, staging));
    let web_pids = processes_in(&release(web, fixture.production));
    let api_pids = processes_in(&release(api, fixture.production));
    assert!(
        !staging_pids.is_empty() && !web_pids.is_empty() && !api_pids.is_empty(),
        "the apps run"
    );
    assert!(log(web, staging).exists());

    // 1. The staging environment: its apps stop and its files go; production stays.
    let res = fixture
        .client
        .call("DELETE", &format!("/api/v1/environments/{staging}"), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    wait_until(|| all_exited(&staging_pids) && !release(web, staging).exists()).await;
    assert!(!log(web, staging).exists(), "staging's log file is removed");
    let (status, _) = get(&edge, "web-staging-shop.localhost").await;
    assert_eq!(status, 404, "staging is no longer routed");
    serves(&edge, "web-production-shop.localhost", "hello v1").await;
    assert!(
        !all_exited(&web_pids) && !all_exited(&api_pids),
        "production still runs"
    );

    // 2. A service: its processes, releases, logs and build cache go; the other stays.
    let res = fixture
        .client
        .call("DELETE", &format!("/api/v1/services/{web}"), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    wait_until(|| all_exited(&web_pids) && !release(web, fixture.production).exists()).await;
    assert!(!all_exited(&api_pids), "the other service still runs");
    assert!(
        !data.join("logs").join(web.to_string()).exists(),
        "its log directory is removed"
    );
    assert!(
        !data.join("cache").join(web.to_string()).exists(),
        "its build cache is removed"
    );
    serves(&edge, "api-production-shop.localhost", "hello v1").await;

    // 3. The project: nothing of it runs or remains.
    let project = fixture.project;
    let res = fixture
        .client
        .call("DELETE", &format!("/api/v1/projects/{project}"), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    wait_until(|| all_exited(&api_pids) && !release(api, fixture.production).exists()).await;
    assert!(
        processes_in(&data).is_empty(),
        "no app process is left: {:?}",
        processes_in(&data)
    );
    let left: Vec<_> = std::fs::read_dir(data.join("releases"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "no release is left: {left:?}");
    workers.shutdown().await;
}

async fn wait_until(done: impl Fn() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the teardown did not finish within 15 s");
}
