//! The runtime and the router: built releases start as supervised processes, go live only
//! once healthy, replace the previous release without a gap, and a release that fails its
//! health check leaves the old one serving. Rollback switches back the same way.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use axum::{body::Body, http::Request};
use http_body_util::BodyExt as _;
use railyard_server::{
    edge::{self, Edge},
    testing::{Client, Fixture, TestApp, git_commit, git_main, git_repo},
};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const SERVER: &str = "const v = require('fs').readFileSync('version.txt', 'utf8').trim();\n\
require('http').createServer((q, s) => s.end(`hello ${v} host=${q.headers['x-forwarded-host']} for=${q.headers['x-forwarded-for']} proto=${q.headers['x-forwarded-proto']}`))\n\
  .listen(process.env.PORT, '127.0.0.1');\n";

async fn get(edge: &Edge, host: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let mut request = Request::get("/").header("host", host);
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    let response = edge::router(edge.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Waits (up to 10 s) until the router answers `host` with a body starting `prefix`: the
/// route table reloads on a notification, a moment after the switch.
async fn serves(edge: &Edge, host: &str, prefix: &str) -> String {
    let mut body = String::new();
    for _ in 0..200 {
        body = get(edge, host, &[]).await.1;
        if body.starts_with(prefix) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{host} never served {prefix:?}; last: {body}");
}

async fn gone(pid: i32) -> bool {
    for _ in 0..200 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn wait_for(owner: &mut Client<'_>, id: &str, until: &[&str]) -> Value {
    for _ in 0..600 {
        let deployment = owner.get(&format!("/api/v1/deployments/{id}")).await.json()["deployment"].clone();
        if until.contains(&deployment["state"].as_str().unwrap()) {
            return deployment;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let detail = owner.get(&format!("/api/v1/deployments/{id}")).await.json();
    let log = owner.get(&format!("/api/v1/deployments/{id}/logs")).await.json();
    panic!("deployment {id} never reached {until:?}: {detail}\n{log}");
}

async fn deploy(owner: &mut Client<'_>, service: &str) -> String {
    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["deployment"]["id"].as_str().unwrap().to_owned()
}

async fn state(owner: &mut Client<'_>, id: &str) -> String {
    owner.get(&format!("/api/v1/deployments/{id}")).await.json()["deployment"]["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A server whose switches are quick: no drain, a 2 s stop grace, 10 s to become healthy.
async fn switching_app() -> TestApp {
    TestApp::with(
        &[
            ("RAILYARD_DRAIN_SECS", "0"),
            ("RAILYARD_STOP_GRACE_SECS", "2"),
            ("RAILYARD_HEALTH_TIMEOUT_SECS", "10"),
        ],
        axum::Router::new(),
    )
    .await
}

/// A deployment's log as text.
async fn log_text(owner: &mut Client<'_>, deployment: &Value) -> String {
    let id = deployment["id"].as_str().unwrap();
    owner
        .get(&format!("/api/v1/deployments/{id}/logs?format=text"))
        .await
        .text()
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_switch_only_when_healthy_and_roll_back() {
    let app = switching_app().await;
    let (workers, edge) = app.start_runtime().await;
    let (repo, _) = git_repo(&[
        ("Procfile", "web: node server.js\n"),
        ("server.js", SERVER),
        ("version.txt", "v1"),
    ]);
    let mut fixture = Fixture::new(&app).await;
    let url = format!("file://{}", repo.path().display());
    let service = fixture.service("web", git_main(url)).await.to_string();
    fixture.push_service("api").await;
    let mut owner = fixture.client;
    let host = "web-production-shop.localhost:8080";

    // v1 goes live.
    let v1 = deploy(&mut owner, &service).await;
    let done = wait_for(&mut owner, &v1, &["active", "failed"]).await;
    assert_eq!(done["state"], "active", "{done}");
    let history: Vec<&str> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["queued", "building", "deploying", "active"]);
    serves(&edge, host, "hello v1").await;
    let (status, body) = get(
        &edge,
        host,
        &[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-host", "evil")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("hello v1 host=web-production-shop.localhost:8080"),
        "{body}"
    );
    assert!(
        !body.contains("6.6.6.6") && !body.contains("evil"),
        "a client's forwarding headers are not trusted: {body}"
    );
    assert!(body.contains("proto=http"));

    let status = owner
        .get(&format!("/api/v1/services/{service}/status"))
        .await
        .json()["status"]
        .clone();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["deployment_id"], v1.as_str());
    assert!(
        status["url"]
            .as_str()
            .unwrap()
            .starts_with("http://web-production-shop.localhost:")
    );
    // A Node hello-world holds tens of megabytes.
    let memory = status["memory_bytes"].as_i64().unwrap();
    assert!((5 << 20..1 << 30).contains(&memory), "{status}");
    let v1_pid = status["pid"].as_i64().unwrap() as i32;
    assert!(std::path::Path::new(&format!("/proc/{v1_pid}")).exists());

    // v2 replaces it; v1 is superseded and its process stops.
    git_commit(repo.path(), &[("version.txt", "v2")], false);
    let v2 = deploy(&mut owner, &service).await;
    assert_eq!(
        wait_for(&mut owner, &v2, &["active", "failed"]).await["state"],
        "active"
    );
    assert_eq!(state(&mut owner, &v1).await, "superseded");
    serves(&edge, host, "hello v2").await;
    assert!(gone(v1_pid).await, "v1's process was stopped");
    let status = owner
        .get(&format!("/api/v1/services/{service}/status"))
        .await
        .json()["status"]
        .clone();
    assert_eq!(status["deployment_id"], v2.as_str());
    assert!(get(&edge, host, &[]).await.1.starts_with("hello v2"));

    // v3 exits at once: it fails its health check, and v2 keeps serving.
    git_commit(
        repo.path(),
        &[("Procfile", "web: node -e 'process.exit(3)'\n")],
        false,
    );
    let v3 = deploy(&mut owner, &service).await;
    let failed = wait_for(&mut owner, &v3, &["active", "failed"]).await;
    assert_eq!(failed["state"], "failed");
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("health check failed") && reason.contains("code 3"),
        "{reason}"
    );
    assert_eq!(state(&mut owner, &v2).await, "active");
    assert!(get(&edge, host, &[]).await.1.starts_with("hello v2"));

    // Roll back to v1: its release runs again; v2 is rolled back.
    let res = owner
        .post(&format!("/api/v1/deployments/{v1}/rollback"), json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let back = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        wait_for(&mut owner, &back, &["active", "failed"]).await["state"],
        "active"
    );
    assert_eq!(state(&mut owner, &v2).await, "rolled_back");
    serves(&edge, host, "hello v1").await;

    // Unknown hosts, and services with nothing serving.
    assert_eq!(get(&edge, "nope-production-shop.localhost", &[]).await.0, 404);
    assert_eq!(get(&edge, "api-production-shop.localhost", &[]).await.0, 503);
    workers.shutdown().await;
}

/// An app that listens on a port of its own choosing (here from `port.txt`), not `PORT`.
const FIXED: &str = "const fs = require('fs'), read = (f) => fs.readFileSync(f, 'utf8').trim();\n\
require('http').createServer((q, s) => s.end(`fixed ${read('version.txt')} PORT=${process.env.PORT}`))\n\
  .listen(Number(read('port.txt')), '127.0.0.1');\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_port_stops_the_old_release_first_and_brings_it_back_on_failure() {
    let app = switching_app().await;
    let (workers, edge) = app.start_runtime().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_text = port.to_string();
    let (repo, _) = git_repo(&[
        ("Procfile", "web: node server.js\n"),
        ("server.js", FIXED),
        ("version.txt", "v1"),
        ("port.txt", &port_text),
    ]);
    let mut owner = app.admin().await;
    let service = owner.git_service("shop", "web", repo.path()).await;
    let res = owner
        .call(
            "PUT",
            &format!("/api/v1/services/{service}/settings"),
            Some(json!({"port": port})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let host = "web-production-shop.localhost";
    let v1 = owner.deploy_and_wait(&service).await;
    assert_eq!(v1["state"], "active", "{v1}");
    serves(&edge, host, &format!("fixed v1 PORT={port}")).await;
    let v1_pid = status(&mut owner, &service).await["pid"].as_i64().unwrap() as i32;

    // v2 takes over the same port: v1 stops first, and the log says why.
    git_commit(repo.path(), &[("version.txt", "v2")], false);
    let v2 = owner.deploy_and_wait(&service).await;
    assert_eq!(v2["state"], "active", "{v2}");
    serves(&edge, host, "fixed v2").await;
    assert!(gone(v1_pid).await, "v1's process was stopped");
    let log = log_text(&mut owner, &v2).await;
    assert!(log.contains(&format!("fix the port at {port}")), "{log}");

    // v3 never listens: it fails, and v2 is started again on the port.
    git_commit(
        repo.path(),
        &[("Procfile", "web: node -e 'process.exit(3)'\n")],
        false,
    );
    let v3 = owner.deploy_and_wait(&service).await;
    assert_eq!(v3["state"], "failed", "{v3}");
    let log = log_text(&mut owner, &v3).await;
    assert!(log.contains("Starting the previous release again"), "{log}");
    assert_eq!(state(&mut owner, v2["id"].as_str().unwrap()).await, "active");
    serves(&edge, host, "fixed v2").await;
    workers.shutdown().await;
}

async fn status(owner: &mut Client<'_>, service: &str) -> Value {
    owner
        .get(&format!("/api/v1/services/{service}/status"))
        .await
        .json()["status"]
        .clone()
}

/// Polls the status (up to 15 s) until `until` holds.
async fn status_until(owner: &mut Client<'_>, service: &str, until: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = status(owner, service).await;
        if until(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the status never got there; last: {last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_stop_and_start_a_service() {
    let app = TestApp::with(
        &[("RAILYARD_DRAIN_SECS", "1"), ("RAILYARD_STOP_GRACE_SECS", "2")],
        axum::Router::new(),
    )
    .await;
    let (workers, edge) = app.start_runtime().await;
    let (repo, _) = git_repo(&[
        ("Procfile", "web: node server.js\n"),
        ("server.js", SERVER),
        ("version.txt", "v1"),
    ]);
    let mut owner = app.admin().await;
    let service = owner.git_service("shop", "web", repo.path()).await;
    let host = "web-production-shop.localhost";
    let action = |name: &str| format!("/api/v1/services/{service}/{name}");

    let res = owner.post(&action("start"), json!({})).await;
    assert_eq!(
        res.status,
        409,
        "nothing deployed, nothing to start: {}",
        res.text()
    );
    let id = deploy(&mut owner, &service).await;
    assert_eq!(
        wait_for(&mut owner, &id, &["active", "failed"]).await["state"],
        "active"
    );
    serves(&edge, host, "hello v1").await;
    let first = status(&mut owner, &service).await["pid"].as_i64().unwrap();

    // Restart: a new process takes over; no request fails meanwhile.
    let streaming = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let stream = tokio::spawn({
        let (edge, streaming) = (edge.clone(), streaming.clone());
        async move {
            let (mut ok, mut failed) = (0, Vec::new());
            while streaming.load(std::sync::atomic::Ordering::Relaxed) {
                match get(&edge, host, &[]).await {
                    (200, _) => ok += 1,
                    other => failed.push(other),
                }
            }
            (ok, failed)
        }
    });
    let res = owner.post(&action("restart"), json!({})).await;
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["action"]["action"], "restart");
    let second = status_until(&mut owner, &service, |s| {
        s["state"] == "running" && s["pid"].as_i64().is_some_and(|p| p != first)
    })
    .await["pid"]
        .as_i64()
        .unwrap();
    assert!(
        gone(first as i32).await,
        "the old process stopped after the new one took over"
    );
    streaming.store(false, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = stream.await.unwrap();
    assert!(ok > 10 && failed.is_empty(), "{ok} answered, failed: {failed:?}");

    // Stop: the process goes, the router says 503.
    let res = owner.post(&action("stop"), json!({})).await;
    assert_eq!(res.status, 202, "{}", res.text());
    let stopped = status_until(&mut owner, &service, |s| s["state"] == "stopped").await;
    assert!(stopped["memory_bytes"].is_null(), "{stopped}");
    assert!(gone(second as i32).await);
    for _ in 0..200 {
        if get(&edge, host, &[]).await.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&edge, host, &[]).await.0, 503);

    // Start: the active release runs again.
    let res = owner.post(&action("start"), json!({})).await;
    assert_eq!(res.status, 202, "{}", res.text());
    status_until(&mut owner, &service, |s| s["state"] == "running").await;
    serves(&edge, host, "hello v1").await;
    let log = owner.get(&format!("/api/v1/deployments/{id}/logs")).await.text();
    assert!(
        log.contains("Restart requested") && log.contains("Stopping the service"),
        "{log}"
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_site_is_served_by_the_router() {
    let app = TestApp::new().await;
    let (workers, edge) = app.start_runtime().await;
    let (repo, _) = git_repo(&[("index.html", "<h1>static</h1>"), ("about/index.html", "about")]);
    let mut owner = app.admin().await;
    let service = owner.git_service("site", "www", repo.path()).await;
    assert_eq!(owner.deploy_and_wait(&service).await["state"], "active");
    serves(&edge, "www-production-site.localhost", "<h1>static</h1>").await;
    let (status, body) = get(&edge, "www-production-site.localhost", &[]).await;
    assert_eq!((status, body.as_str()), (200, "<h1>static</h1>"));
    workers.shutdown().await;
}

mod supervisor {
    use std::{path::Path, sync::Arc, time::Duration};

    use railyard_server::{
        logs::{rotate as logfile, ship as shipper},
        runtime::{
            Launch, RestartPolicy, Runtime, cgroup,
            native::{HealthWatch, NativeRuntime},
        },
        testing::TestApp,
    };
    use railyard_shared::deployments::Step;

    fn launch(dir: &Path, command: &str, restart: RestartPolicy) -> Launch {
        Launch {
            instance: uuid::Uuid::new_v4(),
            dir: dir.to_owned(),
            start: Step::Shell(command.to_owned()),
            env: vec![("PATH".into(), std::env::var_os("PATH").unwrap())],
            port: 0,
            log: dir.join("app.log"),
            restart,
            secrets: Vec::new(),
            deployment: None,
            health_check: None,
            memory_limit_mb: None,
            jail: None,
        }
    }

    fn runs(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    fn processes_in(dir: &Path) -> usize {
        railyard_server::sandbox::processes_in(dir).len()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_crash_loop_backs_off_and_ends_crashed_after_ten_fast_failures() {
        let app = TestApp::new().await;
        let runtime = NativeRuntime::new(app.state.db.clone())
            .with_backoff(Duration::from_millis(10), Duration::from_millis(160));
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        // Each run outlives the `supervise` call that follows `start`.
        let launch = launch(
            &dir,
            "sleep 0.1; date +%s%N >> runs; exit 1",
            RestartPolicy::OnFailure,
        );
        let id = launch.instance;
        let started = runtime.start(launch).await.unwrap();
        runtime.supervise(id);
        let mut exited = started.exited;
        exited.wait_for(|e| e.is_some()).await.unwrap();
        // Ten runs, then no more.
        for _ in 0..200 {
            if runs(&dir) >= 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(runs(&dir), 10, "restarted until the crash limit, then stopped");
        // The gaps between runs grow (10, 20, 40, 80, 160 ms ...: far apart enough to show
        // under a loaded machine).
        let times: Vec<u128> = std::fs::read_to_string(dir.join("runs"))
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        let gaps: Vec<u128> = times.windows(2).map(|w| (w[1] - w[0]) / 1_000_000).collect();
        assert!(gaps[0] < gaps[4], "backoff grows: {gaps:?}");
        // Each restart, and the crash, is an event line in the service's log.
        let events: Vec<String> = std::fs::read_to_string(dir.join("app.log"))
            .unwrap()
            .lines()
            .map(railyard_server::logs::ship::parse_record)
            .filter(|r| r.stream == "event")
            .map(|r| r.text)
            .collect();
        assert_eq!(
            events.iter().filter(|e| e.contains("Restarting in")).count(),
            9,
            "{events:?}"
        );
        assert!(
            events
                .last()
                .unwrap()
                .contains("exited with code 1. Crashed: 10 fast failures"),
            "{events:?}"
        );
        runtime.stop(id, Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn restart_policies() {
        let app = TestApp::new().await;
        let runtime = Arc::new(
            NativeRuntime::new(app.state.db.clone())
                .with_backoff(Duration::from_millis(5), Duration::from_millis(5)),
        );
        for (policy, command, expected) in [
            (RestartPolicy::Never, "sleep 0.1; echo x >> runs; exit 1", 1),
            (RestartPolicy::OnFailure, "sleep 0.1; echo x >> runs; exit 0", 1),
            (
                RestartPolicy::Always,
                "sleep 0.1; echo x >> runs; [ $(wc -l < runs) -ge 3 ] && exec sleep 1000; exit 0",
                3,
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let dir = std::fs::canonicalize(dir.path()).unwrap();
            let launch = launch(&dir, command, policy);
            let id = launch.instance;
            runtime.start(launch).await.unwrap();
            runtime.supervise(id);
            // Up to 10 s for the runs it should make (a loaded machine is slow to spawn),
            // then a moment more in which no further one may come.
            for _ in 0..200 {
                if runs(&dir) >= expected {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(1200)).await;
            assert_eq!(runs(&dir), expected, "{policy:?}");
            runtime.stop(id, Duration::from_secs(1)).await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn stop_kills_what_ignores_sigterm_and_what_forked() {
        let app = TestApp::new().await;
        let runtime = NativeRuntime::new(app.state.db.clone());
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        // Ignores SIGTERM, and leaves a background child (double fork) behind.
        let command =
            "trap '' TERM; (trap '' TERM; sleep 1000) & echo up > ready; while true; do sleep 0.1; done";
        let launch = launch(&dir, command, RestartPolicy::Always);
        let id = launch.instance;
        runtime.start(launch).await.unwrap();
        runtime.supervise(id);
        for _ in 0..100 {
            if dir.join("ready").exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(processes_in(&dir) >= 2);
        let began = std::time::Instant::now();
        runtime.stop(id, Duration::from_millis(700)).await.unwrap();
        let took = began.elapsed();
        assert!(
            took >= Duration::from_millis(700),
            "SIGTERM was ignored, so the grace ran out: {took:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            processes_in(&dir),
            0,
            "the whole group is gone, and it was not restarted"
        );
    }

    fn events(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("app.log"))
            .unwrap_or_default()
            .lines()
            .map(shipper::parse_record)
            .filter(|r| r.stream == "event")
            .map(|r| r.text)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_memory_an_app_holds_is_counted_while_it_runs() {
        let app = TestApp::new().await;
        let runtime = NativeRuntime::new(app.state.db.clone());
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        // 80 MiB written (so resident), in a child of the app's shell.
        let launch = launch(
            &dir,
            "node -e 'const b = Buffer.alloc(80 * 1024 * 1024, 1); setInterval(() => b, 1000)'",
            RestartPolicy::Never,
        );
        let id = launch.instance;
        let started = runtime.start(launch).await.unwrap();
        runtime.supervise(id);
        let (pid, ticks) = (started.pid, started.start_ticks.unwrap());
        let mut bytes = 0;
        for _ in 0..200 {
            bytes = railyard_server::runtime::app_memory_bytes(pid, ticks).unwrap();
            if bytes >= 80 << 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!((80 << 20..400 << 20).contains(&bytes), "{bytes} bytes");
        assert_eq!(
            railyard_server::runtime::app_memory_bytes(pid, ticks + 1),
            None,
            "a process that started at another time is not the app"
        );
        runtime.stop(id, Duration::from_secs(2)).await.unwrap();
        assert_eq!(railyard_server::runtime::app_memory_bytes(pid, ticks), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_app_past_its_memory_limit_is_killed_by_the_kernel_and_its_log_says_so() {
        let app = TestApp::new().await;
        let runtime = NativeRuntime::new(app.state.db.clone());
        assert!(
            runtime.cgroups().is_some(),
            "this host gives Railyard memory cgroups (the tests run where they work)"
        );
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        // Within its limit: it runs, inside its own cgroup with that limit.
        let mut within = launch(
            &dir,
            "echo $$ > pid; exec node -e 'setInterval(() => {}, 1000)'",
            RestartPolicy::Never,
        );
        within.memory_limit_mb = Some(96);
        let id = within.instance;
        runtime.start(within).await.unwrap();
        runtime.supervise(id);
        let mut pid = String::new();
        for _ in 0..100 {
            pid = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
            if !pid.trim().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (cgroup, _) = cgroup::memory_cgroup_of(pid.trim()).unwrap();
        assert!(cgroup.ends_with(id.to_string()), "{}", cgroup.display());
        let limit = ["memory.limit_in_bytes", "memory.max"]
            .iter()
            .find_map(|f| std::fs::read_to_string(cgroup.join(f)).ok())
            .unwrap();
        assert_eq!(limit.trim(), (96u64 << 20).to_string());
        runtime.stop(id, Duration::from_secs(2)).await.unwrap();
        for _ in 0..60 {
            if !cgroup.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!cgroup.exists(), "a stopped instance's cgroup is removed");

        // Past its limit: the kernel kills it (not the machine's other apps), and the log says why.
        let mut past = launch(
            &dir,
            "exec node -e 'const b = Buffer.alloc(300 * 1024 * 1024, 1); setInterval(() => b, 1000)'",
            RestartPolicy::Never,
        );
        past.memory_limit_mb = Some(64);
        let id = past.instance;
        let started = runtime.start(past).await.unwrap();
        runtime.supervise(id);
        let mut exited = started.exited;
        let code = tokio::time::timeout(Duration::from_secs(20), exited.wait_for(|e| e.is_some()))
            .await
            .expect("killed, not left to grow")
            .unwrap()
            .unwrap();
        assert_eq!(code, 137, "SIGKILL from the OOM killer");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let events = events(&dir);
        assert!(
            events
                .iter()
                .any(|e| e
                    .contains("exited with code 137: out of memory (it reached its memory limit of 64 MB")),
            "{events:?}"
        );
        runtime.stop(id, Duration::from_secs(1)).await.unwrap();
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_live_app_that_turns_unhealthy_is_restarted() {
        let app = TestApp::new().await;
        let runtime = NativeRuntime::new(app.state.db.clone())
            .with_backoff(Duration::from_millis(5), Duration::from_millis(5))
            .with_health_watch(Some(HealthWatch {
                every: Duration::from_millis(100),
                failures: 3,
            }));
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        // Healthy for its first two checks, then 500s (a wedged app) — but it keeps running.
        std::fs::write(
            dir.join("app.js"),
            "require('fs').appendFileSync('runs', 'x\\n'); let n = 0;\n\
             require('http').createServer((q, s) => { n++; s.statusCode = n > 2 ? 500 : 200; s.end(); })\n\
               .listen(process.env.PORT, '127.0.0.1');\n",
        )
        .unwrap();
        let mut launch = launch(&dir, "exec node app.js", RestartPolicy::Never);
        launch.port = free_port();
        launch.health_check = Some("/health".into());
        let id = launch.instance;
        runtime.start(launch).await.unwrap();
        runtime.supervise(id);
        for _ in 0..100 {
            if runs(&dir) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            runs(&dir) >= 2,
            "three failed checks in a row restarted it (even with restart policy `never`)"
        );
        assert_eq!(
            processes_in(&dir),
            1,
            "the wedged process was replaced, not doubled"
        );
        runtime.stop(id, Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_app_keeps_writing_its_log_after_rotation() {
        let app = TestApp::new().await;
        let runtime = NativeRuntime::new(app.state.db.clone());
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        let launch = launch(
            &dir,
            "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.01; done",
            RestartPolicy::Never,
        );
        let (id, log) = (launch.instance, launch.log.clone());
        runtime.start(launch).await.unwrap();
        let size = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        while size() < 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(logfile::rotate_if_larger(&log, 100).unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        runtime.stop(id, Duration::from_secs(1)).await.unwrap();
        let old = std::fs::read_to_string(log.with_extension("log.1")).unwrap();
        let new = std::fs::read(&log).unwrap();
        // The monitor writes one record per line: `<µs> <o|e> <deployment|-> <text>`.
        let first = shipper::parse_record(old.lines().next().unwrap());
        assert_eq!((first.stream, first.text.as_str()), ("stdout", "line 1"), "{old}");
        assert!(!new.is_empty(), "the app kept writing");
        assert!(
            !new.contains(&0),
            "it writes at the file's new end (O_APPEND), leaving no hole of zeros"
        );
        let new = String::from_utf8(new).unwrap();
        assert!(
            new.lines()
                .all(|l| shipper::parse_record(l).text.starts_with("line ")),
            "{new}"
        );
    }
}
