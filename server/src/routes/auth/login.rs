use axum::extract::State;
use axum_extra::extract::cookie::CookieJar;
use railyard_shared::auth::{LoginRequest, UserResponse, normalize_email};

use super::start_session;
use crate::{
    app::AppState,
    audit,
    auth::{RequestMeta, caller::unauthorized, password},
    error::{AppError, AppResult},
    extract::Json,
    models::user::User,
    ratelimit::Bucket,
};

/// Sign in with email and password; sets the session cookies.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = UserResponse),
        (status = 401, description = "Wrong email or password", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    meta: RequestMeta,
    jar: CookieJar,
    Json(req): Json<LoginRequest>,
) -> AppResult<(CookieJar, axum::Json<UserResponse>)> {
    let email = normalize_email(&req.email).unwrap_or_default();
    state.limits.check(Bucket::LoginAddress, &meta.ip).await?;
    // Per account *and* address: someone guessing at an account from one address locks
    // only themselves out, never the owner signing in from another.
    state
        .limits
        .check(Bucket::LoginAccount, &format!("{email} from {}", meta.ip))
        .await?;
    let mut conn = state.db.get().await?;
    let user = if email.is_empty() {
        None
    } else {
        User::find_by_email(&mut conn, &email).await?
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let plain = req.password;
    // Unknown accounts are verified against a dummy hash: same time, same answer.
    let ok = tokio::task::spawn_blocking(move || password::verify(&plain, stored.as_deref()))
        .await
        .map_err(AppError::internal)?;
    let Some(user) = user.filter(|_| ok) else {
        audit::record(
            &mut conn,
            &meta,
            audit::Entry::new("auth.login_failed").label(&email),
        )
        .await?;
        return Err(unauthorized("wrong email or password"));
    };
    audit::record(
        &mut conn,
        &meta,
        audit::Entry::new("auth.login")
            .actor(user.id)
            .label(&user.email)
            .target("user", user.id),
    )
    .await?;
    let jar = super::github::finish_link(&state, &mut conn, jar, &user, &meta).await?;
    let jar = start_session(&state, &mut conn, jar, &user, &meta).await?;
    let user = User::find(&mut conn, user.id).await?;
    Ok((jar, axum::Json(UserResponse { user: user.to_api() })))
}
