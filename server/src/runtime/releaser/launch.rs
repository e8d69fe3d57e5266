//! What a process of a release runs: its directory, command, environment (the scrubbed one
//! plus the deployment's variables and `PORT`), log file, restart policy and limits.

use anyhow::Context as _;
use diesel_async::AsyncPgConnection;
use railyard_shared::deployments::{Plan, ServiceSettings};
use uuid::Uuid;

use super::Releaser;
use crate::{
    models::{
        deployment::{DeploymentRow, Deployments, Release},
        sandbox_user,
    },
    runtime::{Launch, RestartPolicy},
    sandbox,
};

/// What starting a process of a deployment needs, read once per start: the row, its plan,
/// its release and the service's settings in its environment.
pub(in crate::runtime) struct Starting {
    pub row: DeploymentRow,
    pub plan: Plan,
    pub release: Release,
    pub settings: ServiceSettings,
}

impl Starting {
    pub async fn load(conn: &mut AsyncPgConnection, row: DeploymentRow) -> anyhow::Result<Self> {
        let plan: Plan = row.plan().context("the deployment has no plan")?;
        let release = Deployments::release(conn, row.release_of.unwrap_or(row.id))
            .await?
            .context("the release is no longer kept")?;
        let settings = Deployments::settings(conn, row.service_id, row.environment_id).await?;
        Ok(Self {
            row,
            plan,
            release,
            settings,
        })
    }
}

impl Releaser {
    /// What starting an instance of deployment `starting` on `port` runs.
    pub(super) async fn launch_for(
        &self,
        conn: &mut AsyncPgConnection,
        starting: &Starting,
        instance: Uuid,
        port: u16,
    ) -> anyhow::Result<Launch> {
        let Starting {
            row,
            plan,
            release,
            settings,
        } = starting;
        let start = plan.start.clone().context("a static site runs no process")?;
        let log = self.layout.service_log(row.service_id, row.environment_id);
        if let Some(dir) = log.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let home = self.layout.app_home(row.service_id, row.environment_id);
        tokio::fs::create_dir_all(&home).await?;
        let release_dir = self.layout.data_dir.join(&release.path);
        let number = sandbox_user::number(conn, row.service_id, row.environment_id).await?;
        let toolchains = sandbox::plan_toolchains(plan);
        let jail = self.sandbox.jail(
            number,
            vec![release_dir.clone(), home.clone()],
            toolchains
                .iter()
                .filter_map(|bin| bin.parent().map(Into::into))
                .collect(),
        )?;
        if let Some(jail) = &jail {
            // A release built for another environment (or before isolation was on)
            // becomes this one's.
            jail.take_its_directories()
                .await
                .context("cannot hand the app its directories")?;
        }
        let variables = crate::variables::store::snapshot_of(conn, &self.variables.keys, row.id).await?;
        let dir = release_dir.join(&plan.root);
        let env = sandbox::scrubbed_env(
            &home,
            &dir,
            sandbox::Purpose::Run,
            &toolchains,
            &variables.env(Some(port)),
        );
        Ok(Launch {
            instance,
            dir,
            start,
            env,
            port,
            log,
            restart: RestartPolicy::parse(settings.restart_policy.as_deref()),
            deployment: Some(row.id),
            secrets: variables.secrets.into_iter().collect(),
            health_check: plan.health_check.clone(),
            memory_limit_mb: settings.memory_limit_mb.and_then(|mb| u32::try_from(mb).ok()),
            jail,
        })
    }
}
