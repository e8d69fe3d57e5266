//! Killing the worker process (SIGKILL) in the middle of builds, then starting it again:
//! every deployment ends exactly once in a final state — none lost, none built or made
//! `active` twice — and what the dead builds left running is stopped.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{
    fs,
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_server::{
    crypto::KeySource,
    schema::{deployment_events, deployments, jobs},
    testing::{Fixture, TestApp, git_main, git_repo},
};
use serde_json::json;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `railyard-server serve` on the test's database, running two build workers.
fn worker(app: &TestApp, data: &Path, n: usize) -> Child {
    let KeySource::Inline(key) = &app.state.config.auth.master_key else {
        panic!("tests use an inline master key")
    };
    let log = fs::File::create(data.join(format!("worker-{n}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_railyard-server"))
        .arg("serve")
        .env_remove("REDIS_URL")
        .env("DATABASE_URL", &app.db.url)
        .env("RAILYARD_MASTER_KEY", key)
        .env(
            "RAILYARD_FILE_SOURCE_ROOTS",
            railyard_server::testing::file_source_root(),
        )
        .env("RAILYARD_DATA_DIR", data)
        .env("RAILYARD_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("RAILYARD_ROUTER_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("RAILYARD_DASHBOARD_DIR", data.join("no-dist"))
        .env("RAILYARD_WORKERS", "2")
        .env("RAILYARD_JOB_LEASE_SECS", "30")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn states(app: &TestApp) -> Vec<(uuid::Uuid, String)> {
    let mut conn = app.state.db.get().await.unwrap();
    deployments::table
        .select((deployments::id, deployments::state))
        .order(deployments::created_at.asc())
        .load(&mut conn)
        .await
        .unwrap()
}

/// Build steps running with their working directory inside `dir` (the apps, `python3`,
/// are meant to run on, with the sandbox helpers they run under, `railyard-server`).
fn processes_in(dir: &Path) -> usize {
    railyard_server::sandbox::processes_in(dir)
        .into_iter()
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| !["python3", "railyard-server"].contains(&c.trim()))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_loses_no_deployment_and_builds_none_twice() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let app = TestApp::with(&[("RAILYARD_DATA_DIR", &data_dir)], axum::Router::new()).await;
    // Each build prints, works for a while, then records that it completed (in its home,
    // which outlives a rebuild's fresh release directory).
    let (repo, _) = git_repo(&[(
        "railyard.toml",
        "build = \"echo build started; sleep 6; echo done >> $HOME/completed\"\nstart = \"exec python3 -m http.server $PORT --bind 127.0.0.1\"\n",
    )]);
    let mut fixture = Fixture::new(&app).await;
    let url = format!("file://{}", repo.path().display());
    let mut ids = Vec::new();
    let mut homes = std::collections::HashMap::new();
    for name in ["a", "b", "c", "d"] {
        let service = fixture.service(name, git_main(url.clone())).await;
        let owner = &mut fixture.client;
        let res = owner
            .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        let id = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
        let home = railyard_server::layout::Layout::new(data.path()).home(service, fixture.production);
        homes.insert(id.parse::<uuid::Uuid>().unwrap(), home);
        ids.push(id);
    }

    // Start a worker and kill it while two builds run their step.
    let mut first = worker(&app, data.path(), 1);
    let releases = data.path().join("releases");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let building = states(&app).await.iter().filter(|(_, s)| s == "building").count();
        if building == 2 && processes_in(&releases) >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "builds never started: {:?}",
            states(&app).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let interrupted: Vec<uuid::Uuid> = states(&app)
        .await
        .into_iter()
        .filter(|(_, s)| s == "building")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(interrupted.len(), 2);

    // A new worker on this host sees its predecessor died and takes over at once.
    let mut second = worker(&app, data.path(), 2);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = states(&app).await;
        if now
            .iter()
            .all(|(_, s)| s != "queued" && s != "building" && s != "deploying")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deployments still in flight: {now:?}\n{}",
            fs::read_to_string(data.path().join("worker-2.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut conn = app.state.db.get().await.unwrap();
    for (id, state) in states(&app).await {
        let reason: Option<String> = deployments::table
            .find(id)
            .select(deployments::reason)
            .first(&mut conn)
            .await
            .unwrap();
        assert_eq!(state, "active", "{id} ended {state}: {reason:?}");
        for phase in ["deploying", "active"] {
            let arrivals: i64 = deployment_events::table
                .filter(deployment_events::deployment_id.eq(id))
                .filter(deployment_events::to_state.eq(phase))
                .count()
                .get_result(&mut conn)
                .await
                .unwrap();
            assert_eq!(arrivals, 1, "{id} reached {phase} {arrivals} times");
        }
        let completed = fs::read_to_string(homes[&id].join("completed")).unwrap();
        assert_eq!(
            completed.lines().count(),
            1,
            "{id}: the build completed more than once"
        );
        let log = fixture
            .client
            .get(&format!("/api/v1/deployments/{id}/logs"))
            .await
            .json();
        let text: Vec<&str> = log["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["text"].as_str().unwrap())
            .collect();
        let restarted = text.iter().any(|l| l.contains("building again"));
        assert_eq!(restarted, interrupted.contains(&id), "{id}: {text:?}");
        // Cursors stay unique and ordered across the restart.
        let cursors: Vec<i64> = log["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["cursor"].as_i64().unwrap())
            .collect();
        assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    }
    let unfinished: i64 = jobs::table
        .filter(jobs::state.ne("done"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(unfinished, 0, "every job is done");
    assert_eq!(processes_in(&releases), 0, "nothing of the killed builds runs on");
    assert_eq!(ids.len(), 4);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(second.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    second.wait().unwrap();
    // The apps outlive the server by design; this test's end with it.
    railyard_server::sandbox::kill_leftovers(&fs::canonicalize(data.path()).unwrap());
}
