//! The real `railyard-server serve` binary: embedded PostgreSQL life cycle, configuration
//! errors, graceful shutdown.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{
    fs,
    net::TcpListener,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use railyard_server::testing::TestDb;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    api: u16,
    router: u16,
    log: PathBuf,
    data_dir: PathBuf,
    database_url: Option<String>,
    env: Vec<(String, String)>,
}

impl Server {
    fn start(data_dir: &Path, database_url: Option<&str>) -> Self {
        Self::start_with(data_dir, database_url, Vec::new())
    }

    fn start_with(data_dir: &Path, database_url: Option<&str>, env: Vec<(String, String)>) -> Self {
        let (api, router) = (free_port(), free_port());
        let log = data_dir.join(format!("server-{api}.log"));
        let file = fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_railyard-server"));
        cmd.arg("serve")
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env("RAILYARD_DATA_DIR", data_dir)
            .env("RAILYARD_LISTEN", format!("127.0.0.1:{api}"))
            .env("RAILYARD_ROUTER_LISTEN", format!("127.0.0.1:{router}"))
            .env("RAILYARD_DASHBOARD_DIR", data_dir.join("no-dist"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        if let Some(url) = database_url {
            cmd.env("DATABASE_URL", url);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        Self {
            child: cmd.spawn().unwrap(),
            api,
            router,
            log,
            data_dir: data_dir.to_owned(),
            database_url: database_url.map(str::to_owned),
            env,
        }
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_healthy(&mut self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut retries = 3;
        loop {
            let url = format!("http://127.0.0.1:{}/api/v1/health", self.api);
            // Healthy, and it is this server that answers (it says so once it listens): a
            // port picked free may be taken by another test's process before ours binds it.
            if self.output().contains("Railyard is running")
                && let Ok(res) = reqwest::get(&url).await
                && res.status() == 200
            {
                return res.json().await.unwrap();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                if retries > 0 && self.output().contains("cannot listen on") {
                    retries -= 1;
                    let again =
                        Self::start_with(&self.data_dir, self.database_url.as_deref(), self.env.clone());
                    *self = again;
                    continue;
                }
                panic!("server exited with {status}:\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "server did not become healthy:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A data directory the unprivileged `postgres` user can reach when tests run as root.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn postmaster(data: &Path) -> Option<(i32, u16)> {
    let text = fs::read_to_string(data.join("postgres/data/postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let port = lines.nth(2)?.trim().parse().ok()?;
    Some((pid, port))
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

fn embedded_url(data: &Path, port: u16) -> String {
    let password = fs::read_to_string(data.join("postgres/credentials")).unwrap();
    format!(
        "postgres://railyard:{}@127.0.0.1:{port}/railyard",
        password.trim()
    )
}

async fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        assert!(Instant::now() < deadline, "postgres {pid} still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_postgres_stops_with_the_server_and_keeps_its_data() {
    let data = data_dir();
    let mut server = Server::start(data.path(), None);
    let health = server.wait_healthy().await;
    assert_eq!(health["database"], "ok");
    let out = server.output();
    assert!(
        out.contains("initialising the embedded PostgreSQL cluster"),
        "{out}"
    );
    assert!(
        out.contains(&format!("Dashboard:  http://127.0.0.1:{}", server.api)),
        "prints the URL:\n{out}"
    );

    // The private cluster is password-protected and listens on the loopback only.
    let (pg_pid, pg_port) = postmaster(data.path()).expect("postmaster.pid while running");
    assert!(alive(pg_pid));
    let anonymous = format!("postgres://railyard@127.0.0.1:{pg_port}/railyard");
    assert!(
        AsyncPgConnection::establish(&anonymous).await.is_err(),
        "no trust auth"
    );
    let mut conn = AsyncPgConnection::establish(&embedded_url(data.path(), pg_port))
        .await
        .unwrap();
    diesel::sql_query("INSERT INTO instance_settings (key, value) VALUES ('test.marker', '\"kept\"')")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    // The app router answers on its own listener.
    let res = reqwest::get(format!("http://127.0.0.1:{}/", server.router))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("No app is deployed"));

    server.signal(Signal::SIGTERM);
    let status = server.wait_exit().await;
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status}\n{}",
        server.output()
    );
    assert!(
        postmaster(data.path()).is_none(),
        "postmaster.pid removed: PostgreSQL stopped"
    );
    wait_gone(pg_pid).await;

    // A second start reuses the cluster and its data.
    let mut again = Server::start(data.path(), None);
    again.wait_healthy().await;
    assert!(!again.output().contains("initialising"), "{}", again.output());
    let (_, pg_port) = postmaster(data.path()).unwrap();
    let mut conn = AsyncPgConnection::establish(&embedded_url(data.path(), pg_port))
        .await
        .unwrap();
    #[derive(diesel::QueryableByName)]
    struct Value {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let row: Value =
        diesel::sql_query("SELECT value::text AS value FROM instance_settings WHERE key = 'test.marker'")
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(row.value, "\"kept\"");
    drop(conn);
    again.signal(Signal::SIGINT);
    assert!(again.wait_exit().await.success());
    assert!(postmaster(data.path()).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_server_re_adopts_its_running_postgres() {
    let data = data_dir();
    let mut server = Server::start(data.path(), None);
    server.wait_healthy().await;
    let (pg_pid, _) = postmaster(data.path()).unwrap();
    server.signal(Signal::SIGKILL);
    server.wait_exit().await;
    assert!(alive(pg_pid), "PostgreSQL outlives a crash of the server");

    let mut again = Server::start(data.path(), None);
    again.wait_healthy().await;
    assert!(
        again.output().contains("re-using the embedded PostgreSQL"),
        "{}",
        again.output()
    );
    assert_eq!(
        postmaster(data.path()).unwrap().0,
        pg_pid,
        "the same postmaster, not a second one"
    );
    again.signal(Signal::SIGTERM);
    assert!(again.wait_exit().await.success());
    wait_gone(pg_pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn database_url_uses_that_server() {
    let db = TestDb::new().await;
    let data = data_dir();
    let mut server = Server::start(data.path(), Some(&db.url));
    assert_eq!(server.wait_healthy().await["status"], "ok");
    assert!(
        !data.path().join("postgres").exists(),
        "no embedded cluster when DATABASE_URL is set"
    );
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_configuration_fails_fast_naming_the_variable() {
    let data = data_dir();
    for (var, value) in [
        ("RAILYARD_LISTEN", "not-an-address"),
        ("DATABASE_URL", "mysql://root:hunter2@db/x"),
        ("RAILYARD_DB_POOL_SIZE", "-3"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_railyard-server"))
            .arg("serve")
            .env("RAILYARD_DATA_DIR", data.path())
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(var), "{stderr}");
        assert!(!stderr.contains("hunter2"), "passwords are not echoed: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_is_a_clear_error() {
    let db = TestDb::new().await;
    let data = data_dir();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = Command::new(env!("CARGO_BIN_EXE_railyard-server"))
        .arg("serve")
        .env("RAILYARD_DATA_DIR", data.path())
        .env("DATABASE_URL", &db.url)
        .env("RAILYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("RAILYARD_ROUTER_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on RAILYARD_LISTEN=127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_or_weak_master_key_is_refused() {
    let db = TestDb::new().await;
    let data = data_dir();
    for key in ["", "changeme", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="] {
        let output = Command::new(env!("CARGO_BIN_EXE_railyard-server"))
            .arg("serve")
            .env("RAILYARD_DATA_DIR", data.path())
            .env("DATABASE_URL", &db.url)
            .env("RAILYARD_MASTER_KEY", key)
            .env("RAILYARD_LISTEN", "127.0.0.1:0")
            .env("RAILYARD_ROUTER_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!output.status.success(), "started with master key {key:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("RAILYARD_MASTER_KEY"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_instance_prints_a_one_time_setup_link() {
    let db = TestDb::new().await;
    let data = data_dir();
    let mut server = Server::start(data.path(), Some(&db.url));
    server.wait_healthy().await;
    let out = server.output();
    let line = out
        .lines()
        .find(|l| l.contains("/setup?token="))
        .unwrap_or_else(|| panic!("no setup link:\n{out}"));
    let token = line.split("token=").nth(1).unwrap().trim().to_owned();
    assert!(token.len() >= 40, "{token}");
    let key = fs::read_to_string(data.path().join("master.key")).unwrap();
    assert!(
        key.lines().any(|l| l.starts_with("1:")),
        "a master key was generated into the data dir"
    );
    assert_eq!(
        fs::metadata(data.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let client = reqwest::Client::new();
    let signup = |token: String| {
        client
            .post(format!("http://127.0.0.1:{}/api/v1/auth/signup", server.api))
            .json(&serde_json::json!({"email": "root@example.com", "password": "correct horse battery", "name": "Root", "setup_token": token}))
            .send()
    };
    assert_eq!(signup(token.clone()).await.unwrap().status(), 201);
    assert_eq!(signup(token).await.unwrap().status(), 403, "the link works once");
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit().await.success());

    // With an account in place, a restart prints no link.
    let mut again = Server::start(data.path(), Some(&db.url));
    again.wait_healthy().await;
    assert!(!again.output().contains("/setup?token="), "{}", again.output());
}

/// A connection from `source` (a loopback address: every 127/8 address is this host's) to
/// `port` that sends nothing.
async fn silent_connection(source: &str, port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap()
}

/// Whether the server closed `stream` within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Those of `streams` the server has not closed within `within` (all waited on at once).
async fn still_open(streams: Vec<tokio::net::TcpStream>, within: Duration) -> Vec<tokio::net::TcpStream> {
    let checks = streams
        .into_iter()
        .map(|mut stream| async move { (!closed_within(&mut stream, within).await).then_some(stream) });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// `GET path` on `port` from the loopback address `source`: its status, or `None` when
/// the connection was refused or cut.
async fn get_from(source: &str, port: u16, path: &str) -> Option<u16> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let res = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .ok()?;
    Some(res.status().as_u16())
}

/// Finding 5 of the tenant boundary: 20,100 half-open connections from one client used up
/// the server's file descriptors and took the API and every app offline.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_flood_is_cut_off_and_leaves_the_api_and_the_router_up() {
    let db = TestDb::new().await;
    let data = data_dir();
    let env = [
        ("RAILYARD_IDLE_TIMEOUT_SECS", "5"),
        ("RAILYARD_ROUTER_IDLE_TIMEOUT_SECS", "5"),
        ("RAILYARD_MAX_CONNECTIONS_PER_CLIENT", "40"),
        ("RAILYARD_MAX_CONNECTIONS", "100"),
        ("RAILYARD_WORKERS", "0"),
    ];
    let env = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut server = Server::start_with(data.path(), Some(&db.url), env);
    server.wait_healthy().await;
    let (api, router) = (server.api, server.router);

    // The open-file limit is raised to the hard limit.
    let limits = fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(files[3], files[4], "soft = hard open-file limit: {limits}");

    // One address floods the API: past 40 connections, each new one is closed at once.
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(silent_connection("127.0.0.1", api).await);
    }
    let mut open = still_open(flood, Duration::from_millis(300)).await;
    assert_eq!(open.len(), 40, "connections the flooding address kept");
    // Everyone else is still served: another client of the API, and the router.
    assert_eq!(get_from("127.0.0.2", api, "/api/v1/health").await, Some(200));
    assert!(
        get_from("127.0.0.1", router, "/").await.is_some(),
        "the router answers the flooding address"
    );

    // Many addresses together stop at the listener's budget (100); the router has its own.
    let mut more = Vec::new();
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        for _ in 0..40 {
            more.push(silent_connection(source, api).await);
        }
    }
    open.extend(still_open(more, Duration::from_millis(300)).await);
    assert_eq!(open.len(), 100, "connections the API holds at most");
    assert_eq!(
        get_from("127.0.0.5", api, "/api/v1/health").await,
        None,
        "a 101st is refused"
    );
    assert!(
        get_from("127.0.0.5", router, "/").await.is_some(),
        "the app router does not share the API's budget"
    );

    // Connections that send nothing are closed after the idle timeout (5 s), and the API
    // serves again.
    let left = still_open(open, Duration::from_secs(8)).await;
    assert_eq!(left.len(), 0, "silent connections that outlived the idle timeout");
    assert_eq!(get_from("127.0.0.1", api, "/api/v1/health").await, Some(200));

    // A connection that stops in the middle of its headers is closed too.
    let mut stalled = silent_connection("127.0.0.6", api).await;
    {
        use tokio::io::AsyncWriteExt as _;
        stalled
            .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
    }
    let started = Instant::now();
    assert!(closed_within(&mut stalled, Duration::from_secs(6)).await);
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "closed before the idle timeout"
    );
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit().await.success());
}
