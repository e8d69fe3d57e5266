//! Deployments, their releases, build logs and the per-environment service settings.

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, Selectable,
    SelectableHelper as _,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::deployments::{Deployment, Plan, ServiceSettings};
use uuid::Uuid;

use crate::{
    jobs,
    pipeline::deployment as machine,
    schema::{deployment_logs, deployments, releases, service_settings},
};

/// The job kind that builds (or, for a rollback, re-releases) a deployment.
pub const DEPLOY_JOB: &str = "deploy";
/// Attempts of a deploy job before it is dead: builds are long, retries are for
/// infrastructure failures (a failing build is an outcome, not a retry).
const DEPLOY_ATTEMPTS: i32 = 3;

#[derive(Debug, Clone, diesel::Queryable, Selectable)]
#[diesel(table_name = deployments)]
pub struct DeploymentRow {
    pub id: Uuid,
    pub service_id: Uuid,
    pub environment_id: Uuid,
    pub state: String,
    pub branch: Option<String>,
    pub commit_sha: Option<String>,
    pub plan: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub triggered_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub source_kind: String,
    pub upload_id: Option<Uuid>,
    pub release_of: Option<Uuid>,
}

impl DeploymentRow {
    pub fn plan(&self) -> Option<Plan> {
        self.plan
            .clone()
            .and_then(|plan| serde_json::from_value(plan).ok())
    }

    pub fn to_api(&self) -> Deployment {
        Deployment {
            id: self.id,
            service_id: self.service_id,
            environment_id: self.environment_id,
            state: self.state.clone(),
            source: self.source_kind.clone(),
            branch: self.branch.clone(),
            commit: self.commit_sha.clone(),
            release_of: self.release_of,
            reason: self.reason.clone(),
            triggered_by: self.triggered_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
        }
    }
}

/// What a new deployment builds.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub service: Uuid,
    pub environment: Uuid,
    /// `git`, `push`, `upload` or `rollback`.
    pub source_kind: &'static str,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub upload: Option<Uuid>,
    pub release_of: Option<Uuid>,
    pub triggered_by: Option<Uuid>,
}

#[derive(Debug, Clone, diesel::Queryable, Selectable)]
#[diesel(table_name = releases)]
pub struct Release {
    pub deployment_id: Uuid,
    pub path: String,
    pub plan: serde_json::Value,
    pub commit_sha: Option<String>,
    pub pruned_at: Option<DateTime<Utc>>,
}

pub struct Deployments;

impl Deployments {
    /// Creates a queued deployment and its deploy job in one transaction: the job exists
    /// exactly when the deployment does.
    pub async fn create(conn: &mut AsyncPgConnection, new: NewDeployment) -> diesel::QueryResult<Uuid> {
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let id = machine::create(
                conn,
                new.service,
                new.environment,
                new.branch.as_deref(),
                new.commit.as_deref(),
                new.triggered_by,
            )
            .await?;
            diesel::update(deployments::table.find(id))
                .set((
                    deployments::source_kind.eq(new.source_kind),
                    deployments::upload_id.eq(new.upload),
                    deployments::release_of.eq(new.release_of),
                ))
                .execute(conn)
                .await?;
            jobs::enqueue(
                conn,
                DEPLOY_JOB,
                serde_json::json!({ "deployment_id": id }),
                Some(&format!("deploy:{id}")),
                DEPLOY_ATTEMPTS,
            )
            .await?;
            Ok(id)
        })
        .await
    }

    /// The active deployment of a service in an environment.
    pub async fn active(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
    ) -> diesel::QueryResult<Option<DeploymentRow>> {
        deployments::table
            .filter(deployments::service_id.eq(service))
            .filter(deployments::environment_id.eq(environment))
            .filter(deployments::state.eq("active"))
            .select(DeploymentRow::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<Option<DeploymentRow>> {
        deployments::table
            .find(id)
            .select(DeploymentRow::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Deployments of a service in an environment, newest first, after the cursor.
    pub async fn list(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> diesel::QueryResult<Vec<DeploymentRow>> {
        let mut query = deployments::table
            .filter(deployments::service_id.eq(service))
            .filter(deployments::environment_id.eq(environment))
            .select(DeploymentRow::as_select())
            .order((deployments::created_at.desc(), deployments::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some((at, id)) = after {
            query = query.filter(
                deployments::created_at
                    .lt(at)
                    .or(deployments::created_at.eq(at).and(deployments::id.lt(id))),
            );
        }
        query.load(conn).await
    }

    /// The upload of the newest upload deployment of a service in an environment.
    pub async fn latest_upload(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
    ) -> diesel::QueryResult<Option<Uuid>> {
        let upload: Option<Option<Uuid>> = deployments::table
            .filter(deployments::service_id.eq(service))
            .filter(deployments::environment_id.eq(environment))
            .filter(deployments::upload_id.is_not_null())
            .order((deployments::created_at.desc(), deployments::id.desc()))
            .select(deployments::upload_id)
            .first(conn)
            .await
            .optional()?;
        Ok(upload.flatten())
    }

    /// The kept (not pruned) release of `deployment`.
    pub async fn release(
        conn: &mut AsyncPgConnection,
        deployment: Uuid,
    ) -> diesel::QueryResult<Option<Release>> {
        releases::table
            .find(deployment)
            .filter(releases::pruned_at.is_null())
            .select(Release::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The last `n` lines of the build log, oldest first.
    pub async fn log_tail(
        conn: &mut AsyncPgConnection,
        deployment: Uuid,
        n: i64,
    ) -> diesel::QueryResult<Vec<String>> {
        let mut lines: Vec<String> = deployment_logs::table
            .filter(deployment_logs::deployment_id.eq(deployment))
            .order(deployment_logs::seq.desc())
            .limit(n)
            .select(deployment_logs::text)
            .load(conn)
            .await?;
        lines.reverse();
        Ok(lines)
    }

    /// The settings of `service` in `environment` (defaults when never saved).
    pub async fn settings(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
    ) -> diesel::QueryResult<ServiceSettings> {
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            Option<i32>,
            Option<i32>,
        );
        let row: Option<Row> = service_settings::table
            .find((service, environment))
            .select((
                service_settings::root_dir,
                service_settings::build_command,
                service_settings::start_command,
                service_settings::health_check_path,
                service_settings::restart_policy,
                service_settings::port,
                service_settings::memory_limit_mb,
            ))
            .first(conn)
            .await
            .optional()?;
        Ok(match row {
            None => ServiceSettings::default(),
            Some((
                root_dir,
                build_command,
                start_command,
                health_check_path,
                restart_policy,
                port,
                memory,
            )) => ServiceSettings {
                root_dir,
                build_command,
                start_command,
                health_check_path,
                restart_policy: Some(restart_policy),
                port,
                memory_limit_mb: memory,
            },
        })
    }

    pub async fn save_settings(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
        settings: &ServiceSettings,
    ) -> diesel::QueryResult<()> {
        let values = (
            service_settings::root_dir.eq(&settings.root_dir),
            service_settings::build_command.eq(&settings.build_command),
            service_settings::start_command.eq(&settings.start_command),
            service_settings::health_check_path.eq(&settings.health_check_path),
            service_settings::restart_policy.eq(settings.restart_policy.as_deref().unwrap_or("on_failure")),
            service_settings::port.eq(settings.port),
            service_settings::memory_limit_mb.eq(settings.memory_limit_mb),
            service_settings::updated_at.eq(Utc::now()),
        );
        diesel::insert_into(service_settings::table)
            .values((
                service_settings::service_id.eq(service),
                service_settings::environment_id.eq(environment),
                values,
            ))
            .on_conflict((service_settings::service_id, service_settings::environment_id))
            .do_update()
            .set(values)
            .execute(conn)
            .await?;
        Ok(())
    }
}
