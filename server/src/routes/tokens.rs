//! API tokens for the CLI and automation.

use axum::{extract::State, http::StatusCode};
use chrono::{Duration, Utc};
use railyard_shared::auth::{CreateTokenRequest, CreatedToken, TokensResponse};
use uuid::Uuid;

use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta, api_token},
    error::{AppError, AppResult},
    extract::{Json, Path, Query},
    pagination::{self, PageParams},
    ratelimit::Bucket,
};

/// Create an API token (shown once) scoped to one workspace, with a role no higher than
/// yours there. Only a signed-in browser session may create tokens.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "account",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "Created; `token` is shown this once", body = CreatedToken),
        (status = 403, description = "Role above yours, or called with an API token", body = railyard_shared::ErrorBody),
        (status = 404, description = "Not a member of the workspace", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name or expiry", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Json(req): Json<CreateTokenRequest>,
) -> AppResult<(StatusCode, axum::Json<CreatedToken>)> {
    caller.require_session()?;
    state
        .limits
        .check(Bucket::TokenUser, &caller.user_id.to_string())
        .await?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || !railyard_shared::auth::is_plain_text(name) {
        return Err(AppError::unprocessable(
            "`name` must be 1 to 100 characters, without control, bidirectional or zero-width characters",
        ));
    }
    let expires_at = match req.expires_in_days {
        None => None,
        Some(days @ 1..=365) => Some(Utc::now() + Duration::days(i64::from(days))),
        Some(_) => return Err(AppError::unprocessable("`expires_in_days` must be from 1 to 365")),
    };
    let mut conn = state.db.get().await?;
    let mine = caller.role_in(&mut conn, req.workspace_id.uuid()).await?;
    let role = req.role.unwrap_or(mine);
    if !mine.at_least(role) {
        return Err(AppError::new(
            railyard_shared::ErrorCode::Forbidden,
            format!("a token cannot have a role above yours ({})", mine.as_str()),
        ));
    }
    let (token, api_token) = api_token::create(
        &mut conn,
        caller.user_id,
        req.workspace_id.uuid(),
        name,
        role,
        expires_at,
    )
    .await
    .map_err(AppError::internal)?;
    audit::record(
        &mut conn,
        &meta,
        audit::Entry::new("token.create")
            .workspace(req.workspace_id.uuid())
            .actor(caller.user_id)
            .target("api_token", api_token.id)
            .detail(serde_json::json!({ "name": api_token.name, "role": role, "prefix": api_token.prefix })),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedToken { token, api_token })))
}

/// Your live API tokens (never their secrets).
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "account",
    params(PageParams),
    responses((status = 200, description = "Your tokens, newest first", body = TokensResponse)),
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<PageParams>,
) -> AppResult<axum::Json<TokensResponse>> {
    let page = params.page()?;
    // Tokens of every workspace are the account's: a token (scoped to one) cannot reach them.
    caller.require_session()?;
    let mut conn = state.db.get().await?;
    let tokens = api_token::list(&mut conn, caller.user_id, page).await?;
    let next_cursor = pagination::next(&tokens, page.limit, |t| (t.created_at, t.id));
    Ok(axum::Json(TokensResponse { tokens, next_cursor }))
}

/// Revoke one of your API tokens.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "account",
    params(("id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such live token of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<StatusCode> {
    // Tokens of every workspace are the account's: a token (scoped to one) cannot reach them.
    caller.require_session()?;
    let mut conn = state.db.get().await?;
    if !api_token::revoke(&mut conn, caller.user_id, id).await? {
        return Err(AppError::not_found("no live API token with this id"));
    }
    state.bus.access_changed(Some(caller.user_id));
    audit::record(
        &mut conn,
        &meta,
        audit::Entry::new("token.revoke")
            .actor(caller.user_id)
            .target("api_token", id),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
