//! `GET /api/v1/projects/{id}/matrix`: every service in every environment, in pipeline
//! order, each cell with what it runs, how it runs, and its drift against the environment
//! before it (or the one asked for).

use std::collections::BTreeMap;

use diesel_async::AsyncPgConnection;
use railyard_shared::{
    DeploymentState, ServiceState,
    pipeline::{Drift, Matrix, MatrixCell, MatrixService},
    projects::{Environment, Service},
};
use uuid::Uuid;

use super::{Side, active_with_build, compare};
use crate::{
    config::Config,
    crypto::KeyRing,
    error::AppError,
    models::{
        deployment::{DeploymentRow, Deployments},
        project::Projects,
    },
    status,
    variables::store,
};

/// One service in one environment, before its drift is known.
struct Found {
    active: Option<(DeploymentRow, Uuid)>,
    cell: MatrixCell,
}

/// The matrix of `project`; `compare` (one of its environments) replaces each cell's
/// default comparison (the environment before it).
pub async fn matrix(
    conn: &mut AsyncPgConnection,
    keys: &KeyRing,
    config: &Config,
    project: Uuid,
    compare: Option<Uuid>,
) -> Result<Matrix, AppError> {
    let project_name = Projects::find(conn, project).await?.name;
    let environments = Projects::environments(conn, project).await?;
    if let Some(asked) = compare
        && !environments.iter().any(|e| e.id.uuid() == asked)
    {
        return Err(AppError::not_found(
            "the `compare` environment is not one of this project's",
        ));
    }
    let services = Projects::services(conn, project).await?;
    let mut sides = Vec::with_capacity(environments.len());
    for environment in &environments {
        sides.push(Side::load(conn, keys, config, environment.clone()).await?);
    }
    // (service, environment) → what runs there.
    let mut found: BTreeMap<(Uuid, Uuid), Found> = BTreeMap::new();
    for service in &services {
        for environment in &environments {
            let cell = cell(conn, config, service, environment, &project_name).await?;
            found.insert((service.id.uuid(), environment.id.uuid()), cell);
        }
    }
    let mut cells = Vec::with_capacity(found.len());
    for service in &services {
        let repo = compare::history(config, service);
        for (n, environment) in environments.iter().enumerate() {
            let against = match compare {
                Some(asked) => Some(asked).filter(|a| *a != environment.id.uuid()),
                None => n.checked_sub(1).map(|before| environments[before].id.uuid()),
            };
            let key = (service.id.uuid(), environment.id.uuid());
            let drift = match against {
                Some(other) => {
                    let ours = &sides[n];
                    let theirs = sides
                        .iter()
                        .find(|s| s.environment.id.uuid() == other)
                        .expect("compared environment is loaded");
                    let them = &found[&(service.id.uuid(), other)];
                    let us = &found[&key];
                    let sha = |f: &Found| f.active.as_ref().and_then(|(row, _)| row.commit_sha.clone());
                    let (commits_ahead, commits_behind) =
                        compare::ahead_behind(repo.as_deref(), sha(us).as_deref(), sha(them).as_deref())
                            .await;
                    let id = service.id.uuid();
                    Some(Drift {
                        against: other.into(),
                        commits_ahead,
                        commits_behind,
                        settings: compare::settings(
                            &Deployments::settings(conn, id, other).await?,
                            &Deployments::settings(conn, id, environment.id.uuid()).await?,
                        ),
                        variables: compare::variables(
                            &store::comparable(&ours.loaded, id),
                            &store::comparable(&theirs.loaded, id),
                        ),
                    })
                }
                None => None,
            };
            let mut cell = found[&key].cell.clone();
            cell.drift = drift;
            cells.push(cell);
        }
    }
    Ok(Matrix {
        environments,
        services: services
            .iter()
            .map(|s| MatrixService {
                id: s.id,
                name: s.name.clone(),
            })
            .collect(),
        cells,
    })
}

async fn cell(
    conn: &mut AsyncPgConnection,
    config: &Config,
    service: &Service,
    environment: &Environment,
    project_name: &str,
) -> Result<Found, AppError> {
    let (id, env) = (service.id.uuid(), environment.id.uuid());
    let url = status::public_url(config, &service.name, &environment.name, project_name);
    let running = status::service_status(conn, id, env, url.clone()).await?;
    let active = active_with_build(conn, id, env).await?;
    let latest_failed = Deployments::list(conn, id, env, None, 1)
        .await?
        .first()
        .is_some_and(|d| d.state() == DeploymentState::Failed);
    let health = match running.state {
        ServiceState::Running => "healthy",
        ServiceState::Crashed => "unhealthy",
        _ if latest_failed => "unhealthy",
        _ => "unknown",
    };
    let commit = match active.as_ref().and_then(|(row, _)| row.commit_sha.as_deref()) {
        Some(sha) => Some(compare::commit(conn, id, sha).await?),
        None => None,
    };
    let cell = MatrixCell {
        service_id: service.id,
        environment_id: environment.id,
        deployment_id: active.as_ref().map(|(row, _)| row.id.into()),
        release_id: active.as_ref().map(|(_, build)| (*build).into()),
        commit,
        state: running.state,
        health: health.to_owned(),
        url,
        deployed_at: active
            .as_ref()
            .and_then(|(row, _)| row.finished_at.or(Some(row.updated_at))),
        drift: None,
    };
    Ok(Found { active, cell })
}
