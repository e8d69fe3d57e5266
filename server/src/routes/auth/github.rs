//! "Continue with GitHub": OAuth authorization code flow with `state` and PKCE (S256).
//!
//! `start` keeps `{state, verifier, redirect}` in a short-lived cookie sealed by the key
//! ring and sends the browser to GitHub; `callback` checks the state, exchanges the code
//! with the verifier, and signs in the account that is linked to this GitHub user, or links
//! the account whose email is one of the GitHub user's *verified* addresses — when that
//! account's address is proven too (`auth::email`). An account whose address was never
//! proven (anyone may sign up with anyone's address where sign-up is open) is linked only
//! once its password is given: the callback keeps the GitHub identity in a sealed cookie
//! (`railyard_github_link`, 10 min) and sends the browser to sign in; signing in with the
//! password links it ([`finish_link`]), or [`create_separate`] makes a separate account of
//! another verified address. Unverified GitHub addresses never link. The GitHub token is
//! stored encrypted.

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

const TTL_SECS: i64 = 600;

/// A short-lived HttpOnly cookie holding a value sealed by the key ring (AAD per cookie).
struct SealedCookie {
    name: &'static str,
    path: &'static str,
    aad: &'static [u8],
}

/// `{state, verifier, redirect}` between start and callback.
const OAUTH: SealedCookie = SealedCookie {
    name: "railyard_oauth",
    path: "/api/v1/auth/github",
    aad: b"railyard:oauth-state",
};

/// A GitHub identity waiting for the password of the account it would link to; sent to
/// every `/api/v1/auth` endpoint (sign-in links it).
const LINK: SealedCookie = SealedCookie {
    name: "railyard_github_link",
    path: "/api/v1/auth",
    aad: b"railyard:github-link",
};

impl SealedCookie {
    fn cookie(&self, state: &AppState, value: String, max_age: i64) -> Cookie<'static> {
        Cookie::build((self.name, value))
            .path(self.path)
            .http_only(true)
            .secure(state.config.http.public_url.starts_with("https://"))
            .same_site(SameSite::Lax)
            .max_age(time::Duration::seconds(max_age))
            .build()
    }

    /// `jar` with `value` sealed into the cookie for [`TTL_SECS`].
    fn set<T: Serialize>(&self, state: &AppState, jar: CookieJar, value: &T) -> AppResult<CookieJar> {
        let plain = serde_json::to_vec(value).map_err(AppError::internal)?;
        let sealed = state.keys.encrypt(&plain, self.aad).map_err(AppError::internal)?;
        Ok(jar.add(self.cookie(state, URL_SAFE_NO_PAD.encode(sealed), TTL_SECS)))
    }

    /// `jar` with the cookie expired.
    fn clear(&self, state: &AppState, jar: CookieJar) -> CookieJar {
        jar.add(self.cookie(state, String::new(), 0))
    }

    /// What the cookie in `jar` holds, if it opens.
    fn open<T: serde::de::DeserializeOwned>(&self, state: &AppState, jar: &CookieJar) -> Option<T> {
        let sealed = URL_SAFE_NO_PAD.decode(jar.get(self.name)?.value()).ok()?;
        let plain = state.keys.decrypt(&sealed, self.aad).ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

/// What the callback learned of a GitHub user, kept while their password is asked for.
#[derive(Debug, Serialize, Deserialize)]
struct PendingLink {
    /// The account the verified address belongs to.
    user_id: uuid::Uuid,
    github_id: i64,
    login: String,
    name: String,
    token: String,
    /// GitHub's verified addresses, primary first.
    verified: Vec<String>,
    expires: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    redirect: String,
    expires: i64,
    /// Connecting GitHub for repositories (the `repo` scope) for this signed-in user,
    /// rather than signing in.
    #[serde(default)]
    connect: Option<uuid::Uuid>,
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
    authorize(&state, jar, params.redirect.as_deref(), None).await
}

/// Connect GitHub for repositories: asks GitHub for the `repo` scope (private
/// repositories, webhooks, statuses) for the signed-in user, then back to `redirect`.
#[utoipa::path(
    get,
    path = "/api/v1/github/connect",
    tag = "github",
    params(StartParams),
    responses(
        (status = 303, description = "To GitHub"),
        (status = 404, description = "GitHub is not configured", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn connect_github(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    jar: CookieJar,
    Query(params): Query<StartParams>,
) -> AppResult<(CookieJar, Redirect)> {
    authorize(&state, jar, params.redirect.as_deref(), Some(caller.user_id)).await
}

async fn authorize(
    state: &AppState,
    jar: CookieJar,
    redirect: Option<&str>,
    connect: Option<uuid::Uuid>,
) -> AppResult<(CookieJar, Redirect)> {
    let github = state
        .github
        .clone()
        .ok_or_else(|| AppError::not_found("GitHub sign-in is not configured"))?;
    let pending = Pending {
        state: secret::random_token().map_err(AppError::internal)?,
        verifier: secret::random_token().map_err(AppError::internal)?,
        redirect: local_path(redirect),
        expires: Utc::now().timestamp() + TTL_SECS,
        connect,
    };
    let challenge = URL_SAFE_NO_PAD.encode(secret::sha256(&pending.verifier));
    let jar = OAUTH.set(state, jar, &pending)?;
    let scope = if connect.is_some() {
        "repo read:user user:email"
    } else {
        "read:user user:email"
    };
    let query = [
        ("client_id", github.client_id()),
        ("redirect_uri", &callback_url(state)),
        ("scope", scope),
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
    /// The account with this verified address has not proven it: its password links it.
    NeedsPassword(uuid::Uuid),
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
            Failure::NeedsPassword(_) => "github_link_password",
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
    let pending: Option<Pending> = OAUTH.open(&state, &jar);
    // The state cookie is single use, whatever happens next.
    let jar = OAUTH.clear(&state, jar);
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
    if let Some(user_id) = pending.connect {
        // Connecting repositories for a signed-in account: its token, sealed, and back.
        let gh_user = match github.user(&token).await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(error = %err, "GitHub profile lookup failed");
                return fail(jar, Failure::GitHub);
            }
        };
        let mut conn = state.db.get().await?;
        crate::models::github::Connections::save(
            &mut conn,
            &state.keys,
            user_id,
            (gh_user.id, &gh_user.login),
            &token,
        )
        .await
        .map_err(AppError::internal)?;
        let entry = audit::Entry::new("github.connect")
            .actor(user_id)
            .detail(serde_json::json!({ "github_login": gh_user.login }));
        audit::record(&mut conn, &meta, entry).await?;
        return Ok((jar, Redirect::to(&pending.redirect)).into_response());
    }
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
                    Some((user, None)) if user.email_verified_at.is_some() => (user, "user.github_link"),
                    // Whoever signed up with this address may not own it: not without the
                    // account's password.
                    Some((user, None)) => return Ok(Err(Failure::NeedsPassword(user.id))),
                    None if !User::any_exist(conn).await? => return Ok(Err(Failure::Setup)),
                    None if !open_signup => return Ok(Err(Failure::NoAccount)),
                    None => {
                        let name = display_name(&gh_user);
                        let user = User::create(
                            conn,
                            NewUser {
                                email: &verified[0],
                                name: &name,
                                password_hash: None,
                                is_instance_admin: false,
                                email_verified: true,
                            },
                        )
                        .await?;
                        (user, "user.signup")
                    }
                }
            };
            link(&state, conn, user.id, gh_user.id, &token).await?;
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
        Err(Failure::NeedsPassword(user_id)) => {
            let waiting = PendingLink {
                user_id,
                github_id: gh_user.id,
                login: gh_user.login.clone(),
                name: display_name(&gh_user),
                token,
                verified,
                expires: Utc::now().timestamp() + TTL_SECS,
            };
            let jar = LINK.set(&state, jar, &waiting)?;
            return fail(jar, Failure::NeedsPassword(user_id));
        }
        Err(failure) => return fail(jar, failure),
    };
    let jar = start_session(&state, &mut conn, jar, &user, &meta).await?;
    Ok((jar, Redirect::to(&pending.redirect)).into_response())
}

/// A name for an account made from a GitHub profile: its name (or login), without the
/// characters a free-text name may not hold, at most 100 characters.
fn display_name(user: &crate::github::GitHubUser) -> String {
    let name = user
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(user.login.clone());
    let plain: String = name
        .chars()
        .filter(|c| railyard_shared::auth::is_plain_text(c.encode_utf8(&mut [0; 4])))
        .take(100)
        .collect();
    if plain.trim().is_empty() {
        user.login.chars().take(100).collect()
    } else {
        plain
    }
}

/// Links GitHub user `github_id` (and its token, sealed) to `user_id`.
async fn link(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: uuid::Uuid,
    github_id: i64,
    token: &str,
) -> AppResult<()> {
    let sealed = state
        .keys
        .encrypt(token.as_bytes(), &User::github_token_aad(user_id))
        .map_err(AppError::internal)?;
    diesel::update(users::table.find(user_id))
        .set((
            users::github_id.eq(github_id),
            users::github_token.eq(sealed),
            users::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The GitHub identity waiting in `jar`, unless it expired.
fn open_link(state: &AppState, jar: &CookieJar) -> Option<PendingLink> {
    let link: PendingLink = LINK.open(state, jar)?;
    (link.expires >= Utc::now().timestamp()).then_some(link)
}

/// After `user` signed in with their password: links the GitHub identity waiting for it
/// (if any, and if it is theirs), which also proves the address GitHub verified. The
/// waiting cookie is cleared either way.
pub(super) async fn finish_link(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    jar: CookieJar,
    user: &User,
    meta: &RequestMeta,
) -> AppResult<CookieJar> {
    let Some(waiting) = open_link(state, &jar) else {
        return Ok(jar);
    };
    let jar = LINK.clear(state, jar);
    if waiting.user_id != user.id || !waiting.verified.contains(&user.email) {
        return Ok(jar);
    }
    let taken: Option<uuid::Uuid> = users::table
        .filter(users::github_id.eq(waiting.github_id))
        .select(users::id)
        .first(conn)
        .await
        .optional()?;
    let linked: Option<i64> = users::table
        .find(user.id)
        .select(users::github_id)
        .first(conn)
        .await?;
    if taken.is_some() || linked.is_some() {
        return Ok(jar);
    }
    link(state, conn, user.id, waiting.github_id, &waiting.token).await?;
    crate::auth::email::mark_verified(conn, user.id).await?;
    audit::record(
        conn,
        meta,
        audit::Entry {
            actor_id: Some(user.id),
            actor_label: &user.email,
            action: "user.github_link",
            target_type: "user",
            target_id: user.id.to_string(),
            detail: serde_json::json!({ "method": "password", "github_login": waiting.login }),
            ..Default::default()
        },
    )
    .await?;
    Ok(jar)
}

/// The GitHub identity waiting for a password becomes an account of its own instead,
/// under the first address GitHub verified that no account has (where sign-up is open).
#[utoipa::path(
    post,
    path = "/api/v1/auth/github/separate",
    tag = "auth",
    responses(
        (status = 201, description = "Signed in to the new account", body = railyard_shared::auth::UserResponse),
        (status = 400, description = "No GitHub sign-in is waiting (or it expired)", body = railyard_shared::ErrorBody),
        (status = 403, description = "Sign-up is closed on this instance", body = railyard_shared::ErrorBody),
        (status = 409, description = "Every verified address already has an account", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_separate(
    State(state): State<AppState>,
    meta: RequestMeta,
    jar: CookieJar,
) -> AppResult<(
    axum::http::StatusCode,
    CookieJar,
    axum::Json<railyard_shared::auth::UserResponse>,
)> {
    let Some(waiting) = open_link(&state, &jar) else {
        return Err(AppError::bad_request(
            "no GitHub sign-in is waiting (it lasts 10 minutes): continue with GitHub again",
        ));
    };
    if !state.config.auth.open_signup {
        return Err(AppError::new(
            railyard_shared::ErrorCode::Forbidden,
            "sign-up is closed on this instance: ask an admin for an invitation",
        ));
    }
    state.limits.check(Bucket::SignupAddress, &meta.ip).await?;
    let mut conn = state.db.get().await?;
    let meta_ref = &meta;
    let user = conn
        .transaction::<_, AppError, _>(async |conn| {
            let taken: Vec<String> = users::table
                .filter(users::email.eq_any(&waiting.verified))
                .select(users::email)
                .load(conn)
                .await?;
            let linked: Option<uuid::Uuid> = users::table
                .filter(users::github_id.eq(waiting.github_id))
                .select(users::id)
                .first(conn)
                .await
                .optional()?;
            if linked.is_some() {
                return Err(AppError::conflict("this GitHub account is linked to another account already"));
            }
            let Some(email) = waiting.verified.iter().find(|e| !taken.contains(e)) else {
                return Err(AppError::conflict(
                    "every address GitHub verified for you has a Railyard account: sign in to it with its password to connect GitHub",
                ));
            };
            let user = User::create(
                conn,
                NewUser {
                    email,
                    name: &waiting.name,
                    password_hash: None,
                    is_instance_admin: false,
                    email_verified: true,
                },
            )
            .await?;
            link(&state, conn, user.id, waiting.github_id, &waiting.token).await?;
            audit::record(
                conn,
                meta_ref,
                audit::Entry {
                    actor_id: Some(user.id),
                    actor_label: &user.email,
                    action: "user.signup",
                    target_type: "user",
                    target_id: user.id.to_string(),
                    detail: serde_json::json!({ "method": "github", "github_login": waiting.login, "separate": true }),
                    ..Default::default()
                },
            )
            .await?;
            Ok(user)
        })
        .await?;
    let jar = LINK.clear(&state, jar);
    let jar = start_session(&state, &mut conn, jar, &user, &meta).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        jar,
        axum::Json(railyard_shared::auth::UserResponse { user: user.to_api() }),
    ))
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
