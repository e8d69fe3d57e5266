use axum::{extract::State, http::HeaderMap, response::IntoResponse};
use axum_extra::extract::cookie::CookieJar;
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::auth::UserResponse;
use uuid::Uuid;

use super::csrf_refused;
use crate::{
    app::AppState,
    audit,
    auth::{
        RequestMeta,
        caller::unauthorized,
        secret,
        session::{self, RefreshError},
    },
    error::{AppError, AppResult},
    models::user::User,
    ratelimit::Bucket,
    schema::refresh_tokens,
};

/// The session a refresh token belongs to (exchanged or not).
pub(super) async fn session_of(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> diesel::QueryResult<Option<Uuid>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(secret::sha256(token)))
        .select(refresh_tokens::session_id)
        .first(conn)
        .await
        .optional()
}

/// Exchange the refresh cookie for new access and refresh cookies.
///
/// Each refresh token works once. Of concurrent refreshes exactly one wins (the others get
/// 409 and should retry with the new cookies); a token presented again later revokes the
/// whole session. Needs the CSRF header.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    responses(
        (status = 200, description = "New cookies set", body = UserResponse),
        (status = 401, description = "No valid refresh token; sign in again", body = railyard_shared::ErrorBody),
        (status = 403, description = "Missing CSRF token", body = railyard_shared::ErrorBody),
        (status = 409, description = "A concurrent refresh won; retry", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn refresh(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    jar: CookieJar,
) -> AppResult<axum::response::Response> {
    let Some(token) = jar
        .get(state.cookies.refresh_name())
        .map(|c| c.value().to_owned())
        .filter(|t| !t.is_empty())
    else {
        return Err(unauthorized("no session to refresh; sign in"));
    };
    if state.cookies.refresh_cookies_in(&headers) > 1 {
        // One of them was set by someone else (a subdomain): which is ours is unknowable.
        let jar = state.cookies.signed_out(jar);
        return Ok((
            jar,
            unauthorized("more than one session cookie was sent; sign in again"),
        )
            .into_response());
    }
    state.limits.check(Bucket::RefreshAddress, &meta.ip).await?;
    let mut conn = state.db.get().await?;
    let session_id = session_of(&mut conn, &token).await?;
    if !state.cookies.csrf_ok(&headers, &jar, session_id) {
        return Err(csrf_refused());
    }
    match session::refresh(&mut conn, &token).await {
        Ok(refreshed) => {
            let user = User::find(&mut conn, refreshed.user_id).await?;
            let access = state
                .signer
                .issue(refreshed.user_id, refreshed.session_id)
                .map_err(AppError::internal)?;
            let jar = state
                .cookies
                .signed_in(jar, access, refreshed.refresh_token, refreshed.session_id);
            Ok((jar, axum::Json(UserResponse { user: user.to_api() })).into_response())
        }
        Err(RefreshError::Concurrent) => Err(AppError::conflict(
            "this refresh token was just exchanged by a concurrent request; retry",
        )),
        Err(RefreshError::Reused { session_id, user_id }) => {
            tracing::warn!(%session_id, %user_id, "refresh token reused: session revoked");
            state.bus.access_changed(Some(user_id));
            audit::record(
                &mut conn,
                &meta,
                audit::Entry::new("auth.refresh_reuse")
                    .actor(user_id)
                    .target("session", session_id),
            )
            .await?;
            let jar = state.cookies.signed_out(jar);
            Ok((
                jar,
                unauthorized("this session was revoked because its refresh token was used twice"),
            )
                .into_response())
        }
        Err(RefreshError::Invalid) => {
            let jar = state.cookies.signed_out(jar);
            Ok((
                jar,
                unauthorized("the session has expired or was revoked; sign in again"),
            )
                .into_response())
        }
        Err(RefreshError::Database(err)) => Err(err.into()),
    }
}
