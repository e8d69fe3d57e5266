//! What runs: a service's status in an environment, and the actions on it (restart, stop,
//! start), queued as jobs for the process that runs apps.

use axum::{extract::State, http::StatusCode};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use railyard_shared::{
    DeploymentState,
    auth::Role,
    deployments::{ServiceAction, ServiceActionResponse, ServiceStatusResponse},
};
use serde::Deserialize;
use uuid::Uuid;

use super::scope::{authorize_service, environment_of};
use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult},
    extract::{Path, Query},
    jobs::kinds::{self, Action},
    schema::{deployments, environments, projects},
    status,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StatusParams {
    /// Environment id (default: `production`).
    pub environment: Option<Uuid>,
}

/// Whether the service runs, on which pid and port, since when, and how often it restarted.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/status",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id"), StatusParams),
    responses(
        (status = 200, description = "The status", body = ServiceStatusResponse),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_service_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<StatusParams>,
) -> AppResult<axum::Json<ServiceStatusResponse>> {
    let mut conn = state.db.get().await?;
    let (service, _) = authorize_service(&mut conn, &caller, id, Role::Viewer).await?;
    let environment = environment_of(&mut conn, service.project_id.uuid(), params.environment).await?;
    let (env_name, project_name): (String, String) = environments::table
        .inner_join(projects::table)
        .filter(environments::id.eq(environment))
        .select((environments::name, projects::name))
        .first(&mut conn)
        .await?;
    let url = status::public_url(&state.config, &service.name, &env_name, &project_name);
    let status = status::service_status(&mut conn, id, environment, url).await?;
    Ok(axum::Json(ServiceStatusResponse { status }))
}

async fn act(
    state: AppState,
    caller: Caller,
    meta: RequestMeta,
    id: Uuid,
    params: StatusParams,
    action: Action,
) -> AppResult<(StatusCode, axum::Json<ServiceActionResponse>)> {
    let mut conn = state.db.get().await?;
    let (service, workspace) = authorize_service(&mut conn, &caller, id, Role::Member).await?;
    let environment = environment_of(&mut conn, service.project_id.uuid(), params.environment).await?;
    if action != Action::Stop {
        let active: i64 = deployments::table
            .filter(deployments::service_id.eq(id))
            .filter(deployments::environment_id.eq(environment))
            .filter(deployments::state.eq(DeploymentState::Active.as_str()))
            .count()
            .get_result(&mut conn)
            .await?;
        if active == 0 {
            return Err(AppError::conflict(
                "the service has no active deployment in this environment: deploy it first",
            ));
        }
    }
    let payload = kinds::ServiceAction {
        service_id: id,
        environment_id: environment,
        action,
    };
    let name = action.as_str();
    let job = conn
        .transaction::<_, AppError, _>(async |conn| {
            let job = kinds::enqueue(conn, &payload).await?.ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("a job without dedupe key was not added"))
            })?;
            let entry = audit::Entry::new(match action {
                Action::Restart => "service.restart",
                Action::Stop => "service.stop",
                Action::Start => "service.start",
            })
            .workspace(workspace)
            .actor(caller.user_id)
            .target("service", id)
            .detail(serde_json::json!({ "environment_id": environment }));
            audit::record(conn, &meta, entry).await?;
            Ok(job)
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ServiceActionResponse {
            action: ServiceAction {
                action: name.to_owned(),
                service_id: id.into(),
                environment_id: environment.into(),
                job_id: job,
            },
        }),
    ))
}

/// Restart a service: a new process of the active release starts beside the running one,
/// and takes over once healthy (no downtime; a crashed service comes back).
#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/restart",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id"), StatusParams),
    responses(
        (status = 202, description = "Accepted; carried out at once", body = ServiceActionResponse),
        (status = 403, description = "Viewers cannot restart", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "Nothing deployed to restart", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn restart_service(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<StatusParams>,
) -> AppResult<(StatusCode, axum::Json<ServiceActionResponse>)> {
    act(state, caller, meta, id, params, Action::Restart).await
}

/// Stop a service: its processes get SIGTERM, then SIGKILL after the grace period; the
/// router answers 503 until it is started or deployed again.
#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/stop",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id"), StatusParams),
    responses(
        (status = 202, description = "Accepted; carried out at once", body = ServiceActionResponse),
        (status = 403, description = "Viewers cannot stop", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn stop_service(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<StatusParams>,
) -> AppResult<(StatusCode, axum::Json<ServiceActionResponse>)> {
    act(state, caller, meta, id, params, Action::Stop).await
}

/// Start a stopped (or crashed) service's active release; nothing happens if it runs.
#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/start",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id"), StatusParams),
    responses(
        (status = 202, description = "Accepted; carried out at once", body = ServiceActionResponse),
        (status = 403, description = "Viewers cannot start", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "Nothing deployed to start", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn start_service(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<StatusParams>,
) -> AppResult<(StatusCode, axum::Json<ServiceActionResponse>)> {
    act(state, caller, meta, id, params, Action::Start).await
}
