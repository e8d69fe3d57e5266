//! The deploy job: fetch the source, detect the plan, build it in the deployment's own
//! release directory, and hand it to the runtime (`deploying`). A rollback skips all that
//! and reuses the release of the deployment it rolls back to.
//!
//! The job is idempotent: it acts only on the state it finds. A build whose worker died is
//! built again from scratch (its directory wiped, its log continued); every transition is
//! conditional, so a deployment is built to `deploying` at most once whatever runs twice.
//! A failing build is an outcome (`failed`, with the reason and the log kept), not a job
//! error; only infrastructure errors (the database, the disk) retry the job.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_shared::{deployments::Plan, projects::Source};
use tokio::{sync::watch, time::Instant};
use uuid::Uuid;

use super::{
    build::{self, StepError},
    deployment::{self as machine, State, TransitionError},
    detect, git,
    log::BuildLog,
    variables::VariableSource,
};
use crate::{
    config::PipelineConfig,
    db::DbPool,
    jobs::{Job, JobHandler},
    logbus::LogBus,
    models::{
        deployment::{DEPLOY_JOB, DeploymentRow, Deployments},
        project::Projects,
    },
    runtime::release::Releaser,
    schema::{deployments, releases},
};

/// Where things live under the data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub data_dir: PathBuf,
}

impl Layout {
    pub fn release(&self, deployment: Uuid) -> PathBuf {
        self.data_dir.join("releases").join(deployment.to_string())
    }

    /// The bare repository that `git push` writes to.
    pub fn push_repo(&self, service: Uuid) -> PathBuf {
        self.data_dir.join("git").join(format!("{service}.git"))
    }

    pub fn upload(&self, upload: Uuid) -> PathBuf {
        self.data_dir.join("uploads").join(upload.to_string())
    }

    /// `$HOME` of a service's builds: tool caches (npm, pip) survive between its builds
    /// and are shared with no other service.
    pub fn cache(&self, service: Uuid) -> PathBuf {
        self.data_dir.join("cache").join(service.to_string())
    }
}

pub struct DeployHandler {
    db: DbPool,
    layout: Layout,
    config: PipelineConfig,
    /// Starts built releases; without one, deployments stop at `deploying` (builds only).
    releaser: Option<Arc<Releaser>>,
    variables: VariableSource,
    /// Where stored build-log lines are published live.
    bus: LogBus,
}

impl DeployHandler {
    pub fn new(
        db: DbPool,
        data_dir: PathBuf,
        config: PipelineConfig,
        variables: VariableSource,
        bus: LogBus,
    ) -> Self {
        Self {
            db,
            layout: Layout { data_dir },
            config,
            releaser: None,
            variables,
            bus,
        }
    }

    /// Takes built releases live through `releaser`.
    pub fn with_releaser(self, releaser: Arc<Releaser>) -> Self {
        Self {
            releaser: Some(releaser),
            ..self
        }
    }

    /// Starts deployment `id` (if it is `deploying`) and switches traffic to it.
    async fn go_live(&self, id: Uuid, log: Option<&BuildLog>) -> anyhow::Result<()> {
        let Some(releaser) = &self.releaser else {
            return Ok(());
        };
        match log {
            Some(log) => releaser.go_live(id, log).await,
            None => {
                let log = BuildLog::open(self.db.clone(), Some(self.bus.clone()), id).await?;
                let result = releaser.go_live(id, &log).await;
                log.close().await?;
                result
            }
        }
    }
}

#[async_trait::async_trait]
impl JobHandler for DeployHandler {
    fn kind(&self) -> &'static str {
        DEPLOY_JOB
    }

    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let id: Uuid = job
            .payload
            .get("deployment_id")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse().ok())
            .context("the job names no deployment")?;
        let result = self.deploy(id).await;
        if let Err(err) = &result
            && job.attempts >= job.max_attempts
        {
            // The last attempt: the deployment must not stay in flight forever.
            let mut conn = self.db.get().await?;
            let reason = format!("internal error: {err:#}");
            for from in [State::Queued, State::Building, State::Deploying] {
                let _ = machine::transition(&mut conn, id, from, State::Failed, &reason).await;
            }
        }
        result
    }
}

/// Why a build did not produce a release.
enum Outcome {
    Built { plan: Plan, commit: Option<String> },
    Failed(String),
    Cancelled,
}

impl DeployHandler {
    async fn deploy(&self, id: Uuid) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let Some(row) = Deployments::find(&mut conn, id).await? else {
            return Ok(()); // deleted with its service
        };
        let state = row.state.as_str();
        if state == "deploying" {
            // Built (or re-released) already; the worker died before it went live.
            return self.go_live(id, None).await;
        }
        if let Some(of) = row.release_of {
            if state == "queued" {
                self.release_again(&row, of).await?;
                return self.go_live(id, None).await;
            }
            return Ok(());
        }
        let restarted = match state {
            "queued" => {
                match machine::transition(&mut conn, id, State::Queued, State::Building, "build started")
                    .await
                {
                    Ok(()) => false,
                    Err(TransitionError::Lost(_)) => return Ok(()), // cancelled meanwhile
                    Err(err) => return Err(err.into()),
                }
            }
            "building" => true,
            _ => return Ok(()), // built (or ended) already
        };
        drop(conn);

        let log = BuildLog::open(self.db.clone(), Some(self.bus.clone()), id).await?;
        if restarted {
            log.event(
                "The previous build attempt stopped (its worker went away); building again from scratch.",
            );
        }
        let dir = self.layout.release(id);
        if restarted {
            let dir = dir.clone();
            let killed = tokio::task::spawn_blocking(move || build::kill_leftovers(&dir)).await?;
            if killed > 0 {
                log.event(format!(
                    "Stopped {killed} process(es) left over from that attempt."
                ));
            }
        }
        let outcome = self.build(&row, &dir, &log).await;
        let mut conn = self.db.get().await?;
        let result = match outcome {
            Ok(Outcome::Built { plan, commit }) => {
                log.event("Build finished; handing the release to the runtime.");
                log.flush().await?;
                match self
                    .finish_build(&mut conn, &row, &dir, &plan, commit.as_deref())
                    .await
                {
                    Ok(()) => {
                        drop(conn);
                        self.go_live(id, Some(&log)).await
                    }
                    Err(err) => Err(err),
                }
            }
            Ok(Outcome::Failed(reason)) => {
                let reason = log.masker().mask(&reason);
                log.event(format!("Build failed: {reason}"));
                remove_dir(&dir).await;
                log.flush().await?;
                end(&mut conn, id, State::Failed, &reason).await
            }
            Ok(Outcome::Cancelled) => {
                log.event("Build cancelled.");
                remove_dir(&dir).await;
                Ok(())
            }
            Err(err) => {
                log.event(format!("Railyard could not finish this build: {err:#}"));
                Err(err)
            }
        };
        log.close().await?;
        result
    }

    /// Fetches and builds into `dir`; `Err` only for infrastructure failures.
    async fn build(&self, row: &DeploymentRow, dir: &Path, log: &BuildLog) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let deadline = started + self.config.build_timeout;
        remove_dir(dir).await;
        tokio::fs::create_dir_all(dir.parent().context("release directory has a parent")?).await?;

        // Cancel: the API moves the deployment to `cancelled`; this notices within 500 ms.
        let (cancel_tx, mut cancel) = watch::channel(false);
        let watcher = tokio::spawn({
            let (db, id) = (self.db.clone(), row.id);
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let Ok(mut conn) = db.get().await else { continue };
                    let state: Result<String, _> = deployments::table
                        .find(id)
                        .select(deployments::state)
                        .first(&mut conn)
                        .await;
                    if !matches!(state.as_deref(), Ok("building")) {
                        let _ = cancel_tx.send(true);
                        return;
                    }
                }
            }
        });
        let outcome = self.fetch_and_build(row, dir, log, deadline, &mut cancel).await;
        watcher.abort();
        let outcome = outcome?;
        if let Outcome::Built { .. } = outcome {
            log.event(format!("Built in {:.1} s.", started.elapsed().as_secs_f64()));
        }
        Ok(outcome)
    }

    async fn fetch_and_build(
        &self,
        row: &DeploymentRow,
        dir: &Path,
        log: &BuildLog,
        deadline: Instant,
        cancel: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<Outcome> {
        let timeout = self.config.build_timeout;
        let mut conn = self.db.get().await?;
        let Some(service) = Projects::service(&mut conn, row.service_id).await? else {
            return Ok(Outcome::Cancelled);
        };
        let settings = Deployments::settings(&mut conn, row.service_id, row.environment_id).await?;
        drop(conn);

        // 1. The source.
        let fetched = match (&service.source, row.source_kind.as_str()) {
            (_, "upload") => {
                let upload = row.upload_id.context("an upload deployment names its upload")?;
                log.event("Unpacking the uploaded source.");
                copy_tree(&self.layout.upload(upload), dir).await.map(|()| None)
            }
            (Source::Push { branch }, _) => {
                let branch = row.branch.as_deref().unwrap_or(branch);
                log.event(format!("Checking out the pushed branch {branch}."));
                let repo = self.layout.push_repo(service.id);
                git::fetch_pushed(&repo, branch, row.commit_sha.as_deref(), dir, timeout)
                    .await
                    .map(Some)
                    .map_err(|err| err.to_string())
            }
            (Source::Git { url, branch }, _) => {
                let branch = row.branch.as_deref().unwrap_or(branch);
                log.event(format!("Cloning {url} (branch {branch})."));
                let checkout = git::Checkout {
                    url,
                    branch,
                    commit: row.commit_sha.as_deref(),
                };
                git::fetch(&checkout, dir, &self.layout.data_dir, timeout)
                    .await
                    .map(Some)
                    .map_err(|err| err.to_string())
            }
            (Source::Upload {}, _) => Err("this service takes uploads: upload code to deploy it".to_owned()),
        };
        let commit = match fetched {
            Ok(commit) => commit,
            Err(reason) => return Ok(Outcome::Failed(reason)),
        };
        if let Some(commit) = &commit {
            log.event(format!("Checked out commit {commit}."));
        }

        // 2. The plan.
        let plan = {
            let (dir, settings) = (dir.to_owned(), settings.clone());
            tokio::task::spawn_blocking(move || detect::detect(&dir, &settings)).await?
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err(err) => return Ok(Outcome::Failed(err.to_string())),
        };
        log.event(format!(
            "Plan: {} (root `{}`).",
            plan.provider,
            if plan.root.is_empty() { "." } else { &plan.root }
        ));
        for step in &plan.build {
            log.event(format!("  build: {step}"));
        }
        match &plan.start {
            Some(start) => log.event(format!("  start: {start}")),
            None => log.event("  start: served by Railyard as a static site"),
        }
        {
            let mut conn = self.db.get().await?;
            diesel::update(deployments::table.find(row.id))
                .set((
                    deployments::plan.eq(serde_json::to_value(&plan)?),
                    deployments::commit_sha.eq(commit.as_deref().or(row.commit_sha.as_deref())),
                ))
                .execute(&mut conn)
                .await?;
        }

        // 3. The variables, resolved now (the commit is known) and kept with the deployment.
        let snapshot = {
            let mut conn = self.db.get().await?;
            let commit = commit.as_deref().or(row.commit_sha.as_deref());
            match self.variables.prepare(&mut conn, row, commit, log).await? {
                Ok(snapshot) => snapshot,
                Err(reason) => return Ok(Outcome::Failed(reason)),
            }
        };

        // 4. The build steps, in the plan's root.
        let home = self.layout.cache(row.service_id);
        tokio::fs::create_dir_all(&home).await?;
        let env = build::scrubbed_env(&home, &snapshot.env(None));
        let workdir = dir.join(&plan.root);
        for step in &plan.build {
            match build::run_step(
                step,
                &workdir,
                &env,
                log,
                deadline,
                self.config.build_timeout,
                cancel,
            )
            .await
            {
                Ok(()) => {}
                Err(StepError::Cancelled) => return Ok(Outcome::Cancelled),
                Err(err) => return Ok(Outcome::Failed(err.to_string())),
            }
        }
        Ok(Outcome::Built { plan, commit })
    }

    /// Records the release, prunes old releases, and moves the deployment to `deploying`.
    async fn finish_build(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        row: &DeploymentRow,
        dir: &Path,
        plan: &Plan,
        commit: Option<&str>,
    ) -> anyhow::Result<()> {
        let relative = dir
            .strip_prefix(&self.layout.data_dir)
            .unwrap_or(dir)
            .to_string_lossy()
            .into_owned();
        diesel::insert_into(releases::table)
            .values((
                releases::deployment_id.eq(row.id),
                releases::service_id.eq(row.service_id),
                releases::environment_id.eq(row.environment_id),
                releases::path.eq(relative),
                releases::plan.eq(serde_json::to_value(plan)?),
                releases::commit_sha.eq(commit),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        // Older releases go first, so `deploying` means the release set is settled.
        self.prune(conn, row.id, row.service_id, row.environment_id)
            .await?;
        match machine::transition(conn, row.id, State::Building, State::Deploying, "built").await {
            Ok(()) => Ok(()),
            // Cancelled at the last moment: the release is not used.
            Err(TransitionError::Lost(_)) => {
                remove_dir(dir).await;
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// A rollback (with the variables it ran with) or "deploy changes" (with the current
    /// ones): the earlier deployment's release, no rebuild.
    async fn release_again(&self, row: &DeploymentRow, of: Uuid) -> anyhow::Result<()> {
        let id = row.id;
        let mut conn = self.db.get().await?;
        let Some(release) = Deployments::release(&mut conn, of).await? else {
            return end(
                &mut conn,
                id,
                State::Failed,
                &format!("the release of {of} is no longer kept"),
            )
            .await;
        };
        let log = BuildLog::open(self.db.clone(), Some(self.bus.clone()), id).await?;
        let copied = row.source_kind == "rollback" && self.variables.copy(&mut conn, of, row, &log).await?;
        if !copied {
            let prepared = self
                .variables
                .prepare(&mut conn, row, release.commit_sha.as_deref(), &log)
                .await?;
            if let Err(reason) = prepared {
                log.event(format!("Deploy failed: {reason}"));
                log.close().await?;
                return end(&mut conn, id, State::Failed, &reason).await;
            }
        }
        log.close().await?;
        diesel::update(deployments::table.find(id))
            .set((
                deployments::plan.eq(&release.plan),
                deployments::commit_sha.eq(&release.commit_sha),
            ))
            .execute(&mut conn)
            .await?;
        let reason = format!("reusing the release of {of}");
        match machine::transition(&mut conn, id, State::Queued, State::Deploying, &reason).await {
            Ok(()) | Err(TransitionError::Lost(_)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Keeps the newest `releases_kept` releases of a service in an environment (and the
    /// active one and the one just built), removing the directories of the others.
    async fn prune(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        just_built: Uuid,
        service: Uuid,
        environment: Uuid,
    ) -> anyhow::Result<()> {
        let kept: Vec<(Uuid, String)> = releases::table
            .filter(releases::service_id.eq(service))
            .filter(releases::environment_id.eq(environment))
            .filter(releases::pruned_at.is_null())
            .order(releases::created_at.desc())
            .select((releases::deployment_id, releases::path))
            .load(conn)
            .await?;
        // Releases that serve (or are about to): of live deployments, or reused by them.
        let live: Vec<(Uuid, Option<Uuid>)> = deployments::table
            .filter(deployments::service_id.eq(service))
            .filter(deployments::environment_id.eq(environment))
            .filter(deployments::state.eq_any(["active", "deploying"]))
            .select((deployments::id, deployments::release_of))
            .load(conn)
            .await?;
        let in_use =
            |release: Uuid| release == just_built || live.iter().any(|(id, of)| of.unwrap_or(*id) == release);
        let mut budget = self.config.releases_kept;
        for (deployment, path) in kept {
            if budget > 0 || in_use(deployment) {
                budget -= 1;
                continue;
            }
            remove_dir(&self.layout.data_dir.join(path)).await;
            diesel::update(releases::table.find(deployment))
                .set(releases::pruned_at.eq(chrono::Utc::now()))
                .execute(conn)
                .await?;
        }
        Ok(())
    }
}

/// Ends a deployment `to` from wherever it is in flight (queued or building).
async fn end(
    conn: &mut diesel_async::AsyncPgConnection,
    id: Uuid,
    to: State,
    reason: &str,
) -> anyhow::Result<()> {
    for from in [State::Building, State::Queued] {
        match machine::transition(conn, id, from, to, reason).await {
            Ok(()) => return Ok(()),
            Err(TransitionError::Lost(_)) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

async fn remove_dir(dir: &Path) {
    if let Err(err) = tokio::fs::remove_dir_all(dir).await
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %err, "could not remove a build directory");
    }
}

/// Copies an unpacked upload into a fresh release directory (`cp -a`, paths Railyard's own).
async fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    if !from.is_dir() {
        return Err("the uploaded source is no longer kept".into());
    }
    let mut source = from.as_os_str().to_owned();
    source.push("/.");
    let status = tokio::process::Command::new("cp")
        .arg("-a")
        .arg("--")
        .arg(source)
        .arg(to)
        .status()
        .await
        .map_err(|err| format!("cannot copy the upload: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("copying the uploaded source failed".into())
    }
}
