//! Sign-up, sign-in, refresh, sign-out, CSRF token.

pub mod csrf;
pub mod github;
pub mod login;
pub mod logout;
pub mod refresh;
pub mod signup;
pub mod verify;

use axum_extra::extract::cookie::CookieJar;
use diesel_async::AsyncPgConnection;
use railyard_shared::ErrorCode;

use crate::{
    app::AppState,
    auth::{RequestMeta, session},
    error::{AppError, AppResult},
    models::user::User,
};

/// Starts a session for `user` and sets its cookies.
async fn start_session(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    jar: CookieJar,
    user: &User,
    meta: &RequestMeta,
) -> AppResult<CookieJar> {
    // Signing in again (as anyone) ends the session this browser had: it is not left
    // live behind the new one.
    if let Some(previous) = browser_session(state, conn, &jar).await?
        && let Some(owner) = session::end(conn, previous, "replaced by a new sign-in").await?
    {
        state.bus.access_changed(Some(owner));
    }
    let new = session::create(conn, user.id, &meta.user_agent, &meta.ip).await?;
    let access = state
        .signer
        .issue(user.id, new.session_id)
        .map_err(AppError::internal)?;
    Ok(state
        .cookies
        .signed_in(jar, access, new.refresh_token, new.session_id))
}

/// The session this browser holds: from its refresh cookie, or from a still-valid access
/// cookie.
async fn browser_session(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    jar: &CookieJar,
) -> diesel::QueryResult<Option<uuid::Uuid>> {
    if let Some(cookie) = jar.get(state.cookies.refresh_name())
        && !cookie.value().is_empty()
        && let Some(session) = refresh::session_of(conn, cookie.value()).await?
    {
        return Ok(Some(session));
    }
    Ok(jar
        .get(state.cookies.access_name())
        .and_then(|c| state.signer.verify(c.value()).ok())
        .map(|c| c.sid))
}

fn forbidden(message: &'static str) -> AppError {
    AppError::new(ErrorCode::Forbidden, message)
}

fn csrf_refused() -> AppError {
    forbidden("missing or invalid CSRF token: send the `railyard_csrf` cookie's value in `X-CSRF-Token`")
}
