use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use axum_extra::extract::cookie::CookieJar;

use super::{browser_session, csrf_refused};
use crate::{
    app::AppState,
    audit,
    auth::{RequestMeta, session},
    error::AppResult,
};

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
    if let Some(session_id) = browser_session(&state, &mut conn, &jar).await? {
        if !state.cookies.csrf_ok(&headers, &jar, Some(session_id)) {
            return Err(csrf_refused());
        }
        let user_id = session::end(&mut conn, session_id, "signed out").await?;
        if let Some(user_id) = user_id {
            state.bus.access_changed(Some(user_id));
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
