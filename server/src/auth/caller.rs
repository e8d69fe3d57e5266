//! Extractors: who is calling ([`Caller`]) and from where ([`RequestMeta`]).

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{Method, header, request::Parts},
};
use axum_extra::extract::cookie::CookieJar;
use railyard_shared::ErrorCode;
use tower_http::request_id::RequestId;
use uuid::Uuid;

use super::session;
use crate::{app::AppState, error::AppError};

/// The signed-in user behind a request.
///
/// Cookie sessions: the access token must verify and its session must still be active
/// (logout and revocation apply at once); a state-changing method must carry the CSRF
/// token bound to that session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

pub fn unauthorized(message: &'static str) -> AppError {
    AppError::new(ErrorCode::Unauthorized, message)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Err(unauthorized(
                "this endpoint does not accept bearer tokens yet; sign in with a session",
            ));
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(state.cookies.access_name())
            .map(|c| c.value())
            .filter(|v| !v.is_empty());
        let token = token.ok_or_else(|| unauthorized("sign in to continue"))?;
        let claims = state.signer.verify(token).map_err(|err| {
            tracing::debug!(error = %err, "access token refused");
            unauthorized("the session token is invalid or expired; refresh it or sign in again")
        })?;
        let mut conn = state.db.get().await?;
        if !session::is_active(&mut conn, claims.sub, claims.sid).await? {
            return Err(unauthorized("this session has ended; sign in again"));
        }
        if !is_safe(&parts.method) && !state.cookies.csrf_ok(&parts.headers, &jar, Some(claims.sid)) {
            return Err(AppError::new(
                ErrorCode::Forbidden,
                "missing or invalid CSRF token: send the `railyard_csrf` cookie's value in `X-CSRF-Token`",
            ));
        }
        Ok(Self {
            user_id: claims.sub,
            session_id: claims.sid,
        })
    }
}

/// Where a request came from, for sessions and the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// The socket's peer address (proxies are not trusted unless configured).
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .and_then(|id| id.header_value().to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            ip,
            user_agent,
            request_id,
        })
    }
}
