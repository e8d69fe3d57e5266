//! The deploy job: fetch the source, detect the plan, build it in the deployment's own
//! release directory, and hand it to the runtime (`deploying`). A rollback or a promotion
//! skips all that and reuses a release ([`super::reuse`]).
//!
//! The job is idempotent: it acts only on the state it finds. A build whose worker died is
//! built again from scratch (its directory wiped, its log continued); every transition is
//! conditional, so a deployment is built to `deploying` at most once whatever runs twice.
//! A failing build is an outcome (`failed`, with the reason and the log kept), not a job
//! error; only infrastructure errors (the database, the disk) retry the job.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_shared::{deployments::Plan, projects::Source};
use tokio::{sync::watch, time::Instant};
use uuid::Uuid;

use super::{
    build::{self, StepError},
    detect, git,
};
use crate::{
    config::PipelineConfig,
    db::DbPool,
    layout::Layout,
    logbus::LogBus,
    logs::BuildLog,
    models::sandbox_user,
    models::{
        deployment::{
            DeploymentRow, Deployments,
            machine::{self, State, TransitionError},
        },
        project::Projects,
    },
    sandbox::{self, Sandbox},
    schema::{deployments, releases},
    variables::source::VariableSource,
};

/// What the deploy job does after the pipeline's part.
#[derive(Debug)]
pub enum Next {
    /// The deployment is `deploying`: the runtime takes it live (with the build log, when
    /// the build just wrote it). `pair` is its service and environment, whose go-lives take
    /// turns.
    GoLive {
        pair: (Uuid, Uuid),
        log: Option<BuildLog>,
    },
    /// Nothing more: it ended (failed, cancelled) or was done already.
    Done,
}

/// Fetches, detects and builds deployments into releases.
pub struct Pipeline {
    pub(super) db: DbPool,
    pub(super) layout: Layout,
    pub(super) config: PipelineConfig,
    pub(super) variables: VariableSource,
    /// Where stored build-log lines are published live.
    bus: LogBus,
    /// Who builds run as (their jail), or that they are refused.
    sandbox: Arc<Sandbox>,
}

impl Pipeline {
    pub fn new(
        db: DbPool,
        layout: Layout,
        config: PipelineConfig,
        variables: VariableSource,
        bus: LogBus,
        sandbox: Arc<Sandbox>,
    ) -> Self {
        Self {
            db,
            layout,
            config,
            variables,
            bus,
            sandbox,
        }
    }

    /// Opens the build log of deployment `id` (publishing on the bus).
    pub async fn log(&self, id: Uuid) -> anyhow::Result<BuildLog> {
        BuildLog::open(
            self.db.clone(),
            Some(self.bus.clone()),
            id,
            self.config.build_log_limit,
        )
        .await
    }

    /// The last attempt of the deploy job failed: the deployment must not stay in flight.
    pub async fn fail_in_flight(&self, id: Uuid, error: &anyhow::Error) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let reason = format!("internal error: {error:#}");
        for from in [State::Queued, State::Building, State::Deploying] {
            let _ = machine::transition(&mut conn, id, from, State::Failed, &reason).await;
        }
        Ok(())
    }
}

/// Why a build did not produce a release.
enum Outcome {
    Built { plan: Plan, commit: Option<String> },
    Failed(String),
    Cancelled,
}

impl Pipeline {
    /// Carries deployment `id` as far as the pipeline goes, from the state it is in; says
    /// whether the runtime takes it live next.
    pub async fn run(&self, id: Uuid) -> anyhow::Result<Next> {
        let mut conn = self.db.get().await?;
        let Some(row) = Deployments::find(&mut conn, id).await? else {
            return Ok(Next::Done); // deleted with its service
        };
        let restarted = match (row.state(), row.release_of) {
            // Built (or re-released) already; the worker died before it went live.
            (State::Deploying, _) => {
                return Ok(Next::GoLive {
                    pair: row.pair(),
                    log: None,
                });
            }
            (State::Queued, Some(of)) => {
                drop(conn);
                return self.release_again(&row, of).await;
            }
            (State::Queued, None) if row.promoted_from.is_some() => {
                drop(conn);
                return self.promote(&row).await;
            }
            (State::Queued, None) => {
                match machine::transition(&mut conn, id, State::Queued, State::Building, "build started")
                    .await
                {
                    Ok(()) => false,
                    Err(TransitionError::Lost(_)) => {
                        drop(conn);
                        self.note_cancelled(id).await?;
                        return Ok(Next::Done);
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            (State::Building, None) => true,
            (State::Cancelled, _) => {
                drop(conn);
                self.note_cancelled(id).await?;
                return Ok(Next::Done);
            }
            _ => return Ok(Next::Done), // built (or ended) already
        };
        drop(conn);

        let log = self.log(id).await?;
        let dir = self.layout.release(id);
        if restarted {
            log.event(
                "The previous build attempt stopped (its worker went away); building again from scratch.",
            );
            let dir = dir.clone();
            let killed = tokio::task::spawn_blocking(move || sandbox::kill_leftovers(&dir)).await?;
            if killed > 0 {
                log.event(format!(
                    "Stopped {killed} process(es) left over from that attempt."
                ));
            }
        }
        let outcome = self.build(&row, &dir, &log).await;
        match self.conclude(&row, &dir, &log, outcome).await {
            Ok(true) => Ok(Next::GoLive {
                pair: row.pair(),
                log: Some(log),
            }),
            Ok(false) => {
                log.close().await?;
                Ok(Next::Done)
            }
            Err(err) => {
                log.close().await?;
                Err(err)
            }
        }
    }

    /// Records what the build came to; true when the release goes live next.
    async fn conclude(
        &self,
        row: &DeploymentRow,
        dir: &Path,
        log: &BuildLog,
        outcome: anyhow::Result<Outcome>,
    ) -> anyhow::Result<bool> {
        let mut conn = self.db.get().await?;
        match outcome {
            Ok(Outcome::Built { plan, commit }) => {
                log.event("Build finished; handing the release to the runtime.");
                log.flush().await?;
                self.finish_build(&mut conn, row, dir, &plan, commit.as_deref())
                    .await
            }
            Ok(Outcome::Failed(reason)) => {
                let reason = log.masker().mask(&reason);
                log.event(format!("Build failed: {reason}"));
                remove_dir(dir).await;
                log.flush().await?;
                end(&mut conn, row.id, State::Failed, &reason).await?;
                Ok(false)
            }
            Ok(Outcome::Cancelled) => {
                let why = Deployments::find(&mut conn, row.id)
                    .await?
                    .and_then(|row| row.reason)
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default();
                log.event(format!("Build cancelled{why}."));
                remove_dir(dir).await;
                Ok(false)
            }
            Err(err) => {
                log.event(format!("Railyard could not finish this build: {err:#}"));
                Err(err)
            }
        }
    }

    /// A deployment cancelled before it started says why in its log.
    async fn note_cancelled(&self, id: Uuid) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        if !Deployments::log_tail(&mut conn, id, 1).await?.is_empty() {
            return Ok(());
        }
        let reason = Deployments::find(&mut conn, id)
            .await?
            .and_then(|row| row.reason)
            .unwrap_or_else(|| "cancelled".to_owned());
        drop(conn);
        let log = self.log(id).await?;
        log.event(format!("Cancelled before it started: {reason}."));
        log.close().await
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
        let mut conn = self.db.get().await?;
        let Some(service) = Projects::service(&mut conn, row.service_id).await? else {
            return Ok(Outcome::Cancelled);
        };
        let settings = Deployments::settings(&mut conn, row.service_id, row.environment_id).await?;
        drop(conn);

        // 1. The source.
        let fetched = self.fetch(row, &service.source, dir, log).await?;
        let commit = match fetched {
            Ok(commit) => commit,
            Err(reason) => return Ok(Outcome::Failed(reason)),
        };
        if let Some(commit) = &commit {
            log.event(format!("Checked out commit {commit}."));
            if let Some(info) = git::describe(dir, commit).await {
                let mut conn = self.db.get().await?;
                Deployments::describe_commit(
                    &mut conn,
                    row.service_id,
                    &info.sha,
                    &info.subject,
                    &info.author,
                )
                .await?;
            }
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

        // 4. The build steps, in the plan's root, as the service's own user.
        let home = self.layout.home(row.service_id, row.environment_id);
        tokio::fs::create_dir_all(&home).await?;
        let number = {
            let mut conn = self.db.get().await?;
            sandbox_user::number(&mut conn, row.service_id, row.environment_id).await?
        };
        let jail = match self.sandbox.jail(number, vec![dir.to_owned(), home.clone()]) {
            Ok(jail) => jail,
            Err(refused) => return Ok(Outcome::Failed(refused.to_string())),
        };
        if let Some(jail) = &jail {
            jail.take_its_directories()
                .await
                .context("cannot hand the build its directories")?;
        }
        let workdir = dir.join(&plan.root);
        let env = sandbox::scrubbed_env(&home, &workdir, sandbox::Purpose::Build, &snapshot.env(None));
        for step in &plan.build {
            match build::run_step(
                step,
                &workdir,
                jail.as_ref(),
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

    /// Fetches the deployment's source into `dir`: the commit it checked out, or why not.
    async fn fetch(
        &self,
        row: &DeploymentRow,
        source: &Source,
        dir: &Path,
        log: &BuildLog,
    ) -> anyhow::Result<Result<Option<String>, String>> {
        let timeout = self.config.build_timeout;
        let fetched = match (source, row.source_kind.as_str()) {
            (_, "upload") => {
                let upload = row.upload_id.context("an upload deployment names its upload")?;
                log.event("Unpacking the uploaded source.");
                copy_tree(&self.layout.upload(upload), dir).await.map(|()| None)
            }
            (Source::Push { branch }, _) => {
                let branch = row.branch.as_deref().unwrap_or(branch);
                log.event(format!("Checking out the pushed branch {branch}."));
                let repo = self.layout.push_repo(row.service_id);
                git::fetch_pushed(&repo, branch, row.commit_sha.as_deref(), dir, timeout)
                    .await
                    .map(Some)
                    .map_err(|err| err.to_string())
            }
            (Source::Git { url, branch }, _) => {
                let branch = row.branch.as_deref().unwrap_or(branch);
                log.event(format!(
                    "Cloning {} (branch {branch}).",
                    crate::sources::redact_credentials(url)
                ));
                let checkout = git::Checkout {
                    url,
                    branch,
                    commit: row.commit_sha.as_deref(),
                };
                let roots = self.config.file_source_roots.as_slice();
                git::fetch(&checkout, dir, (&self.layout.data_dir, roots), timeout)
                    .await
                    .map(Some)
                    .map_err(|err| err.to_string())
            }
            (Source::Upload {}, _) => Err("this service takes uploads: upload code to deploy it".to_owned()),
        };
        if fetched.is_ok() && row.source_kind != "upload" {
            // Uploads are checked as they are unpacked; a repository is checked here.
            let root = dir.to_owned();
            if let Some((link, target)) =
                tokio::task::spawn_blocking(move || sandbox::link_leaving(&root)).await??
            {
                return Ok(Err(format!(
                    "`{}` links out of the repository (to {}): links must stay inside it",
                    link.display(),
                    target.display()
                )));
            }
        }
        Ok(fetched)
    }

    /// Records the release, prunes old releases, and moves the deployment to `deploying`.
    async fn finish_build(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        row: &DeploymentRow,
        dir: &Path,
        plan: &Plan,
        commit: Option<&str>,
    ) -> anyhow::Result<bool> {
        if plan.start.is_none() {
            // A static site is served as it lies: its repository history is not part of it.
            match tokio::fs::remove_dir_all(dir.join(".git")).await {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
                _ => {}
            }
        }
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
        self.prune_uploads(conn, row.service_id, row.environment_id)
            .await?;
        // What the service now keeps on disk counts against its workspace's quota.
        if let Err(err) = crate::models::storage::measure(conn, &self.layout, row.service_id).await {
            tracing::warn!(error = %format!("{err:#}"), service = %row.service_id, "measuring a service's storage failed");
        }
        match machine::transition(conn, row.id, State::Building, State::Deploying, "built").await {
            Ok(()) => Ok(true),
            // Cancelled at the last moment: the release is not used.
            Err(TransitionError::Lost(_)) => {
                remove_dir(dir).await;
                Ok(false)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Keeps the newest `releases_kept` releases of a service in an environment (and the
    /// active one and the one just built), removing the directories of the others.
    pub(super) async fn prune(
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
            .filter(deployments::state.eq_any([State::Active.as_str(), State::Deploying.as_str()]))
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

impl Pipeline {
    /// Removes the unpacked uploads of a service in an environment that nothing will build
    /// again: all but the newest (a redeploy builds that one) and those of deployments still
    /// waiting to be built. Their archives are gone already; a build copies what it needs
    /// into its release.
    async fn prune_uploads(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
    ) -> anyhow::Result<()> {
        let uploads: Vec<(Option<Uuid>, String)> = deployments::table
            .filter(deployments::service_id.eq(service))
            .filter(deployments::environment_id.eq(environment))
            .filter(deployments::upload_id.is_not_null())
            .order((deployments::created_at.desc(), deployments::id.desc()))
            .select((deployments::upload_id, deployments::state))
            .load(conn)
            .await?;
        let waiting = [State::Queued.as_str(), State::Building.as_str()];
        for (n, (upload, state)) in uploads.into_iter().enumerate() {
            let Some(upload) = upload else { continue };
            if n == 0 || waiting.contains(&state.as_str()) {
                continue;
            }
            let dir = self.layout.upload(upload);
            if tokio::fs::try_exists(&dir).await.unwrap_or(false) {
                remove_dir(&dir).await;
            }
        }
        Ok(())
    }
}

/// Ends a deployment `to` from wherever it is in flight (queued or building).
pub(super) async fn end(
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

pub(super) async fn remove_dir(dir: &Path) {
    if let Err(err) = tokio::fs::remove_dir_all(dir).await
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %err, "could not remove a build directory");
    }
}

/// Copies an unpacked upload into a fresh release directory (`cp -a`, paths Railyard's own).
pub(super) async fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
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
