//! `push`: every service whose source is the repository deploys the pushed commit in each
//! environment that tracks the pushed branch (previews follow their pull request instead).
//! `[skip ci]` or `[skip railyard]` in the head commit's message skips it.

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_shared::projects::{EnvironmentKind, valid_branch, valid_repository};
use serde::Deserialize;
use uuid::Uuid;

use super::Named;
use crate::{
    app::App,
    auth::RequestMeta,
    models::{
        deployment::{Deployments, NewDeployment, RequestedBy},
        github::{Outcome, Repositories, TrackingService, owner_of, services_of},
    },
    pipeline::git::valid_commit,
    schema::environments,
};

#[derive(Debug, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    reference: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    repository: Named,
    #[serde(default)]
    head_commit: Option<HeadCommit>,
}

#[derive(Debug, Deserialize)]
struct HeadCommit {
    #[serde(default)]
    message: String,
}

/// Whether a commit message asks not to deploy.
pub fn skips(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("[skip ci]") || lower.contains("[skip railyard]") || lower.contains("[ci skip]")
}

pub async fn handle(app: &App, meta: &RequestMeta, push: PushEvent) -> anyhow::Result<Outcome> {
    let repository = push.repository.full_name;
    let mut outcome = Outcome {
        outcome: "ignored",
        action: None,
        repository: Some(repository.chars().take(200).collect()),
        ..Outcome::default()
    };
    let Some(branch) = push.reference.strip_prefix("refs/heads/") else {
        outcome.detail = "not a branch (tags do not deploy)".to_owned();
        return Ok(outcome);
    };
    if !valid_repository(&repository) || !valid_branch(branch) || !valid_commit(&push.after) {
        outcome.detail = "the repository, branch or commit is not valid".to_owned();
        return Ok(outcome);
    }
    if push.deleted || push.after.bytes().all(|b| b == b'0') {
        outcome.detail = format!("branch {branch} was deleted");
        return Ok(outcome);
    }
    let mut conn = app.db.get().await?;
    let services = services_of(&mut conn, &repository).await?;
    outcome.projects = projects_of(&services);
    if services.is_empty() {
        outcome.detail = "no service deploys this repository".to_owned();
        return Ok(outcome);
    }
    if push.head_commit.as_ref().is_some_and(|c| skips(&c.message)) {
        outcome.outcome = "skipped";
        outcome.detail = "the head commit asks to skip ([skip ci] or [skip railyard])".to_owned();
        return Ok(outcome);
    }
    let connector = Repositories::connector(&mut conn, &repository).await?;
    for service in &services {
        let previews: Vec<Uuid> = environments::table
            .filter(environments::project_id.eq(service.project))
            .filter(environments::kind.eq(EnvironmentKind::Preview.as_str()))
            .select(environments::id)
            .load(&mut conn)
            .await?;
        let tracked =
            Deployments::tracked_branches(&mut conn, service.project, service.service, &service.branch)
                .await?;
        let Some(user) = acting_user(&mut conn, connector, service.workspace).await? else {
            continue;
        };
        for (environment, _) in tracked
            .into_iter()
            .filter(|(env, tracks)| tracks == branch && !previews.contains(env))
        {
            let new = NewDeployment {
                service: service.service,
                environment,
                source_kind: "github",
                branch: Some(branch.to_owned()),
                commit: Some(push.after.clone()),
                upload: None,
                release_of: None,
                promoted_from: None,
            };
            let by = RequestedBy {
                meta,
                user,
                workspace: service.workspace,
                action: "deployment.github_push",
            };
            outcome
                .deployments
                .push(Deployments::request(&mut conn, new, by).await?);
        }
    }
    outcome.outcome = "processed";
    outcome.detail = match outcome.deployments.len() {
        0 => format!("nothing tracks branch {branch}"),
        1 => format!("1 deployment of {}", short(&push.after)),
        n => format!("{n} deployments of {}", short(&push.after)),
    };
    Ok(outcome)
}

pub(super) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

pub(super) fn projects_of(services: &[TrackingService]) -> Vec<Uuid> {
    let mut projects: Vec<Uuid> = services.iter().map(|s| s.project).collect();
    projects.sort_unstable();
    projects.dedup();
    projects
}

/// Who a webhook's deployments are requested by: whoever connected the repository, when
/// still a member of the workspace, else its owner.
pub(super) async fn acting_user(
    conn: &mut diesel_async::AsyncPgConnection,
    connector: Option<Uuid>,
    workspace: Uuid,
) -> diesel::QueryResult<Option<Uuid>> {
    use crate::schema::memberships;
    if let Some(user) = connector {
        let member: i64 = memberships::table
            .filter(memberships::workspace_id.eq(workspace))
            .filter(memberships::user_id.eq(user))
            .count()
            .get_result(conn)
            .await?;
        if member > 0 {
            return Ok(Some(user));
        }
    }
    owner_of(conn, workspace).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn skip_markers() {
        assert!(super::skips("docs: typo [skip ci]"));
        assert!(super::skips("[Skip Railyard] wip"));
        assert!(!super::skips("skip the ci step"));
    }
}
