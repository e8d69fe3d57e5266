//! Recovery when this server starts: processes a previous server left running are
//! re-adopted (same pid, no duplicate), the ones that are gone are started again, and what
//! was on its way out is stopped.

use anyhow::Context as _;
use chrono::Utc;
use diesel::{ExpressionMethods as _, NullableExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::InstanceState;
use uuid::Uuid;

use super::{Releaser, launch::Starting, names, notify_routes};
use crate::{
    models::deployment::{Deployments, machine::State},
    schema::{deployments, instances},
};

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
    /// Re-adopts the processes a previous server left running (recorded pid with the same
    /// start time), starts again the live ones that are gone, and stops what was on its
    /// way out. Instances of a deployment still `deploying` are left to its deploy job.
    pub async fn recover(&self) -> anyhow::Result<Recovered> {
        let mut conn = self.db.get().await?;
        let recorded: Vec<Recorded> = instances::table
            .inner_join(deployments::table)
            .filter(instances::state.eq_any(names(&[
                InstanceState::Starting,
                InstanceState::Running,
                InstanceState::Stopping,
            ])))
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
        let deployment_state = State::parse(&deployment_state);
        let state = InstanceState::parse(&state);
        if deployment_state == Some(State::Deploying) && state == Some(InstanceState::Starting) {
            return Ok(None);
        }
        if deployment_state != Some(State::Active) || state != Some(InstanceState::Running) {
            self.stop_instance(instance).await?;
            return Ok(Some(Recovery::Stopped));
        }
        let row = Deployments::find(conn, deployment)
            .await?
            .context("deployment gone")?;
        let port = u16::try_from(port).context("a recorded port out of range")?;
        let starting = Starting::load(conn, row).await?;
        let launch = self.launch_for(conn, &starting, instance, port).await?;
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
