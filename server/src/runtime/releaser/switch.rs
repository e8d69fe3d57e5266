//! The health-gated switch: a built release starts beside the one serving, must become
//! healthy within the timeout, and only then does the route switch (one transaction makes
//! it `active` and the previous one `superseded` or `rolled_back`; the router reloads on
//! `NOTIFY railyard_routes`). The old release drains, then stops. A release that fails its
//! health check is stopped, the deployment is `failed` with the reason, and the old one
//! keeps serving. A service whose settings fix its port cannot run two releases at once:
//! the old one stops first (the log says the switch leaves a gap), and if the new one
//! fails, the old one is started again.

use std::path::PathBuf;

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::InstanceState;
use uuid::Uuid;

use super::{Releaser, launch::Starting, names, notify_routes};
use crate::{
    logs::BuildLog,
    models::deployment::{
        DeploymentRow, Deployments,
        machine::{self, State, TransitionError},
    },
    runtime::health,
    schema::instances,
};

impl Releaser {
    /// Starts a new instance of deployment `starting` and waits until it is healthy; it
    /// then counts as `running` (for the router, once the deployment is `active`). `Ok(Err)`
    /// says why it did not become healthy (it is stopped again).
    pub(super) async fn start_healthy(
        &self,
        conn: &mut AsyncPgConnection,
        starting: &Starting,
        log: &BuildLog,
    ) -> anyhow::Result<Result<Uuid, String>> {
        let row = &starting.row;
        let instance = Uuid::new_v4();
        if starting.plan.start.is_none() {
            let root = PathBuf::from(&starting.release.path)
                .join(&starting.plan.root)
                .join(starting.plan.static_dir.as_deref().unwrap_or_default());
            log.event("A static site: Railyard serves it.");
            diesel::insert_into(instances::table)
                .values((
                    instances::id.eq(instance),
                    instances::deployment_id.eq(row.id),
                    instances::service_id.eq(row.service_id),
                    instances::environment_id.eq(row.environment_id),
                    instances::state.eq(InstanceState::Running.as_str()),
                    instances::static_root.eq(root.to_string_lossy().into_owned()),
                ))
                .execute(conn)
                .await?;
            return Ok(Ok(instance));
        }
        let ids = (row.id, row.service_id, row.environment_id);
        let Some(port) = starting.settings.port.and_then(|p| u16::try_from(p).ok()) else {
            let port = self.reserve(conn, ids, instance).await?;
            return self.start_on(conn, starting, log, instance, port).await;
        };

        // A fixed port: what runs now stops first, and comes back if the new one fails.
        let live: Vec<(Uuid, Uuid)> = instances::table
            .filter(instances::service_id.eq(row.service_id))
            .filter(instances::environment_id.eq(row.environment_id))
            .filter(instances::state.eq_any(names(InstanceState::LIVE)))
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
            Ok(()) => self.start_on(conn, starting, log, instance, port).await?,
            Err(reason) => Err(reason),
        };
        if outcome.is_err()
            && let Some(&(_, previous)) = live.iter().find(|(_, d)| *d != row.id)
            && let Some(previous) = Deployments::find(conn, previous).await?
        {
            log.event(format!("Starting the previous release again on port {port}."));
            let previous = Starting::load(conn, previous).await?;
            match Box::pin(self.start_healthy(conn, &previous, log)).await? {
                Ok(_) => notify_routes(conn).await?,
                Err(reason) => log.event(format!("The previous release did not come back: {reason}.")),
            }
        }
        Ok(outcome)
    }

    /// Starts instance `instance` of `starting` on `port` (already recorded) and waits
    /// until it is healthy.
    async fn start_on(
        &self,
        conn: &mut AsyncPgConnection,
        starting: &Starting,
        log: &BuildLog,
        instance: Uuid,
        port: u16,
    ) -> anyhow::Result<Result<Uuid, String>> {
        let launch = self.launch_for(conn, starting, instance, port).await?;
        let limit = launch
            .memory_limit_mb
            .map_or_else(String::new, |mb| format!(" and a memory limit of {mb} MB"));
        log.event(format!("Starting `{}` with PORT={port}{limit}.", launch.start));
        let path = launch.health_check.clone();
        let app_log = launch.log.clone();
        let started = match self.runtime.start(launch).await {
            Ok(started) => started,
            Err(err) => {
                self.mark(conn, instance, InstanceState::Stopped).await?;
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
                "Waiting for the app to answer HTTP on PORT {port} (any status below 500 on /)."
            )),
        }
        match health::wait_healthy(port, path.as_deref(), self.config.health_timeout, &mut exited).await {
            Ok(took) => log.event(format!("Healthy after {} ms.", took.as_millis())),
            Err(reason) => {
                self.stop_instance(instance).await?;
                // What the app said before it failed belongs in the deployment's log too.
                let deployment = starting.row.id;
                let output = tokio::task::spawn_blocking(move || {
                    crate::logs::ship::last_output(&app_log, deployment, 30)
                })
                .await
                .unwrap_or_default();
                if !output.is_empty() {
                    log.event(format!("The app's last {} output line(s):", output.len()));
                    for record in output {
                        let stream = if record.stream == "stderr" {
                            crate::logs::Stream::Stderr
                        } else {
                            crate::logs::Stream::Stdout
                        };
                        log.line(stream, record.text);
                    }
                }
                return Ok(Err(format!("health check failed: {reason}")));
            }
        }
        self.runtime.supervise(instance);
        self.mark(conn, instance, InstanceState::Running).await?;
        Ok(Ok(instance))
    }

    /// Starts deployment `id` (in `deploying`) and switches traffic to it once healthy.
    /// Go-lives of one service and environment take turns; one whose turn comes after a
    /// newer deployment went live is cancelled instead (it would replace the newer one).
    /// `pair` is its service and environment (as the pipeline read them); the row is read
    /// once the turn comes, as it may have changed meanwhile.
    pub async fn go_live(&self, id: Uuid, pair: (Uuid, Uuid), log: &BuildLog) -> anyhow::Result<()> {
        let _turn = self.lock(pair.0, pair.1).await;
        let mut conn = self.db.get().await?;
        let Some(row) = Deployments::find(&mut conn, id).await? else {
            return Ok(());
        };
        if row.state() != State::Deploying {
            return Ok(());
        }
        if let Some(newer) = Deployments::newer_active(&mut conn, &row).await? {
            let reason = format!("superseded by the newer deployment {newer}, which is live already");
            log.event(format!("Not going live: {reason}."));
            log.flush().await?;
            return match machine::transition(&mut conn, id, State::Deploying, State::Cancelled, &reason).await
            {
                Ok(()) | Err(TransitionError::Lost(_)) => Ok(()),
                Err(err) => Err(err.into()),
            };
        }
        // A previous attempt that died mid-way may have left an instance: stop it first.
        let stale: Vec<Uuid> = instances::table
            .filter(instances::deployment_id.eq(id))
            .filter(instances::state.eq_any(names(&[InstanceState::Starting, InstanceState::Running])))
            .select(instances::id)
            .load(&mut conn)
            .await?;
        for old in stale {
            self.stop_instance(old).await?;
        }
        let starting = Starting::load(&mut conn, row).await?;
        let row = &starting.row;
        let instance = match self.start_healthy(&mut conn, &starting, log).await? {
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
        crate::logs::ship::append_event(
            &self.layout.service_log(row.service_id, row.environment_id),
            Some(id),
            &format!("Deployment {id} is live{commit}: traffic goes to it."),
        );
        drop(conn);
        self.drain_others(row, instance).await
    }

    /// After a switch: the service's other live instances drain, then stop.
    pub(super) async fn drain_others(&self, row: &DeploymentRow, keep: Uuid) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let old: Vec<Uuid> = instances::table
            .filter(instances::service_id.eq(row.service_id))
            .filter(instances::environment_id.eq(row.environment_id))
            .filter(instances::id.ne(keep))
            .filter(instances::state.eq_any(names(InstanceState::LIVE)))
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
}
