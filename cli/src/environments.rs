//! `railyard environments` (list), `railyard environment create`, `railyard matrix` and
//! `railyard promote` (the plan; with `--yes` applied and followed until live).

use std::process::ExitCode;

use railyard_shared::{
    EnvironmentId, ProjectId, ServiceId,
    pipeline::{MatrixResponse, PromotionResponse},
    projects::{EnvironmentKind, EnvironmentResponse, ProjectResponse},
};
use serde_json::json;

use crate::deploy::{Api, follow};

#[allow(clippy::print_stdout)]
pub async fn list(api: &Api, project: ProjectId, as_json: bool) -> anyhow::Result<ExitCode> {
    let found: ProjectResponse = api
        .send(api.http.get(api.url(&format!("/api/v1/projects/{project}"))))
        .await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&found.project.environments)?);
    } else {
        println!("{:<4} {:<24} {:<12} ID", "#", "NAME", "KIND");
        for env in &found.project.environments {
            println!(
                "{:<4} {:<24} {:<12} {}",
                env.position,
                env.name,
                env.kind.as_str(),
                env.id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
pub async fn create(
    api: &Api,
    project: ProjectId,
    name: &str,
    kind: Option<&str>,
    clone_from: Option<EnvironmentId>,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let kind = match kind {
        Some(text) => Some(EnvironmentKind::parse(text).ok_or_else(|| {
            anyhow::anyhow!("--kind must be development, staging or preview (not {text:?})")
        })?),
        None => None,
    };
    let body = json!({"name": name, "kind": kind, "clone_from": clone_from});
    let made: EnvironmentResponse = api
        .send(
            api.http
                .post(api.url(&format!("/api/v1/projects/{project}/environments")))
                .json(&body),
        )
        .await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&made.environment)?);
    } else {
        println!(
            "Created {} ({}, {}){}",
            made.environment.name,
            made.environment.kind.as_str(),
            made.environment.id,
            if clone_from.is_some() {
                " with a copy of the settings and variables"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
pub async fn rename(
    api: &Api,
    environment: EnvironmentId,
    name: &str,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let renamed: EnvironmentResponse = api
        .send(
            api.http
                .patch(api.url(&format!("/api/v1/environments/{environment}")))
                .json(&json!({"name": name})),
        )
        .await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&renamed.environment)?);
    } else {
        println!("Renamed to {}", renamed.environment.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// Deletes an environment once confirmed with `yes` (exit 2 without it).
#[allow(clippy::print_stdout)]
pub async fn delete(api: &Api, environment: EnvironmentId, yes: bool) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        yes,
        "deleting an environment stops its apps and removes its deployments, settings and variables: add --yes"
    );
    let response = api
        .http
        .delete(api.url(&format!("/api/v1/environments/{environment}")))
        .bearer_auth(api.token())
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        let bytes = response.bytes().await?;
        if let Ok(err) = serde_json::from_slice::<railyard_shared::ErrorBody>(&bytes) {
            anyhow::bail!("{} ({status})", err.error.message);
        }
        anyhow::bail!("the server answered {status}");
    }
    println!("Deleted environment {environment}");
    Ok(ExitCode::SUCCESS)
}

/// The matrix as a table: a row per service, a column per environment.
#[allow(clippy::print_stdout)]
pub async fn matrix(api: &Api, project: ProjectId, as_json: bool) -> anyhow::Result<ExitCode> {
    let found: MatrixResponse = api
        .send(
            api.http
                .get(api.url(&format!("/api/v1/projects/{project}/matrix"))),
        )
        .await?;
    let matrix = found.matrix;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&matrix)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{:<20}", "SERVICE");
    for env in &matrix.environments {
        print!(" {:<28}", env.name);
    }
    println!();
    for service in &matrix.services {
        print!("{:<20}", service.name);
        for env in &matrix.environments {
            let cell = matrix
                .cells
                .iter()
                .find(|c| c.service_id == service.id && c.environment_id == env.id);
            let text = match cell {
                Some(cell) => {
                    let commit = cell
                        .commit
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |c| c.sha.chars().take(7).collect());
                    let drift = cell.drift.as_ref().map_or_else(String::new, |d| {
                        let mut parts = Vec::new();
                        if let Some(n) = d.commits_ahead.filter(|n| *n > 0) {
                            parts.push(format!("+{n}"));
                        }
                        if let Some(n) = d.commits_behind.filter(|n| *n > 0) {
                            parts.push(format!("-{n}"));
                        }
                        if !d.variables.is_empty() {
                            parts.push(format!("{}v", d.variables.len()));
                        }
                        if parts.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", parts.join(" "))
                        }
                    });
                    format!("{} {commit}{drift}", cell.state.as_str())
                }
                None => "-".to_owned(),
            };
            print!(" {text:<28}");
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the plan; with `yes`, applies it and follows the new deployment until it is live
/// (0) or fails (1).
#[allow(clippy::print_stdout)]
pub async fn promote(
    api: &Api,
    service: ServiceId,
    (from, to): (EnvironmentId, EnvironmentId),
    yes: bool,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let url = api.url(&format!("/api/v1/services/{service}/promotions"));
    let ask = json!({"from_environment_id": from, "to_environment_id": to, "dry_run": true});
    let plan: PromotionResponse = api.send(api.http.post(&url).json(&ask)).await?;
    let plan = plan.promotion;
    if as_json && !yes {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !as_json {
        let commit = plan
            .commit
            .as_ref()
            .map_or_else(|| "-".to_owned(), |c| c.sha.clone());
        println!("Build {} (commit {commit})", plan.release_id);
        match &plan.commit_range.commits {
            Some(commits) => {
                println!("Commits it brings: {}", commits.len());
                for c in commits {
                    println!(
                        "  {} {}",
                        c.sha.chars().take(7).collect::<String>(),
                        c.message.as_deref().unwrap_or_default()
                    );
                }
            }
            None => println!("Commits it brings: not known (history not held by Railyard)"),
        }
        for v in &plan.variables {
            println!("Variable {} {}", v.name, v.change);
        }
        for s in &plan.settings {
            println!(
                "Setting {}: {} -> {}",
                s.name,
                s.from.as_deref().unwrap_or("default"),
                s.to.as_deref().unwrap_or("default")
            );
        }
        if !yes {
            println!("Plan {} (run again with --yes to apply it)", plan.plan_id);
            return Ok(ExitCode::SUCCESS);
        }
    }
    let apply = json!({"from_environment_id": from, "to_environment_id": to,
                       "dry_run": false, "plan_id": plan.plan_id});
    let applied: PromotionResponse = api.send(api.http.post(&url).json(&apply)).await?;
    let deployment = applied
        .promotion
        .deployment_id
        .ok_or_else(|| anyhow::anyhow!("the server applied the plan but named no deployment"))?;
    follow(api, deployment, as_json).await
}
