//! Build-once promotion of one service, or of every service of a project that differs:
//! `dry_run` (the default) answers the plan, `dry_run: false` with its `plan_id` applies it.

use axum::{extract::State, http::StatusCode};
use railyard_shared::{
    auth::Role,
    pipeline::{ProjectPromotion, ProjectPromotionResponse, PromotionRequest, PromotionResponse},
};
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult},
    extract::{Json, Path},
    promote::{self, By, Scope},
};

use super::scope::{authorize_project, authorize_service};

fn plan_id(req: &PromotionRequest) -> Result<Option<&str>, AppError> {
    if req.dry_run.unwrap_or(true) {
        return Ok(None);
    }
    match req.plan_id.as_deref() {
        Some(id) if id.len() <= 64 && id.starts_with("plan_") => Ok(Some(id)),
        Some(_) => Err(AppError::unprocessable(
            "`plan_id` is not a plan id (make one with `dry_run: true`)",
        )),
        None => Err(AppError::unprocessable(
            "applying a promotion needs the `plan_id` of its dry run (`dry_run: true` first)",
        )),
    }
}

/// Promote a service's build from one environment to another: the plan (`dry_run`, the
/// default: the build, the commits it brings, the settings and variable names that
/// differ), or, with `dry_run: false` and that plan's `plan_id`, a deployment in the
/// target that runs the same build (no fetch, no build) through the health-gated switch.
#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/promotions",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id")),
    request_body = PromotionRequest,
    responses(
        (status = 200, description = "The plan (dry run)", body = PromotionResponse),
        (status = 201, description = "Applied: `deployment_id` is the target's new deployment", body = PromotionResponse),
        (status = 403, description = "Viewers cannot promote", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "Nothing to promote, or the plan is stale", body = railyard_shared::ErrorBody),
        (status = 422, description = "The same environment twice, or no plan id", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn promote_service(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<PromotionRequest>,
) -> AppResult<(StatusCode, axum::Json<PromotionResponse>)> {
    let apply = plan_id(&req)?;
    let mut conn = state.db.get().await?;
    let needed = if apply.is_some() {
        Role::Member
    } else {
        Role::Viewer
    };
    let (service, workspace) = authorize_service(&mut conn, &caller, id, needed).await?;
    let envs = promote::environments_of(
        &mut conn,
        service.project_id.uuid(),
        req.from_environment_id.uuid(),
        req.to_environment_id.uuid(),
    )
    .await?;
    let scope = Scope::Service(&service);
    let (status, mut plans) = match apply {
        None => {
            let (_, plans) =
                promote::plan_scope(&mut conn, &state.keys, &state.config, scope, (&envs.0, &envs.1)).await?;
            (StatusCode::OK, plans)
        }
        Some(asked) => {
            let by = By {
                meta: &meta,
                user: caller.user_id,
                workspace,
            };
            let plans = promote::apply(
                &mut conn,
                &state.keys,
                &state.config,
                scope,
                (&envs.0, &envs.1),
                asked,
                by,
            )
            .await?;
            (StatusCode::CREATED, plans)
        }
    };
    let promotion = plans
        .pop()
        .ok_or_else(|| AppError::conflict("nothing to promote"))?;
    Ok((status, axum::Json(PromotionResponse { promotion })))
}

/// Promote every service of a project whose build differs between two environments, in
/// the order their variable references need; plan and apply as for one service.
#[utoipa::path(
    post,
    path = "/api/v1/projects/{id}/promotions",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Project id")),
    request_body = PromotionRequest,
    responses(
        (status = 200, description = "The plan (dry run)", body = ProjectPromotionResponse),
        (status = 201, description = "Applied", body = ProjectPromotionResponse),
        (status = 403, description = "Viewers cannot promote", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such project or environment of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "Nothing to promote, or the plan is stale", body = railyard_shared::ErrorBody),
        (status = 422, description = "The same environment twice, or no plan id", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn promote_project(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<PromotionRequest>,
) -> AppResult<(StatusCode, axum::Json<ProjectPromotionResponse>)> {
    let apply = plan_id(&req)?;
    let mut conn = state.db.get().await?;
    let needed = if apply.is_some() {
        Role::Member
    } else {
        Role::Viewer
    };
    let workspace = authorize_project(&mut conn, &caller, id, needed, "project").await?;
    let envs = promote::environments_of(
        &mut conn,
        id,
        req.from_environment_id.uuid(),
        req.to_environment_id.uuid(),
    )
    .await?;
    let scope = Scope::Project(id);
    let (status, plan_id, services) = match apply {
        None => {
            let (plan_id, plans) =
                promote::plan_scope(&mut conn, &state.keys, &state.config, scope, (&envs.0, &envs.1)).await?;
            (StatusCode::OK, plan_id, plans)
        }
        Some(asked) => {
            let by = By {
                meta: &meta,
                user: caller.user_id,
                workspace,
            };
            let plans = promote::apply(
                &mut conn,
                &state.keys,
                &state.config,
                scope,
                (&envs.0, &envs.1),
                asked,
                by,
            )
            .await?;
            (StatusCode::CREATED, asked.to_owned(), plans)
        }
    };
    Ok((
        status,
        axum::Json(ProjectPromotionResponse {
            promotion: ProjectPromotion {
                plan_id,
                from_environment_id: req.from_environment_id,
                to_environment_id: req.to_environment_id,
                services,
            },
        }),
    ))
}
