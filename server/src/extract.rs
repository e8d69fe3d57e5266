//! Extractors whose rejections use the error envelope.

use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::StatusCode,
};
use railyard_shared::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// `axum::Json` with rejections mapped to [`AppError`]: 415 without a JSON content type,
/// 400 `invalid_json` for malformed JSON, 422 `validation_failed` for JSON of the wrong
/// shape, 413 for a body over the configured limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => AppError::new(
            ErrorCode::UnsupportedMediaType,
            "expected a JSON body with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(err) => AppError::new(
            ErrorCode::InvalidJson,
            format!("malformed JSON: {}", err.body_text()),
        ),
        JsonRejection::JsonDataError(err) => AppError::new(
            ErrorCode::ValidationFailed,
            format!("invalid request body: {}", err.body_text()),
        ),
        JsonRejection::BytesRejection(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is larger than this endpoint accepts",
        ),
        other => AppError::bad_request(format!("could not read the request body: {}", other.body_text())),
    }
}

/// `axum::extract::Path` whose rejection is a 400 envelope saying which part of the path is
/// wrong (e.g. an id that is not a UUID).
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(AppError::bad_request(format!(
                "invalid path: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// `axum::extract::Query` whose rejection is a 400 envelope naming the missing or invalid
/// parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(AppError::bad_request(format!(
                "invalid query: {}",
                rejection.body_text()
            ))),
        }
    }
}
