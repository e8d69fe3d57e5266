//! Pull-request previews. `opened`, `reopened` and `synchronize` make (or update) the
//! environment `pr-<number>` of kind `preview` in every project with a service of the
//! repository, cloned from the project's preview base (its setting, else staging, else
//! production), and deploy the head commit to each such service; one comment on the pull
//! request carries the preview URLs (a job writes and edits it). `closed` removes the
//! environment and its processes. A project has at most 15 live previews; past that the
//! pull request is told why. A pull request from a fork, or by an author GitHub reports as
//! neither `OWNER`, `MEMBER` nor `COLLABORATOR` who is not a workspace member with a
//! linked GitHub account, waits for a member's approval. [`expire`] removes previews whose
//! last push is older than their project's TTL.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::{
    ErrorCode,
    projects::{EnvironmentKind, valid_branch, valid_repository},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Named,
    push::{acting_user, projects_of, short},
};
use crate::{
    app::App,
    audit,
    auth::RequestMeta,
    jobs::kinds::{self, GithubComment, GithubInactive, GithubStatus},
    models::{
        deployment::{Deployments, NewDeployment, RequestedBy},
        github::{Outcome, Previews, Repositories, TrackingService, is_member, services_of},
        teardown::{self, Scope},
    },
    pipeline::git::valid_commit,
    promote::create::{self, NewEnvironment},
    schema::{environments, projects},
};

#[derive(Debug, Deserialize)]
pub struct PullRequestEvent {
    action: String,
    number: i32,
    pull_request: PullRequest,
    repository: Named,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    head: Side,
    user: Author,
    #[serde(default)]
    author_association: String,
}

#[derive(Debug, Deserialize)]
struct Side {
    #[serde(rename = "ref")]
    reference: String,
    sha: String,
    #[serde(default)]
    repo: Option<Named>,
}

#[derive(Debug, Deserialize)]
struct Author {
    id: i64,
}

/// The name of a pull request's preview environment.
pub fn environment_name(number: i32) -> String {
    format!("pr-{number}")
}

pub async fn handle(
    app: &App,
    meta: &RequestMeta,
    event: PullRequestEvent,
    approved_by: Option<Uuid>,
) -> anyhow::Result<Outcome> {
    let repository = event.repository.full_name.clone();
    let mut outcome = Outcome {
        outcome: "ignored",
        action: Some(event.action.chars().take(60).collect()),
        repository: Some(repository.chars().take(200).collect()),
        ..Outcome::default()
    };
    let head = &event.pull_request.head;
    if !valid_repository(&repository)
        || event.number <= 0
        || !valid_commit(&head.sha)
        || !valid_branch(&head.reference)
    {
        outcome.detail = "the repository, pull request, branch or commit is not valid".to_owned();
        return Ok(outcome);
    }
    let mut conn = app.db.get().await?;
    let services = services_of(&mut conn, &repository).await?;
    outcome.projects = projects_of(&services);
    if services.is_empty() {
        outcome.detail = "no service deploys this repository".to_owned();
        return Ok(outcome);
    }
    match event.action.as_str() {
        "opened" | "reopened" | "synchronize" => {
            open(app, meta, &event, &services, approved_by, outcome).await
        }
        "closed" => {
            let mut removed = 0;
            for project in projects_of(&services) {
                if let Some(environment) =
                    Previews::find(&mut conn, project, &repository, event.number).await?
                {
                    let note = "The preview was removed: the pull request was closed.";
                    remove(&mut conn, meta, environment, note).await?;
                    removed += 1;
                }
            }
            outcome.outcome = "processed";
            outcome.detail = format!("{removed} preview environment(s) removed");
            Ok(outcome)
        }
        other => {
            outcome.detail = format!(
                "pull request `{}` does not change previews",
                other.chars().take(60).collect::<String>()
            );
            Ok(outcome)
        }
    }
}

async fn open(
    app: &App,
    meta: &RequestMeta,
    event: &PullRequestEvent,
    services: &[TrackingService],
    approved_by: Option<Uuid>,
    mut outcome: Outcome,
) -> anyhow::Result<Outcome> {
    let repository = event.repository.full_name.as_str();
    let pr = &event.pull_request;
    let fork = pr
        .head
        .repo
        .as_ref()
        .is_none_or(|r| !r.full_name.eq_ignore_ascii_case(repository));
    let trusted = !fork
        && matches!(
            pr.author_association.as_str(),
            "OWNER" | "MEMBER" | "COLLABORATOR"
        );
    // A fork's branch is not in the repository; GitHub keeps its head as `pull/<n>/head`.
    let branch = if fork {
        format!("pull/{}/head", event.number)
    } else {
        pr.head.reference.clone()
    };
    let name = environment_name(event.number);
    let mut conn = app.db.get().await?;
    let connector = Repositories::connector(&mut conn, repository).await?;
    let mut notes = Vec::new();
    let mut awaiting = 0;
    for project in projects_of(services) {
        let in_project: Vec<&TrackingService> = services.iter().filter(|s| s.project == project).collect();
        let workspace = in_project[0].workspace;
        if !trusted && approved_by.is_none() && !is_member(&mut conn, pr.user.id, workspace).await? {
            awaiting += 1;
            let note = "This pull request waits for a member's approval in Railyard before it is built (it comes from a fork, or from someone who is not a collaborator).";
            enqueue_comment(&mut conn, project, repository, event.number, Some(note)).await?;
            continue;
        }
        let Some(actor) = approved_by.or(acting_user(&mut conn, connector, workspace).await?) else {
            continue;
        };
        let environment = match Previews::find(&mut conn, project, repository, event.number).await? {
            Some(environment) => {
                Previews::pushed(&mut conn, environment).await?;
                environment
            }
            None => {
                let new = NewEnvironment {
                    project,
                    name: &name,
                    kind: EnvironmentKind::Preview,
                    clone_from: base_of(&mut conn, project).await?,
                    actor,
                    pull_request: Some((repository, event.number)),
                };
                match create::create(&mut conn, &create::Context::of(app), new).await {
                    Ok((environment, _)) => environment.id.uuid(),
                    Err(err) => {
                        let refused = err.code == ErrorCode::EnvPreviewLimitReached;
                        notes.push(format!("{}: {}", err.code, err.message));
                        let note = if refused {
                            "No preview was made: this project has its 15 live previews (ENV_PREVIEW_LIMIT_REACHED). Close a pull request or delete a preview, then push again."
                        } else {
                            "No preview was made: its environment could not be created (see the delivery in Railyard)."
                        };
                        enqueue_comment(&mut conn, project, repository, event.number, Some(note)).await?;
                        continue;
                    }
                }
            }
        };
        for service in in_project {
            let mut settings = Deployments::settings(&mut conn, service.service, environment).await?;
            settings.branch = Some(branch.clone());
            Deployments::save_settings(&mut conn, service.service, environment, &settings).await?;
            let new = NewDeployment {
                service: service.service,
                environment,
                source_kind: "github",
                branch: Some(branch.clone()),
                commit: Some(pr.head.sha.clone()),
                upload: None,
                release_of: None,
                promoted_from: None,
            };
            let by = RequestedBy {
                meta,
                user: actor,
                workspace,
                action: "deployment.github_pull_request",
            };
            outcome
                .deployments
                .push(Deployments::request(&mut conn, new, by).await?);
        }
        enqueue_comment(&mut conn, project, repository, event.number, None).await?;
    }
    outcome.outcome = if !outcome.deployments.is_empty() {
        "processed"
    } else if awaiting > 0 {
        "awaiting_approval"
    } else if !notes.is_empty() {
        "refused"
    } else {
        "processed"
    };
    let mut detail = match outcome.deployments.len() {
        0 => String::new(),
        n => format!("{name}: {n} deployment(s) of {}", short(&pr.head.sha)),
    };
    if awaiting > 0 {
        detail.push_str(&format!(
            "{}awaiting approval in {awaiting} project(s)",
            sep(&detail)
        ));
    }
    for note in notes {
        detail.push_str(&format!("{}{note}", sep(&detail)));
    }
    outcome.detail = detail;
    Ok(outcome)
}

fn sep(detail: &str) -> &'static str {
    if detail.is_empty() { "" } else { "; " }
}

/// The environment a project's previews are cloned from: its setting, else staging, else
/// production.
async fn base_of(conn: &mut AsyncPgConnection, project: Uuid) -> diesel::QueryResult<Option<Uuid>> {
    let chosen: Option<Uuid> = projects::table
        .find(project)
        .select(projects::preview_base_environment_id)
        .first(conn)
        .await?;
    if chosen.is_some() {
        return Ok(chosen);
    }
    for kind in [EnvironmentKind::Staging, EnvironmentKind::Production] {
        let found = environments::table
            .filter(environments::project_id.eq(project))
            .filter(environments::kind.eq(kind.as_str()))
            .order(environments::position.asc())
            .select(environments::id)
            .first(conn)
            .await
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

async fn enqueue_comment(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    repository: &str,
    pr: i32,
    note: Option<&str>,
) -> diesel::QueryResult<()> {
    let job = GithubComment {
        project_id: project,
        repository: repository.to_ascii_lowercase(),
        pr,
        note: note.map(str::to_owned),
    };
    kinds::enqueue(conn, &job).await?;
    Ok(())
}

/// Removes preview `environment` (its processes and files through the teardown job), marks
/// its GitHub Deployments inactive and says why on the pull request, in one transaction.
async fn remove(
    conn: &mut AsyncPgConnection,
    meta: &RequestMeta,
    environment: Uuid,
    note: &str,
) -> anyhow::Result<()> {
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        let row: Option<(Uuid, Option<String>, Option<i32>)> = environments::table
            .find(environment)
            .select((
                environments::project_id,
                environments::preview_repository,
                environments::preview_pr,
            ))
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some((project, Some(repository), Some(pr))) = row else {
            return Ok(());
        };
        for (deployment, repository, github_id) in Previews::github_deployments(conn, environment).await? {
            let job = GithubStatus {
                deployment_id: deployment,
                state: "removed".to_owned(),
                inactive: Some(GithubInactive {
                    repository,
                    github_id,
                }),
            };
            kinds::enqueue(conn, &job).await?;
        }
        let workspace: Uuid = projects::table
            .find(project)
            .select(projects::workspace_id)
            .first(conn)
            .await?;
        let entry = audit::Entry::new("environment.preview_remove")
            .workspace(workspace)
            .label("github")
            .target("environment", environment)
            .detail(serde_json::json!({ "repository": repository, "pull_request": pr, "why": note }));
        teardown::delete(conn, Scope::Environment(environment), meta, entry).await?;
        enqueue_comment(conn, project, &repository, pr, Some(note)).await?;
        Ok(())
    })
    .await
}

/// Removes every preview whose last push is older than its project's TTL at `now`;
/// returns how many.
pub async fn expire(app: &App, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut conn = app.db.get().await?;
    let expired = Previews::expired(&mut conn, now).await?;
    let meta = RequestMeta {
        ip: String::new(),
        user_agent: "railyard preview expiry".to_owned(),
        request_id: String::new(),
    };
    for preview in &expired {
        let note = "The preview was removed: no push for longer than this project keeps previews.";
        tracing::info!(environment = %preview.environment, pr = preview.pr, "preview expired");
        remove(&mut conn, &meta, preview.environment, note).await?;
    }
    Ok(expired.len())
}
