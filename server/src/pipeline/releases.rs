//! A built release recorded: its `releases` row, the older releases and uploads of its
//! service and environment pruned, its size measured, and the deployment moved to
//! `deploying`.

use std::path::Path;

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_shared::deployments::Plan;
use uuid::Uuid;

use super::deploy::{Pipeline, remove_dir};
use crate::{
    models::deployment::{
        DeploymentRow,
        machine::{self, State, TransitionError},
    },
    schema::{deployments, releases},
};

impl Pipeline {
    /// Records the release, prunes old releases, and moves the deployment to `deploying`.
    pub(super) async fn finish_build(
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
