//! Deployments, their releases, build logs and the per-environment service settings; the
//! one way to request a deployment ([`Deployments::request`]) and the state machine
//! ([`machine`]).

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, JoinOnDsl as _, NullableExpressionMethods as _,
    OptionalExtension as _, QueryDsl as _, Selectable, SelectableHelper as _,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::deployments::{
    Deployment, DeploymentDetail, Durations, Plan, ServiceSettings, Transition,
};
use uuid::Uuid;

pub mod machine;

use crate::{
    audit,
    auth::RequestMeta,
    jobs::kinds::{self, Deploy},
    schema::{deployment_logs, deployments, github_deployments, releases, service_settings, services},
};
use machine::{State, TransitionError};

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
    pub promoted_from: Option<Uuid>,
}

impl DeploymentRow {
    pub fn plan(&self) -> Option<Plan> {
        self.plan
            .clone()
            .and_then(|plan| serde_json::from_value(plan).ok())
    }

    /// Its state (a row whose stored state no longer parses reads as failed).
    pub fn state(&self) -> State {
        State::parse(&self.state).unwrap_or(State::Failed)
    }

    /// The deployment whose build it runs: its own, or the one it rolled back to.
    pub fn release_id(&self) -> Uuid {
        self.release_of.unwrap_or(self.id)
    }

    /// Its service and environment.
    pub fn pair(&self) -> (Uuid, Uuid) {
        (self.service_id, self.environment_id)
    }

    pub fn to_api(&self) -> Deployment {
        Deployment {
            id: self.id.into(),
            service_id: self.service_id.into(),
            environment_id: self.environment_id.into(),
            state: self.state(),
            source: self.source_kind.clone(),
            branch: self.branch.clone(),
            commit: self.commit_sha.clone(),
            release_of: self.release_of.map(Into::into),
            promoted_from: self.promoted_from.map(Into::into),
            // Filled by [`Deployments::annotate`].
            promoted_from_environment: None,
            commit_message: None,
            commit_author: None,
            reason: self.reason.clone(),
            triggered_by: self.triggered_by.map(Into::into),
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
    /// `git`, `push`, `upload`, `rollback` or `promotion`.
    pub source_kind: &'static str,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub upload: Option<Uuid>,
    pub release_of: Option<Uuid>,
    /// A promotion: the deployment of another environment whose build it runs.
    pub promoted_from: Option<Uuid>,
}

/// Who asked for a deployment, for its audit entry.
#[derive(Debug, Clone, Copy)]
pub struct RequestedBy<'a> {
    pub meta: &'a RequestMeta,
    pub user: Uuid,
    pub workspace: Uuid,
    /// The audit action: `deployment.create`, `.redeploy`, `.rollback`, `.upload`, `.push`,
    /// `.variables`.
    pub action: &'a str,
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
    /// Requests a deployment: the queued row, its deploy job and the audit entry of who
    /// asked, in one transaction. Every path asks here (create, redeploy, rollback, upload,
    /// `git push`, deploy-changes). Requests for one service are taken one at a time (the
    /// service row is locked), so their order is their creation order; a newer request
    /// supersedes the older ones of the same service and environment still queued or
    /// building (they end `cancelled`, saying by which).
    pub async fn request(
        conn: &mut AsyncPgConnection,
        new: NewDeployment,
        by: RequestedBy<'_>,
    ) -> diesel::QueryResult<Uuid> {
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let repository: Option<String> = services::table
                .find(new.service)
                .select(services::github_repository)
                .for_update()
                .first(conn)
                .await?;
            let id = machine::create(
                conn,
                new.service,
                new.environment,
                new.branch.as_deref(),
                new.commit.as_deref(),
                Some(by.user),
            )
            .await?;
            diesel::update(deployments::table.find(id))
                .set((
                    deployments::source_kind.eq(new.source_kind),
                    deployments::upload_id.eq(new.upload),
                    deployments::release_of.eq(new.release_of),
                    deployments::promoted_from.eq(new.promoted_from),
                    // After the lock: creation order is request order.
                    deployments::created_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
            kinds::enqueue(conn, &Deploy { deployment_id: id }).await?;
            if let Some(repository) = repository {
                diesel::insert_into(github_deployments::table)
                    .values((
                        github_deployments::deployment_id.eq(id),
                        github_deployments::repository.eq(repository),
                    ))
                    .execute(conn)
                    .await?;
                machine::report_to_github(conn, id, State::Queued).await?;
            }
            Self::supersede_pending(conn, &new, id).await?;
            let entry = audit::Entry::new(by.action)
                .workspace(by.workspace)
                .actor(by.user)
                .target("deployment", id)
                .detail(serde_json::json!({
                    "service_id": new.service,
                    "environment_id": new.environment,
                    "source": new.source_kind,
                    "branch": new.branch,
                    "commit": new.commit,
                    "release_of": new.release_of,
                    "promoted_from": new.promoted_from,
                }));
            audit::record(conn, by.meta, entry).await?;
            Ok(id)
        })
        .await
    }

    /// Cancels the deployments of `new`'s service and environment that are still queued
    /// or building: `newer` replaces them. A build in progress notices within 500 ms.
    async fn supersede_pending(
        conn: &mut AsyncPgConnection,
        new: &NewDeployment,
        newer: Uuid,
    ) -> diesel::QueryResult<()> {
        let pending: Vec<(Uuid, String)> = deployments::table
            .filter(deployments::service_id.eq(new.service))
            .filter(deployments::environment_id.eq(new.environment))
            .filter(deployments::id.ne(newer))
            .filter(deployments::state.eq_any([State::Queued.as_str(), State::Building.as_str()]))
            .select((deployments::id, deployments::state))
            .load(conn)
            .await?;
        let reason = format!("superseded by the newer deployment {newer}");
        for (older, state) in pending {
            let Some(from) = State::parse(&state) else {
                continue;
            };
            match machine::transition(conn, older, from, State::Cancelled, &reason).await {
                Ok(()) | Err(TransitionError::Lost(_) | TransitionError::NotAllowed { .. }) => {}
                Err(TransitionError::Database(err)) => return Err(err),
            }
        }
        Ok(())
    }

    /// Whether a deployment of the same service and environment created after `row` is
    /// live already (then `row` must not go live over it).
    pub async fn newer_active(
        conn: &mut AsyncPgConnection,
        row: &DeploymentRow,
    ) -> diesel::QueryResult<Option<Uuid>> {
        deployments::table
            .filter(deployments::service_id.eq(row.service_id))
            .filter(deployments::environment_id.eq(row.environment_id))
            .filter(deployments::state.eq(State::Active.as_str()))
            .filter(deployments::created_at.gt(row.created_at))
            .select(deployments::id)
            .first(conn)
            .await
            .optional()
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
            .filter(deployments::state.eq(State::Active.as_str()))
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
            Option<String>,
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
                service_settings::branch,
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
                branch,
            )) => ServiceSettings {
                root_dir,
                build_command,
                start_command,
                health_check_path,
                restart_policy: Some(restart_policy),
                port,
                memory_limit_mb: memory,
                branch,
            },
        })
    }

    /// Copies every service's settings in environment `from` to the new environment `to`.
    pub async fn copy_settings(
        conn: &mut AsyncPgConnection,
        from: Uuid,
        to: Uuid,
    ) -> diesel::QueryResult<usize> {
        let services: Vec<Uuid> = service_settings::table
            .filter(service_settings::environment_id.eq(from))
            .select(service_settings::service_id)
            .load(conn)
            .await?;
        for service in &services {
            let settings = Self::settings(conn, *service, from).await?;
            Self::save_settings(conn, *service, to, &settings).await?;
        }
        Ok(services.len())
    }

    /// The branch each environment of `project` tracks for `service` (a push there deploys
    /// it): its own `branch` setting, or for production the service's branch.
    pub async fn tracked_branches(
        conn: &mut AsyncPgConnection,
        project: Uuid,
        service: Uuid,
        service_branch: &str,
    ) -> diesel::QueryResult<Vec<(Uuid, String)>> {
        use crate::schema::environments;
        let rows: Vec<(Uuid, String, Option<String>)> = environments::table
            .left_join(
                service_settings::table.on(service_settings::environment_id
                    .eq(environments::id)
                    .and(service_settings::service_id.eq(service))),
            )
            .filter(environments::project_id.eq(project))
            .order(environments::position.asc())
            .select((
                environments::id,
                environments::kind,
                service_settings::branch.nullable(),
            ))
            .load(conn)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(env, kind, branch)| {
                let branch = branch.or_else(|| (kind == "production").then(|| service_branch.to_owned()))?;
                Some((env, branch))
            })
            .collect())
    }

    /// The branch a deployment of `service` in `environment` builds when none is asked
    /// for: the environment's `branch` setting, else the service's.
    pub async fn branch_for(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
        service_branch: &str,
    ) -> diesel::QueryResult<String> {
        let own: Option<Option<String>> = service_settings::table
            .find((service, environment))
            .select(service_settings::branch)
            .first(conn)
            .await
            .optional()?;
        Ok(own.flatten().unwrap_or_else(|| service_branch.to_owned()))
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
            service_settings::branch.eq(&settings.branch),
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

    /// Adds what the rows do not hold to deployments about to be shown: the commit's subject
    /// and author, and the environment a promotion came from.
    pub async fn annotate(conn: &mut AsyncPgConnection, shown: &mut [Deployment]) -> diesel::QueryResult<()> {
        use crate::schema::{commits, environments};
        let shas: Vec<String> = shown.iter().filter_map(|d| d.commit.clone()).collect();
        let services: Vec<Uuid> = shown.iter().map(|d| d.service_id.uuid()).collect();
        let described: Vec<(Uuid, String, String, String)> = if shas.is_empty() {
            Vec::new()
        } else {
            commits::table
                .filter(commits::service_id.eq_any(&services))
                .filter(commits::sha.eq_any(&shas))
                .select((
                    commits::service_id,
                    commits::sha,
                    commits::message,
                    commits::author,
                ))
                .load(conn)
                .await?
        };
        let sources: Vec<Uuid> = shown
            .iter()
            .filter_map(|d| d.promoted_from.map(|p| p.uuid()))
            .collect();
        let from: Vec<(Uuid, String)> = if sources.is_empty() {
            Vec::new()
        } else {
            deployments::table
                .inner_join(environments::table.on(environments::id.eq(deployments::environment_id)))
                .filter(deployments::id.eq_any(&sources))
                .select((deployments::id, environments::name))
                .load(conn)
                .await?
        };
        for deployment in shown {
            if let Some((_, _, message, author)) = described.iter().find(|(service, sha, _, _)| {
                *service == deployment.service_id.uuid() && Some(sha) == deployment.commit.as_ref()
            }) {
                deployment.commit_message = Some(message.clone());
                deployment.commit_author = Some(author.clone());
            }
            if let Some(source) = deployment.promoted_from {
                deployment.promoted_from_environment = from
                    .iter()
                    .find(|(id, _)| *id == source.uuid())
                    .map(|(_, name)| name.clone());
            }
        }
        Ok(())
    }

    /// Keeps a commit's subject and author (the matrix and the history show them).
    pub async fn describe_commit(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        sha: &str,
        message: &str,
        author: &str,
    ) -> diesel::QueryResult<()> {
        use crate::schema::commits;
        diesel::insert_into(commits::table)
            .values((
                commits::service_id.eq(service),
                commits::sha.eq(sha),
                commits::message.eq(message),
                commits::author.eq(author),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok(())
    }

    /// What the API shows of a deployment: with its history, durations, plan and log.
    pub async fn detail(
        conn: &mut AsyncPgConnection,
        row: DeploymentRow,
    ) -> diesel::QueryResult<DeploymentDetail> {
        let history: Vec<Transition> = machine::history(conn, row.id)
            .await?
            .into_iter()
            .map(|(from, to, reason, at)| Transition { from, to, reason, at })
            .collect();
        let log_tail = if row.state() == State::Failed {
            Self::log_tail(conn, row.id, 30).await?
        } else {
            Vec::new()
        };
        let release_available = Self::release(conn, row.release_of.unwrap_or(row.id))
            .await?
            .is_some();
        let mut shown = [row.to_api()];
        Self::annotate(conn, &mut shown).await?;
        let [deployment] = shown;
        Ok(DeploymentDetail {
            durations: durations(&row, &history, Utc::now()),
            plan: row.plan(),
            log_url: format!("/api/v1/deployments/{}/logs", row.id),
            deployment,
            history,
            log_tail,
            release_available,
        })
    }
}

/// Time between the first arrivals in each state.
fn durations(row: &DeploymentRow, history: &[Transition], now: DateTime<Utc>) -> Durations {
    let entered = |state: &str| history.iter().find(|t| t.to == state).map(|t| t.at);
    let ended = row.finished_at;
    let building = entered("building");
    let deploying = entered("deploying");
    let ms = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_milliseconds().max(0);
    let after_queue = building.or(deploying).or(ended);
    Durations {
        queued_ms: Some(ms(row.created_at, after_queue.unwrap_or(now))),
        build_ms: building.map(|b| ms(b, deploying.or(ended).unwrap_or(now))),
        deploy_ms: deploying.map(|d| ms(d, ended.unwrap_or(now))),
        total_ms: Some(ms(row.created_at, ended.unwrap_or(now))),
    }
}
