//! The health-gated switch: a built release starts beside the one serving, must become
//! healthy within the timeout, and only then does the route switch (one transaction makes
//! it `active` and the previous one `superseded` or `rolled_back`; the router reloads on
//! `NOTIFY railyard_routes`). The old release drains, then stops. A release that fails its
//! health check is stopped, the deployment is `failed` with the reason, and the old one
//! keeps serving. A service whose settings fix its port cannot run two releases at once:
//! the old one stops first (the log says the switch leaves a gap), and if the new one
//! fails, the old one is started again.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context as _;
use chrono::Utc;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::deployments::Plan;
use uuid::Uuid;

use super::{Launch, RestartPolicy, Runtime, health};
use crate::{
    config::RuntimeConfig,
    db::DbPool,
    logbus::LogBus,
    models::deployment::{DeploymentRow, Deployments},
    pipeline::{
        build,
        deploy::Layout,
        deployment::{self as machine, State, TransitionError},
        log::BuildLog,
        variables::VariableSource,
    },
    schema::instances,
};

pub struct Releaser {
    pub db: DbPool,
    pub runtime: Arc<dyn Runtime>,
    pub config: RuntimeConfig,
    pub layout: Layout,
    pub variables: VariableSource,
    pub bus: LogBus,
}

/// Tells routers to reload their table.
pub async fn notify_routes(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT pg_notify('railyard_routes', '')")
        .execute(conn)
        .await
        .map(|_| ())
}

impl Releaser {
    /// Picks a free port in the range and records the instance on it (the unique index on
    /// live ports settles races between replicas).
    async fn reserve(
        &self,
        conn: &mut AsyncPgConnection,
        row: (Uuid, Uuid, Uuid),
        instance: Uuid,
    ) -> anyhow::Result<u16> {
        let (low, high) = (*self.config.ports.start(), *self.config.ports.end());
        let span = u32::from(high - low) + 1;
        let offset = crate::auth::secret::random_bytes::<4>()
            .map(u32::from_be_bytes)
            .unwrap_or(0)
            % span;
        for i in 0..span.min(2000) {
            let port = low + u16::try_from((offset + i) % span).unwrap_or(0);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
                && Self::record(conn, row, instance, port).await?
            {
                return Ok(port);
            }
        }
        anyhow::bail!("no free port in RAILYARD_PORT_RANGE")
    }

    /// Records a `starting` instance on `port`; false if another live instance holds it.
    async fn record(
        conn: &mut AsyncPgConnection,
        (deployment, service, environment): (Uuid, Uuid, Uuid),
        instance: Uuid,
        port: u16,
    ) -> diesel::QueryResult<bool> {
        let inserted = diesel::insert_into(instances::table)
            .values((
                instances::id.eq(instance),
                instances::deployment_id.eq(deployment),
                instances::service_id.eq(service),
                instances::environment_id.eq(environment),
                instances::state.eq("starting"),
                instances::port.eq(i32::from(port)),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok(inserted == 1)
    }

    /// Records the instance on the service's fixed `port`; why not, if it is taken.
    async fn reserve_fixed(
        &self,
        conn: &mut AsyncPgConnection,
        row: (Uuid, Uuid, Uuid),
        instance: Uuid,
        port: u16,
    ) -> anyhow::Result<Result<(), String>> {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            return Ok(Err(format!(
                "port {port} (fixed in the settings) is in use by another process"
            )));
        }
        Ok(if Self::record(conn, row, instance, port).await? {
            Ok(())
        } else {
            Err(format!(
                "port {port} (fixed in the settings) is taken by another app"
            ))
        })
    }

    /// What starting an instance of deployment `row` on `port` runs.
    pub(super) async fn launch_for(
        &self,
        conn: &mut AsyncPgConnection,
        row: &DeploymentRow,
        instance: Uuid,
        port: u16,
    ) -> anyhow::Result<Launch> {
        let plan: Plan = row.plan().context("the deployment has no plan")?;
        let start = plan.start.clone().context("a static site runs no process")?;
        let release = Deployments::release(conn, row.release_of.unwrap_or(row.id))
            .await?
            .context("the release is no longer kept")?;
        let settings = Deployments::settings(conn, row.service_id, row.environment_id).await?;
        let log = self.service_log(row);
        if let Some(dir) = log.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let home = self.layout.cache(row.service_id);
        tokio::fs::create_dir_all(&home).await?;
        let variables = crate::variables::store::snapshot_of(conn, &self.variables.keys, row.id).await?;
        Ok(Launch {
            instance,
            dir: self.layout.data_dir.join(&release.path).join(&plan.root),
            start,
            env: build::scrubbed_env(&home, &variables.env(Some(port))),
            port,
            log,
            restart: RestartPolicy::parse(settings.restart_policy.as_deref()),
            deployment: Some(row.id),
            secrets: variables.secrets.into_iter().collect(),
            health_check: plan.health_check,
            memory_limit_mb: settings.memory_limit_mb.and_then(|mb| u32::try_from(mb).ok()),
        })
    }

    /// The log file of the service (and environment) of `row`.
    fn service_log(&self, row: &DeploymentRow) -> std::path::PathBuf {
        self.layout
            .data_dir
            .join("logs")
            .join(row.service_id.to_string())
            .join(format!("{}.log", row.environment_id))
    }

    /// Starts a new instance of deployment `row` and waits until it is healthy; it then
    /// counts as `running` (for the router, once the deployment is `active`). `Ok(Err)`
    /// says why it did not become healthy (it is stopped again).
    pub(super) async fn start_healthy(
        &self,
        conn: &mut AsyncPgConnection,
        row: &DeploymentRow,
        log: &BuildLog,
    ) -> anyhow::Result<Result<Uuid, String>> {
        let plan: Plan = row.plan().context("the deployment has no plan")?;
        let instance = Uuid::new_v4();
        if plan.start.is_none() {
            let release = Deployments::release(conn, row.release_of.unwrap_or(row.id))
                .await?
                .context("the release is no longer kept")?;
            let root = PathBuf::from(&release.path).join(&plan.root);
            log.event("A static site: Railyard serves it.");
            diesel::insert_into(instances::table)
                .values((
                    instances::id.eq(instance),
                    instances::deployment_id.eq(row.id),
                    instances::service_id.eq(row.service_id),
                    instances::environment_id.eq(row.environment_id),
                    instances::state.eq("running"),
                    instances::static_root.eq(root.to_string_lossy().into_owned()),
                ))
                .execute(conn)
                .await?;
            return Ok(Ok(instance));
        }
        let ids = (row.id, row.service_id, row.environment_id);
        let settings = Deployments::settings(conn, row.service_id, row.environment_id).await?;
        let Some(port) = settings.port.and_then(|p| u16::try_from(p).ok()) else {
            let port = self.reserve(conn, ids, instance).await?;
            return self.start_on(conn, row, log, instance, port).await;
        };

        // A fixed port: what runs now stops first, and comes back if the new one fails.
        let live: Vec<(Uuid, Uuid)> = instances::table
            .filter(instances::service_id.eq(row.service_id))
            .filter(instances::environment_id.eq(row.environment_id))
            .filter(instances::state.eq_any(["starting", "running", "crashed"]))
            .select((instances::id, instances::deployment_id))
            .load(conn)
            .await?;
        if !live.is_empty() {
            log.event(format!(
                "The settings fix the port at {port}: the running release stops before this one \
                 starts, so the app is down during the switch (leave the port unset for deploys \
                 without downtime)."
            ));
            for (old, _) in &live {
                self.stop_instance(*old).await?;
            }
        }
        let outcome = match self.reserve_fixed(conn, ids, instance, port).await? {
            Ok(()) => self.start_on(conn, row, log, instance, port).await?,
            Err(reason) => Err(reason),
        };
        if outcome.is_err()
            && let Some(&(_, previous)) = live.iter().find(|(_, d)| *d != row.id)
            && let Some(previous) = Deployments::find(conn, previous).await?
        {
            log.event(format!("Starting the previous release again on port {port}."));
            match Box::pin(self.start_healthy(conn, &previous, log)).await? {
                Ok(_) => notify_routes(conn).await?,
                Err(reason) => log.event(format!("The previous release did not come back: {reason}.")),
            }
        }
        Ok(outcome)
    }

    /// Starts instance `instance` of `row` on `port` (already recorded) and waits until it
    /// is healthy.
    async fn start_on(
        &self,
        conn: &mut AsyncPgConnection,
        row: &DeploymentRow,
        log: &BuildLog,
        instance: Uuid,
        port: u16,
    ) -> anyhow::Result<Result<Uuid, String>> {
        let launch = self.launch_for(conn, row, instance, port).await?;
        let limit = launch
            .memory_limit_mb
            .map_or_else(String::new, |mb| format!(" and a memory limit of {mb} MB"));
        log.event(format!("Starting `{}` with PORT={port}{limit}.", launch.start));
        let path = launch.health_check.clone();
        let started = match self.runtime.start(launch).await {
            Ok(started) => started,
            Err(err) => {
                self.mark(conn, instance, "stopped").await?;
                return Ok(Err(format!("the app could not start: {err:#}")));
            }
        };
        diesel::update(instances::table.find(instance))
            .set((
                instances::pid.eq(started.pid),
                instances::start_ticks.eq(started.start_ticks),
            ))
            .execute(conn)
            .await?;
        let mut exited = started.exited;
        match path.as_deref() {
            Some(path) => log.event(format!("Waiting for {path} to answer 2xx.")),
            None => log.event(format!(
                "Waiting for the app to accept connections on PORT {port}."
            )),
        }
        match health::wait_healthy(port, path.as_deref(), self.config.health_timeout, &mut exited).await {
            Ok(took) => log.event(format!("Healthy after {} ms.", took.as_millis())),
            Err(reason) => {
                self.stop_instance(instance).await?;
                return Ok(Err(format!("health check failed: {reason}")));
            }
        }
        self.runtime.supervise(instance);
        self.mark(conn, instance, "running").await?;
        Ok(Ok(instance))
    }

    /// Starts deployment `id` (in `deploying`) and switches traffic to it once healthy.
    pub async fn go_live(&self, id: Uuid, log: &BuildLog) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let row = Deployments::find(&mut conn, id)
            .await?
            .context("deployment gone")?;
        if row.state != "deploying" {
            return Ok(());
        }
        // A previous attempt that died mid-way may have left an instance: stop it first.
        let stale: Vec<Uuid> = instances::table
            .filter(instances::deployment_id.eq(id))
            .filter(instances::state.eq_any(["starting", "running"]))
            .select(instances::id)
            .load(&mut conn)
            .await?;
        for old in stale {
            self.stop_instance(old).await?;
        }
        let instance = match self.start_healthy(&mut conn, &row, log).await? {
            Ok(instance) => instance,
            Err(reason) => return self.fail(&mut conn, id, log, &reason).await,
        };

        // The switch.
        log.flush().await?;
        match machine::transition(&mut conn, id, State::Deploying, State::Active, "healthy").await {
            Ok(()) => {}
            Err(TransitionError::Lost(_)) => {
                log.event("The deployment was cancelled; stopping the new release.");
                self.stop_instance(instance).await?;
                return Ok(());
            }
            Err(err) => return Err(err.into()),
        }
        notify_routes(&mut conn).await?;
        log.event("Live: traffic goes to this release.");
        let commit = row
            .commit_sha
            .as_deref()
            .map(|c| format!(" (commit {})", c.chars().take(8).collect::<String>()))
            .unwrap_or_default();
        super::shipper::append_event(
            &self.service_log(&row),
            Some(id),
            &format!("Deployment {id} is live{commit}: traffic goes to it."),
        );
        drop(conn);
        self.drain_others(&row, instance).await
    }

    /// After a switch: the service's other live instances drain, then stop.
    pub(super) async fn drain_others(&self, row: &DeploymentRow, keep: Uuid) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let old: Vec<Uuid> = instances::table
            .filter(instances::service_id.eq(row.service_id))
            .filter(instances::environment_id.eq(row.environment_id))
            .filter(instances::id.ne(keep))
            .filter(instances::state.eq_any(["starting", "running", "crashed"]))
            .select(instances::id)
            .load(&mut conn)
            .await?;
        drop(conn);
        if !old.is_empty() {
            tokio::time::sleep(self.config.drain).await;
            for old in old {
                self.stop_instance(old).await?;
            }
        }
        Ok(())
    }

    async fn fail(
        &self,
        conn: &mut AsyncPgConnection,
        id: Uuid,
        log: &BuildLog,
        reason: &str,
    ) -> anyhow::Result<()> {
        log.event(format!(
            "Deploy failed: {reason}. The previous release keeps serving."
        ));
        log.flush().await?;
        match machine::transition(conn, id, State::Deploying, State::Failed, reason).await {
            Ok(()) | Err(TransitionError::Lost(_)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    pub(super) async fn mark(
        &self,
        conn: &mut AsyncPgConnection,
        instance: Uuid,
        state: &str,
    ) -> anyhow::Result<()> {
        diesel::update(instances::table.find(instance))
            .set((instances::state.eq(state), instances::updated_at.eq(Utc::now())))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Stops an instance (this server's, or, by pid, one a previous server started) and
    /// records it stopped.
    pub async fn stop_instance(&self, instance: Uuid) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        self.mark(&mut conn, instance, "stopping").await?;
        drop(conn);
        self.runtime.stop(instance, self.config.stop_grace).await?;
        let mut conn = self.db.get().await?;
        self.mark(&mut conn, instance, "stopped").await?;
        notify_routes(&mut conn).await?;
        Ok(())
    }
}
