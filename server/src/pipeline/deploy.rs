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
    caches, detect, git,
    toolchain::{self, HostToolchains, Toolchains},
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
    schema::deployments,
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
    /// What provides the language versions plans ask for.
    toolchains: Arc<dyn Toolchains>,
    /// Build slots: `build_concurrency` builds at once in this process.
    slots: Arc<tokio::sync::Semaphore>,
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
        let toolchains = Arc::new(HostToolchains::new(layout.toolchains(), &config.node_registry));
        let slots = Arc::new(tokio::sync::Semaphore::new(config.build_concurrency.max(1)));
        Self {
            slots,
            db,
            layout,
            config,
            variables,
            bus,
            sandbox,
            toolchains,
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
    Built { plan: Box<Plan>, commit: Option<String> },
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
        // A build slot, held until the build ends (the go-live that follows holds none).
        let _slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                log.event(format!(
                    "Waiting for a build slot ({} build(s) run at once, RAILYARD_BUILD_CONCURRENCY).",
                    self.config.build_concurrency
                ));
                log.flush().await?;
                self.slots.clone().acquire_owned().await?
            }
        };
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
                let plan = *plan;
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
        let mut plan = match plan {
            Ok(plan) => plan,
            Err(err) => return Ok(Outcome::Failed(err.to_string())),
        };
        if let Err(reason) = toolchain::provide_all(self.toolchains.as_ref(), &mut plan, log).await {
            return Ok(Outcome::Failed(reason));
        }
        show_plan(&plan, log);
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
        let readable = sandbox::plan_toolchains(&plan)
            .iter()
            .filter_map(|bin| bin.parent().map(Into::into))
            .collect();
        let jail = match self
            .sandbox
            .jail(number, vec![dir.to_owned(), home.clone()], readable)
        {
            Ok(jail) => jail,
            Err(refused) => return Ok(Outcome::Failed(refused.to_string())),
        };
        if let Some(jail) = &jail {
            jail.take_its_directories()
                .await
                .context("cannot hand the build its directories")?;
        }
        let workdir = dir.join(&plan.root);
        let toolchains = sandbox::plan_toolchains(&plan);
        let mut env = sandbox::scrubbed_env(
            &home,
            &workdir,
            sandbox::Purpose::Build,
            &toolchains,
            &snapshot.env(None),
        );
        let rust_target = caches::rust_target(&workdir, &home, &mut env);
        let modules = caches::restore_node_modules(&workdir, &home, &plan).await;
        let venv = caches::restore_venv(&workdir, &home, &plan).await;
        let mut skip = usize::from(modules.as_ref().is_some_and(|m| m.reused));
        if let Some(modules) = modules.as_ref().filter(|m| m.reused) {
            log.event(format!(
                "Reusing node_modules from the last build ({} unchanged): skipping `{}`.",
                modules.lock, plan.build[0]
            ));
        }
        if venv.as_ref().is_some_and(|v| v.reused) {
            skip = plan.install_steps;
            log.event(format!(
                "Reusing .venv from the last build (what it installs from is unchanged): skipping {skip} install step(s)."
            ));
        }
        if let Err(err) = caches::next_cache(&workdir, &home, true).await {
            log.event(format!("Could not restore Next.js's build cache: {err}"));
        }
        for step in plan.build.iter().skip(skip) {
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
        if let Some(static_dir) = &plan.static_dir
            && plan.start.is_none()
            && let Err(reason) = caches::check_static_dir(dir, &workdir, static_dir)
        {
            return Ok(Outcome::Failed(reason));
        }
        if let Some(modules) = &modules
            && let Err(err) = modules.save(&workdir).await
        {
            log.event(format!("Could not keep node_modules for the next build: {err}"));
        }
        if let Some(venv) = &venv
            && let Err(err) = venv.save(&workdir).await
        {
            log.event(format!("Could not keep .venv for the next build: {err}"));
        }
        if let Err(err) = caches::next_cache(&workdir, &home, false).await {
            log.event(format!("Could not keep Next.js's build cache: {err}"));
        }
        if let Some(target) = rust_target {
            let (target, workdir) = (target, workdir.clone());
            let copied =
                tokio::task::spawn_blocking(move || caches::take_binaries(&target, &workdir)).await?;
            match copied {
                Ok(n) => log.event(format!(
                    "Kept target/ in the build cache; {n} program(s) copied into the release."
                )),
                Err(err) => return Ok(Outcome::Failed(format!("cannot copy the built programs: {err}"))),
            }
        }
        Ok(Outcome::Built {
            plan: Box::new(plan),
            commit,
        })
    }

    /// The token of whoever connected `repository` to Railyard (none: cloned anonymously).
    async fn github_token(&self, repository: &str) -> anyhow::Result<Option<String>> {
        use crate::models::github::{Connections, Repositories};
        let mut conn = self.db.get().await?;
        match Repositories::connector(&mut conn, repository).await? {
            Some(user) => Connections::token(&mut conn, &self.variables.keys, user).await,
            None => Ok(None),
        }
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
            (Source::Postgres {}, _) => Err("a database service is provisioned, not deployed".to_owned()),
            (Source::Github { repository, branch }, _) => {
                let branch = row.branch.as_deref().unwrap_or(branch);
                log.event(format!("Cloning {repository} from GitHub (branch {branch})."));
                let token = self.github_token(repository).await?;
                let checkout = git::GithubCheckout {
                    base: &self.config.github_url,
                    repository,
                    branch,
                    commit: row.commit_sha.as_deref(),
                    token: token.as_deref(),
                };
                git::fetch_github(&checkout, dir, timeout)
                    .await
                    .map(Some)
                    .map_err(|err| err.to_string())
            }
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
}

/// The plan in the build log: what decided it, its toolchains, steps, start, and notes.
fn show_plan(plan: &Plan, log: &BuildLog) {
    log.event(format!(
        "Plan: {} (root `{}`).",
        plan.provider,
        if plan.root.is_empty() { "." } else { &plan.root }
    ));
    for t in &plan.toolchains {
        log.event(format!(
            "  {} {} ({} requested by {})",
            t.name,
            t.version.as_deref().unwrap_or("?"),
            t.requested,
            t.source
        ));
    }
    for step in &plan.build {
        log.event(format!("  build: {step}"));
    }
    match (&plan.start, &plan.static_dir) {
        (Some(start), _) => log.event(format!("  start: {start}")),
        (None, Some(dir)) => log.event(format!(
            "  start: `{dir}` served by Railyard as a static site{}",
            if plan.spa { " (single-page app)" } else { "" }
        )),
        (None, None) => log.event("  start: served by Railyard as a static site"),
    }
    if let Some(release) = &plan.release {
        log.event(format!("  release: {release}"));
    }
    for note in &plan.notes {
        log.event(format!("  note: {note}"));
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
