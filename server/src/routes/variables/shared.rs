//! An environment's shared variables (`${{ shared.NAME }}`), through the same checks,
//! storage and audit as a service's own ([`super::variables`]).

use axum::{extract::State, http::StatusCode, response::Response};
use diesel_async::AsyncPgConnection;
use railyard_shared::{
    auth::Role,
    variables::{NewVariable, VariableList, VariablePatch, VariableResponse},
};
use uuid::Uuid;

use super::{ListParams, Target, apply, create, list, replace_ops, update};
use crate::routes::scope::authorize_project;
use crate::{
    app::AppState,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult},
    extract::{Json, Path, Query},
    models::project::Projects,
    variables::store::Op,
};

async fn shared_target(conn: &mut AsyncPgConnection, caller: &Caller, id: Uuid) -> AppResult<Target> {
    let (project, _) = Projects::environment(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("environment not found"))?;
    let workspace = authorize_project(conn, caller, project, Role::Member, "environment").await?;
    Ok(Target {
        workspace,
        environment: id,
        service: None,
    })
}

/// An environment's shared variables (referenced as `${{ shared.NAME }}`).
#[utoipa::path(
    get,
    path = "/api/v1/environments/{id}/shared-variables",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Environment id"), ("format" = Option<String>, Query, description = "`env` for raw `.env` text")),
    responses(
        (status = 200, description = "The variables", body = VariableList),
        (status = 404, description = "No such environment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_shared_variables(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<ListParams>,
) -> AppResult<Response> {
    let target = shared_target(&mut *state.db.get().await?, &caller, id).await?;
    list(&state, target, params.format.as_deref()).await
}

/// Add a shared variable.
#[utoipa::path(
    post,
    path = "/api/v1/environments/{id}/shared-variables",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Environment id")),
    request_body = NewVariable,
    responses(
        (status = 201, description = "Created", body = VariableResponse),
        (status = 409, description = "A variable with this name exists", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name or value, a missing reference or a cycle", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_shared_variable(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<NewVariable>,
) -> AppResult<(StatusCode, axum::Json<VariableResponse>)> {
    let target = shared_target(&mut *state.db.get().await?, &caller, id).await?;
    create(&state, &caller, &meta, target, req).await
}

/// Replace the shared variables with raw `.env` text (as for a service's).
#[utoipa::path(
    put,
    path = "/api/v1/environments/{id}/shared-variables",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Environment id")),
    request_body(content = String, content_type = "text/plain", description = "`.env` text"),
    responses(
        (status = 200, description = "The variables now", body = VariableList),
        (status = 422, description = "A line that does not parse, an invalid name or value, a missing reference or a cycle", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn replace_shared_variables(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    body: String,
) -> AppResult<axum::Json<VariableList>> {
    let target = shared_target(&mut *state.db.get().await?, &caller, id).await?;
    let ops = replace_ops(&state, target, &body).await?;
    let variables = apply(&state, &caller, &meta, target, ops).await?;
    Ok(axum::Json(VariableList {
        variables,
        staged: Vec::new(),
    }))
}

/// Change a shared variable's value, or seal it.
#[utoipa::path(
    patch,
    path = "/api/v1/environments/{id}/shared-variables/{name}",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Environment id"), ("name" = String, Path, description = "Variable name")),
    request_body = VariablePatch,
    responses(
        (status = 200, description = "Updated", body = VariableResponse),
        (status = 404, description = "No such variable", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid value, unsealing, a missing reference or a cycle", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_shared_variable(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path((id, name)): Path<(Uuid, String)>,
    Json(req): Json<VariablePatch>,
) -> AppResult<axum::Json<VariableResponse>> {
    let target = shared_target(&mut *state.db.get().await?, &caller, id).await?;
    update(&state, &caller, &meta, target, name, req).await
}

/// Delete a shared variable (refused while a variable refers to it).
#[utoipa::path(
    delete,
    path = "/api/v1/environments/{id}/shared-variables/{name}",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Environment id"), ("name" = String, Path, description = "Variable name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such variable", body = railyard_shared::ErrorBody),
        (status = 422, description = "A variable refers to it", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_shared_variable(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path((id, name)): Path<(Uuid, String)>,
) -> AppResult<StatusCode> {
    let target = shared_target(&mut *state.db.get().await?, &caller, id).await?;
    apply(&state, &caller, &meta, target, vec![Op::Delete { name }]).await?;
    Ok(StatusCode::NO_CONTENT)
}
