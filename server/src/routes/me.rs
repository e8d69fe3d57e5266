//! The signed-in user: profile and sessions.

use axum::{extract::State, http::StatusCode};
use diesel_async::AsyncConnection as _;
use railyard_shared::{
    ErrorCode,
    auth::{ChangePasswordRequest, Session, SessionsResponse, UserResponse},
};
use uuid::Uuid;

use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta, email, password, secret, session},
    error::{AppError, AppResult},
    extract::{Json, Path, Query},
    mail::Mail,
    models::user::User,
    pagination::{self, PageParams},
    ratelimit::Bucket,
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
    params(PageParams),
    responses(
        (status = 200, description = "Active sessions", body = SessionsResponse),
        (status = 401, description = "Not signed in", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<PageParams>,
) -> AppResult<axum::Json<SessionsResponse>> {
    let page = params.page()?;
    // The account is the browser's: a workspace-scoped API token sees no other devices.
    caller.require_session()?;
    let mut conn = state.db.get().await?;
    let rows = session::list(&mut conn, caller.user_id, page).await?;
    let next_cursor = pagination::next(&rows, page.limit, |s| (s.created_at, s.id));
    let sessions = rows
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
    Ok(axum::Json(SessionsResponse {
        sessions,
        next_cursor,
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
    // The account is the browser's: a workspace-scoped API token sees no other devices.
    caller.require_session()?;
    let mut conn = state.db.get().await?;
    if !session::revoke(&mut conn, caller.user_id, id, "revoked by the user").await? {
        return Err(AppError::not_found("no active session with this id"));
    }
    state.bus.access_changed(Some(caller.user_id));
    audit::record(
        &mut conn,
        &meta,
        audit::Entry::new("session.revoke")
            .actor(caller.user_id)
            .target("session", id),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change your password. Every other session is signed out; this one stays.
#[utoipa::path(
    put,
    path = "/api/v1/me/password",
    tag = "account",
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; other sessions revoked"),
        (status = 403, description = "The current password is wrong", body = railyard_shared::ErrorBody),
        (status = 422, description = "The new password is refused", body = railyard_shared::ErrorBody),
        (status = 429, description = "Too many attempts", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_password(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Json(req): Json<ChangePasswordRequest>,
) -> AppResult<StatusCode> {
    let session = caller.require_session()?;
    let mut conn = state.db.get().await?;
    let user = User::find(&mut conn, caller.user_id).await?;
    state.limits.check(Bucket::LoginAccount, &user.email).await?;
    password::check_policy(&req.new_password, &user.email)
        .map_err(|err| AppError::unprocessable(err.to_string()))?;
    let (current, stored) = (req.current_password, user.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || password::verify(&current, stored.as_deref()))
        .await
        .map_err(AppError::internal)?;
    if !ok {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "the current password is wrong",
        ));
    }
    let salt = secret::random_bytes::<16>().map_err(AppError::internal)?;
    let new = req.new_password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&new, &salt))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    let meta = &meta;
    conn.transaction::<_, AppError, _>(async |conn| {
        User::set_password(conn, caller.user_id, &hash).await?;
        let revoked = session::revoke_others(conn, caller.user_id, Some(session), "password changed").await?;
        audit::record(
            conn,
            meta,
            audit::Entry::new("user.password_change")
                .actor(caller.user_id)
                .target("user", caller.user_id)
                .detail(serde_json::json!({ "sessions_revoked": revoked })),
        )
        .await?;
        Ok(())
    })
    .await?;
    state.bus.access_changed(Some(caller.user_id));
    Ok(StatusCode::NO_CONTENT)
}

/// Mail a link that proves the account's email address (single use, 24 h). Answers at once
/// when it is proven already.
#[utoipa::path(
    post,
    path = "/api/v1/me/email/verification",
    tag = "account",
    responses(
        (status = 202, description = "Mailed (`email_sent`), or proven already (`email_verified`)"),
        (status = 409, description = "This instance sends no email", body = railyard_shared::ErrorBody),
        (status = 429, description = "Too many in a short time", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn request_email_verification(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
) -> AppResult<(StatusCode, axum::Json<serde_json::Value>)> {
    caller.require_session()?;
    let mut conn = state.db.get().await?;
    let user = User::find(&mut conn, caller.user_id).await?;
    if user.email_verified_at.is_some() {
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "email_verified": true, "email_sent": false })),
        ));
    }
    let Some(mailer) = &state.mailer else {
        return Err(AppError::conflict(
            "this instance sends no email (RESEND_API_KEY is not set): ask its operator",
        ));
    };
    state
        .limits
        .check(Bucket::VerifyMail, &user.id.to_string())
        .await?;
    let token = email::issue(&mut conn, user.id, &user.email)
        .await
        .map_err(AppError::internal)?;
    let link = format!("{}/verify-email?token={token}", state.config.http.public_url);
    let mail = Mail {
        to: user.email.clone(),
        subject: "Confirm your email address for Railyard".to_owned(),
        text: format!(
            "Someone (hopefully you) asked to confirm that {} belongs to the Railyard account of {}.\n\n\
             Confirm it (the link works once, for {} hours):\n{link}\n\n\
             If you did not ask for this, ignore this email.\n",
            user.email,
            user.name,
            email::LINK_TTL_HOURS,
        ),
    };
    mailer
        .send(mail)
        .await
        .map_err(|err| AppError::new(ErrorCode::ServiceUnavailable, format!("{err}; try again later")))?;
    audit::record(
        &mut conn,
        &meta,
        audit::Entry::new("user.email_verification_sent")
            .actor(user.id)
            .target("user", user.id),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "email_verified": false, "email_sent": true })),
    ))
}
