//! The one error type for handlers.
//!
//! A handler returns [`AppError`]; its response carries the code and message in an
//! extension, and [`crate::middleware::error_envelope`] renders the envelope
//! `{"error":{"code","message","request_id"}}` with the request's id. Internal detail
//! (database errors, panics, I/O) is logged once, here, and never returned.

use std::borrow::Cow;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use diesel_async::pooled_connection::{PoolError, bb8::RunError};
use railyard_shared::ErrorCode;

pub type AppResult<T> = Result<T, AppError>;

/// An error a client may see: a code and a safe message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs().max(1);
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                ErrorCode::TooManyRequests,
                format!("too many attempts; try again in {seconds} s"),
            )
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn forbidden() -> Self {
        Self::new(ErrorCode::Forbidden, "you do not have permission to do this")
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn unprocessable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }

    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::ServiceUnavailable,
            default_message(ErrorCode::ServiceUnavailable),
        )
    }

    /// Logs `err` with its full chain and returns the generic 500.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        let err = err.into();
        tracing::error!(error = %format!("{err:#}"), "internal error");
        Self::new(ErrorCode::Internal, default_message(ErrorCode::Internal))
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AppError {}

/// The message sent for a code when nothing more specific is known.
pub fn default_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadRequest => "the request is not valid",
        ErrorCode::InvalidJson => "the request body is not valid JSON",
        ErrorCode::Unauthorized => "sign in to continue",
        ErrorCode::Forbidden => "you do not have permission to do this",
        ErrorCode::NotFound => "not found",
        ErrorCode::MethodNotAllowed => "this method is not allowed on this path",
        ErrorCode::Conflict => "the request conflicts with the current state",
        ErrorCode::PayloadTooLarge => "the request body is too large",
        ErrorCode::UriTooLong => "the request's path and query are too long",
        ErrorCode::UnsupportedMediaType => "unsupported content type",
        ErrorCode::ValidationFailed => "the request failed validation",
        ErrorCode::RequestTimeout => "the request took too long",
        ErrorCode::TooManyRequests => "too many requests; slow down and retry",
        ErrorCode::Internal => "an internal error occurred; it has been logged",
        ErrorCode::ServiceUnavailable => "the service is temporarily unavailable; retry shortly",
        ErrorCode::EnvPreviewLimitReached => "this project has its 15 live preview environments",
        ErrorCode::GithubConnectionBroken => "GitHub refused the connection's token: reconnect GitHub",
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // The body is rendered by the envelope middleware, which knows the request id.
        let mut response = status.into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        match err {
            diesel::result::Error::NotFound => Self::not_found("not found"),
            // PostgreSQL stores no NUL in text: the input was not text it can keep.
            diesel::result::Error::DatabaseError(_, info)
                if info.message().contains("invalid byte sequence") && info.message().contains("0x00") =>
            {
                Self::bad_request("text may not contain NUL characters (\\u0000)")
            }
            other => Self::internal(other),
        }
    }
}

impl From<RunError> for AppError {
    fn from(err: RunError) -> Self {
        tracing::warn!(error = %err, "no database connection available");
        Self::unavailable()
    }
}

impl From<PoolError> for AppError {
    fn from(err: PoolError) -> Self {
        tracing::warn!(error = %err, "database connection failed");
        Self::unavailable()
    }
}

/// A unique-constraint violation becomes 409 with `message`; anything else as usual.
pub fn conflict_on_unique(err: diesel::result::Error, message: &'static str) -> AppError {
    match err {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            AppError::conflict(message)
        }
        other => other.into(),
    }
}
