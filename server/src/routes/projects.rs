//! Projects (their environments: `environments.rs`).

use axum::{extract::State, http::StatusCode};
use diesel_async::AsyncConnection as _;
use railyard_shared::{
    auth::Role,
    deployments::ProjectOverview,
    projects::{CreateProjectRequest, ProjectResponse, ProjectsResponse, UpdateProjectRequest},
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
    pagination::{self, PageParams},
    status,
};

use super::{
    check_host, check_name,
    scope::{authorize_project, environment_of},
};

/// Create a project (with its `production` environment).
#[utoipa::path(
    post,
    path = "/api/v1/projects",
    tag = "projects",
    request_body = CreateProjectRequest,
    responses(
        (status = 201, description = "Created", body = ProjectResponse),
        (status = 403, description = "Viewers cannot create projects", body = railyard_shared::ErrorBody),
        (status = 404, description = "Not a member of the workspace", body = railyard_shared::ErrorBody),
        (status = 409, description = "The name is taken in this workspace", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Json(req): Json<CreateProjectRequest>,
) -> AppResult<(StatusCode, axum::Json<ProjectResponse>)> {
    check_name(&req.name, "project")?;
    let mut conn = state.db.get().await?;
    caller
        .require(&mut conn, req.workspace_id.uuid(), Role::Member)
        .await?;
    let meta = &meta;
    let project = conn
        .transaction::<_, AppError, _>(async |conn| {
            let project = Projects::create(conn, req.workspace_id.uuid(), &req.name)
                .await
                .map_err(|err| conflict_on_unique(err, "a project with this name exists in the workspace"))?;
            let entry = audit::Entry::new("project.create")
                .workspace(req.workspace_id.uuid())
                .actor(caller.user_id);
            audit::record(
                conn,
                meta,
                entry
                    .target("project", project.id)
                    .detail(serde_json::json!({ "name": req.name })),
            )
            .await?;
            Ok(project)
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(ProjectResponse { project })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListProjectsParams {
    pub workspace_id: Uuid,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// The projects of a workspace.
#[utoipa::path(
    get,
    path = "/api/v1/projects",
    tag = "projects",
    params(ListProjectsParams),
    responses(
        (status = 200, description = "Projects", body = ProjectsResponse),
        (status = 404, description = "Not a member of the workspace", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_projects(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListProjectsParams>,
) -> AppResult<axum::Json<ProjectsResponse>> {
    let page = PageParams {
        cursor: params.cursor,
        limit: params.limit,
    };
    let limit = page.limit()?;
    let mut conn = state.db.get().await?;
    caller
        .require(&mut conn, params.workspace_id, Role::Viewer)
        .await?;
    let projects = Projects::list(&mut conn, params.workspace_id, page.after()?, limit).await?;
    let next_cursor = pagination::next(&projects, limit, |p| (p.created_at, p.id.uuid()));
    Ok(axum::Json(ProjectsResponse {
        projects,
        next_cursor,
    }))
}

/// One project with its environments.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "The project", body = ProjectResponse),
        (status = 404, description = "No such project of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<ProjectResponse>> {
    let mut conn = state.db.get().await?;
    authorize_project(&mut conn, &caller, id, Role::Viewer, "project").await?;
    Ok(axum::Json(ProjectResponse {
        project: Projects::find(&mut conn, id).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OverviewParams {
    /// Environment id (default: `production`).
    pub environment: Option<Uuid>,
}

/// The project's canvas in one environment: every service with its running state, public
/// URL, active deployment and newest deployment. The live socket sends the same shape on
/// topic `project:<id>:<environment id>` whenever it changes.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}/overview",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Project id"), OverviewParams),
    responses(
        (status = 200, description = "The overview", body = ProjectOverview),
        (status = 404, description = "No such project or environment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_project_overview(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<OverviewParams>,
) -> AppResult<axum::Json<ProjectOverview>> {
    let mut conn = state.db.get().await?;
    authorize_project(&mut conn, &caller, id, Role::Viewer, "project").await?;
    let environment = environment_of(&mut conn, id, params.environment).await?;
    Ok(axum::Json(
        status::project_overview(&mut conn, &state.config, id, environment).await?,
    ))
}

/// Rename a project.
#[utoipa::path(
    patch,
    path = "/api/v1/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    request_body = UpdateProjectRequest,
    responses(
        (status = 200, description = "Renamed", body = ProjectResponse),
        (status = 403, description = "Viewers cannot edit", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such project of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "The name is taken", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_project(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateProjectRequest>,
) -> AppResult<axum::Json<ProjectResponse>> {
    check_name(&req.name, "project")?;
    let mut conn = state.db.get().await?;
    let workspace = authorize_project(&mut conn, &caller, id, Role::Member, "project").await?;
    let base = &state.config.runtime.base_domain;
    conn.transaction::<_, AppError, _>(async |conn| {
        check_host(
            conn,
            base,
            hosts::Change::Project {
                project: id,
                name: &req.name,
            },
        )
        .await?;
        Projects::rename(conn, id, &req.name)
            .await
            .map_err(|err| conflict_on_unique(err, "a project with this name exists in the workspace"))
    })
    .await?;
    let entry = audit::Entry::new("project.rename")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("project", id);
    audit::record(
        &mut conn,
        &meta,
        entry.detail(serde_json::json!({ "name": req.name })),
    )
    .await?;
    Ok(axum::Json(ProjectResponse {
        project: Projects::find(&mut conn, id).await?,
    }))
}

/// Delete a project with its environments and services (admins and owners).
#[utoipa::path(
    delete,
    path = "/api/v1/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs the admin role", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such project of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_project(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<StatusCode> {
    let mut conn = state.db.get().await?;
    let workspace = authorize_project(&mut conn, &caller, id, Role::Admin, "project").await?;
    let entry = audit::Entry::new("project.delete")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("project", id);
    teardown::delete(&mut conn, Scope::Project(id), &meta, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}
