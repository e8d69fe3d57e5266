//! "Continue with GitHub": OAuth authorization code flow with `state` and PKCE (S256).
//!
//! `start` keeps `{state, verifier, redirect}` in a short-lived cookie sealed by the key
//! ring and sends the browser to GitHub; `callback` checks the state, exchanges the code
//! with the verifier, and signs in the account that is linked to this GitHub user, or links
//! the account whose email is one of the GitHub user's *verified* addresses. Unverified
//! addresses never link. The GitHub token is stored encrypted.

use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use railyard_shared::auth::normalize_email;
use serde::{Deserialize, Serialize};

use super::start_session;
use crate::{
    app::AppState,
    audit,
    auth::{RequestMeta, secret},
    error::{AppError, AppResult},
    extract::Query,
    models::user::{NewUser, User},
    ratelimit::Bucket,
    schema::users,
};

const COOKIE: &str = "railyard_oauth";
const COOKIE_PATH: &str = "/api/v1/auth/github";
const AAD: &[u8] = b"railyard:oauth-state";
const TTL_SECS: i64 = 600;

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    redirect: String,
    expires: i64,
}

/// Which sign-in methods this instance offers, and whether anyone may sign up.
#[utoipa::path(get, path = "/api/v1/auth/providers", tag = "auth", responses((status = 200, description = "Sign-in methods")))]
pub async fn find_providers(State(state): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(
        serde_json::json!({ "github": state.github.is_some(), "open_signup": state.config.auth.open_signup }),
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StartParams {
    /// Where to go after signing in: a path on this server (default `/`).
    pub redirect: Option<String>,
}

/// A path on this server, never another host (`//evil.example`, `https://…`, `/\\evil`,
/// `/<tab>/evil.example`, which a browser reads as `//evil.example`): printable ASCII only, so
/// no control character reaches the `Location` header either.
fn local_path(redirect: Option<&str>) -> String {
    match redirect {
        Some(path)
            if path.starts_with('/')
                && path.bytes().all(|b| b.is_ascii_graphic())
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.contains("://") =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn callback_url(state: &AppState) -> String {
    format!("{}/api/v1/auth/github/callback", state.config.http.public_url)
}

fn oauth_cookie(value: String, max_age: i64, secure: bool) -> Cookie<'static> {
    Cookie::build((COOKIE, value))
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(max_age))
        .build()
}

/// Start GitHub sign-in: redirects to GitHub's authorize page.
#[utoipa::path(
    get,
    path = "/api/v1/auth/github/start",
    tag = "auth",
    params(StartParams),
    responses(
        (status = 303, description = "To GitHub"),
        (status = 404, description = "GitHub sign-in is not configured", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn start_github(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(params): Query<StartParams>,
) -> AppResult<(CookieJar, Redirect)> {
    let github = state
        .github
        .clone()
        .ok_or_else(|| AppError::not_found("GitHub sign-in is not configured"))?;
    let pending = Pending {
        state: secret::random_token().map_err(AppError::internal)?,
        verifier: secret::random_token().map_err(AppError::internal)?,
        redirect: local_path(params.redirect.as_deref()),
        expires: Utc::now().timestamp() + TTL_SECS,
    };
    let challenge = URL_SAFE_NO_PAD.encode(secret::sha256(&pending.verifier));
    let sealed = state
        .keys
        .encrypt(&serde_json::to_vec(&pending).map_err(AppError::internal)?, AAD)
        .map_err(AppError::internal)?;
    let secure = state.config.http.public_url.starts_with("https://");
    let jar = jar.add(oauth_cookie(URL_SAFE_NO_PAD.encode(sealed), TTL_SECS, secure));
    let query = [
        ("client_id", github.client_id()),
        ("redirect_uri", &callback_url(&state)),
        ("scope", "read:user user:email"),
        ("state", &pending.state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("allow_signup", "false"),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", urlencode(v)))
    .collect::<Vec<_>>()
    .join("&");
    Ok((jar, Redirect::to(&format!("{}?{query}", github.authorize_url()))))
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// Why a GitHub sign-in did not work; the sign-in page explains each.
#[derive(Debug, Clone, Copy)]
enum Failure {
    State,
    Denied,
    GitHub,
    Unverified,
    NoAccount,
    Setup,
    OtherGitHub,
}

impl Failure {
    fn code(self) -> &'static str {
        match self {
            Failure::State => "github_state",
            Failure::Denied => "github_denied",
            Failure::GitHub => "github_unavailable",
            Failure::Unverified => "github_unverified",
            Failure::NoAccount => "github_no_account",
            Failure::Setup => "github_setup",
            Failure::OtherGitHub => "github_other_account",
        }
    }
}

/// GitHub sends the browser back here with `code` and `state`.
#[utoipa::path(
    get,
    path = "/api/v1/auth/github/callback",
    tag = "auth",
    params(CallbackParams),
    responses((status = 303, description = "Signed in (to the requested page) or back to /login?error=…")),
)]
pub async fn github_callback(
    State(state): State<AppState>,
    meta: RequestMeta,
    jar: CookieJar,
    Query(params): Query<CallbackParams>,
) -> AppResult<Response> {
    state.limits.check(Bucket::LoginAddress, &meta.ip).await?;
    let secure = state.config.http.public_url.starts_with("https://");
    let pending = jar.get(COOKIE).and_then(|c| open_pending(&state, c.value()));
    // The state cookie is single use, whatever happens next.
    let jar = jar.add(oauth_cookie(String::new(), 0, secure));
    let fail = |jar: CookieJar, failure: Failure| -> AppResult<Response> {
        tracing::info!(reason = failure.code(), "GitHub sign-in refused");
        Ok((jar, Redirect::to(&format!("/login?error={}", failure.code()))).into_response())
    };
    let Some(github) = state.github.clone() else {
        return Err(AppError::not_found("GitHub sign-in is not configured"));
    };
    let Some(pending) = pending else {
        return fail(jar, Failure::State);
    };
    let state_ok = params
        .state
        .as_deref()
        .is_some_and(|s| secret::constant_time_eq(s.as_bytes(), pending.state.as_bytes()));
    if !state_ok || pending.expires < Utc::now().timestamp() {
        return fail(jar, Failure::State);
    }
    if params.error.is_some() {
        return fail(jar, Failure::Denied);
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        return fail(jar, Failure::State);
    };

    let token = match github
        .exchange_code(code, &pending.verifier, &callback_url(&state))
        .await
    {
        Ok(token) => token,
        Err(err) => {
            tracing::warn!(error = %err, "GitHub code exchange failed");
            return fail(jar, Failure::GitHub);
        }
    };
    let (gh_user, emails) = match tokio::try_join!(github.user(&token), github.emails(&token)) {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!(error = %err, "GitHub profile lookup failed");
            return fail(jar, Failure::GitHub);
        }
    };
    // Verified addresses only, the primary one first.
    let mut verified: Vec<(bool, String)> = emails
        .into_iter()
        .filter(|e| e.verified)
        .filter_map(|e| Some((!e.primary, normalize_email(&e.email)?)))
        .collect();
    verified.sort();
    let verified: Vec<String> = verified.into_iter().map(|(_, email)| email).collect();

    let mut conn = state.db.get().await?;
    let open_signup = state.config.auth.open_signup;
    let meta_ref = &meta;
    let outcome = conn
        .transaction::<_, AppError, _>(async |conn| {
            let linked: Option<User> = users::table
                .filter(users::github_id.eq(gh_user.id))
                .select(User::as_select())
                .first(conn)
                .await
                .optional()?;
            let (user, action) = if let Some(user) = linked {
                (user, "auth.login")
            } else {
                if verified.is_empty() {
                    return Ok(Err(Failure::Unverified));
                }
                let by_email: Option<(User, Option<i64>)> = users::table
                    .filter(users::email.eq_any(&verified))
                    .select((User::as_select(), users::github_id))
                    .first(conn)
                    .await
                    .optional()?;
                match by_email {
                    Some((_, Some(_))) => return Ok(Err(Failure::OtherGitHub)),
                    Some((user, None)) => (user, "user.github_link"),
                    None if !User::any_exist(conn).await? => return Ok(Err(Failure::Setup)),
                    None if !open_signup => return Ok(Err(Failure::NoAccount)),
                    None => {
                        let name = gh_user
                            .name
                            .clone()
                            .filter(|n| !n.trim().is_empty())
                            .unwrap_or(gh_user.login.clone());
                        let name: String = name.chars().take(100).collect();
                        let user = User::create(
                            conn,
                            NewUser {
                                email: &verified[0],
                                name: &name,
                                password_hash: None,
                                is_instance_admin: false,
                            },
                        )
                        .await?;
                        (user, "user.signup")
                    }
                }
            };
            let sealed = state
                .keys
                .encrypt(token.as_bytes(), &User::github_token_aad(user.id))
                .map_err(AppError::internal)?;
            diesel::update(users::table.find(user.id))
                .set((
                    users::github_id.eq(gh_user.id),
                    users::github_token.eq(sealed),
                    users::updated_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
            audit::record(
                conn,
                meta_ref,
                audit::Entry {
                    actor_id: Some(user.id),
                    actor_label: &user.email,
                    action,
                    target_type: "user",
                    target_id: user.id.to_string(),
                    detail: serde_json::json!({ "method": "github", "github_login": gh_user.login }),
                    ..Default::default()
                },
            )
            .await?;
            Ok(Ok(user))
        })
        .await?;
    let user = match outcome {
        Ok(user) => user,
        Err(failure) => return fail(jar, failure),
    };
    let jar = start_session(&state, &mut conn, jar, &user, &meta).await?;
    Ok((jar, Redirect::to(&pending.redirect)).into_response())
}

fn open_pending(state: &AppState, value: &str) -> Option<Pending> {
    let sealed = URL_SAFE_NO_PAD.decode(value).ok()?;
    let plain = state.keys.decrypt(&sealed, AAD).ok()?;
    serde_json::from_slice(&plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_this_server() {
        assert_eq!(local_path(Some("/workspaces/1/members")), "/workspaces/1/members");
        for evil in [
            "//evil.example",
            "https://evil.example",
            "/\\\\evil.example",
            "evil",
            "",
            "/x?u=https://e",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            "/x\u{0}y",
            "/x\u{7f}",
        ] {
            assert_eq!(local_path(Some(evil)), "/", "{evil}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn urlencodes_reserved_characters() {
        assert_eq!(urlencode("read:user user:email"), "read%3Auser%20user%3Aemail");
        assert_eq!(urlencode("a-b_c.d~"), "a-b_c.d~");
    }
}
