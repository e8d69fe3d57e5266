//! Sign-up, sign-in, refresh, sign-out, CSRF token.

pub mod csrf;
pub mod github;
pub mod login;
pub mod logout;
pub mod refresh;
pub mod signup;

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
    let new = session::create(conn, user.id, &meta.user_agent, &meta.ip).await?;
    let access = state
        .signer
        .issue(user.id, new.session_id)
        .map_err(AppError::internal)?;
    Ok(state
        .cookies
        .signed_in(jar, access, new.refresh_token, new.session_id))
}

fn forbidden(message: &'static str) -> AppError {
    AppError::new(ErrorCode::Forbidden, message)
}

fn csrf_refused() -> AppError {
    forbidden("missing or invalid CSRF token: send the `railyard_csrf` cookie's value in `X-CSRF-Token`")
}
