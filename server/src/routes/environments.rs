//! Environments: create (empty or cloned from another), rename, reorder, delete; and the
//! project's environment matrix.

use axum::{extract::State, http::StatusCode};
use diesel_async::AsyncConnection as _;
use railyard_shared::{
    auth::Role,
    pipeline::MatrixResponse,
    projects::{CreateEnvironmentRequest, EnvironmentKind, EnvironmentResponse, UpdateEnvironmentRequest},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult, conflict_on_unique},
    extract::{Json, Path, Query},
    models::{
        hosts,
        project::Projects,
        teardown::{self, Scope},
    },
    promote::{
        create::{self, NewEnvironment},
        matrix,
    },
};

use super::{check_host, check_name, scope::authorize_project};

/// Add an environment (e.g. `staging`) to a project: empty, or a clone of another
/// environment's settings and variables (sealed ones re-encrypted, never shown; no
/// deployments). It takes its place in the pipeline after the others of its kind.
#[utoipa::path(
    post,
    path = "/api/v1/projects/{id}/environments",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    request_body = CreateEnvironmentRequest,
    responses(
        (status = 201, description = "Created", body = EnvironmentResponse),
        (status = 404, description = "No such project of yours, or `clone_from` is not one of its environments", body = railyard_shared::ErrorBody),
        (status = 409, description = "The name is taken in this project, or a second production", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_environment(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateEnvironmentRequest>,
) -> AppResult<(StatusCode, axum::Json<EnvironmentResponse>)> {
    check_name(&req.name, "environment")?;
    let kind = req.kind.unwrap_or_else(|| EnvironmentKind::guess(&req.name));
    if kind == EnvironmentKind::Production {
        return Err(AppError::conflict(
            "a project has one production environment (created with it): choose another kind",
        ));
    }
    let mut conn = state.db.get().await?;
    let workspace = authorize_project(&mut conn, &caller, id, Role::Member, "project").await?;
    let source = match req.clone_from {
        Some(from) => Some(
            Projects::environment_of(&mut conn, id, Some(from.uuid()))
                .await?
                .ok_or_else(|| AppError::not_found("`clone_from` is not an environment of this project"))?,
        ),
        None => None,
    };
    let new = NewEnvironment {
        project: id,
        name: &req.name,
        kind,
        clone_from: source,
        actor: caller.user_id,
        pull_request: None,
    };
    let (environment, copied) = create::create(&mut conn, &create::Context::of(&state), new).await?;
    let entry = audit::Entry::new("environment.create")
        .workspace(workspace)
        .actor(caller.user_id);
    audit::record(
        &mut conn,
        &meta,
        entry
            .target("environment", environment.id)
            .detail(serde_json::json!({
                "name": req.name,
                "kind": kind.as_str(),
                "clone_from": source,
                "settings_copied": copied.0,
                "variables_copied": copied.1,
            })),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(EnvironmentResponse { environment }),
    ))
}

/// Rename an environment, change its kind or move it in the pipeline. Production keeps
/// its kind; a rename changes the addresses of its services.
#[utoipa::path(
    patch,
    path = "/api/v1/environments/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Environment id")),
    request_body = UpdateEnvironmentRequest,
    responses(
        (status = 200, description = "Updated", body = EnvironmentResponse),
        (status = 403, description = "Viewers cannot edit", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such environment of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "The name is taken, or the change would leave no production", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name or position", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_environment(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateEnvironmentRequest>,
) -> AppResult<axum::Json<EnvironmentResponse>> {
    if let Some(name) = &req.name {
        check_name(name, "environment")?;
    }
    if req.position.is_some_and(|p| !(0..=1000).contains(&p)) {
        return Err(AppError::unprocessable("`position` must be from 0 to 1000"));
    }
    let mut conn = state.db.get().await?;
    let (project, current) = Projects::find_environment(&mut conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("environment not found"))?;
    let workspace = authorize_project(&mut conn, &caller, project, Role::Member, "environment").await?;
    if let Some(kind) = req.kind
        && kind != current.kind
        && (kind == EnvironmentKind::Production || current.kind == EnvironmentKind::Production)
    {
        return Err(AppError::conflict(
            "a project has exactly one production environment: its kind cannot change, nor can another become it",
        ));
    }
    let base = &state.config.runtime.base_domain;
    conn.transaction::<_, AppError, _>(async |conn| {
        if let Some(name) = req.name.as_deref().filter(|n| *n != current.name) {
            check_host(conn, base, hosts::Change::Environment { project, name }).await?;
        }
        Projects::update_environment(conn, project, id, req.name.as_deref(), req.kind, req.position)
            .await
            .map_err(|err| conflict_on_unique(err, "an environment with this name exists in the project"))
    })
    .await?;
    let entry = audit::Entry::new("environment.update")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("environment", id);
    audit::record(
        &mut conn,
        &meta,
        entry.detail(serde_json::json!({
            "from": current.name,
            "name": req.name,
            "kind": req.kind.map(EnvironmentKind::as_str),
            "position": req.position,
        })),
    )
    .await?;
    let (_, environment) = Projects::find_environment(&mut conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("environment not found"))?;
    Ok(axum::Json(EnvironmentResponse { environment }))
}

/// Delete an environment (admins and owners): its apps are stopped, its deployments,
/// settings and variables removed. Production stays.
#[utoipa::path(
    delete,
    path = "/api/v1/environments/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Environment id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such environment of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "Production cannot be deleted", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_environment(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<StatusCode> {
    let mut conn = state.db.get().await?;
    let (project, environment) = Projects::find_environment(&mut conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("environment not found"))?;
    let workspace = authorize_project(&mut conn, &caller, project, Role::Admin, "environment").await?;
    if environment.kind == EnvironmentKind::Production {
        return Err(AppError::conflict(
            "the production environment cannot be deleted; delete the project instead",
        ));
    }
    let entry = audit::Entry::new("environment.delete")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("environment", id)
        .detail(serde_json::json!({ "name": environment.name }));
    teardown::delete(&mut conn, Scope::Environment(id), &meta, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MatrixParams {
    /// Compare every cell with this environment instead of the one before it.
    pub compare: Option<Uuid>,
}

/// The environment matrix: every service in every environment (pipeline order, previews
/// last), what each runs and its drift against the environment before it.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}/matrix",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Project id"), MatrixParams),
    responses(
        (status = 200, description = "The matrix", body = MatrixResponse),
        (status = 404, description = "No such project of yours, or `compare` is not one of its environments", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_matrix(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<MatrixParams>,
) -> AppResult<axum::Json<MatrixResponse>> {
    let mut conn = state.db.get().await?;
    authorize_project(&mut conn, &caller, id, Role::Viewer, "project").await?;
    Ok(axum::Json(MatrixResponse {
        matrix: matrix::matrix(&mut conn, &state.keys, &state.config, id, params.compare).await?,
    }))
}
