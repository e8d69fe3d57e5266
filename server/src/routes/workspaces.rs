//! Workspaces: the unit of tenancy.

use axum::{
    extract::{Query, State},
    http::StatusCode,
};
use diesel_async::AsyncConnection as _;
use railyard_shared::auth::{CreateWorkspaceRequest, WorkspaceResponse, WorkspacesResponse};

use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult},
    extract::Json,
    models::workspace::Workspaces,
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
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AppError::unprocessable(
            "`name` must be 1 to 64 characters, without control characters",
        ));
    }
    let mut conn = state.db.get().await?;
    let meta = &meta;
    let workspace = conn
        .transaction::<_, AppError, _>(async |conn| {
            let workspace = Workspaces::create(conn, &name, caller.user_id).await?;
            audit::record(
                conn,
                meta,
                audit::Entry {
                    workspace_id: Some(workspace.id),
                    actor_id: Some(caller.user_id),
                    action: "workspace.create",
                    target_type: "workspace",
                    target_id: workspace.id.to_string(),
                    detail: serde_json::json!({ "name": workspace.name }),
                    ..Default::default()
                },
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
    let workspaces = Workspaces::list_for(&mut conn, caller.user_id, page.after()?, limit).await?;
    let next_cursor = pagination::next(&workspaces, limit, |w| (w.created_at, w.id));
    Ok(axum::Json(WorkspacesResponse {
        workspaces,
        next_cursor,
    }))
}
