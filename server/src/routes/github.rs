//! GitHub: the webhook, the signed-in user's connection (repositories and branches to pick
//! from), a project's deliveries (redeliver, approve) and its preview settings.

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_shared::{
    ErrorCode,
    auth::Role,
    github::{
        Deliveries as DeliveriesResponse, DeliveryResponse, FromTemplateRequest, FromTemplateResponse,
        GithubBranches, GithubConnection, GithubRepositories, GithubRepository, PreviewSettings,
    },
    projects::valid_repository,
};
use serde::Deserialize;
use uuid::Uuid;

use super::scope::authorize_project;
use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult, conflict_on_unique},
    extract::{Json, Path, Query},
    github::RestError,
    models::{
        deployment::{Deployments, NewDeployment, RequestedBy},
        github::{Connections, Deliveries},
        hosts,
        project::Projects,
    },
    pagination::{self, PageParams},
    schema::{environments, projects},
    webhooks::{self, Inbound, Received},
};

const WEBHOOK_LIMIT_BYTES: usize = 25 * 1024 * 1024;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// GitHub's webhook. `X-Hub-Signature-256` must verify against the instance's
/// `GITHUB_WEBHOOK_SECRET` or the repository's own hook secret (401 otherwise, nothing
/// done). Every delivery is recorded once per `X-GitHub-Delivery`.
#[utoipa::path(
    post,
    path = "/api/v1/github/webhook",
    tag = "github",
    request_body(content = Vec<u8>, content_type = "application/json", description = "GitHub's payload, as signed"),
    responses(
        (status = 200, description = "Recorded (and processed), or a delivery seen before"),
        (status = 401, description = "Unsigned, wrongly signed, or no secret to check it with", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn receive_webhook(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Body,
) -> AppResult<axum::Json<serde_json::Value>> {
    // GitHub caps a payload at 25 MB, above the API's usual body limit.
    let body = axum::body::to_bytes(body, WEBHOOK_LIMIT_BYTES)
        .await
        .map_err(|_| AppError::new(ErrorCode::PayloadTooLarge, "a webhook payload is at most 25 MB"))?;
    let inbound = Inbound {
        event: header(&headers, "x-github-event").unwrap_or(""),
        delivery_id: header(&headers, "x-github-delivery").unwrap_or(""),
        signature: header(&headers, "x-hub-signature-256"),
        hook_id: header(&headers, "x-github-hook-id").and_then(|h| h.parse().ok()),
        body: &body,
    };
    Ok(axum::Json(
        match webhooks::receive(&state, &meta, inbound).await? {
            Received::Recorded(id) => serde_json::json!({ "delivery": id, "duplicate": false }),
            Received::Duplicate => serde_json::json!({ "duplicate": true }),
        },
    ))
}

/// The signed-in user's GitHub connection for repositories.
#[utoipa::path(get, path = "/api/v1/github/connection", tag = "github",
    responses((status = 200, description = "The connection", body = GithubConnection)))]
pub async fn find_connection(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<axum::Json<GithubConnection>> {
    let mut conn = state.db.get().await?;
    let found = Connections::find(&mut conn, caller.user_id).await?;
    Ok(axum::Json(GithubConnection {
        connected: found.is_some(),
        login: found.as_ref().map(|c| c.login.clone()),
        broken: found.and_then(|c| c.broken),
        available: state.github.is_some(),
    }))
}

/// Disconnect GitHub (the token is deleted; repositories already connected keep deploying
/// through their webhooks, cloning anonymously).
#[utoipa::path(delete, path = "/api/v1/github/connection", tag = "github",
    responses((status = 204, description = "Disconnected")))]
pub async fn delete_connection(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
) -> AppResult<StatusCode> {
    let mut conn = state.db.get().await?;
    Connections::delete(&mut conn, caller.user_id).await?;
    audit::record(
        &mut conn,
        &meta,
        audit::Entry::new("github.disconnect").actor(caller.user_id),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's working token, or why there is none (409).
async fn token_of(state: &AppState, caller: &Caller) -> AppResult<String> {
    let mut conn = state.db.get().await?;
    match Connections::find(&mut conn, caller.user_id).await? {
        None => Err(AppError::conflict(
            "connect GitHub first (Account → GitHub, or New service)",
        )),
        Some(found) if found.broken.is_some() => Err(broken()),
        Some(_) => Connections::token(&mut conn, &state.keys, caller.user_id)
            .await
            .map_err(AppError::internal)?
            .ok_or_else(broken),
    }
}

fn broken() -> AppError {
    AppError::new(
        ErrorCode::GithubConnectionBroken,
        "GitHub refused this connection's token: reconnect GitHub",
    )
}

/// GitHub's refusal of a call with the caller's token, as an answer (a refused token
/// breaks the connection).
async fn refused(state: &AppState, caller: &Caller, err: RestError) -> AppError {
    match err {
        RestError::BadToken => {
            if let Ok(mut conn) = state.db.get().await {
                let _ = Connections::mark_broken(&mut conn, caller.user_id, "GitHub refused the token").await;
            }
            broken()
        }
        RestError::Refused { status: 404, .. } => {
            AppError::not_found("GitHub has no such repository for you")
        }
        RestError::Refused { status, message } => {
            AppError::new(ErrorCode::Conflict, format!("GitHub refused: {status} {message}"))
        }
        RestError::Unavailable(_) => AppError::unavailable(),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RepositoryQuery {
    /// Keep the repositories whose name contains this (case-insensitive).
    pub q: Option<String>,
}

/// The repositories the caller's GitHub account can reach, most recently updated first.
#[utoipa::path(get, path = "/api/v1/github/repositories", tag = "github", params(RepositoryQuery),
    responses(
        (status = 200, description = "Repositories", body = GithubRepositories),
        (status = 409, description = "Not connected, or GitHub refused the token (GITHUB_CONNECTION_BROKEN)", body = railyard_shared::ErrorBody),
    ))]
pub async fn list_repositories(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<RepositoryQuery>,
) -> AppResult<axum::Json<GithubRepositories>> {
    let token = token_of(&state, &caller).await?;
    let found = match state.github_rest.repositories(&token).await {
        Ok(found) => found,
        Err(err) => return Err(refused(&state, &caller, err).await),
    };
    let needle = query.q.unwrap_or_default().to_ascii_lowercase();
    let repositories = found
        .into_iter()
        .filter(|r| valid_repository(&r.full_name))
        .filter(|r| needle.is_empty() || r.full_name.to_ascii_lowercase().contains(&needle))
        .map(|r| GithubRepository {
            full_name: r.full_name,
            private: r.private,
            default_branch: r.default_branch,
            description: r.description,
        })
        .collect();
    Ok(axum::Json(GithubRepositories { repositories }))
}

/// A repository's branches.
#[utoipa::path(get, path = "/api/v1/github/repositories/{owner}/{repo}/branches", tag = "github",
    params(("owner" = String, Path, description = "Owner"), ("repo" = String, Path, description = "Repository")),
    responses(
        (status = 200, description = "Branches", body = GithubBranches),
        (status = 404, description = "No such repository for you", body = railyard_shared::ErrorBody),
    ))]
pub async fn list_branches(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, repo)): Path<(String, String)>,
) -> AppResult<axum::Json<GithubBranches>> {
    let full_name = format!("{owner}/{repo}");
    if !valid_repository(&full_name) {
        return Err(AppError::unprocessable("not a GitHub `owner/name`"));
    }
    let token = token_of(&state, &caller).await?;
    match state.github_rest.branches(&token, &full_name).await {
        Ok(branches) => Ok(axum::Json(GithubBranches { branches })),
        Err(err) => Err(refused(&state, &caller, err).await),
    }
}

/// A project's webhook deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/projects/{id}/github/deliveries", tag = "github",
    params(("id" = Uuid, Path, description = "Project id"), PageParams),
    responses((status = 200, description = "Deliveries", body = DeliveriesResponse)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(page): Query<PageParams>,
) -> AppResult<axum::Json<DeliveriesResponse>> {
    let page = page.page()?;
    let mut conn = state.db.get().await?;
    authorize_project(&mut conn, &caller, id, Role::Viewer, "project").await?;
    let deliveries = Deliveries::for_project(&mut conn, id, page).await?;
    let next_cursor = pagination::next(&deliveries, page.limit, |d| (d.received_at, d.id));
    Ok(axum::Json(DeliveriesResponse {
        deliveries,
        next_cursor,
    }))
}

/// One of the project's deliveries, or 404.
async fn delivery_of(
    conn: &mut diesel_async::AsyncPgConnection,
    project: Uuid,
    delivery: Uuid,
) -> AppResult<railyard_shared::github::Delivery> {
    Deliveries::find(conn, delivery)
        .await?
        .filter(|d| d.projects.iter().any(|p| p.uuid() == project))
        .ok_or_else(|| AppError::not_found("no such delivery in this project"))
}

/// Process a stored delivery again (a new delivery that names it).
#[utoipa::path(post, path = "/api/v1/projects/{id}/github/deliveries/{delivery}/redeliver", tag = "github",
    params(("id" = Uuid, Path, description = "Project id"), ("delivery" = Uuid, Path, description = "Delivery id")),
    responses((status = 201, description = "Delivered again", body = DeliveryResponse)))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> AppResult<(StatusCode, axum::Json<DeliveryResponse>)> {
    let mut conn = state.db.get().await?;
    let workspace = authorize_project(&mut conn, &caller, id, Role::Member, "project").await?;
    delivery_of(&mut conn, id, delivery).await?;
    let entry = audit::Entry::new("github.redeliver")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("github_delivery", delivery);
    audit::record(&mut conn, &meta, entry).await?;
    drop(conn);
    let again = webhooks::redeliver(&state, &meta, delivery).await?;
    let mut conn = state.db.get().await?;
    let delivery = Deliveries::find(&mut conn, again)
        .await?
        .ok_or_else(|| AppError::not_found("the delivery was deleted meanwhile"))?;
    Ok((StatusCode::CREATED, axum::Json(DeliveryResponse { delivery })))
}

/// Build a pull request that waits for approval (from a fork or an outside author).
#[utoipa::path(post, path = "/api/v1/projects/{id}/github/deliveries/{delivery}/approve", tag = "github",
    params(("id" = Uuid, Path, description = "Project id"), ("delivery" = Uuid, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Approved and processed", body = DeliveryResponse),
        (status = 409, description = "Not waiting for approval", body = railyard_shared::ErrorBody),
    ))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> AppResult<axum::Json<DeliveryResponse>> {
    let mut conn = state.db.get().await?;
    let workspace = authorize_project(&mut conn, &caller, id, Role::Member, "project").await?;
    delivery_of(&mut conn, id, delivery).await?;
    let entry = audit::Entry::new("github.approve")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("github_delivery", delivery);
    audit::record(&mut conn, &meta, entry).await?;
    drop(conn);
    webhooks::approve(&state, &meta, delivery, caller.user_id).await?;
    let mut conn = state.db.get().await?;
    let delivery = delivery_of(&mut conn, id, delivery).await?;
    Ok(axum::Json(DeliveryResponse { delivery }))
}

/// A project's preview settings.
#[utoipa::path(get, path = "/api/v1/projects/{id}/previews", tag = "github",
    params(("id" = Uuid, Path, description = "Project id")),
    responses((status = 200, description = "Settings", body = PreviewSettings)))]
pub async fn find_previews(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<PreviewSettings>> {
    let mut conn = state.db.get().await?;
    authorize_project(&mut conn, &caller, id, Role::Viewer, "project").await?;
    Ok(axum::Json(preview_settings(&mut conn, id).await?))
}

async fn preview_settings(
    conn: &mut diesel_async::AsyncPgConnection,
    id: Uuid,
) -> AppResult<PreviewSettings> {
    let (base, ttl_days, sealed): (Option<Uuid>, i32, bool) = projects::table
        .find(id)
        .select((
            projects::preview_base_environment_id,
            projects::preview_ttl_days,
            projects::preview_sealed_variables,
        ))
        .first(conn)
        .await?;
    Ok(PreviewSettings {
        base_environment_id: base.map(Into::into),
        ttl_days,
        sealed_variables: sealed,
    })
}

/// Change a project's preview settings (admins).
#[utoipa::path(put, path = "/api/v1/projects/{id}/previews", tag = "github",
    params(("id" = Uuid, Path, description = "Project id")),
    request_body = PreviewSettings,
    responses(
        (status = 200, description = "Saved", body = PreviewSettings),
        (status = 422, description = "TTL out of range, or the base is not a non-preview environment of the project", body = railyard_shared::ErrorBody),
    ))]
pub async fn update_previews(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<PreviewSettings>,
) -> AppResult<axum::Json<PreviewSettings>> {
    if !(1..=90).contains(&req.ttl_days) {
        return Err(AppError::unprocessable("`ttl_days` must be from 1 to 90"));
    }
    let mut conn = state.db.get().await?;
    let workspace = authorize_project(&mut conn, &caller, id, Role::Admin, "project").await?;
    if let Some(base) = req.base_environment_id {
        let kind: Option<String> = environments::table
            .filter(environments::id.eq(base.uuid()))
            .filter(environments::project_id.eq(id))
            .select(environments::kind)
            .first(&mut conn)
            .await
            .ok();
        if kind.is_none_or(|k| k == "preview") {
            return Err(AppError::unprocessable(
                "`base_environment_id` must be one of the project's environments, not a preview",
            ));
        }
    }
    diesel::update(projects::table.find(id))
        .set((
            projects::preview_base_environment_id.eq(req.base_environment_id.map(|b| b.uuid())),
            projects::preview_ttl_days.eq(req.ttl_days),
            projects::preview_sealed_variables.eq(req.sealed_variables),
        ))
        .execute(&mut conn)
        .await?;
    let entry = audit::Entry::new("project.previews")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("project", id)
        .detail(serde_json::json!({ "ttl_days": req.ttl_days, "sealed_variables": req.sealed_variables }));
    audit::record(&mut conn, &meta, entry).await?;
    Ok(axum::Json(preview_settings(&mut conn, id).await?))
}

/// Start a project from a template repository: the repository is created in the caller's
/// GitHub account (`POST /repos/{template}/generate`), then the project with a service of
/// it, its webhook, and a first deployment to production.
#[utoipa::path(post, path = "/api/v1/github/templates", tag = "github",
    request_body = FromTemplateRequest,
    responses(
        (status = 201, description = "Created", body = FromTemplateResponse),
        (status = 409, description = "Not connected, the token is refused, or the name is taken", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid template or name", body = railyard_shared::ErrorBody),
    ))]
pub async fn create_from_template(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Json(req): Json<FromTemplateRequest>,
) -> AppResult<(StatusCode, axum::Json<FromTemplateResponse>)> {
    if !valid_repository(&req.template) {
        return Err(AppError::unprocessable(
            "`template` must be a GitHub `owner/name`",
        ));
    }
    super::check_name(&req.name, "project")?;
    let workspace = req.workspace_id.uuid();
    let mut conn = state.db.get().await?;
    caller.require(&mut conn, workspace, Role::Member).await?;
    let login = Connections::find(&mut conn, caller.user_id)
        .await?
        .map(|c| c.login)
        .ok_or_else(|| AppError::conflict("connect GitHub first"))?;
    drop(conn);
    let token = token_of(&state, &caller).await?;
    let made = match state
        .github_rest
        .generate(&token, &req.template, &login, &req.name, req.private)
        .await
    {
        Ok(made) => made,
        Err(err) => return Err(refused(&state, &caller, err).await),
    };
    if !valid_repository(&made.full_name) {
        return Err(AppError::unprocessable(
            "GitHub made a repository whose name Railyard cannot use",
        ));
    }
    let source = railyard_shared::projects::Source::Github {
        repository: made.full_name.clone(),
        branch: made.default_branch.clone(),
    };
    let base = &state.config.runtime.base_domain;
    let mut conn = state.db.get().await?;
    let meta_ref = &meta;
    let (project, service) =
        diesel_async::AsyncConnection::transaction::<_, AppError, _>(&mut conn, async |conn| {
            let project = Projects::create(conn, workspace, &req.name)
                .await
                .map_err(|err| conflict_on_unique(err, "a project with this name exists in the workspace"))?;
            let change = hosts::Change::Service {
                project: project.id.uuid(),
                name: &req.name,
                renamed: None,
            };
            super::check_host(conn, base, change).await?;
            let service = Projects::create_service(conn, project.id.uuid(), &req.name, &source).await?;
            let entry = audit::Entry::new("project.from_template")
                .workspace(workspace)
                .actor(caller.user_id)
                .target("project", project.id)
                .detail(serde_json::json!({ "template": req.template, "repository": made.full_name }));
            audit::record(conn, meta_ref, entry).await?;
            Ok((project, service))
        })
        .await?;
    let warning = webhooks::connect::connect(&state, caller.user_id, &made.full_name)
        .await
        .map_err(AppError::internal)?;
    let production = <[_]>::first(&project.environments)
        .map(|e| e.id.uuid())
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("a project without production")))?;
    let new = NewDeployment {
        service: service.id.uuid(),
        environment: production,
        source_kind: "github",
        branch: Some(made.default_branch.clone()),
        commit: None,
        upload: None,
        release_of: None,
        promoted_from: None,
    };
    let by = RequestedBy {
        meta: &meta,
        user: caller.user_id,
        workspace,
        action: "deployment.create",
    };
    let deployment_id = Some(Deployments::request(&mut conn, new, by).await?.into());
    Ok((
        StatusCode::CREATED,
        axum::Json(FromTemplateResponse {
            project,
            service,
            repository: GithubRepository {
                full_name: made.full_name,
                private: made.private,
                default_branch: made.default_branch,
                description: made.description,
            },
            deployment_id,
            warning,
        }),
    ))
}
