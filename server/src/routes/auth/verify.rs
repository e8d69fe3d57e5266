//! Confirming an email address with the link mailed to it (`auth::email`).

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;

use crate::{
    app::AppState,
    audit,
    auth::{RequestMeta, email},
    error::{AppError, AppResult},
    extract::Json,
    ratelimit::Bucket,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct VerifyEmailRequest {
    /// The `token` of the mailed link.
    pub token: String,
}

/// Confirm an email address with the token of the mailed link. Needs no session: the link
/// may be opened in another browser.
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email",
    tag = "auth",
    request_body = VerifyEmailRequest,
    responses(
        (status = 204, description = "The address is proven"),
        (status = 400, description = "Unknown, used or expired link, or the account's address changed", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn verify_email(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(req): Json<VerifyEmailRequest>,
) -> AppResult<StatusCode> {
    state.limits.check(Bucket::LoginAddress, &meta.ip).await?;
    let mut conn = state.db.get().await?;
    let Some(user_id) = email::confirm(&mut conn, req.token.trim()).await? else {
        return Err(AppError::bad_request(
            "this confirmation link is unknown, used or expired: ask for a new one from your account page",
        ));
    };
    audit::record(
        &mut conn,
        &meta,
        audit::Entry::new("user.email_verified")
            .actor(user_id)
            .target("user", user_id),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
