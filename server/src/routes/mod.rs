//! Handlers, one module per domain; [`crate::router`] lists every route. Route modules
//! share only what is here and in [`scope`] (authorization): never each other's items.

pub mod audit;
pub mod auth;
pub mod databases;
pub mod deployments;
pub mod environments;
pub mod github;
pub mod health;
pub mod instance;
pub mod invitations;
pub mod jwks;
pub mod live;
pub mod logs;
pub mod me;
pub mod members;
pub mod projects;
pub mod promotions;
pub mod runtime;
pub mod scope;
pub mod services;
pub mod tokens;
pub mod uploads;
pub mod variables;
pub mod workspaces;

use axum::http::StatusCode;
use diesel_async::AsyncPgConnection;
use railyard_shared::{ErrorCode, deployments::DeploymentResponse, projects::valid_name};
use uuid::Uuid;

use crate::{
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult},
    models::deployment::{Deployments, NewDeployment, RequestedBy},
};

/// Requests a deployment (the one way: [`Deployments::request`]) on behalf of the caller
/// and answers 201 with its detail.
pub(crate) async fn request_deployment(
    conn: &mut AsyncPgConnection,
    meta: &RequestMeta,
    caller: &Caller,
    workspace: Uuid,
    action: &'static str,
    new: NewDeployment,
) -> AppResult<(StatusCode, axum::Json<DeploymentResponse>)> {
    let by = RequestedBy {
        meta,
        user: caller.user_id,
        workspace,
        action,
    };
    let id = Deployments::request(conn, new, by).await?;
    let row = Deployments::find(conn, id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "the deployment was deleted meanwhile"))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(DeploymentResponse {
            deployment: Deployments::detail(conn, row).await?,
        }),
    ))
}

/// 422 unless `name` is a valid project, environment or service name.
/// Refuses `change` (409) when it would give a service a host name another service of the
/// instance answers at; the caller's transaction then holds the host lock until it commits.
pub(crate) async fn check_host(
    conn: &mut AsyncPgConnection,
    base_domain: &str,
    change: crate::models::hosts::Change<'_>,
) -> Result<(), AppError> {
    use crate::models::hosts;
    hosts::lock(conn).await?;
    match hosts::taken(conn, change).await? {
        Some(host) => Err(AppError::conflict(format!(
            "{host}.{base_domain} is the address of another service on this instance: choose another name"
        ))),
        None => Ok(()),
    }
}

pub(crate) fn check_name(name: &str, what: &str) -> Result<(), AppError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(AppError::unprocessable(format!(
            "`name` is not a valid {what} name: use 1 to 39 lower-case letters, digits and `-`, starting with a letter or digit"
        )))
    }
}
