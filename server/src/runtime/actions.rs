//! What happens to running services besides deploys: the `restart`, `stop` and `start`
//! actions (run as jobs by the process that owns the runtime), and recovery when this
//! server starts: processes a previous server left running are re-adopted (same pid, no
//! duplicate), and the ones that are gone are started again.

use std::sync::Arc;

use anyhow::Context as _;
use chrono::Utc;
use diesel::{ExpressionMethods as _, NullableExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::release::{Releaser, notify_routes};
use crate::{
    jobs::{Job, JobHandler},
    models::deployment::{DeploymentRow, Deployments},
    pipeline::log::BuildLog,
    schema::{deployments, instances},
};

/// The job kind of service actions.
pub const SERVICE_JOB: &str = "service_action";

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
}

/// What [`Releaser::recover`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub adopted: usize,
    pub restarted: usize,
    pub stopped: usize,
}

/// Instances with a process, as recovery sees them: id, its deployment and that
/// deployment's state, the instance state, pid, start time, port.
type Recorded = (Uuid, Uuid, String, String, Option<i32>, Option<i64>, i32);

impl Releaser {
    async fn active(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
    ) -> anyhow::Result<Option<DeploymentRow>> {
        let id: Option<Uuid> = deployments::table
            .filter(deployments::service_id.eq(service))
            .filter(deployments::environment_id.eq(environment))
            .filter(deployments::state.eq("active"))
            .order(deployments::updated_at.desc())
            .select(deployments::id)
            .first(conn)
            .await
            .optional()?;
        match id {
            Some(id) => Ok(Deployments::find(conn, id).await?),
            None => Ok(None),
        }
    }

    async fn live(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
        states: &[&str],
    ) -> anyhow::Result<Vec<Uuid>> {
        Ok(instances::table
            .filter(instances::service_id.eq(service))
            .filter(instances::environment_id.eq(environment))
            .filter(instances::state.eq_any(states))
            .select(instances::id)
            .load(conn)
            .await?)
    }

    /// Runs a service action; the active deployment's log tells what happened.
    pub async fn act(&self, service: Uuid, environment: Uuid, action: Action) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let Some(row) = Self::active(&mut conn, service, environment).await? else {
            if action == Action::Stop {
                for instance in Self::live(&mut conn, service, environment, &["starting", "running"]).await? {
                    self.stop_instance(instance).await?;
                }
                return Ok(());
            }
            anyhow::bail!("the service has no active deployment in this environment: deploy it first");
        };
        let log = BuildLog::open(self.db.clone(), Some(self.bus.clone()), row.id).await?;
        let result = self.act_on(&mut conn, &row, action, &log).await;
        if let Err(err) = &result {
            log.event(format!("{} failed: {err:#}", action.as_str()));
        }
        log.close().await?;
        result
    }

    async fn act_on(
        &self,
        conn: &mut AsyncPgConnection,
        row: &DeploymentRow,
        action: Action,
        log: &BuildLog,
    ) -> anyhow::Result<()> {
        let (service, environment) = (row.service_id, row.environment_id);
        match action {
            Action::Stop => {
                log.event("Stopping the service (requested).");
                for instance in
                    Self::live(conn, service, environment, &["starting", "running", "crashed"]).await?
                {
                    self.stop_instance(instance).await?;
                }
                log.event("Stopped: the router answers 503 until it is started again.");
                Ok(())
            }
            Action::Start
                if !Self::live(conn, service, environment, &["running"])
                    .await?
                    .is_empty() =>
            {
                log.event("Start requested, but the service is already running.");
                Ok(())
            }
            Action::Start | Action::Restart => {
                log.event(format!(
                    "{} requested.",
                    if action == Action::Start {
                        "Start"
                    } else {
                        "Restart"
                    }
                ));
                let instance = match self.start_healthy(conn, row, log).await? {
                    Ok(instance) => instance,
                    Err(reason) => anyhow::bail!("{reason}; what was running keeps running"),
                };
                notify_routes(conn).await?;
                log.event("Live: traffic goes to the new process.");
                self.drain_others(row, instance).await
            }
        }
    }

    /// Re-adopts the processes a previous server left running (recorded pid with the same
    /// start time), starts again the live ones that are gone, and stops what was on its
    /// way out. Instances of a deployment still `deploying` are left to its deploy job.
    pub async fn recover(&self) -> anyhow::Result<Recovered> {
        let mut conn = self.db.get().await?;
        let recorded: Vec<Recorded> = instances::table
            .inner_join(deployments::table)
            .filter(instances::state.eq_any(["starting", "running", "stopping"]))
            .filter(instances::port.is_not_null())
            .select((
                instances::id,
                instances::deployment_id,
                deployments::state,
                instances::state,
                instances::pid,
                instances::start_ticks,
                instances::port.assume_not_null(),
            ))
            .load(&mut conn)
            .await?;
        let mut done = Recovered::default();
        for recorded in recorded {
            let instance = recorded.0;
            match self.recover_one(&mut conn, recorded).await {
                Ok(Some(Recovery::Adopted)) => done.adopted += 1,
                Ok(Some(Recovery::Restarted)) => done.restarted += 1,
                Ok(Some(Recovery::Stopped)) => done.stopped += 1,
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(%instance, error = %format!("{err:#}"), "could not recover an app");
                }
            }
        }
        if done != Recovered::default() {
            notify_routes(&mut conn).await?;
        }
        Ok(done)
    }

    async fn recover_one(
        &self,
        conn: &mut AsyncPgConnection,
        (instance, deployment, deployment_state, state, pid, ticks, port): Recorded,
    ) -> anyhow::Result<Option<Recovery>> {
        if deployment_state == "deploying" && state == "starting" {
            return Ok(None);
        }
        if deployment_state != "active" || state != "running" {
            self.stop_instance(instance).await?;
            return Ok(Some(Recovery::Stopped));
        }
        let row = Deployments::find(conn, deployment)
            .await?
            .context("deployment gone")?;
        let port = u16::try_from(port).context("a recorded port out of range")?;
        let launch = self.launch_for(conn, &row, instance, port).await?;
        if let (Some(pid), Some(ticks)) = (pid, ticks)
            && self.runtime.adopt(launch.clone(), pid, ticks).await
        {
            tracing::info!(%instance, pid, "re-adopted a running app");
            return Ok(Some(Recovery::Adopted));
        }
        let started = self.runtime.start(launch).await?;
        self.runtime.supervise(instance);
        diesel::update(instances::table.find(instance))
            .set((
                instances::pid.eq(started.pid),
                instances::start_ticks.eq(started.start_ticks),
                instances::restarts.eq(instances::restarts + 1),
                instances::started_at.eq(Utc::now()),
                instances::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        tracing::info!(%instance, pid = started.pid, "an app was gone; started it again");
        Ok(Some(Recovery::Restarted))
    }
}

enum Recovery {
    Adopted,
    Restarted,
    Stopped,
}

/// Runs service actions (`restart`, `stop`, `start`) queued by the API.
pub struct ServiceActionHandler {
    pub releaser: Arc<Releaser>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ActionPayload {
    pub service_id: Uuid,
    pub environment_id: Uuid,
    pub action: Action,
}

#[async_trait::async_trait]
impl JobHandler for ServiceActionHandler {
    fn kind(&self) -> &'static str {
        SERVICE_JOB
    }

    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let payload: ActionPayload =
            serde_json::from_value(job.payload.clone()).context("a malformed service action")?;
        self.releaser
            .act(payload.service_id, payload.environment_id, payload.action)
            .await
    }
}
