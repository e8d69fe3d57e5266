//! The signed-in user: profile and sessions.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use railyard_shared::auth::{Session, SessionsResponse, UserResponse};
use uuid::Uuid;

use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta, session},
    error::{AppError, AppResult},
    models::user::User,
};

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "account",
    responses(
        (status = 200, description = "The signed-in user", body = UserResponse),
        (status = 401, description = "Not signed in", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_me(State(state): State<AppState>, caller: Caller) -> AppResult<axum::Json<UserResponse>> {
    let mut conn = state.db.get().await?;
    let user = User::find(&mut conn, caller.user_id).await?;
    Ok(axum::Json(UserResponse { user: user.to_api() }))
}

/// The signed-in user's active sessions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/me/sessions",
    tag = "account",
    responses(
        (status = 200, description = "Active sessions", body = SessionsResponse),
        (status = 401, description = "Not signed in", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<axum::Json<SessionsResponse>> {
    let mut conn = state.db.get().await?;
    let sessions = session::list(&mut conn, caller.user_id)
        .await?
        .into_iter()
        .map(|row| Session {
            current: Some(row.id) == caller.session_id,
            id: row.id,
            user_agent: row.user_agent,
            ip: row.ip,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
        })
        .collect();
    // A user has few sessions: one page holds them all.
    Ok(axum::Json(SessionsResponse {
        sessions,
        next_cursor: None,
    }))
}

/// Revoke one of the signed-in user's sessions (sign out that device).
#[utoipa::path(
    delete,
    path = "/api/v1/me/sessions/{id}",
    tag = "account",
    params(("id" = Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such active session of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_session(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<StatusCode> {
    let mut conn = state.db.get().await?;
    if !session::revoke(&mut conn, caller.user_id, id, "revoked by the user").await? {
        return Err(AppError::not_found("no active session with this id"));
    }
    audit::record(
        &mut conn,
        &meta,
        audit::Entry {
            actor_id: Some(caller.user_id),
            action: "session.revoke",
            target_type: "session",
            target_id: id.to_string(),
            ..Default::default()
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
