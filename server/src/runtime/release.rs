//! The health-gated switch: a built release starts beside the one serving, must become
//! healthy within the timeout, and only then does the route switch (one transaction makes
//! it `active` and the previous one `superseded` or `rolled_back`; the router reloads on
//! `NOTIFY railyard_routes`). The old release drains, then stops. A release that fails its
//! health check is stopped, the deployment is `failed` with the reason, and the old one
//! keeps serving.

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
    models::deployment::Deployments,
    pipeline::{
        build,
        deploy::Layout,
        deployment::{self as machine, State, TransitionError},
        log::BuildLog,
    },
    schema::instances,
};

pub struct Releaser {
    pub db: DbPool,
    pub runtime: Arc<dyn Runtime>,
    pub config: RuntimeConfig,
    pub layout: Layout,
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
        let (deployment, service, environment) = row;
        let (low, high) = (*self.config.ports.start(), *self.config.ports.end());
        let span = u32::from(high - low) + 1;
        let offset = crate::auth::secret::random_bytes::<4>()
            .map(u32::from_be_bytes)
            .unwrap_or(0)
            % span;
        for i in 0..span.min(2000) {
            let port = low + u16::try_from((offset + i) % span).unwrap_or(0);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
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
            if inserted == 1 {
                return Ok(port);
            }
        }
        anyhow::bail!("no free port in RAILYARD_PORT_RANGE")
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
        let plan: Plan = row.plan().context("the deployment has no plan")?;
        let release = Deployments::release(&mut conn, row.release_of.unwrap_or(row.id))
            .await?
            .context("the release is no longer kept")?;
        let settings = Deployments::settings(&mut conn, row.service_id, row.environment_id).await?;
        let relative: PathBuf = PathBuf::from(&release.path).join(&plan.root);
        let dir = self.layout.data_dir.join(&relative);
        let instance = Uuid::new_v4();

        match &plan.start {
            None => {
                log.event("A static site: Railyard serves it.");
                diesel::insert_into(instances::table)
                    .values((
                        instances::id.eq(instance),
                        instances::deployment_id.eq(id),
                        instances::service_id.eq(row.service_id),
                        instances::environment_id.eq(row.environment_id),
                        instances::state.eq("running"),
                        instances::static_root.eq(relative.to_string_lossy().into_owned()),
                    ))
                    .execute(&mut conn)
                    .await?;
            }
            Some(start) => {
                let port = self
                    .reserve(&mut conn, (id, row.service_id, row.environment_id), instance)
                    .await?;
                let logs = self.layout.data_dir.join("logs").join(row.service_id.to_string());
                tokio::fs::create_dir_all(&logs).await?;
                let home = self.layout.cache(row.service_id);
                tokio::fs::create_dir_all(&home).await?;
                log.event(format!("Starting `{start}` with PORT={port}."));
                let launch = Launch {
                    instance,
                    dir,
                    start: start.clone(),
                    env: build::scrubbed_env(&home, &[]),
                    port,
                    log: logs.join(format!("{}.log", row.environment_id)),
                    restart: RestartPolicy::parse(settings.restart_policy.as_deref()),
                };
                let started = match self.runtime.start(launch).await {
                    Ok(started) => started,
                    Err(err) => {
                        let reason = format!("the app could not start: {err:#}");
                        self.mark(&mut conn, instance, "stopped").await?;
                        return self.fail(&mut conn, id, log, &reason).await;
                    }
                };
                diesel::update(instances::table.find(instance))
                    .set((
                        instances::pid.eq(started.pid),
                        instances::start_ticks.eq(started.start_ticks),
                    ))
                    .execute(&mut conn)
                    .await?;
                let mut exited = started.exited;
                let path = plan.health_check.as_deref();
                match path {
                    Some(path) => log.event(format!("Waiting for {path} to answer 2xx.")),
                    None => log.event(format!(
                        "Waiting for the app to accept connections on PORT {port}."
                    )),
                }
                match health::wait_healthy(port, path, self.config.health_timeout, &mut exited).await {
                    Ok(took) => log.event(format!("Healthy after {} ms.", took.as_millis())),
                    Err(reason) => {
                        self.stop_instance(instance).await?;
                        return self
                            .fail(&mut conn, id, log, &format!("health check failed: {reason}"))
                            .await;
                    }
                }
                self.runtime.supervise(instance);
                self.mark(&mut conn, instance, "running").await?;
            }
        }

        // The switch.
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

        // The previous releases drain, then stop.
        let old: Vec<Uuid> = instances::table
            .filter(instances::service_id.eq(row.service_id))
            .filter(instances::environment_id.eq(row.environment_id))
            .filter(instances::id.ne(instance))
            .filter(instances::state.eq_any(["starting", "running"]))
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
        match machine::transition(conn, id, State::Deploying, State::Failed, reason).await {
            Ok(()) | Err(TransitionError::Lost(_)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn mark(&self, conn: &mut AsyncPgConnection, instance: Uuid, state: &str) -> anyhow::Result<()> {
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
