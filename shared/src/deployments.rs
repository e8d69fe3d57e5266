//! Deployments, their build plans, logs and per-environment service settings on the wire.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DeploymentId, EnvironmentId, ProjectId, ServiceId, UserId};

/// A command in a build plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The user's own command line, run by `sh -c`.
    Shell(String),
    /// A command Railyard chose, run directly (no shell).
    Argv(Vec<String>),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Shell(line) => f.write_str(line),
            Step::Argv(args) => f.write_str(&args.join(" ")),
        }
    }
}

/// How a deployment is built and started, as detected (like a Nixpacks plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    /// What decided the plan: `railyard.toml`, `procfile`, `node`, `python`, `rust`, `go`,
    /// `static`, or `settings` when the service's own settings did.
    pub provider: String,
    pub build: Vec<Step>,
    /// `None` for a static site, which Railyard serves itself.
    pub start: Option<Step>,
    pub health_check: Option<String>,
    /// The directory, relative to the source root, that the plan applies to.
    pub root: String,
    /// The language versions the code asks for and what provides them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub toolchains: Vec<Toolchain>,
    /// For a static site built by the plan: the directory (relative to `root`) served,
    /// e.g. Vite's `dist`. `None` serves `root` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_dir: Option<String>,
    /// For a static site: paths that name no file are answered with its `index.html` (a
    /// single-page app's client-side routes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spa: bool,
    /// The release step found (a Procfile's `release:`, Django's `migrate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Step>,
    /// How many of the first build steps install dependencies: skipped when the build
    /// reuses what the last one installed (its lockfile unchanged).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub install_steps: usize,
    /// What the plan was read from and what was found but not used, one line each (also
    /// in the build log).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Plan {
    /// A plan with only a provider and its steps; the rest is empty.
    pub fn new(provider: &str, build: Vec<Step>, start: Option<Step>) -> Self {
        Self {
            provider: provider.to_owned(),
            build,
            start,
            health_check: None,
            root: String::new(),
            toolchains: Vec::new(),
            static_dir: None,
            spa: false,
            release: None,
            install_steps: 0,
            notes: Vec::new(),
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A language version a plan asks for (`node` `>=22` from `package.json`'s `engines.node`)
/// and, once provided, the version used and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Toolchain {
    /// `node`, `python`, `go` or `rust`.
    pub name: String,
    /// The version or range asked for, as written.
    pub requested: String,
    /// Where it was asked for: `.nvmrc`, `package.json engines.node`, `go.mod`, …
    pub source: String,
    /// The version provided (set when the build provides it).
    #[serde(default)]
    pub version: Option<String>,
    /// A directory put first on `PATH` for the build and the app.
    #[serde(default)]
    pub bin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deployment {
    pub id: DeploymentId,
    pub service_id: ServiceId,
    pub environment_id: EnvironmentId,
    pub state: crate::DeploymentState,
    /// `git`, `push`, `upload`, `rollback` or `promotion`.
    pub source: String,
    pub branch: Option<String>,
    /// The commit asked for, then the one built.
    pub commit: Option<String>,
    /// For a rollback: the deployment whose release it reuses.
    pub release_of: Option<DeploymentId>,
    /// For a promotion: the deployment (of another environment) whose build it runs.
    #[serde(default)]
    pub promoted_from: Option<DeploymentId>,
    /// For a promotion: the name of the environment it came from.
    #[serde(default)]
    pub promoted_from_environment: Option<String>,
    /// The commit's subject line and author, once it is checked out.
    #[serde(default)]
    pub commit_message: Option<String>,
    #[serde(default)]
    pub commit_author: Option<String>,
    /// Why it ended failed or cancelled.
    pub reason: Option<String>,
    pub triggered_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transition {
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Time spent in each phase so far, in milliseconds (absent for phases not reached).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Durations {
    pub queued_ms: Option<i64>,
    pub build_ms: Option<i64>,
    pub deploy_ms: Option<i64>,
    pub total_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub deployment: Deployment,
    pub plan: Option<Plan>,
    pub history: Vec<Transition>,
    pub durations: Durations,
    /// Where the build log is: `GET` it for lines with cursors.
    pub log_url: String,
    /// The last lines of the build log (kept with a failed deployment to show why).
    pub log_tail: Vec<String>,
    /// Whether this deployment's release is kept, so it can be rolled back to.
    pub release_available: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentResponse {
    pub deployment: DeploymentDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentsResponse {
    pub deployments: Vec<Deployment>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateDeploymentRequest {
    /// Defaults to the project's `production` environment.
    #[serde(default)]
    pub environment_id: Option<EnvironmentId>,
    /// Defaults to the service's branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// A commit on that branch (full or abbreviated id); defaults to its head.
    #[serde(default)]
    pub commit: Option<String>,
}

/// A line of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLine {
    /// Monotonic within the log; pass the last one seen as `cursor` to read on.
    pub cursor: i64,
    pub ts: DateTime<Utc>,
    /// `stdout`, `stderr` or `event` (Railyard's own lines).
    pub stream: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogsResponse {
    pub lines: Vec<LogLine>,
    /// Pass as `cursor` for the lines after these; `None` when nothing more is stored yet.
    pub next_cursor: Option<i64>,
}

/// Restart policies of a running service.
pub const RESTART_POLICIES: &[&str] = &["on_failure", "always", "never"];

/// Whether `path` may be a health check path (settings and `railyard.toml` alike): an
/// absolute path of printable ASCII, at most 512 bytes, naming no other host (`//host`,
/// `@host`, `\`).
pub fn valid_health_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 512
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'@' && b != b'\\' && b != b'#')
}

/// A service's settings in one environment. `None` means "detect" (or the default). Unknown
/// fields are refused, so a misspelt setting is an error rather than silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// The directory inside the source to build and run.
    #[serde(default)]
    pub root_dir: Option<String>,
    #[serde(default)]
    pub build_command: Option<String>,
    #[serde(default)]
    pub start_command: Option<String>,
    /// A path such as `/health`; the runtime waits for a 2xx there before switching.
    #[serde(default)]
    pub health_check_path: Option<String>,
    /// `on_failure` (default), `always` or `never`.
    #[serde(default)]
    pub restart_policy: Option<String>,
    /// The port the app listens on; by default Railyard picks one and passes it as `PORT`.
    #[serde(default)]
    pub port: Option<i32>,
    #[serde(default)]
    pub memory_limit_mb: Option<i32>,
    /// The git branch this environment tracks: a push to it deploys here. Unset, production
    /// tracks the service's branch and other environments track none (deploy or promote).
    #[serde(default)]
    pub branch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceSettingsResponse {
    pub environment_id: EnvironmentId,
    pub settings: ServiceSettings,
}

/// A service's running state in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceStatus {
    /// `not_deployed`, `starting`, `running`, `stopping`, `stopped` or `crashed`.
    pub state: crate::ServiceState,
    pub pid: Option<i32>,
    pub port: Option<i32>,
    /// Where the router serves it.
    pub url: String,
    pub restarts: i32,
    /// Seconds since the current process started (while running).
    pub uptime_s: Option<i64>,
    /// Resident memory of the app's processes in bytes (while running; `None` where the
    /// process runs on another host than the one answering).
    #[serde(default)]
    pub memory_bytes: Option<i64>,
    pub last_exit_code: Option<i32>,
    /// The deployment whose release runs.
    pub deployment_id: Option<DeploymentId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceStatusResponse {
    pub status: ServiceStatus,
}

/// A service action the API accepted (`POST /api/v1/services/{id}/restart|stop|start`): the
/// process that runs apps carries it out at once; the status and the active deployment's
/// log show the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceAction {
    /// `restart`, `stop` or `start`.
    pub action: String,
    pub service_id: ServiceId,
    pub environment_id: EnvironmentId,
    /// The queued job that carries it out.
    pub job_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceActionResponse {
    pub action: ServiceAction,
}

/// One service on a project's canvas, in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceOverview {
    pub service: crate::projects::Service,
    pub status: ServiceStatus,
    /// The deployment serving traffic.
    pub active: Option<Deployment>,
    /// The newest deployment (it may still be building, or have failed).
    pub latest: Option<Deployment>,
}

/// A project's services in one environment: what the canvas shows, also sent on the live
/// socket (topic `project:<id>:<environment id>`) whenever any of it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectOverview {
    pub project_id: ProjectId,
    pub environment_id: EnvironmentId,
    pub services: Vec<ServiceOverview>,
}

#[cfg(test)]
mod tests {
    use super::valid_health_path;

    #[test]
    fn health_paths_name_no_other_host() {
        for ok in ["/", "/health", "/healthz?full=1", "/api/v1/health"] {
            assert!(valid_health_path(ok), "{ok}");
        }
        for bad in [
            "health",
            "@127.0.0.1:31999/x",
            "//evil.example/x",
            "/a b",
            "/x@y",
            "/a\\b",
            "/x#y",
            "",
        ] {
            assert!(!valid_health_path(bad), "{bad}");
        }
        assert!(!valid_health_path(&format!("/{}", "a".repeat(512))));
    }
}
