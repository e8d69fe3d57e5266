use axum::{extract::State, http::StatusCode};
use axum_extra::extract::cookie::CookieJar;
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use railyard_shared::auth::{SignupRequest, UserResponse, is_plain_text, normalize_email};

use super::{forbidden, start_session};
use crate::{
    app::AppState,
    audit,
    auth::{RequestMeta, password, secret, setup},
    error::{AppError, AppResult},
    extract::Json,
    models::{
        invitation::Invitations,
        user::{NewUser, User},
    },
    ratelimit::Bucket,
    routes::scope::{self, invalid_invitation},
};

/// Create an account.
///
/// The first account of an instance needs the one-time setup token printed at start (or
/// `RAILYARD_SETUP_TOKEN`) and becomes the instance admin. Later accounts need open
/// sign-up (`RAILYARD_OPEN_SIGNUP=true`). Answers 201 with the session cookies.
#[utoipa::path(
    post,
    path = "/api/v1/auth/signup",
    tag = "auth",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Signed up and signed in", body = UserResponse),
        (status = 403, description = "Setup token missing or invalid, or sign-up is invite-only", body = railyard_shared::ErrorBody),
        (status = 409, description = "An account with this email exists", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid email, name or password", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn signup(
    State(state): State<AppState>,
    meta: RequestMeta,
    jar: CookieJar,
    Json(req): Json<SignupRequest>,
) -> AppResult<(StatusCode, CookieJar, axum::Json<UserResponse>)> {
    state.limits.check(Bucket::SignupAddress, &meta.ip).await?;
    let email = normalize_email(&req.email)
        .ok_or_else(|| AppError::unprocessable("`email` is not a valid email address"))?;
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || !is_plain_text(&name) {
        return Err(AppError::unprocessable(
            "`name` must be 1 to 100 characters, without control, bidirectional or zero-width characters",
        ));
    }
    password::check_policy(&req.password, &email).map_err(|err| AppError::unprocessable(err.to_string()))?;
    let salt = secret::random_bytes::<16>().map_err(AppError::internal)?;
    let plain = req.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&plain, &salt))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;

    let open_signup = state.config.auth.open_signup;
    let mut conn = state.db.get().await?;
    let (setup_token, invitation_token, meta_ref) = (req.setup_token, req.invitation_token, &meta);
    let user = conn
        .transaction::<_, AppError, _>(async |conn| {
                // One sign-up at a time decides who is first.
                diesel::sql_query("SELECT pg_advisory_xact_lock(727276)").execute(conn).await?;
                let first = !User::any_exist(conn).await?;
                if first {
                    let Some(token) = setup_token.as_deref() else {
                        return Err(forbidden(
                            "this instance has no accounts yet: create the first one through the setup link the server printed",
                        ));
                    };
                    if !setup::consume(conn, token).await? {
                        return Err(forbidden("the setup token is invalid or has been used"));
                    }
                } else if !open_signup {
                    // Invite-only: the invitation must be pending and sent to this address.
                    let Some(token) = invitation_token.as_deref() else {
                        return Err(forbidden("sign-up on this instance is by invitation only"));
                    };
                    let invitation = Invitations::find_pending(conn, token).await?.ok_or_else(invalid_invitation)?;
                    if invitation.email != email {
                        return Err(forbidden("this invitation was sent to another email address"));
                    }
                }
                if User::find_by_email(conn, &email).await?.is_some() {
                    return Err(AppError::conflict("an account with this email already exists; sign in instead"));
                }
                let user = User::create(
                    conn,
                    NewUser {
                        email: &email,
                        name: &name,
                        password_hash: Some(&hash),
                        is_instance_admin: first,
                        email_verified: false,
                    },
                )
                .await?;
                audit::record(
                    conn,
                    meta_ref,
                    audit::Entry::new("user.signup")
                        .actor(user.id)
                        .target("user", user.id)
                        .detail(serde_json::json!({ "instance_admin": first })),
                )
                .await?;
                if let Some(token) = invitation_token.as_deref() {
                    scope::accept_invitation(conn, meta_ref, token, &user).await?;
                }
                Ok(user)
            })
        .await?;
    let jar = start_session(&state, &mut conn, jar, &user, &meta).await?;
    Ok((
        StatusCode::CREATED,
        jar,
        axum::Json(UserResponse { user: user.to_api() }),
    ))
}
