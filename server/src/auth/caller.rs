//! Extractors: who is calling ([`Caller`]) and from where ([`RequestMeta`]); and the
//! workspace role check every workspace-owned resource goes through.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{Method, header, request::Parts},
};
use axum_extra::extract::cookie::CookieJar;
use diesel_async::AsyncPgConnection;
use railyard_shared::{ErrorCode, auth::Role};
use tower_http::request_id::RequestId;
use uuid::Uuid;

use super::{api_token, jwt::TokenError, session};
use crate::{app::AppState, error::AppError, models::workspace::Workspaces};

/// What an API token limits its bearer to: one workspace, at most one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenScope {
    pub token_id: Uuid,
    pub workspace_id: Uuid,
    pub role: Role,
}

/// The signed-in user behind a request.
///
/// A cookie session's access token must verify and its session must still be active
/// (logout and revocation apply at once), and a state-changing method must carry the CSRF
/// token bound to that session. An API token (`Authorization: Bearer ry_…`) must be known,
/// unrevoked and unexpired; it needs no CSRF token (browsers never send it by themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    /// The cookie session, when signed in through the browser.
    pub session_id: Option<Uuid>,
    /// The API token's scope, when called with one.
    pub token: Option<TokenScope>,
}

pub fn unauthorized(message: &'static str) -> AppError {
    AppError::new(ErrorCode::Unauthorized, message)
}

pub fn workspace_not_found() -> AppError {
    AppError::not_found("workspace not found")
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl Caller {
    /// The caller's role in `workspace`: 404 when not a member (or when an API token is
    /// scoped to another workspace), so another team's ids reveal nothing. A token's role
    /// caps the member's role.
    pub async fn role_in(&self, conn: &mut AsyncPgConnection, workspace: Uuid) -> Result<Role, AppError> {
        if let Some(scope) = self.token
            && scope.workspace_id != workspace
        {
            return Err(workspace_not_found());
        }
        let role = Workspaces::role_of(conn, workspace, self.user_id)
            .await?
            .ok_or_else(workspace_not_found)?;
        Ok(match self.token {
            Some(scope) => role.min(scope.role),
            None => role,
        })
    }

    /// Like [`Self::role_in`], and 403 unless the role is at least `needed`.
    pub async fn require(
        &self,
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        needed: Role,
    ) -> Result<Role, AppError> {
        let role = self.role_in(conn, workspace).await?;
        if role.at_least(needed) {
            Ok(role)
        } else {
            Err(AppError::new(
                ErrorCode::Forbidden,
                format!(
                    "this needs the {} role or higher in the workspace; you are {}",
                    needed.as_str(),
                    role.as_str()
                ),
            ))
        }
    }

    /// [`Self::require`] for a resource inside the workspace (a project, a service): every 404
    /// names that resource, so an unknown id and another team's id answer alike.
    pub async fn require_for(
        &self,
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        needed: Role,
        resource: &str,
    ) -> Result<Role, AppError> {
        match self.require(conn, workspace, needed).await {
            Err(err) if err.code == ErrorCode::NotFound => {
                Err(AppError::not_found(format!("{resource} not found")))
            }
            other => other,
        }
    }

    /// Whether the credential the caller came with still holds (its session active, its
    /// API token unrevoked and unexpired): a long-lived connection asks again when access
    /// may have changed.
    pub async fn still_signed_in(&self, conn: &mut AsyncPgConnection) -> diesel::QueryResult<bool> {
        match (self.token, self.session_id) {
            (Some(scope), _) => api_token::is_active(conn, scope.token_id).await,
            (None, Some(session)) => session::is_active(conn, self.user_id, session).await,
            (None, None) => Ok(false),
        }
    }

    /// 403 for endpoints that only a browser session may use (e.g. minting API tokens).
    pub fn require_session(&self) -> Result<Uuid, AppError> {
        self.session_id
            .ok_or_else(|| AppError::new(ErrorCode::Forbidden, "API tokens cannot do this; sign in"))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <API token>`"))?;
            let mut conn = state.db.get().await?;
            let found = api_token::authenticate(&mut conn, token).await?;
            let found = found.ok_or_else(|| unauthorized("the API token is invalid, expired or revoked"))?;
            return Ok(Self {
                user_id: found.user_id,
                session_id: None,
                token: Some(found.scope),
            });
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(state.cookies.access_name())
            .map(|c| c.value())
            .filter(|v| !v.is_empty());
        let token = token.ok_or_else(|| unauthorized("sign in to continue"))?;
        let mut conn = state.db.get().await?;
        let mut verified = state.signer.verify(token);
        if verified == Err(TokenError::UnknownKey) && state.signer.reload_due() {
            // Another replica may have rotated the signing key: learn the new one.
            if let Err(err) = state.signer.load(&mut conn, &state.keys).await {
                tracing::error!(error = %format!("{err:#}"), "reloading the signing keys failed");
            }
            verified = state.signer.verify(token);
        }
        let claims = verified.map_err(|err| {
            tracing::debug!(error = %err, "access token refused");
            unauthorized("the session token is invalid or expired; refresh it or sign in again")
        })?;
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
            session_id: Some(claims.sid),
            token: None,
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

/// The client's address: the socket's peer, or, when the peer is a trusted proxy, the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_address(parts: &Parts, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let hops: Vec<IpAddr> = forwarded
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    Some(hops.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer))
}

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let trusted = &state.config.http.trusted_proxies;
        let ip = client_address(parts, trusted)
            .map(|ip| ip.to_string())
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

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(peer: &str, forwarded: Option<&str>) -> Parts {
        let mut builder = Request::get("/");
        if let Some(value) = forwarded {
            builder = builder.header("x-forwarded-for", value);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 4000)));
        parts
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |p: &Parts| client_address(p, &trusted).unwrap().to_string();
        // A client cannot choose its own address by sending the header.
        assert_eq!(ip(&parts("203.0.113.9", Some("1.2.3.4"))), "203.0.113.9");
        // Through a trusted proxy: the right-most untrusted hop, not the client-written left.
        assert_eq!(
            ip(&parts("10.0.0.2", Some("6.6.6.6, 198.51.100.7, 10.0.0.3"))),
            "198.51.100.7"
        );
        assert_eq!(ip(&parts("10.0.0.2", None)), "10.0.0.2");
        assert_eq!(ip(&parts("10.0.0.2", Some("garbage"))), "10.0.0.2");
        assert_eq!(
            client_address(&parts("10.0.0.2", None), &[]).unwrap().to_string(),
            "10.0.0.2"
        );
    }
}
