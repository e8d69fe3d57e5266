use axum::extract::State;
use axum_extra::extract::cookie::CookieJar;
use railyard_shared::auth::CsrfResponse;

use crate::app::AppState;

/// Issue a CSRF token: sets the readable `railyard_csrf` cookie and returns its value,
/// bound to the current session when there is one. Cookie-authenticated writes send it
/// back in `X-CSRF-Token`.
#[utoipa::path(
    get,
    path = "/api/v1/auth/csrf",
    tag = "auth",
    responses((status = 200, description = "Cookie set", body = CsrfResponse)),
)]
pub async fn find_csrf(
    State(state): State<AppState>,
    jar: CookieJar,
) -> (CookieJar, axum::Json<CsrfResponse>) {
    let session = jar
        .get(state.cookies.access_name())
        .and_then(|c| state.signer.verify(c.value()).ok())
        .map(|c| c.sid);
    let (jar, csrf_token) = match session {
        Some(session) => state.cookies.session_csrf(jar, session),
        None => state.cookies.anonymous_csrf(jar),
    };
    (jar, axum::Json(CsrfResponse { csrf_token }))
}
