use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use axum_extra::extract::cookie::CookieJar;
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;

use super::{csrf_refused, refresh::session_of};
use crate::{app::AppState, audit, auth::RequestMeta, error::AppResult, schema::sessions};

/// Sign out: revokes this session (its refresh family) and clears the cookies. Needs the
/// CSRF header. Signing out without a session is not an error.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    responses(
        (status = 204, description = "Signed out"),
        (status = 403, description = "Missing CSRF token", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn logout(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    jar: CookieJar,
) -> AppResult<(StatusCode, CookieJar)> {
    let mut conn = state.db.get().await?;
    // The session from the refresh cookie, or from a still-valid access cookie.
    let mut session_id = match jar.get(state.cookies.refresh_name()) {
        Some(cookie) if !cookie.value().is_empty() => session_of(&mut conn, cookie.value()).await?,
        _ => None,
    };
    if session_id.is_none() {
        session_id = jar
            .get(state.cookies.access_name())
            .and_then(|c| state.signer.verify(c.value()).ok())
            .map(|c| c.sid);
    }
    if let Some(session_id) = session_id {
        if !state.cookies.csrf_ok(&headers, &jar, Some(session_id)) {
            return Err(csrf_refused());
        }
        let user_id: Option<uuid::Uuid> = diesel::update(
            sessions::table
                .filter(sessions::id.eq(session_id))
                .filter(sessions::revoked_at.is_null()),
        )
        .set((
            sessions::revoked_at.eq(chrono::Utc::now()),
            sessions::revoked_reason.eq("signed out"),
        ))
        .returning(sessions::user_id)
        .get_result(&mut conn)
        .await
        .optional()?;
        if let Some(user_id) = user_id {
            audit::record(
                &mut conn,
                &meta,
                audit::Entry::new("auth.logout")
                    .actor(user_id)
                    .target("session", session_id),
            )
            .await?;
        }
    }
    Ok((StatusCode::NO_CONTENT, state.cookies.signed_out(jar)))
}
