//! Workspaces: the unit of tenancy.

use axum::{extract::State, http::StatusCode};
use diesel_async::AsyncConnection as _;
use railyard_shared::auth::{
    CreateWorkspaceRequest, Role, UpdateWorkspaceRequest, WorkspaceResponse, WorkspacesResponse,
};
use uuid::Uuid;

use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult},
    extract::{Json, Path, Query},
    models::{
        teardown::{self, Scope},
        workspace::Workspaces,
    },
    pagination::{self, PageParams},
};

/// Create a workspace; the caller becomes its owner.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces",
    tag = "workspaces",
    request_body = CreateWorkspaceRequest,
    responses(
        (status = 201, description = "Created", body = WorkspaceResponse),
        (status = 401, description = "Not signed in", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Json(req): Json<CreateWorkspaceRequest>,
) -> AppResult<(StatusCode, axum::Json<WorkspaceResponse>)> {
    caller.require_session()?;
    let name = valid_name(&req.name)?;
    let mut conn = state.db.get().await?;
    let meta = &meta;
    let workspace = conn
        .transaction::<_, AppError, _>(async |conn| {
            let workspace = Workspaces::create(conn, &name, caller.user_id).await?;
            audit::record(
                conn,
                meta,
                audit::Entry::new("workspace.create")
                    .workspace(workspace.id.uuid())
                    .actor(caller.user_id)
                    .target("workspace", workspace.id)
                    .detail(serde_json::json!({ "name": workspace.name })),
            )
            .await?;
            Ok(workspace)
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(WorkspaceResponse { workspace })))
}

/// The workspaces the caller belongs to, with the caller's role in each.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces",
    tag = "workspaces",
    params(PageParams),
    responses(
        (status = 200, description = "The caller's workspaces", body = WorkspacesResponse),
        (status = 401, description = "Not signed in", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_workspaces(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> AppResult<axum::Json<WorkspacesResponse>> {
    let limit = page.limit()?;
    let mut conn = state.db.get().await?;
    let mut workspaces = Workspaces::list_for(&mut conn, caller.user_id, page.after()?, limit).await?;
    if let Some(scope) = caller.token {
        // An API token sees its own workspace only, with its capped role.
        workspaces.retain(|w| w.id == scope.workspace_id.into());
        workspaces
            .iter_mut()
            .for_each(|w| w.role = w.role.min(scope.role));
    }
    let next_cursor = pagination::next(&workspaces, limit, |w| (w.created_at, w.id.uuid()));
    Ok(axum::Json(WorkspacesResponse {
        workspaces,
        next_cursor,
    }))
}

/// One workspace, with the caller's role.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{id}",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace", body = WorkspaceResponse),
        (status = 404, description = "Not a member of this workspace", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_workspace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<WorkspaceResponse>> {
    let mut conn = state.db.get().await?;
    let role = caller.require(&mut conn, id, Role::Viewer).await?;
    let workspace = Workspaces::find(&mut conn, id, role).await?;
    Ok(axum::Json(WorkspaceResponse { workspace }))
}

/// Rename a workspace, or choose who reads its logs (`log_read_role`; admins and owners).
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{id}",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id")),
    request_body = UpdateWorkspaceRequest,
    responses(
        (status = 200, description = "Updated", body = WorkspaceResponse),
        (status = 403, description = "Not an admin", body = railyard_shared::ErrorBody),
        (status = 404, description = "Not a member of this workspace", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_workspace(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateWorkspaceRequest>,
) -> AppResult<axum::Json<WorkspaceResponse>> {
    let name = req.name.as_deref().map(valid_name).transpose()?;
    if name.is_none() && req.log_read_role.is_none() {
        return Err(AppError::unprocessable("give `name`, `log_read_role` or both"));
    }
    let mut conn = state.db.get().await?;
    let role = caller.require(&mut conn, id, Role::Admin).await?;
    let meta = &meta;
    conn.transaction::<_, AppError, _>(async |conn| {
        if let Some(name) = &name {
            Workspaces::rename(conn, id, name).await?;
            audit::record(
                conn,
                meta,
                audit::Entry::new("workspace.rename")
                    .workspace(id)
                    .actor(caller.user_id)
                    .target("workspace", id)
                    .detail(serde_json::json!({ "name": name })),
            )
            .await?;
        }
        if let Some(readers) = req.log_read_role {
            Workspaces::set_log_read_role(conn, id, readers).await?;
            audit::record(
                conn,
                meta,
                audit::Entry::new("workspace.log_read_role")
                    .workspace(id)
                    .actor(caller.user_id)
                    .target("workspace", id)
                    .detail(serde_json::json!({ "log_read_role": readers })),
            )
            .await?;
        }
        Ok(())
    })
    .await?;
    if req.log_read_role.is_some() {
        // Live log subscriptions of those who may no longer read logs end now.
        state.bus.access_changed(None);
    }
    let workspace = Workspaces::find(&mut conn, id, role).await?;
    Ok(axum::Json(WorkspaceResponse { workspace }))
}

/// What the workspace keeps on disk, per service, and its storage quota.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{id}/usage",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Storage used and allowed", body = railyard_shared::auth::WorkspaceUsageResponse),
        (status = 404, description = "Not a member of this workspace", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_usage(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<railyard_shared::auth::WorkspaceUsageResponse>> {
    let mut conn = state.db.get().await?;
    caller.require(&mut conn, id, Role::Viewer).await?;
    let services = crate::models::storage::of_workspace(&mut conn, id).await?;
    let usage = railyard_shared::auth::WorkspaceUsage {
        storage_bytes: services.iter().map(|(_, bytes)| bytes).sum(),
        storage_limit_bytes: state.config.pipeline.workspace_storage_limit,
        services: services
            .into_iter()
            .map(|(service, bytes)| railyard_shared::auth::ServiceUsage {
                service_id: service.into(),
                bytes,
            })
            .collect(),
    };
    Ok(axum::Json(railyard_shared::auth::WorkspaceUsageResponse {
        usage,
    }))
}

/// Delete a workspace and everything in it (owners only).
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{id}",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an owner", body = railyard_shared::ErrorBody),
        (status = 404, description = "Not a member of this workspace", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_workspace(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<StatusCode> {
    let mut conn = state.db.get().await?;
    caller.require(&mut conn, id, Role::Owner).await?;
    let entry = audit::Entry::new("workspace.delete")
        .workspace(id)
        .actor(caller.user_id)
        .target("workspace", id);
    teardown::delete(&mut conn, Scope::Workspace(id), &meta, entry).await?;
    // Its members' sockets drop what it held.
    state.bus.access_changed(None);
    Ok(StatusCode::NO_CONTENT)
}

fn valid_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || !railyard_shared::auth::is_plain_text(name) {
        return Err(AppError::unprocessable(
            "`name` must be 1 to 64 characters, without control, bidirectional or zero-width characters",
        ));
    }
    Ok(name.to_owned())
}
