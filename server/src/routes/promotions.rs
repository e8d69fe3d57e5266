//! Build-once promotion of one service, or of every service of a project that differs:
//! `dry_run` (the default) answers the plan, `dry_run: false` with its `plan_id` applies it.

use axum::{extract::State, http::StatusCode};
use railyard_shared::{
    auth::Role,
    pipeline::{ProjectPromotion, ProjectPromotionResponse, Promotion, PromotionRequest, PromotionResponse},
    projects::Environment,
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

/// The plan (200) or, with the plan id `apply`, the applied plan (201): its id and the
/// services' plans.
async fn plan_or_apply(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    scope: Scope<'_>,
    (from, to): &(Environment, Environment),
    apply: Option<&str>,
    by: By<'_>,
) -> AppResult<(StatusCode, String, Vec<Promotion>)> {
    let (keys, config) = (&state.keys, &state.config);
    match apply {
        None => {
            let (plan_id, plans) = promote::plan_scope(conn, keys, config, scope, (from, to)).await?;
            Ok((StatusCode::OK, plan_id, plans))
        }
        Some(asked) => {
            let plans = promote::apply(conn, keys, config, scope, (from, to), asked, by).await?;
            Ok((StatusCode::CREATED, asked.to_owned(), plans))
        }
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
    let (status, _, mut plans) = plan_or_apply(
        &state,
        &mut conn,
        Scope::Service(&service),
        &envs,
        apply,
        By {
            meta: &meta,
            user: caller.user_id,
            workspace,
        },
    )
    .await?;
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
    let (status, plan_id, services) = plan_or_apply(
        &state,
        &mut conn,
        Scope::Project(id),
        &envs,
        apply,
        By {
            meta: &meta,
            user: caller.user_id,
            workspace,
        },
    )
    .await?;
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
