//! The releaser: takes deployments live and keeps services running, on a [`Runtime`].
//! Split along its seams: [`ports`] (reserving a port), [`launch`] (what a process of a
//! release runs), [`switch`] (the health-gated switch and the drain), [`actions`] (restart,
//! stop, start), [`recovery`] (re-adoption after a restart) and [`teardown`] (stopping
//! everything of a service before it is deleted).
//!
//! Go-lives, service actions and teardowns of one service and environment never overlap:
//! each holds that pair's lock ([`Releaser::lock`]) from start to drain, so one switch
//! cannot stop what another just made live.

mod actions;
mod launch;
mod ports;
mod recovery;
mod switch;
mod teardown;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::Utc;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::InstanceState;
use uuid::Uuid;

pub use recovery::Recovered;

use super::Runtime;
use crate::{
    config::RuntimeConfig, db::DbPool, layout::Layout, logbus::LogBus, sandbox::Sandbox, schema::instances,
    variables::source::VariableSource,
};

/// The lock one service and environment's changes take turns on.
type Turn = Arc<tokio::sync::Mutex<()>>;

pub struct Releaser {
    pub db: DbPool,
    pub runtime: Arc<dyn Runtime>,
    pub config: RuntimeConfig,
    pub layout: Layout,
    pub variables: VariableSource,
    pub bus: LogBus,
    /// Who apps run as (their jail), or that they are refused.
    pub sandbox: Arc<Sandbox>,
    /// One lock per service and environment (see the module's documentation).
    locks: Mutex<HashMap<(Uuid, Uuid), Turn>>,
}

/// Tells routers to reload their table.
pub async fn notify_routes(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT pg_notify('railyard_routes', '')")
        .execute(conn)
        .await
        .map(|_| ())
}

/// The stored names of `states` (for `eq_any`).
pub(super) fn names(states: &[InstanceState]) -> Vec<&'static str> {
    states.iter().map(|state| state.as_str()).collect()
}

impl Releaser {
    pub fn new(
        db: DbPool,
        runtime: Arc<dyn Runtime>,
        config: RuntimeConfig,
        layout: Layout,
        variables: VariableSource,
        bus: LogBus,
        sandbox: Arc<Sandbox>,
    ) -> Self {
        Self {
            db,
            runtime,
            config,
            layout,
            variables,
            bus,
            sandbox,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for the lock of a service in an environment: what changes its processes
    /// holds it throughout.
    pub async fn lock(&self, service: Uuid, environment: Uuid) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((service, environment))
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    pub(super) async fn mark(
        &self,
        conn: &mut AsyncPgConnection,
        instance: Uuid,
        state: InstanceState,
    ) -> anyhow::Result<()> {
        diesel::update(instances::table.find(instance))
            .set((
                instances::state.eq(state.as_str()),
                instances::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Stops an instance (this server's, or, by pid, one a previous server started) and
    /// records it stopped.
    pub async fn stop_instance(&self, instance: Uuid) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        self.mark(&mut conn, instance, InstanceState::Stopping).await?;
        drop(conn);
        self.runtime.stop(instance, self.config.stop_grace).await?;
        let mut conn = self.db.get().await?;
        self.mark(&mut conn, instance, InstanceState::Stopped).await?;
        notify_routes(&mut conn).await?;
        Ok(())
    }
}
