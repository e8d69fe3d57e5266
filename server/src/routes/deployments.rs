//! Deployments: start one, list them, follow one (state, plan, history, durations, log),
//! cancel, redeploy and roll back.

use axum::{extract::State, http::StatusCode};
use railyard_shared::{
    auth::Role,
    deployments::{CreateDeploymentRequest, DeploymentResponse, DeploymentsResponse},
    projects::{Source, valid_branch},
};
use serde::Deserialize;
use uuid::Uuid;

use super::scope::{authorize_deployment, authorize_service, environment_of, require_storage};
use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult},
    extract::{Json, Path, Query},
    layout::Layout,
    models::deployment::machine::{self, State as Phase, TransitionError},
    models::deployment::{DeploymentRow, Deployments, NewDeployment},
    pagination::{self, PageParams},
    pipeline::git::valid_commit,
};

/// Deploy a service: build its source (the branch head, or a commit) and release it.
#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/deployments",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id")),
    request_body = CreateDeploymentRequest,
    responses(
        (status = 201, description = "Queued", body = DeploymentResponse),
        (status = 403, description = "Viewers cannot deploy", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid branch or commit, or nothing to deploy yet", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_deployment(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateDeploymentRequest>,
) -> AppResult<(StatusCode, axum::Json<DeploymentResponse>)> {
    if let Some(branch) = &req.branch
        && !valid_branch(branch)
    {
        return Err(AppError::unprocessable("`branch` is not a valid git branch name"));
    }
    if let Some(commit) = &req.commit
        && !valid_commit(commit)
    {
        return Err(AppError::unprocessable(
            "`commit` must be a commit id: 7 to 40 hexadecimal digits",
        ));
    }
    let mut conn = state.db.get().await?;
    let (service, workspace) = authorize_service(&mut conn, &caller, id, Role::Member).await?;
    let _room = require_storage(&mut conn, &state.config, workspace).await?;
    let environment = environment_of(
        &mut conn,
        service.project_id.uuid(),
        req.environment_id.map(Uuid::from),
    )
    .await?;
    let layout = Layout::new(&state.config.data_dir);
    let (source_kind, branch, upload) = match &service.source {
        Source::Postgres {} => {
            return Err(AppError::unprocessable(
                "a database service is not deployed: its database is provisioned in every environment",
            ));
        }
        Source::Github { branch, .. } => (
            "github",
            Some(match req.branch.clone() {
                Some(asked) => asked,
                None => Deployments::branch_for(&mut conn, service.id.uuid(), environment, branch).await?,
            }),
            None,
        ),
        Source::Git { branch, .. } => (
            "git",
            Some(match req.branch.clone() {
                Some(asked) => asked,
                None => Deployments::branch_for(&mut conn, service.id.uuid(), environment, branch).await?,
            }),
            None,
        ),
        Source::Push { branch } => {
            if !layout.push_repo(service.id.uuid()).exists() {
                return Err(AppError::unprocessable(
                    "nothing has been pushed to this service yet: `git push` to its remote first",
                ));
            }
            let branch = match req.branch.clone() {
                Some(asked) => asked,
                None => Deployments::branch_for(&mut conn, service.id.uuid(), environment, branch).await?,
            };
            ("push", Some(branch), None)
        }
        Source::Upload {} => {
            if req.branch.is_some() || req.commit.is_some() {
                return Err(AppError::unprocessable(
                    "this service deploys uploads: `branch` and `commit` do not apply",
                ));
            }
            let latest = Deployments::latest_upload(&mut conn, service.id.uuid(), environment)
                .await?
                .ok_or_else(|| {
                    AppError::unprocessable(
                        "nothing has been uploaded to this service yet: `railyard up` first",
                    )
                })?;
            ("upload", None, Some(latest))
        }
    };
    let new = NewDeployment {
        service: service.id.uuid(),
        environment,
        source_kind,
        branch,
        commit: req.commit,
        upload,
        release_of: None,
        promoted_from: None,
    };
    super::request_deployment(&mut conn, &meta, &caller, workspace, "deployment.create", new).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListDeploymentsParams {
    /// Environment id (default: `production`).
    pub environment: Option<Uuid>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A service's deployments in an environment, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/deployments",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id"), ListDeploymentsParams),
    responses(
        (status = 200, description = "Deployments", body = DeploymentsResponse),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_deployments(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<ListDeploymentsParams>,
) -> AppResult<axum::Json<DeploymentsResponse>> {
    let page = PageParams {
        cursor: params.cursor,
        limit: params.limit,
    };
    let limit = page.limit()?;
    let mut conn = state.db.get().await?;
    let (service, _) = authorize_service(&mut conn, &caller, id, Role::Viewer).await?;
    let environment = environment_of(&mut conn, service.project_id.uuid(), params.environment).await?;
    let rows = Deployments::list(&mut conn, id, environment, page.after()?, limit).await?;
    let next_cursor = pagination::next(&rows, limit, |d| (d.created_at, d.id));
    let mut deployments: Vec<_> = rows.iter().map(DeploymentRow::to_api).collect();
    Deployments::annotate(&mut conn, &mut deployments).await?;
    Ok(axum::Json(DeploymentsResponse {
        deployments,
        next_cursor,
    }))
}

/// One deployment: state, plan, state history, durations per phase and where its log is.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/{id}",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses(
        (status = 200, description = "The deployment", body = DeploymentResponse),
        (status = 404, description = "No such deployment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_deployment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<DeploymentResponse>> {
    let mut conn = state.db.get().await?;
    let (row, _) = authorize_deployment(&mut conn, &caller, id, Role::Viewer).await?;
    Ok(axum::Json(DeploymentResponse {
        deployment: Deployments::detail(&mut conn, row).await?,
    }))
}

/// Cancel a deployment that is queued, building or deploying.
#[utoipa::path(
    post,
    path = "/api/v1/deployments/{id}/cancel",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses(
        (status = 200, description = "Cancelled", body = DeploymentResponse),
        (status = 403, description = "Viewers cannot cancel", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such deployment of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "The deployment has finished", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn cancel_deployment(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<DeploymentResponse>> {
    let mut conn = state.db.get().await?;
    let (mut row, workspace) = authorize_deployment(&mut conn, &caller, id, Role::Member).await?;
    // The state may move under us (the build finishing); try from what is current.
    for _ in 0..3 {
        let from = match row.state() {
            pending if pending.is_pending() => pending,
            other => {
                return Err(AppError::conflict(format!(
                    "the deployment is {other}: only queued, building or deploying ones can be cancelled"
                )));
            }
        };
        match machine::transition(&mut conn, id, from, Phase::Cancelled, "cancelled by a user").await {
            Ok(()) => {
                let entry = audit::Entry::new("deployment.cancel")
                    .workspace(workspace)
                    .actor(caller.user_id)
                    .target("deployment", id);
                audit::record(&mut conn, &meta, entry).await?;
                let row = Deployments::find(&mut conn, id)
                    .await?
                    .ok_or_else(|| AppError::not_found("deployment not found"))?;
                return Ok(axum::Json(DeploymentResponse {
                    deployment: Deployments::detail(&mut conn, row).await?,
                }));
            }
            Err(TransitionError::Lost(_)) => {
                row = Deployments::find(&mut conn, id)
                    .await?
                    .ok_or_else(|| AppError::not_found("deployment not found"))?;
            }
            Err(err) => return Err(AppError::internal(err)),
        }
    }
    Err(AppError::conflict(
        "the deployment kept changing state; try again",
    ))
}

/// Deploy the same source again (same commit, or the same upload): a fresh build.
#[utoipa::path(
    post,
    path = "/api/v1/deployments/{id}/redeploy",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses(
        (status = 201, description = "Queued", body = DeploymentResponse),
        (status = 403, description = "Viewers cannot deploy", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such deployment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn redeploy_deployment(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<(StatusCode, axum::Json<DeploymentResponse>)> {
    let mut conn = state.db.get().await?;
    let (row, workspace) = authorize_deployment(&mut conn, &caller, id, Role::Member).await?;
    let new = NewDeployment {
        service: row.service_id,
        environment: row.environment_id,
        source_kind: match row.source_kind.as_str() {
            "push" => "push",
            "upload" => "upload",
            "rollback" => "rollback",
            "promotion" => "promotion",
            _ => "git",
        },
        // A promotion is redeployed from its own copy of the build, never rebuilt.
        release_of: if row.source_kind == "promotion" {
            Some(row.release_id())
        } else {
            row.release_of
        },
        promoted_from: row.promoted_from,
        branch: row.branch,
        commit: row.commit_sha,
        upload: row.upload_id,
    };
    super::request_deployment(&mut conn, &meta, &caller, workspace, "deployment.redeploy", new).await
}

/// Roll back to this deployment: release its build again, without rebuilding.
#[utoipa::path(
    post,
    path = "/api/v1/deployments/{id}/rollback",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "The earlier deployment to roll back to")),
    responses(
        (status = 201, description = "Queued", body = DeploymentResponse),
        (status = 403, description = "Viewers cannot deploy", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such deployment of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "Its release is not kept (never built, or pruned)", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn rollback_deployment(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<(StatusCode, axum::Json<DeploymentResponse>)> {
    let mut conn = state.db.get().await?;
    let (row, workspace) = authorize_deployment(&mut conn, &caller, id, Role::Member).await?;
    // Rolling back to a rollback means rolling back to what it released.
    let target = row.release_of.unwrap_or(row.id);
    if Deployments::release(&mut conn, target).await?.is_none() {
        return Err(AppError::conflict(
            "this deployment has no kept release to roll back to (it was never built, or its release was pruned)",
        ));
    }
    let new = NewDeployment {
        service: row.service_id,
        environment: row.environment_id,
        source_kind: "rollback",
        branch: row.branch,
        commit: row.commit_sha,
        upload: None,
        release_of: Some(target),
        promoted_from: None,
    };
    super::request_deployment(&mut conn, &meta, &caller, workspace, "deployment.rollback", new).await
}
