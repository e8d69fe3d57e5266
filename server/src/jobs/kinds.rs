//! Every kind of job, as a typed payload. A job is a struct that names its kind, its
//! attempts and its dedupe key; it is enqueued with [`enqueue`] inside the writer's
//! transaction and read back with serde, never by hand. `worker` registers a handler for
//! each kind in [`ALL`].

use std::{marker::PhantomData, sync::Arc};

use anyhow::Context as _;
use diesel_async::AsyncPgConnection;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use super::{Job, JobHandler};

/// A kind of job: its payload is `Self`.
pub trait JobKind: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: &'static str;
    /// Attempts before the job is dead.
    const MAX_ATTEMPTS: i32;
    /// With a key, the job is enqueued at most once, ever.
    fn dedupe_key(&self) -> Option<String> {
        None
    }
}

/// The kinds of every job Railyard enqueues (`worker` has a handler for each).
pub const ALL: &[&str] = &[
    Deploy::KIND,
    ServiceAction::KIND,
    Teardown::KIND,
    GithubStatus::KIND,
    GithubComment::KIND,
    ProvisionDatabase::KIND,
    BackupDatabase::KIND,
    RestoreBackup::KIND,
];

/// Adds `job` inside the caller's transaction; `None` when its dedupe key existed.
pub async fn enqueue<J: JobKind>(conn: &mut AsyncPgConnection, job: &J) -> diesel::QueryResult<Option<i64>> {
    let payload =
        serde_json::to_value(job).map_err(|err| diesel::result::Error::SerializationError(err.into()))?;
    super::enqueue(
        conn,
        J::KIND,
        payload,
        job.dedupe_key().as_deref(),
        J::MAX_ATTEMPTS,
    )
    .await
}

/// Which attempt of a job a handler runs.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub job: i64,
    /// 1 for the first.
    pub number: i32,
    /// No retry follows a failure of this one.
    pub last: bool,
}

/// Runs the jobs of kind `J`. Handlers must be idempotent: a job whose worker died mid-way
/// runs again.
#[async_trait::async_trait]
pub trait Handle<J: JobKind>: Send + Sync + 'static {
    async fn handle(&self, job: J, attempt: Attempt) -> anyhow::Result<()>;
}

/// The queue's view of a typed handler.
pub fn handler<J: JobKind, H: Handle<J>>(handler: H) -> Arc<dyn JobHandler> {
    Arc::new(Typed::<J, H> {
        handler,
        kind: PhantomData,
    })
}

struct Typed<J, H> {
    handler: H,
    kind: PhantomData<fn() -> J>,
}

#[async_trait::async_trait]
impl<J: JobKind, H: Handle<J>> JobHandler for Typed<J, H> {
    fn kind(&self) -> &'static str {
        J::KIND
    }

    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let payload: J = serde_json::from_value(job.payload.clone())
            .with_context(|| format!("a malformed {} job", J::KIND))?;
        let attempt = Attempt {
            job: job.id,
            number: job.attempts,
            last: job.attempts >= job.max_attempts,
        };
        self.handler.handle(payload, attempt).await
    }
}

/// Builds a deployment (or re-releases one) and takes it live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    pub deployment_id: Uuid,
}

impl JobKind for Deploy {
    const KIND: &'static str = "deploy";
    /// Builds are long; retries are for infrastructure failures (a failing build is an
    /// outcome, not a retry).
    const MAX_ATTEMPTS: i32 = 3;

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("deploy:{}", self.deployment_id))
    }
}

/// What a service action does to a running service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new process beside the old one; the old one stops once the new one is healthy.
    Restart,
    Stop,
    /// Starts the active release if nothing of it runs.
    Start,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Stop => "stop",
            Self::Start => "start",
        }
    }

    /// As a sentence starts it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Restart => "Restart",
            Self::Stop => "Stop",
            Self::Start => "Start",
        }
    }
}

/// Restarts, stops or starts a service in an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAction {
    pub service_id: Uuid,
    pub environment_id: Uuid,
    pub action: Action,
}

impl JobKind for ServiceAction {
    const KIND: &'static str = "service_action";
    const MAX_ATTEMPTS: i32 = 2;
}

/// A process of a deleted service, as it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TornInstance {
    pub id: Uuid,
    pub service_id: Uuid,
    pub environment_id: Uuid,
    pub pid: Option<i32>,
    pub start_ticks: Option<i64>,
}

/// Stops what a deleted service, environment, project or workspace still runs and removes
/// what it left on disk. Its rows are gone: the job carries what it must find.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Teardown {
    /// What was deleted (`service <id>`), for the server's log.
    pub what: String,
    pub instances: Vec<TornInstance>,
    /// Services deleted entirely (their pushed repository, build cache and log directory go).
    pub services: Vec<Uuid>,
    /// Service and environment pairs whose log file goes (an environment deleted).
    pub logs: Vec<(Uuid, Uuid)>,
    /// Release directories, relative to the data directory.
    pub releases: Vec<String>,
    pub uploads: Vec<Uuid>,
    /// Apps' databases whose environment or service went.
    #[serde(default)]
    pub databases: Vec<DroppedDatabase>,
    /// Their backups' objects in the store.
    #[serde(default)]
    pub backup_objects: Vec<String>,
}

/// An app's database to drop, as its row said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedDatabase {
    pub name: String,
    pub role: String,
    pub driver: String,
    #[serde(default)]
    pub external_id: Option<String>,
}

impl JobKind for Teardown {
    const KIND: &'static str = "teardown";
    const MAX_ATTEMPTS: i32 = 5;
}

/// Reports a deployment of a GitHub commit to GitHub: creates its GitHub Deployment when
/// it has none, then posts the status its current state maps to. `inactive` carries what a
/// deleted preview's deployments were (their rows are gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubStatus {
    pub deployment_id: Uuid,
    /// The state this job was enqueued for (part of the dedupe key).
    pub state: String,
    #[serde(default)]
    pub inactive: Option<GithubInactive>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubInactive {
    pub repository: String,
    pub github_id: i64,
}

impl JobKind for GithubStatus {
    const KIND: &'static str = "github_status";
    const MAX_ATTEMPTS: i32 = 5;

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("github_status:{}:{}", self.deployment_id, self.state))
    }
}

/// Writes (or edits in place) the pull request's comment on a project's preview: its URLs,
/// or `note` (removed, refused at the limit, waiting for approval).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubComment {
    pub project_id: Uuid,
    pub repository: String,
    pub pr: i32,
    #[serde(default)]
    pub note: Option<String>,
}

impl JobKind for GithubComment {
    const KIND: &'static str = "github_comment";
    const MAX_ATTEMPTS: i32 = 5;
}

/// Creates an app's database (empty, or a copy of the environment it branches from) and
/// writes its variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionDatabase {
    pub database_id: Uuid,
    /// Who asked (the variables' writer).
    pub actor: Uuid,
}

impl JobKind for ProvisionDatabase {
    const KIND: &'static str = "provision_database";
    /// A branch waits for its source's database to be ready: retried with backoff.
    const MAX_ATTEMPTS: i32 = 8;

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("provision_database:{}", self.database_id))
    }
}

/// Takes one backup, stores it and verifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupDatabase {
    pub backup_id: Uuid,
}

impl JobKind for BackupDatabase {
    const KIND: &'static str = "backup_database";
    /// A failed backup is an outcome (its reason is stored), not a retry.
    const MAX_ATTEMPTS: i32 = 1;

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("backup_database:{}", self.backup_id))
    }
}

/// Restores a backup into a new database or in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreBackup {
    pub restore_id: Uuid,
}

impl JobKind for RestoreBackup {
    const KIND: &'static str = "restore_backup";
    const MAX_ATTEMPTS: i32 = 1;

    fn dedupe_key(&self) -> Option<String> {
        Some(format!("restore_backup:{}", self.restore_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_keep_their_wire_shape() {
        let id = Uuid::nil();
        let deploy = serde_json::to_value(Deploy { deployment_id: id }).unwrap();
        assert_eq!(deploy, serde_json::json!({ "deployment_id": id }));
        let action = ServiceAction {
            service_id: id,
            environment_id: id,
            action: Action::Restart,
        };
        let value = serde_json::to_value(&action).unwrap();
        assert_eq!(value["action"], "restart");
        assert_eq!(serde_json::from_value::<ServiceAction>(value).unwrap(), action);
    }
}
