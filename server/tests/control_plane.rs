//! The control plane dies, the apps do not: `railyard-server serve` (with
//! `RAILYARD_ROUTER=external`) runs the apps, a separate `railyard-server router` routes to
//! them. SIGKILL of `serve` and a restart: every app keeps its pid, is re-adopted rather
//! than started twice, keeps answering through the router with no failed request, and is
//! supervised again (killed, it comes back).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use railyard_server::testing::{TestApp, git_repo, random_master_key};
use serde_json::{Value, json};

/// Answers with its pid and its parent's (the recorded pid is the process group's leader:
/// the shell that runs the Procfile command, or node itself).
const SERVER: &str = "require('http').createServer((q, s) => s.end(`hello from ${process.pid} ${process.ppid}`))\n\
  .listen(process.env.PORT, '127.0.0.1');\n";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc {
    child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    fn spawn(subcommand: &str, env: &[(&str, String)], log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_railyard-server"))
            .arg(subcommand)
            .env_remove("REDIS_URL")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Self {
            child,
            log: log.to_owned(),
        }
    }

    /// Waits until `port` accepts and this process says it runs (so the port is its own,
    /// not another test's that took it first).
    async fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let says_so = |log: &Path| {
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .contains("is running")
        };
        while !says_so(&self.log) || tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "exited with {status}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap()
                );
            }
            assert!(Instant::now() < deadline, "never listened on {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn sigkill(&mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL).unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

async fn through_router(client: &reqwest::Client, router: u16) -> Result<String, String> {
    let res = client
        .get(format!("http://127.0.0.1:{router}/"))
        .header("host", "web-production-shop.localhost")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res.text().await.map_err(|e| e.to_string())?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

/// Whether the app that answered (its pid, as its own PID namespace numbers it, first in
/// `body`) runs under the recorded process `pid` (the monitor, which runs the sandbox
/// helper, its init, `sh -c`, then node): some process below `pid` has that number, on the
/// host or in its namespace.
fn serves(body: &str, pid: i32) -> bool {
    let Some(answered) = body.split_whitespace().find_map(|word| word.parse::<i32>().ok()) else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| {
            let mut up = p;
            (0..6).any(|_| {
                up = parent_of(up).unwrap_or(0);
                up == pid
            })
        })
        .any(|p| p == answered || ns_pid(p) == Some(answered))
}

/// The pid of `pid` in its own (innermost) PID namespace.
fn ns_pid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn apps_survive_a_killed_control_plane_and_are_re_adopted() {
    let master = random_master_key();
    let app = TestApp::with(&[("RAILYARD_MASTER_KEY", &master)], axum::Router::new()).await;
    let data = std::fs::canonicalize(app.data.path()).unwrap();
    let (api, router) = (free_port(), free_port());
    let env = vec![
        ("DATABASE_URL", app.db.url.clone()),
        ("RAILYARD_DATA_DIR", data.display().to_string()),
        ("RAILYARD_MASTER_KEY", master.clone()),
        ("RAILYARD_ROUTER", "external".to_owned()),
        ("RAILYARD_ROUTER_LISTEN", format!("127.0.0.1:{router}")),
        ("RAILYARD_LISTEN", format!("127.0.0.1:{api}")),
        ("RAILYARD_DASHBOARD_DIR", "/nonexistent-railyard-dist".to_owned()),
        ("RAILYARD_DRAIN_SECS", "0".to_owned()),
        (
            "RAILYARD_FILE_SOURCE_ROOTS",
            railyard_server::testing::file_source_root(),
        ),
    ];
    let logs = tempfile::tempdir().unwrap();
    let mut edge = Proc::spawn("router", &env, &logs.path().join("router.log"));
    edge.wait_listening(router).await;
    let mut plane = Proc::spawn("serve", &env, &logs.path().join("serve-1.log"));
    plane.wait_listening(api).await;

    // Deployed through the API; built and started by the spawned control plane.
    let (repo, _) = git_repo(&[("Procfile", "web: node server.js\n"), ("server.js", SERVER)]);
    let mut owner = app.admin().await;
    let service = owner.git_service("shop", "web", repo.path()).await;
    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let body = loop {
        match through_router(&client, router).await {
            Ok(body) => break body,
            Err(err) => {
                let log = std::fs::read_to_string(logs.path().join("serve-1.log")).unwrap();
                assert!(Instant::now() < deadline, "never served: {err}\n{log}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // The router speaks HTTP/2 too (cleartext, prior knowledge), as well as HTTP/1.1.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let res = h2
        .get(format!("http://127.0.0.1:{router}/"))
        .header("host", "web-production-shop.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.version(), res.status().as_u16()),
        (reqwest::Version::HTTP_2, 200)
    );
    let status = |owner_status: Value| owner_status["status"].clone();
    let before = status(
        owner
            .get(&format!("/api/v1/services/{service}/status"))
            .await
            .json(),
    );
    let pid = before["pid"].as_i64().unwrap() as i32;
    assert!(serves(&body, pid), "{body} is the app {pid} runs");

    // A steady stream of requests through the separate router from here on.
    let streaming = Arc::new(AtomicBool::new(true));
    let stream = tokio::spawn({
        let (client, streaming) = (client.clone(), streaming.clone());
        async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while streaming.load(Ordering::Relaxed) {
                match through_router(&client, router).await {
                    Ok(_) => ok += 1,
                    Err(err) => failed.push(err),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, failed)
        }
    });

    let running = railyard_server::sandbox::processes_in(&data);
    assert!(
        running.iter().any(|p| serves(&p.to_string(), pid)),
        "the app runs under {pid}: {running:?}"
    );
    plane.sigkill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the app outlived its control plane"
    );
    let mut plane = Proc::spawn("serve", &env, &logs.path().join("serve-2.log"));
    plane.wait_listening(api).await;

    let after = status(
        owner
            .get(&format!("/api/v1/services/{service}/status"))
            .await
            .json(),
    );
    assert_eq!(after["pid"], pid, "re-adopted, same pid: {after}");
    assert_eq!(after["state"], "running");
    let apps = railyard_server::sandbox::processes_in(&data);
    assert_eq!(apps, running, "the same processes, no duplicate started");
    tokio::time::sleep(Duration::from_millis(500)).await;
    streaming.store(false, Ordering::Relaxed);
    let (ok, failed) = stream.await.unwrap();
    assert!(ok > 20 && failed.is_empty(), "{ok} answered; failed: {failed:?}");

    // The adopted app is supervised: killed, it is noticed (pidfd) and started again.
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let restarted = loop {
        let now = status(
            owner
                .get(&format!("/api/v1/services/{service}/status"))
                .await
                .json(),
        );
        if now["state"] == "running" && now["pid"].as_i64().is_some_and(|p| p as i32 != pid) {
            break now;
        }
        assert!(Instant::now() < deadline, "never restarted: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(restarted["restarts"].as_i64().unwrap() >= 1, "{restarted}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match through_router(&client, router).await {
            Ok(body) if serves(&body, restarted["pid"].as_i64().unwrap() as i32) => break,
            other => assert!(
                Instant::now() < deadline,
                "the restarted app never answered: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(plane);
    drop(edge);
}
