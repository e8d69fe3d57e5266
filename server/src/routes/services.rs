//! Services of a project: where their code comes from.

use axum::{extract::State, http::StatusCode};
use railyard_shared::{
    auth::Role,
    projects::{
        CreateServiceRequest, ServiceResponse, ServicesResponse, Source, UpdateServiceRequest, valid_branch,
    },
};
use uuid::Uuid;

use super::projects::{authorize_project, check_name};
use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult, conflict_on_unique},
    extract::{Json, Path},
    models::project::Projects,
    sources,
};

/// Refuses a source that could reach a shell, an option position or Railyard's own files.
fn check_source(state: &AppState, source: &Source) -> Result<(), AppError> {
    let branch = match source {
        Source::Git { url, branch } => {
            sources::check_git_url(url, &state.config.data_dir).map_err(AppError::unprocessable)?;
            Some(branch)
        }
        Source::Push { branch } => Some(branch),
        Source::Upload {} => None,
    };
    match branch {
        Some(branch) if !valid_branch(branch) => {
            Err(AppError::unprocessable("`branch` is not a valid git branch name"))
        }
        _ => Ok(()),
    }
}

/// Add a service to a project.
#[utoipa::path(
    post,
    path = "/api/v1/projects/{id}/services",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    request_body = CreateServiceRequest,
    responses(
        (status = 201, description = "Created", body = ServiceResponse),
        (status = 403, description = "Viewers cannot add services", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such project of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "The name is taken in this project", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name, repository URL or branch", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_service(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateServiceRequest>,
) -> AppResult<(StatusCode, axum::Json<ServiceResponse>)> {
    check_name(&req.name, "service")?;
    check_source(&state, &req.source)?;
    let mut conn = state.db.get().await?;
    let workspace = authorize_project(&mut conn, &caller, id, Role::Member, "project").await?;
    let service = Projects::create_service(&mut conn, id, &req.name, &req.source)
        .await
        .map_err(|err| conflict_on_unique(err, "a service with this name exists in the project"))?;
    let entry = audit::Entry::new("service.create")
        .workspace(workspace)
        .actor(caller.user_id);
    audit::record(
        &mut conn,
        &meta,
        entry
            .target("service", service.id)
            .detail(serde_json::json!({ "name": req.name })),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(ServiceResponse { service })))
}

/// The services of a project, by name.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}/services",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "Services", body = ServicesResponse),
        (status = 404, description = "No such project of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_services(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<ServicesResponse>> {
    let mut conn = state.db.get().await?;
    authorize_project(&mut conn, &caller, id, Role::Viewer, "project").await?;
    // Services per project are few; one page holds them.
    Ok(axum::Json(ServicesResponse {
        services: Projects::services(&mut conn, id).await?,
        next_cursor: None,
    }))
}

/// The service and the caller's workspace, or 404 (unknown and foreign look the same).
async fn authorize_service(
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    needed: Role,
) -> Result<(railyard_shared::projects::Service, Uuid), AppError> {
    let service = Projects::service(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("service not found"))?;
    let workspace = authorize_project(conn, caller, service.project_id, needed, "service").await?;
    Ok((service, workspace))
}

/// One service.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Service id")),
    responses(
        (status = 200, description = "The service", body = ServiceResponse),
        (status = 404, description = "No such service of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_service(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<ServiceResponse>> {
    let mut conn = state.db.get().await?;
    let (service, _) = authorize_service(&mut conn, &caller, id, Role::Viewer).await?;
    Ok(axum::Json(ServiceResponse { service }))
}

/// Rename a service or change its source.
#[utoipa::path(
    patch,
    path = "/api/v1/services/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Service id")),
    request_body = UpdateServiceRequest,
    responses(
        (status = 200, description = "Updated", body = ServiceResponse),
        (status = 403, description = "Viewers cannot edit", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "The name is taken", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name, repository URL or branch", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_service(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateServiceRequest>,
) -> AppResult<axum::Json<ServiceResponse>> {
    let mut conn = state.db.get().await?;
    let (current, workspace) = authorize_service(&mut conn, &caller, id, Role::Member).await?;
    let name = req.name.unwrap_or(current.name);
    let source = req.source.unwrap_or(current.source);
    check_name(&name, "service")?;
    check_source(&state, &source)?;
    let service = Projects::update_service(&mut conn, id, &name, &source)
        .await
        .map_err(|err| conflict_on_unique(err, "a service with this name exists in the project"))?;
    let entry = audit::Entry::new("service.update")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("service", id);
    audit::record(
        &mut conn,
        &meta,
        entry.detail(serde_json::json!({ "name": name })),
    )
    .await?;
    Ok(axum::Json(ServiceResponse { service }))
}

/// Delete a service (admins and owners).
#[utoipa::path(
    delete,
    path = "/api/v1/services/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Service id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs the admin role", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_service(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<StatusCode> {
    let mut conn = state.db.get().await?;
    let (_, workspace) = authorize_service(&mut conn, &caller, id, Role::Admin).await?;
    Projects::delete_service(&mut conn, id).await?;
    let entry = audit::Entry::new("service.delete")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("service", id);
    audit::record(&mut conn, &meta, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}
