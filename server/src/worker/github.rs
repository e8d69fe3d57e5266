//! GitHub's side of a deployment, as jobs: the GitHub Deployment of each deployment of a
//! GitHub commit and its statuses (pending → in progress → success / failure / inactive),
//! and the one pull-request comment per project that carries the preview URLs. Both use
//! the token of whoever connected the repository; a token GitHub refuses marks that
//! connection broken (the dashboard says so) and the job ends without retrying.

use std::sync::Arc;

use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_shared::DeploymentState;
use uuid::Uuid;

use crate::{
    crypto::KeyRing,
    db::DbPool,
    github::{GitHubRest, NewDeployment, RestError},
    jobs::kinds::{self, Attempt, GithubComment, GithubStatus, Handle},
    models::github::{Connections, Repositories},
    schema::{deployments, environments, github_comments, github_deployments, projects, services},
    variables::PublicUrls,
};

/// What the GitHub jobs share.
#[derive(Clone)]
pub struct GithubReporter {
    pub db: DbPool,
    pub keys: Arc<KeyRing>,
    pub rest: Arc<dyn GitHubRest>,
    pub urls: PublicUrls,
    /// The dashboard's public URL (deployment log links).
    pub public_url: String,
}

impl GithubReporter {
    /// The connector's token and who they are, when there is a working one.
    async fn token(&self, repository: &str) -> anyhow::Result<Option<(Uuid, String)>> {
        let mut conn = self.db.get().await?;
        let Some(user) = Repositories::connector(&mut conn, repository).await? else {
            return Ok(None);
        };
        Ok(Connections::token(&mut conn, &self.keys, user)
            .await?
            .map(|token| (user, token)))
    }

    /// Ends a job on GitHub's answer: a refused token breaks the connection; other
    /// refusals are logged; an unreachable GitHub is retried.
    async fn settle(&self, user: Uuid, result: Result<(), RestError>) -> anyhow::Result<()> {
        match result {
            Ok(()) => Ok(()),
            Err(RestError::BadToken) => {
                let mut conn = self.db.get().await?;
                Connections::mark_broken(&mut conn, user, "GitHub refused the token").await?;
                Ok(())
            }
            Err(err @ RestError::Refused { .. }) => {
                tracing::warn!(error = %err, "GitHub refused a report");
                Ok(())
            }
            Err(err @ RestError::Unavailable(_)) => Err(err.into()),
        }
    }
}

/// The GitHub status a deployment state reports as.
pub fn github_state(state: DeploymentState) -> &'static str {
    match state {
        DeploymentState::Queued => "pending",
        DeploymentState::Building | DeploymentState::Deploying => "in_progress",
        DeploymentState::Active => "success",
        DeploymentState::Failed => "failure",
        _ => "inactive",
    }
}

type Reported = (
    String,
    Option<i64>,
    Option<String>,
    String,
    Option<String>,
    Uuid,
    Uuid,
);

#[async_trait::async_trait]
impl Handle<GithubStatus> for GithubReporter {
    async fn handle(&self, job: GithubStatus, _: Attempt) -> anyhow::Result<()> {
        if let Some(gone) = &job.inactive {
            let Some((user, token)) = self.token(&gone.repository).await? else {
                return Ok(());
            };
            let log_url = format!("{}/projects", self.public_url);
            let result = self
                .rest
                .deployment_status(
                    &token,
                    &gone.repository,
                    gone.github_id,
                    "inactive",
                    None,
                    &log_url,
                )
                .await;
            return self.settle(user, result).await;
        }
        let mut conn = self.db.get().await?;
        let row: Option<Reported> = github_deployments::table
            .inner_join(deployments::table)
            .filter(github_deployments::deployment_id.eq(job.deployment_id))
            .select((
                github_deployments::repository,
                github_deployments::github_id,
                github_deployments::reported_state,
                deployments::state,
                deployments::commit_sha,
                deployments::service_id,
                deployments::environment_id,
            ))
            .first(&mut conn)
            .await
            .optional()?;
        let Some((repository, github_id, reported, state, commit, service, environment)) = row else {
            return Ok(());
        };
        let Some(state) = DeploymentState::parse(&state) else {
            return Ok(());
        };
        let mapped = github_state(state);
        // A deployment of a branch's head learns its commit when it is fetched: it reports
        // from then on.
        let Some(commit) = commit else {
            return Ok(());
        };
        if reported.as_deref() == Some(mapped) {
            return Ok(());
        }
        let (service_name, project_name): (String, String) = services::table
            .inner_join(projects::table)
            .filter(services::id.eq(service))
            .select((services::name, projects::name))
            .first(&mut conn)
            .await?;
        let (env_name, env_kind): (String, String) = environments::table
            .find(environment)
            .select((environments::name, environments::kind))
            .first(&mut conn)
            .await?;
        drop(conn);
        let Some((user, token)) = self.token(&repository).await? else {
            return Ok(());
        };
        let github_id = match github_id {
            Some(id) => id,
            None => {
                let description = format!("Railyard: {service_name} in {env_name}");
                let new = NewDeployment {
                    sha: &commit,
                    environment: &env_name,
                    description: &description,
                    production: env_kind == "production",
                    transient: env_kind == "preview",
                };
                match self.rest.create_deployment(&token, &repository, new).await {
                    Ok(id) => {
                        let mut conn = self.db.get().await?;
                        diesel::update(github_deployments::table.find(job.deployment_id))
                            .set(github_deployments::github_id.eq(id))
                            .execute(&mut conn)
                            .await?;
                        id
                    }
                    Err(err) => return self.settle(user, Err(err)).await,
                }
            }
        };
        let url = self.urls.url(&service_name, &env_name, &project_name);
        let log_url = format!("{}/services/{service}?environment={environment}", self.public_url);
        let result = self
            .rest
            .deployment_status(
                &token,
                &repository,
                github_id,
                mapped,
                (state == DeploymentState::Active).then_some(url.as_str()),
                &log_url,
            )
            .await;
        if result.is_ok() {
            let mut conn = self.db.get().await?;
            diesel::update(github_deployments::table.find(job.deployment_id))
                .set(github_deployments::reported_state.eq(mapped))
                .execute(&mut conn)
                .await?;
            // A preview's comment shows how its deployments ended.
            if env_kind == "preview" && matches!(state, DeploymentState::Active | DeploymentState::Failed) {
                let preview: Option<(Uuid, Option<String>, Option<i32>)> = environments::table
                    .find(environment)
                    .select((
                        environments::project_id,
                        environments::preview_repository,
                        environments::preview_pr,
                    ))
                    .first(&mut conn)
                    .await
                    .optional()?;
                if let Some((project_id, Some(repository), Some(pr))) = preview {
                    let comment = GithubComment {
                        project_id,
                        repository,
                        pr,
                        note: None,
                    };
                    kinds::enqueue(&mut conn, &comment).await?;
                }
            }
        }
        self.settle(user, result).await
    }
}

/// The marker that starts Railyard's comment.
pub const COMMENT_MARKER: &str = "<!-- railyard:preview -->";

#[async_trait::async_trait]
impl Handle<GithubComment> for GithubReporter {
    async fn handle(&self, job: GithubComment, _: Attempt) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let project_name: Option<String> = projects::table
            .find(job.project_id)
            .select(projects::name)
            .first(&mut conn)
            .await
            .optional()?;
        let Some(project_name) = project_name else {
            return Ok(());
        };
        let mut body = format!("{COMMENT_MARKER}\n**Railyard preview** of `{project_name}`\n\n");
        match &job.note {
            Some(note) => body.push_str(note),
            None => {
                let environment: Option<(Uuid, String)> = environments::table
                    .filter(environments::project_id.eq(job.project_id))
                    .filter(environments::preview_repository.eq(&job.repository))
                    .filter(environments::preview_pr.eq(job.pr))
                    .select((environments::id, environments::name))
                    .first(&mut conn)
                    .await
                    .optional()?;
                let Some((environment, env_name)) = environment else {
                    return Ok(());
                };
                let names: Vec<(Uuid, String)> = services::table
                    .filter(services::project_id.eq(job.project_id))
                    .filter(services::source_kind.eq("github"))
                    .order(services::name.asc())
                    .select((services::id, services::name))
                    .load(&mut conn)
                    .await?;
                body.push_str(&format!(
                    "Environment `{env_name}`\n\n| Service | URL | Deployment |\n|---|---|---|\n"
                ));
                for (service, name) in names {
                    let state: Option<String> = deployments::table
                        .filter(deployments::service_id.eq(service))
                        .filter(deployments::environment_id.eq(environment))
                        .order(deployments::created_at.desc())
                        .select(deployments::state)
                        .first(&mut conn)
                        .await
                        .optional()?;
                    let url = self.urls.url(&name, &env_name, &project_name);
                    let shown = state
                        .as_deref()
                        .and_then(DeploymentState::parse)
                        .map_or_else(|| "not deployed".to_owned(), DeploymentState::label);
                    let link = format!("{}/services/{service}?environment={environment}", self.public_url);
                    body.push_str(&format!("| {name} | {url} | [{shown}]({link}) |\n"));
                }
            }
        }
        let existing: Option<i64> = github_comments::table
            .find((job.project_id, &job.repository, job.pr))
            .select(github_comments::comment_id)
            .first(&mut conn)
            .await
            .optional()?;
        drop(conn);
        let Some((user, token)) = self.token(&job.repository).await? else {
            return Ok(());
        };
        match self
            .rest
            .comment(&token, &job.repository, i64::from(job.pr), existing, &body)
            .await
        {
            Ok(id) => {
                let mut conn = self.db.get().await?;
                diesel::insert_into(github_comments::table)
                    .values((
                        github_comments::project_id.eq(job.project_id),
                        github_comments::repository.eq(&job.repository),
                        github_comments::pr.eq(job.pr),
                        github_comments::comment_id.eq(id),
                    ))
                    .on_conflict((
                        github_comments::project_id,
                        github_comments::repository,
                        github_comments::pr,
                    ))
                    .do_update()
                    .set(github_comments::comment_id.eq(id))
                    .execute(&mut conn)
                    .await?;
                Ok(())
            }
            Err(err) => self.settle(user, Err(err)).await,
        }
    }
}
