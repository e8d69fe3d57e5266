//! Configuration from the environment, one struct per area.
//!
//! Every variable is listed in `.env.example`. Parsing fails fast, naming the variable and
//! what was expected, before anything starts.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::crypto::KeySource;

#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is invalid: {expected}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub expected: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub dashboard: DashboardConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub pipeline: PipelineConfig,
    pub runtime: RuntimeConfig,
    /// Who tenant code runs as (`RAILYARD_ISOLATION`, `RAILYARD_SANDBOX_*`).
    pub sandbox: crate::sandbox::SandboxConfig,
    /// GitHub as a source: where repositories are cloned from, its API, the webhook secret.
    pub github: GitHubIntegration,
    /// Apps' databases and backups.
    pub databases: DatabasesConfig,
    /// Where Railyard keeps its state: the embedded PostgreSQL cluster, later releases and logs.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Dashboard + API (`RAILYARD_LISTEN`).
    pub listen: SocketAddr,
    /// The app router (`RAILYARD_ROUTER_LISTEN`).
    pub edge_listen: SocketAddr,
    /// `serve` runs the app router itself (`RAILYARD_ROUTER=embedded`, the default), or leaves
    /// it to a separate `railyard-server router` process (`external`) that keeps routing
    /// while the control plane restarts.
    pub embedded_edge: bool,
    /// Upper bound for one API request (`RAILYARD_REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Duration,
    /// An API connection that does not finish its request headers, or idles between
    /// requests, is closed after this (`RAILYARD_IDLE_TIMEOUT_SECS`, default 60).
    pub idle_timeout: Duration,
    /// Connections one client address may hold open at once, on the API and on the app
    /// router each (`RAILYARD_MAX_CONNECTIONS_PER_CLIENT`, default 256; 0 for no cap, as
    /// behind a proxy that is the only client).
    pub max_connections_per_client: usize,
    /// Connections the API listener holds at once (`RAILYARD_MAX_CONNECTIONS`); by default
    /// a quarter of the process's open-file limit.
    pub max_connections: Option<usize>,
    /// Connections the app router holds at once (`RAILYARD_ROUTER_MAX_CONNECTIONS`); by
    /// default half of the open-file limit (of its own process, under `router`).
    pub router_max_connections: Option<usize>,
    /// The app router's request and idle timeouts.
    pub edge_timeouts: EdgeTimeouts,
    /// Threads of `railyard-server router` (`RAILYARD_ROUTER_THREADS`), each an event loop of
    /// its own. By default half the CPUs (at least one): the router shares the machine with
    /// the apps it serves, and a loop that competes with them for a core costs more than it
    /// brings (measured in `bench/router.sh`).
    pub edge_threads: usize,
    /// Largest accepted JSON body (`RAILYARD_BODY_LIMIT_BYTES`).
    pub body_limit: usize,
    /// Base URL printed for humans (`RAILYARD_PUBLIC_URL`); derived from `listen` when unset.
    pub public_url: String,
    /// Proxies whose `X-Forwarded-For` is believed (`RAILYARD_TRUSTED_PROXIES`); by default
    /// none, and the client address is the socket's peer.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The app router's (the edge proxy's) limits on clients and apps.
#[derive(Debug, Clone, Copy)]
pub struct EdgeTimeouts {
    /// From the request to the app's response head (`RAILYARD_ROUTER_REQUEST_TIMEOUT_SECS`,
    /// default 300); then 504. A response that has begun may stream for as long as it likes.
    pub request: Duration,
    /// A client connection idle between requests, or slow to send its request headers, is
    /// closed after this (`RAILYARD_ROUTER_IDLE_TIMEOUT_SECS`, default 75).
    pub idle: Duration,
}

impl Default for EdgeTimeouts {
    fn default() -> Self {
        Self {
            request: Duration::from_secs(300),
            idle: Duration::from_secs(75),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`; `None` starts the embedded PostgreSQL cluster.
    pub url: Option<String>,
    pub pool_size: u32,
    /// Set as `statement_timeout` on every new pooled connection.
    pub statement_timeout: Duration,
    /// How long to wait for a pooled connection before answering 503.
    pub acquire_timeout: Duration,
    /// Directory holding `initdb` and `pg_ctl` for the embedded cluster (`RAILYARD_PG_BIN_DIR`).
    pub pg_bin_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`; `None` keeps the log bus in-process.
    pub url: Option<String>,
}

/// Builds and the job workers that run them.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// `GITHUB_URL`: GitHub sources are cloned from `{GITHUB_URL}/owner/name.git`.
    pub github_url: String,
    /// Directories `file://` sources may come from (`RAILYARD_FILE_SOURCE_ROOTS`; none by
    /// default, so no repository on the host is clonable).
    pub file_source_roots: Vec<PathBuf>,
    /// Jobs run at once by this process (`RAILYARD_WORKERS`, default the build concurrency
    /// plus 4, so go-lives, service actions and teardowns never wait behind builds; 0 runs
    /// none).
    pub workers: usize,
    /// Builds run at once by this process (`RAILYARD_BUILD_CONCURRENCY`, default the number
    /// of CPUs): a deploy holds a build slot while it fetches and builds, not while its
    /// release starts, waits for health or drains the old one.
    pub build_concurrency: usize,
    /// How long a claimed job holds without a heartbeat before another worker may take it
    /// (`RAILYARD_JOB_LEASE_SECS`, default 30).
    pub job_lease: Duration,
    /// Upper bound for fetching and building one deployment (`RAILYARD_BUILD_TIMEOUT_SECS`,
    /// default 1800).
    pub build_timeout: Duration,
    /// Releases kept per service and environment for rollbacks (`RAILYARD_RELEASES_KEEP`,
    /// default 5).
    pub releases_kept: i64,
    /// Largest accepted source upload, compressed (`RAILYARD_UPLOAD_LIMIT_BYTES`, default
    /// 200 MiB); unpacked sources may be up to 4 times as large.
    pub upload_limit: u64,
    /// What a deployment's log keeps of its build's output (`RAILYARD_BUILD_LOG_LIMIT_BYTES`,
    /// default 10 MiB); past it, a line says so and the rest is dropped.
    pub build_log_limit: u64,
    /// Largest `git push` (`RAILYARD_PUSH_LIMIT_BYTES`, default 500 MiB).
    pub push_limit: u64,
    /// What one workspace's services may keep on disk (`RAILYARD_WORKSPACE_STORAGE_LIMIT_BYTES`,
    /// default 20 GiB): past it, uploads, pushes and new deployments are refused.
    pub workspace_storage_limit: u64,
    /// The npm registry Node.js versions are installed from when a build asks for one the
    /// host does not have (`RAILYARD_NODE_REGISTRY`, default `https://registry.npmjs.org`;
    /// a mirror of it works too).
    pub node_registry: String,
}

/// Running releases and routing to them.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Ports handed to apps as `PORT` (`RAILYARD_PORT_RANGE`, default `20000-29999`).
    pub ports: std::ops::RangeInclusive<u16>,
    /// How long a new release has to answer its health check (`RAILYARD_HEALTH_TIMEOUT_SECS`,
    /// default 60).
    pub health_timeout: Duration,
    /// SIGTERM → SIGKILL grace when stopping (`RAILYARD_STOP_GRACE_SECS`, default 10).
    pub stop_grace: Duration,
    /// How long the old release keeps running after the switch, for requests in flight
    /// (`RAILYARD_DRAIN_SECS`, default 5).
    pub drain: Duration,
    /// Apps answer at `<service>-<environment>-<project>.<base domain>`
    /// (`RAILYARD_BASE_DOMAIN`, default `localhost`).
    pub base_domain: String,
    /// Live instances are checked every this often (`RAILYARD_HEALTH_INTERVAL_SECS`, default
    /// 10; 0 checks only at go-live) ...
    pub health_every: Option<Duration>,
    /// ... and restarted after this many failed checks in a row (`RAILYARD_HEALTH_FAILURES`,
    /// default 3).
    pub health_failures: u32,
    /// An app's log file is rotated when it grows past this (`RAILYARD_LOG_MAX_BYTES`,
    /// default 10 MiB); three old files are kept.
    pub log_max_bytes: u64,
    /// Stored app log lines are kept this long (`RAILYARD_LOG_RETENTION_DAYS`, default 7).
    pub log_retention: Duration,
    /// Memory cgroups of apps are made here (`RAILYARD_CGROUP_ROOT`; default: `railyard`
    /// inside the server's own memory cgroup).
    pub cgroup_root: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Trunk's output directory (`RAILYARD_DASHBOARD_DIR`).
    pub dist_dir: PathBuf,
}

#[derive(Clone)]
pub struct AuthConfig {
    /// `RAILYARD_MASTER_KEY` / `RAILYARD_MASTER_KEY_FILE` / generated in the data dir.
    pub master_key: KeySource,
    /// `RAILYARD_SETUP_TOKEN`: the one-time token for the first account; generated when unset.
    pub setup_token: Option<String>,
    /// `RAILYARD_OPEN_SIGNUP`: anyone may sign up (default: invitation only).
    pub open_signup: bool,
    /// `RAILYARD_CORS_ORIGINS`: origins allowed to call the API from a browser.
    pub cors_origins: Vec<String>,
    /// GitHub sign-in, when `GITHUB_CLIENT_ID` and `GITHUB_CLIENT_SECRET` are set.
    pub github: Option<GitHubConfig>,
    /// Invitation emails through Resend, when `RESEND_API_KEY` is set.
    pub mail: Option<MailConfig>,
}

#[derive(Clone)]
pub struct MailConfig {
    pub resend_api_key: String,
    /// `RESEND_API_URL` (default `https://api.resend.com`).
    pub resend_api_url: String,
    /// `RAILYARD_MAIL_FROM`, e.g. `Railyard <railyard@example.com>`.
    pub from: String,
}

/// GitHub repositories, webhooks and statuses (sign-in is [`GitHubConfig`]).
#[derive(Clone)]
pub struct GitHubIntegration {
    /// `GITHUB_URL` (default `https://github.com`): repositories are cloned from
    /// `{GITHUB_URL}/owner/name.git`.
    pub url: String,
    /// `GITHUB_API_URL` (default `https://api.github.com`).
    pub api_url: String,
    /// `GITHUB_WEBHOOK_SECRET`: a GitHub App's webhook secret, valid for every repository.
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for GitHubIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubIntegration")
            .field("url", &self.url)
            .field("api_url", &self.api_url)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "*****"))
            .finish()
    }
}

/// Where apps' databases live and where backups go.
#[derive(Clone)]
pub struct DatabasesConfig {
    /// `RAILYARD_APP_POSTGRES_ADMIN_URL`: a superuser connection to an existing server that
    /// holds apps' databases; unset, Railyard runs a cluster of its own in
    /// `<data>/app-postgres`.
    pub admin_url: Option<String>,
    /// `NEON_API_KEY` (+ `NEON_API_URL`, `NEON_PROJECT_ID`): apps' databases become branches
    /// of a Neon project.
    pub neon: Option<NeonConfig>,
    pub backup_store: BackupStoreConfig,
}

#[derive(Clone)]
pub struct NeonConfig {
    /// Default `https://console.neon.tech/api/v2`.
    pub api_url: String,
    pub api_key: String,
    pub project_id: String,
}

/// `RAILYARD_BACKUP_STORE`: `local` (default) or `s3`.
#[derive(Clone)]
pub enum BackupStoreConfig {
    /// `RAILYARD_BACKUP_DIR`, default `<data>/backups`.
    Local { dir: Option<PathBuf> },
    /// `RAILYARD_S3_ENDPOINT`, `RAILYARD_S3_BUCKET`, `RAILYARD_S3_REGION` (default
    /// `us-east-1`), `RAILYARD_S3_ACCESS_KEY_ID`, `RAILYARD_S3_SECRET_ACCESS_KEY`; path-style.
    S3 {
        endpoint: String,
        bucket: String,
        region: String,
        access_key: String,
        secret_key: String,
    },
}

impl std::fmt::Debug for DatabasesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = match &self.backup_store {
            BackupStoreConfig::Local { dir } => format!("local {dir:?}"),
            BackupStoreConfig::S3 { endpoint, bucket, .. } => format!("s3 {endpoint} {bucket}"),
        };
        f.debug_struct("DatabasesConfig")
            .field("admin_url", &self.admin_url.as_deref().map(redact_url))
            .field("neon", &self.neon.as_ref().map(|n| (&n.api_url, &n.project_id)))
            .field("backup_store", &store)
            .finish()
    }
}

#[derive(Clone)]
pub struct GitHubConfig {
    pub client_id: String,
    pub client_secret: String,
    /// `GITHUB_OAUTH_URL` (default `https://github.com`).
    pub oauth_url: String,
    /// `GITHUB_API_URL` (default `https://api.github.com`).
    pub api_url: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys or tokens.
        f.debug_struct("AuthConfig")
            .field("open_signup", &self.open_signup)
            .field("cors_origins", &self.cors_origins)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `RUST_LOG`-style filter.
    pub filter: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Parses configuration from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Self {
            http: read::http(&env)?,
            database: read::database(&env)?,
            redis: read::redis(&env)?,
            log: read::log(&env)?,
            auth: read::auth(&env)?,
            pipeline: read::pipeline(&env)?,
            runtime: read::runtime(&env)?,
            sandbox: read::sandbox(&env)?,
            github: read::github(&env)?,
            databases: read::databases(&env)?,
            dashboard: DashboardConfig {
                dist_dir: env
                    .get("RAILYARD_DASHBOARD_DIR")
                    .map_or_else(|| PathBuf::from("dist"), PathBuf::from),
            },
            data_dir: env
                .get("RAILYARD_DATA_DIR")
                .map_or_else(|| PathBuf::from(".railyard"), PathBuf::from),
        })
    }
}

fn default_public_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", listen.port())
}

/// Hides the password of a connection URL so it can appear in an error message.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let slash = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{user}:*****@{host}{slash}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Why a PostgreSQL URL lets anyone on the host in: it names a TCP address and carries no
/// password (so it relies on `trust`, which admits every local process). `None` for a URL
/// with a password (in the user part or `?password=`) or for a UNIX socket.
pub fn reachable_without_password(url: &str) -> Option<&'static str> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let socket_host = parsed
        .query_pairs()
        .any(|(key, value)| key == "host" && value.starts_with('/'));
    let has_password = parsed.password().is_some_and(|p| !p.is_empty())
        || parsed
            .query_pairs()
            .any(|(key, value)| key == "password" && !value.is_empty());
    // `%2Frun%2Fpostgresql`: a socket directory in the host part (libpq's form).
    let tcp = parsed
        .host_str()
        .is_some_and(|h| !h.is_empty() && !h.to_ascii_lowercase().starts_with("%2f"))
        && !socket_host;
    (tcp && !has_password).then_some("names a TCP address and no password")
}

mod env;
mod read;
#[cfg(test)]
mod tests;

use env::Env;
