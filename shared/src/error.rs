use serde::{Deserialize, Serialize};

/// Machine-readable error codes. The set only grows; clients match on these strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidJson,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UriTooLong,
    UnsupportedMediaType,
    ValidationFailed,
    RequestTimeout,
    TooManyRequests,
    Internal,
    ServiceUnavailable,
    /// A project already has its 15 live preview environments (409).
    #[serde(rename = "ENV_PREVIEW_LIMIT_REACHED")]
    EnvPreviewLimitReached,
    /// The GitHub connection this needs was refused by GitHub: reconnect it (409).
    #[serde(rename = "GITHUB_CONNECTION_BROKEN")]
    GithubConnectionBroken,
}

impl ErrorCode {
    /// The HTTP status this code is sent with.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest | Self::InvalidJson => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::Conflict | Self::EnvPreviewLimitReached | Self::GithubConnectionBroken => 409,
            Self::PayloadTooLarge => 413,
            Self::UriTooLong => 414,
            Self::UnsupportedMediaType => 415,
            Self::ValidationFailed => 422,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::ServiceUnavailable => 503,
        }
    }

    /// The code used for a bare HTTP status that carries no code of its own.
    pub fn from_status(status: u16) -> Self {
        match status {
            400 => Self::BadRequest,
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            409 => Self::Conflict,
            413 => Self::PayloadTooLarge,
            414 => Self::UriTooLong,
            415 => Self::UnsupportedMediaType,
            422 => Self::ValidationFailed,
            429 => Self::TooManyRequests,
            502..=504 => Self::ServiceUnavailable,
            s if (400..500).contains(&s) => Self::BadRequest,
            _ => Self::Internal,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidJson => "invalid_json",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UriTooLong => "uri_too_long",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::RequestTimeout => "request_timeout",
            Self::TooManyRequests => "too_many_requests",
            Self::Internal => "internal",
            Self::ServiceUnavailable => "service_unavailable",
            Self::EnvPreviewLimitReached => "ENV_PREVIEW_LIMIT_REACHED",
            Self::GithubConnectionBroken => "GITHUB_CONNECTION_BROKEN",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error envelope: `{"error":{"code","message","request_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// Human-readable, safe to show to the user; never internal detail.
    pub message: String,
    /// The `x-request-id` of the failed request, for support and logs.
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_status() {
        let all = [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::RequestTimeout,
            ErrorCode::UriTooLong,
            ErrorCode::Conflict,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::ValidationFailed,
            ErrorCode::TooManyRequests,
            ErrorCode::Internal,
            ErrorCode::ServiceUnavailable,
        ];
        for code in all {
            assert_eq!(ErrorCode::from_status(code.status()), code, "{code}");
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
        assert_eq!(ErrorCode::InvalidJson.status(), 400);
        for code in [
            ErrorCode::EnvPreviewLimitReached,
            ErrorCode::GithubConnectionBroken,
        ] {
            assert_eq!(code.status(), 409);
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
        assert_eq!(ErrorCode::from_status(418), ErrorCode::BadRequest);
        assert_eq!(ErrorCode::from_status(599), ErrorCode::Internal);
    }

    #[test]
    fn envelope_shape() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::NotFound,
                message: "no such route".into(),
                request_id: "r-1".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"error":{"code":"not_found","message":"no such route","request_id":"r-1"}})
        );
    }
}
