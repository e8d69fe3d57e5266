//! Every HTTP middleware, in one place, in the order it runs.

use std::{any::Any, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use railyard_shared::{ErrorBody, ErrorCode, ErrorDetail};
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::error::{AppError, default_message};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps every route of `router` (axum applies `Router::layer` after routing, so the
/// matched path is known to the trace span). Outermost first:
/// client request id check → request id → trace span → propagate id → security headers →
/// compression → error envelope → URI check → timeout → panic catcher → body limit → handler.
pub fn apply<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    request_timeout: Duration,
    body_limit: usize,
    cors_origins: &[String],
) -> Router<S> {
    let router = router
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(axum::middleware::from_fn(check_uri))
        .layer(axum::middleware::from_fn(error_envelope))
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_unsafe_request_id));
    match cors(cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The longest path and query a request may have (`414` past it, in the envelope; the
/// listener answers a first request line longer than [`crate::listener::MAX_REQUEST_LINE`]
/// the same way before hyper sees it).
pub const MAX_URI: usize = 8 * 1024;

/// A path and query longer than [`MAX_URI`] is a 414; one carrying an encoded NUL (`%00`)
/// is refused before any handler: no name, id or search a handler would pass on may hold
/// one (PostgreSQL refuses NUL in text).
async fn check_uri(req: Request, next: Next) -> Response {
    let uri = req.uri();
    if uri.path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI {
        let message = format!("the request's path and query are longer than {MAX_URI} bytes");
        return AppError::new(ErrorCode::UriTooLong, message).into_response();
    }
    let has_nul = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
    };
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return AppError::bad_request("the request's path or query contains a NUL character (%00)")
            .into_response();
    }
    next.run(req).await
}

/// The longest client `X-Request-Id` kept.
const MAX_REQUEST_ID: usize = 64;

/// A client's own `X-Request-Id` is kept (it ties the client's logs to ours, and lands in
/// the append-only audit log) only when it is one short safe token — a UUID, or up to 64
/// letters, digits, `.`, `_` and `-`; anything else is dropped and the request gets a
/// fresh UUID.
async fn drop_unsafe_request_id(mut req: Request) -> Request {
    let mut ids = req.headers().get_all(&REQUEST_ID).iter();
    let safe = match (ids.next(), ids.next()) {
        (Some(id), None) => is_safe_request_id(id.as_bytes()),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !safe {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

fn is_safe_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// CORS for the configured origins only (none by default: the dashboard is same-origin).
/// Credentials are allowed, so the origin list is explicit, never `*`.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-csrf-token"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

fn make_span(req: &Request<Body>) -> tracing::Span {
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "http.request",
        http.method = %req.method(),
        http.route = route.unwrap_or("<unmatched>"),
        request_id,
    )
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("<non-string panic payload>");
    tracing::error!(panic = detail, "handler panicked");
    AppError::new(ErrorCode::Internal, default_message(ErrorCode::Internal)).into_response()
}

fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Renders every error as the one envelope, with the request id:
/// - responses built from [`AppError`] (handlers, extractors, panics);
/// - any other 4xx/5xx under `/api` that is not already JSON (axum's 405, the body limit,
///   the timeout), so clients never see a bare status or a text body.
pub async fn error_envelope(req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let is_api = is_api_path(req.uri().path());
    let response = next.run(req).await;

    let status = response.status();
    if let Some(err) = response.extensions().get::<AppError>().cloned() {
        return envelope(response, err, request_id);
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_api && (status.is_client_error() || status.is_server_error()) && !is_json {
        let code = ErrorCode::from_status(status.as_u16());
        return envelope(response, AppError::new(code, default_message(code)), request_id);
    }
    response
}

fn envelope(response: Response, err: AppError, request_id: String) -> Response {
    let (mut parts, _) = response.into_parts();
    let body = ErrorBody {
        error: ErrorDetail {
            code: err.code,
            message: err.message.into_owned(),
            request_id,
        },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.extensions.remove::<AppError>();
    Response::from_parts(parts, Body::from(bytes))
}
