//! Deployments that run a release built before, with no fetch and no build: a rollback or
//! "deploy changes" (the same service and environment's release, [`Pipeline::release_again`])
//! and a promotion (another environment's build, copied into a release of the target's own,
//! [`Pipeline::promote`]). Either way the variables are the target's: resolved now, or for a
//! rollback the ones the old deployment ran with.

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use super::deploy::{Next, Pipeline, copy_tree, end, remove_dir};
use crate::{
    logs::BuildLog,
    models::deployment::{
        DeploymentRow, Deployments, Release,
        machine::{self, State, TransitionError},
    },
    schema::{deployments, releases},
};

impl Pipeline {
    /// A rollback (with the variables it ran with) or "deploy changes" (with the current
    /// ones): the earlier deployment's release, no rebuild.
    pub(super) async fn release_again(&self, row: &DeploymentRow, of: Uuid) -> anyhow::Result<Next> {
        let id = row.id;
        let mut conn = self.db.get().await?;
        let Some(release) = Deployments::release(&mut conn, of).await? else {
            end(
                &mut conn,
                id,
                State::Failed,
                &format!("the release of {of} is no longer kept"),
            )
            .await?;
            return Ok(Next::Done);
        };
        let log = self.log(id).await?;
        let copied = row.source_kind == "rollback" && self.variables.copy(&mut conn, of, row, &log).await?;
        let log = if copied {
            log
        } else {
            match self.prepare_variables(&mut conn, row, &release, log).await? {
                Some(log) => log,
                None => return Ok(Next::Done),
            }
        };
        self.take_build_of(&mut conn, id, &release).await?;
        self.hand_over(&mut conn, row, log, &format!("reusing the release of {of}"))
            .await
    }

    /// A promotion: the build `row.promoted_from` runs in its environment, copied into this
    /// deployment's own release directory (each environment's apps own their files), with
    /// this environment's variables.
    pub(super) async fn promote(&self, row: &DeploymentRow) -> anyhow::Result<Next> {
        let id = row.id;
        let mut conn = self.db.get().await?;
        let source = match row.promoted_from {
            Some(from) => Deployments::find(&mut conn, from).await?,
            None => None,
        };
        let from_env = match &source {
            Some(source) => crate::models::project::Projects::environment(&mut conn, source.environment_id)
                .await?
                .map(|(_, name)| name),
            None => None,
        };
        let from_env = from_env.as_deref().unwrap_or("another environment");
        let found = match &source {
            Some(source) => Deployments::release(&mut conn, source.release_id())
                .await?
                .map(|release| (source.release_id(), release)),
            None => None,
        };
        let Some((of, release)) = found else {
            let reason = format!("the build promoted from {from_env} is no longer kept");
            end(&mut conn, id, State::Failed, &reason).await?;
            return Ok(Next::Done);
        };
        let log = self.log(id).await?;
        log.event(format!(
            "Promoting the build of {of} from {from_env}{}: no fetch, no build.",
            release
                .commit_sha
                .as_deref()
                .map(|c| format!(" (commit {})", &c[..c.len().min(12)]))
                .unwrap_or_default()
        ));
        let Some(log) = self.prepare_variables(&mut conn, row, &release, log).await? else {
            return Ok(Next::Done);
        };
        drop(conn);
        let dir = self.layout.release(id);
        remove_dir(&dir).await;
        let copied = copy_tree(&self.layout.data_dir.join(&release.path), &dir).await;
        let mut conn = self.db.get().await?;
        if let Err(reason) = copied {
            log.event(format!("Promotion failed: {reason}"));
            log.close().await?;
            end(&mut conn, id, State::Failed, &reason).await?;
            return Ok(Next::Done);
        }
        let relative = dir
            .strip_prefix(&self.layout.data_dir)
            .unwrap_or(&dir)
            .to_string_lossy()
            .into_owned();
        diesel::insert_into(releases::table)
            .values((
                releases::deployment_id.eq(id),
                releases::service_id.eq(row.service_id),
                releases::environment_id.eq(row.environment_id),
                releases::path.eq(relative),
                releases::plan.eq(&release.plan),
                releases::commit_sha.eq(&release.commit_sha),
            ))
            .on_conflict_do_nothing()
            .execute(&mut conn)
            .await?;
        self.take_build_of(&mut conn, id, &release).await?;
        self.prune(&mut conn, id, row.service_id, row.environment_id)
            .await?;
        self.hand_over(
            &mut conn,
            row,
            log,
            &format!("promoted from {from_env} (the build of {of})"),
        )
        .await
    }

    /// Resolves and keeps the target's current variables; `None` (the deployment failed,
    /// saying why, its log closed) when they do not resolve.
    async fn prepare_variables(
        &self,
        conn: &mut AsyncPgConnection,
        row: &DeploymentRow,
        release: &Release,
        log: BuildLog,
    ) -> anyhow::Result<Option<BuildLog>> {
        let prepared = self
            .variables
            .prepare(conn, row, release.commit_sha.as_deref(), &log)
            .await?;
        if let Err(reason) = prepared {
            log.event(format!("Deploy failed: {reason}"));
            log.close().await?;
            end(conn, row.id, State::Failed, &reason).await?;
            return Ok(None);
        }
        Ok(Some(log))
    }

    /// The deployment runs `of`'s build: its plan and commit.
    async fn take_build_of(
        &self,
        conn: &mut AsyncPgConnection,
        id: Uuid,
        release: &Release,
    ) -> anyhow::Result<()> {
        diesel::update(deployments::table.find(id))
            .set((
                deployments::plan.eq(&release.plan),
                deployments::commit_sha.eq(&release.commit_sha),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// `queued` → `deploying`: the runtime takes it live next.
    async fn hand_over(
        &self,
        conn: &mut AsyncPgConnection,
        row: &DeploymentRow,
        log: BuildLog,
        reason: &str,
    ) -> anyhow::Result<Next> {
        match machine::transition(conn, row.id, State::Queued, State::Deploying, reason).await {
            Ok(()) => Ok(Next::GoLive {
                pair: row.pair(),
                log: Some(log),
            }),
            Err(TransitionError::Lost(_)) => {
                log.close().await?;
                Ok(Next::Done)
            }
            Err(err) => {
                log.close().await?;
                Err(err.into())
            }
        }
    }
}
