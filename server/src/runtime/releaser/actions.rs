//! Service actions: `restart` (a new process beside the old one, switched once healthy),
//! `stop` and `start`, each written to the active deployment's log.

use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::InstanceState;
use uuid::Uuid;

use super::{Releaser, launch::Starting, names, notify_routes};
use crate::{
    jobs::kinds::Action,
    logs::BuildLog,
    models::deployment::{DeploymentRow, Deployments, machine::State},
    schema::{deployments, instances},
};

impl Releaser {
    async fn active(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
    ) -> anyhow::Result<Option<DeploymentRow>> {
        let id: Option<Uuid> = deployments::table
            .filter(deployments::service_id.eq(service))
            .filter(deployments::environment_id.eq(environment))
            .filter(deployments::state.eq(State::Active.as_str()))
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
        states: &[InstanceState],
    ) -> anyhow::Result<Vec<Uuid>> {
        Ok(instances::table
            .filter(instances::service_id.eq(service))
            .filter(instances::environment_id.eq(environment))
            .filter(instances::state.eq_any(names(states)))
            .select(instances::id)
            .load(conn)
            .await?)
    }

    /// Runs a service action; the active deployment's log tells what happened.
    pub async fn act(&self, service: Uuid, environment: Uuid, action: Action) -> anyhow::Result<()> {
        let _turn = self.lock(service, environment).await;
        let mut conn = self.db.get().await?;
        let Some(row) = Self::active(&mut conn, service, environment).await? else {
            if action == Action::Stop {
                for instance in Self::live(
                    &mut conn,
                    service,
                    environment,
                    &[InstanceState::Starting, InstanceState::Running],
                )
                .await?
                {
                    self.stop_instance(instance).await?;
                }
                return Ok(());
            }
            anyhow::bail!("the service has no active deployment in this environment: deploy it first");
        };
        // Only Railyard's own events go to this log here: no output to limit.
        let log = BuildLog::open(self.db.clone(), Some(self.bus.clone()), row.id, u64::MAX).await?;
        // The runtime log says it too, beside the app's own output.
        let runtime_log = self.layout.service_log(service, environment);
        let event = |text: String| {
            let path = runtime_log.clone();
            let deployment = Some(row.id);
            async move {
                let _ = tokio::task::spawn_blocking(move || {
                    crate::logs::ship::append_event(&path, deployment, &text);
                })
                .await;
            }
        };
        event(format!("{} requested.", action.label())).await;
        let result = self.act_on(&mut conn, &row, action, &log).await;
        match &result {
            Ok(()) => event(format!("{} done.", action.label())).await,
            Err(err) => {
                log.event(format!("{} failed: {err:#}", action.as_str()));
                event(format!("{} failed: {err:#}", action.label())).await;
            }
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
                for instance in Self::live(conn, service, environment, InstanceState::LIVE).await? {
                    self.stop_instance(instance).await?;
                }
                log.event("Stopped: the router answers 503 until it is started again.");
                Ok(())
            }
            Action::Start
                if !Self::live(conn, service, environment, &[InstanceState::Running])
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
                let starting = Starting::load(conn, row.clone()).await?;
                let instance = match self.start_healthy(conn, &starting, log).await? {
                    Ok(instance) => instance,
                    Err(reason) => anyhow::bail!("{reason}; what was running keeps running"),
                };
                notify_routes(conn).await?;
                log.event("Live: traffic goes to the new process.");
                self.drain_others(row, instance).await
            }
        }
    }
}
