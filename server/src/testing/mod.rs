//! Test support (feature `test-support`): each test gets its own PostgreSQL database,
//! created from a template that is migrated once per migration set, so tests run in
//! parallel (nextest runs each in its own process) against a real server.
//!
//! The server under test is `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); Redis is `TEST_REDIS_URL`.

use std::{
    collections::HashMap,
    hash::{Hash as _, Hasher as _},
    path::Path,
};

use axum::{Router, body::Body, http::Request};
use diesel::{OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

mod client;
pub mod fake_github;
mod fixture;

pub use client::{Client, TestResponse};
pub use fixture::{Fixture, git_main, new_project, new_service, new_workspace, typed};

use crate::{
    app::{App, AppState},
    config::Config,
    db,
    postgres::pg_database,
    redis::RedisBus,
    router,
};

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Replaces the database name of a `postgres://` URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A throwaway database, dropped (with its connections) when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub name: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let admin = admin_url();
        let template = ensure_template(&admin).await;
        let name = format!("railyard_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin)
            .await
            .expect("connect to TEST_DATABASE_URL");
        conn.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await
            .expect("create the test database");
        Self {
            url: with_database(&admin, &name),
            name,
        }
    }

    /// Drops the database now (terminating its connections), e.g. to see the server
    /// cope with a database that went away.
    pub async fn drop_now(&self) {
        drop_database(&self.name).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside or outside a runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(drop_database(&name));
            }
        })
        .join();
    }
}

async fn drop_database(name: &str) {
    if name.is_empty() {
        return; // a replica's handle: the original drops the database
    }
    if let Ok(mut conn) = AsyncPgConnection::establish(&admin_url()).await {
        let _ = conn
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

/// Creates `railyard_template_<hash of migrations>` once, under an advisory lock, and
/// returns its name. Needs the multi-thread runtime (the migration harness blocks).
async fn ensure_template(admin: &str) -> String {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let template = format!("railyard_template_{:016x}", hash_dir(&migrations));
    let mut conn = AsyncPgConnection::establish(admin)
        .await
        .expect("connect to TEST_DATABASE_URL");
    conn.batch_execute("SELECT pg_advisory_lock(727274)")
        .await
        .expect("take the template lock");
    let exists: Option<String> = pg_database::table
        .select(pg_database::datname)
        .filter(diesel::ExpressionMethods::eq(pg_database::datname, &template))
        .first(&mut conn)
        .await
        .optional()
        .expect("look up the template");
    if exists.is_none() {
        let building = format!("{template}_building");
        // Left behind by a run that died mid-way.
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .await
            .expect("drop a half-built template");
        conn.batch_execute(&format!("CREATE DATABASE {building}"))
            .await
            .expect("create the template database");
        db::run_migrations(&with_database(admin, &building))
            .await
            .expect("migrate the template");
        conn.batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .await
            .expect("publish the template");
    }
    conn.batch_execute("SELECT pg_advisory_unlock(727274)")
        .await
        .expect("release the template lock");
    template
}

fn hash_dir(dir: &Path) -> u64 {
    let mut files: Vec<_> = walk(dir);
    files.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in files {
        file.hash(&mut hasher);
        std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

/// A fresh random master key, base64.
pub fn random_master_key() -> String {
    use base64::Engine as _;
    let key = crate::auth::secret::random_bytes::<32>().expect("random bytes");
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Configuration for a test: the given database, ports chosen by the OS, and `vars`
/// on top (same names as the real environment).
pub fn config(database_url: &str, vars: &[(&str, &str)]) -> Config {
    let mut map: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("RAILYARD_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("RAILYARD_ROUTER_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "RAILYARD_DASHBOARD_DIR".to_owned(),
            "/nonexistent-railyard-dist".to_owned(),
        ),
        ("RAILYARD_MASTER_KEY".to_owned(), random_master_key()),
        // Tests deploy repositories they make in temporary directories.
        ("RAILYARD_FILE_SOURCE_ROOTS".to_owned(), file_source_root()),
    ]);
    for (key, value) in vars {
        map.insert((*key).to_owned(), (*value).to_owned());
    }
    if map.contains_key("RAILYARD_MASTER_KEY_FILE") {
        map.remove("RAILYARD_MASTER_KEY");
    }
    Config::from_lookup(|name| map.get(name).cloned()).expect("valid test configuration")
}

/// Where tests make the repositories they deploy (the system's temporary directory,
/// resolved): what `RAILYARD_FILE_SOURCE_ROOTS` allows in tests and in the binaries they start.
pub fn file_source_root() -> String {
    let tmp = std::env::temp_dir();
    std::fs::canonicalize(&tmp)
        .unwrap_or(tmp)
        .to_string_lossy()
        .into_owned()
}

/// An app on its own database, called in-process.
/// The app on `database_url` as `serve` builds it: pool, Redis, state, status listener.
async fn start(config: Config, database_url: &str) -> AppState {
    let pool = db::connect_pool(&config.database, database_url)
        .await
        .expect("pool for the test database");
    let redis = match &config.redis.url {
        Some(url) => Some(RedisBus::connect(url).await.expect("connect to TEST_REDIS_URL")),
        None => None,
    };
    let state = AppState::new(App::build(config, pool, redis).await.expect("build the app"));
    crate::status::spawn_listener(database_url.to_owned(), state.bus.clone());
    state
}

#[derive(Debug)]
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub db: TestDb,
    /// The data directory (releases, uploads, pushed repositories), unless the test named
    /// its own with `RAILYARD_DATA_DIR`; removed with the app.
    pub data: tempfile::TempDir,
    /// The runtimes `start_runtime` started: their supervisors are stopped before the
    /// test's apps are killed, so nothing restarts them.
    runtimes: std::sync::Mutex<Vec<std::sync::Arc<crate::runtime::native::NativeRuntime>>>,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(&[], Router::new()).await
    }

    /// `vars` as in [`config`]; `extra` routes are mounted under the full middleware stack.
    pub async fn with(vars: &[(&str, &str)], extra: Router<AppState>) -> Self {
        let db = TestDb::new().await;
        let data = tempfile::tempdir().expect("a data directory");
        let data_dir = std::fs::canonicalize(data.path())
            .expect("an absolute data directory")
            .to_string_lossy()
            .into_owned();
        let mut all = vec![("RAILYARD_DATA_DIR", data_dir.as_str())];
        all.extend_from_slice(vars);
        let state = start(config(&db.url, &all), &db.url).await;
        Self {
            router: router::build(state.clone(), extra),
            state,
            db,
            data,
            runtimes: std::sync::Mutex::default(),
        }
    }

    /// A second app on the same database and configuration: another replica.
    pub async fn replica_of(other: &TestApp) -> TestApp {
        let config = other.state.config.clone();
        let db = TestDb {
            url: other.db.url.clone(),
            name: String::new(),
        };
        let state = start(config, &db.url).await;
        Self {
            router: router::build(state.clone(), Router::new()),
            state,
            db,
            data: tempfile::tempdir().expect("a data directory"),
            runtimes: std::sync::Mutex::default(),
        }
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router is infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("read the body").to_bytes().to_vec();
        TestResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Request::get(path).body(Body::empty()).expect("valid request"))
            .await
    }
}

impl TestApp {
    /// Creates the setup token and returns it, as `serve` does at start.
    pub async fn setup_token(&self) -> String {
        let mut conn = self.state.db.get().await.expect("connection");
        match crate::auth::setup::prepare(&mut conn, None)
            .await
            .expect("prepare setup")
        {
            crate::auth::setup::SetupState::Generated(token) => token,
            other => panic!("instance already set up: {other:?}"),
        }
    }

    /// Signs up the first account (the instance admin) and returns its signed-in client.
    pub async fn admin(&self) -> Client<'_> {
        let token = self.setup_token().await;
        let mut client = Client::new(self);
        let res = client
            .post(
                "/api/v1/auth/signup",
                serde_json::json!({"email": "admin@example.com", "password": "correct horse battery", "name": "Ada", "setup_token": token}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        client
    }
}

impl TestApp {
    /// Starts the job workers (deploys) on this app's database, as `serve` does.
    pub fn start_workers(&self) -> crate::jobs::WorkerPool {
        let pipeline = &self.state.config.pipeline;
        let handlers = crate::worker::handlers(&self.state, None);
        crate::jobs::WorkerPool::start(
            self.state.db.clone(),
            self.db.url.clone(),
            handlers,
            crate::jobs::WorkerConfig {
                workers: pipeline.workers.max(1),
                lease: pipeline.job_lease,
                poll_interval: std::time::Duration::from_millis(500),
                shutdown_grace: std::time::Duration::from_secs(5),
                ..crate::jobs::WorkerConfig::default()
            },
        )
    }
}

impl TestApp {
    /// Starts the job workers with the native runtime (built releases go live) and an app
    /// router kept current from the database, as `serve` does.
    pub async fn start_runtime(&self) -> (crate::jobs::WorkerPool, crate::edge::Edge) {
        let config = &self.state.config;
        let (runtime, handlers) = crate::worker::with_runtime(&self.state)
            .await
            .expect("the runtime starts");
        self.runtimes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(runtime);
        let pool = crate::jobs::WorkerPool::start(
            self.state.db.clone(),
            self.db.url.clone(),
            handlers,
            crate::jobs::WorkerConfig {
                workers: config.pipeline.workers.max(1),
                lease: config.pipeline.job_lease,
                poll_interval: std::time::Duration::from_millis(500),
                shutdown_grace: std::time::Duration::from_secs(5),
                ..crate::jobs::WorkerConfig::default()
            },
        );
        let edge = crate::edge::Edge::new(&config.runtime.base_domain, config.data_dir.clone())
            .with_timeouts(config.http.edge_timeouts);
        edge.spawn_refresh(self.state.db.clone(), self.db.url.clone());
        (pool, edge)
    }
}

impl TestApp {
    /// Connection limits of the listeners tests serve on: loose, as every test client
    /// shares one address (the limits themselves are tested on the `serve` binary).
    pub const LIMITS: crate::listener::Limits = crate::listener::Limits {
        envelope_long_lines: true,
        idle: std::time::Duration::from_secs(60),
        per_client: 0,
        total: 100_000,
    };

    /// Serves an app router on a free loopback port, as `serve` does; its address.
    pub async fn serve_edge(edge: crate::edge::Edge) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            crate::edge::listen::serve(listener, edge, Self::LIMITS, std::future::pending()).await;
        });
        addr
    }

    /// Serves the app on a free loopback port (with the peer address, as `serve` does) for
    /// clients that need a real URL: git, the CLI.
    pub async fn serve(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("its address");
        let router = self.router.clone();
        tokio::spawn(crate::listener::serve(
            listener,
            Self::LIMITS,
            move |peer| crate::listener::axum_service(router.clone(), peer),
            std::future::pending(),
        ));
        addr
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Apps outlive the server that started them (by design): a test's apps end with it.
        // Their supervisors stop first, or one would start a killed app again.
        for runtime in self
            .runtimes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            runtime.detach_all();
        }
        if let Ok(dir) = std::fs::canonicalize(self.data.path()) {
            crate::sandbox::kill_leftovers(&dir);
        }
    }
}

/// A git repository in a fresh directory with `files` committed on `main`; returns the
/// directory (kept while the value lives) and the commit id.
pub fn git_repo(files: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let commit = git_commit(dir.path(), files, true);
    (dir, commit)
}

/// Runs git in `dir` as a test author, without the host's configuration; its trimmed
/// stdout (panics with git's stderr on failure).
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes `files` into the repository at `dir` (initialising it when `init`) and commits.
pub fn git_commit(dir: &Path, files: &[(&str, &str)], init: bool) -> String {
    let git = |args: &[&str]| git_in(dir, args);
    if init {
        git(&["init", "--quiet"]);
    }
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write a file");
        if name.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    git(&["add", "--all"]);
    git(&["commit", "--quiet", "--allow-empty", "-m", "change"]);
    git(&["rev-parse", "HEAD"])
}

/// What [`fake_resend`] was sent.
pub type MailsSent = std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

/// A local server speaking Resend's `POST /emails`, answering `status`: its base URL and
/// every `(Authorization, body)` it was sent.
pub async fn fake_resend(status: u16) -> (String, MailsSent) {
    use axum::{Json, extract::State, http::HeaderMap, routing::post};
    let sent: MailsSent = Default::default();
    let router = axum::Router::new()
        .route(
            "/emails",
            post(
                move |State(sent): State<MailsSent>,
                      headers: HeaderMap,
                      Json(body): Json<serde_json::Value>| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    sent.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((auth, body));
                    (
                        axum::http::StatusCode::from_u16(status)
                            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
                        Json(serde_json::json!({"id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"})),
                    )
                },
            ),
        )
        .with_state(sent.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, sent)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5/postgres?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
    }
}
