//! Typed calls to the Railyard API with gloo-net, using the `shared/` types.

use gloo_net::http::{Request, Response};
use railyard_shared::{API_V1, ErrorBody, HealthResponse};
use serde::de::DeserializeOwned;
use web_sys::AbortController;

/// A failed API call, ready to show to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// Present when the server answered with the error envelope.
    pub request_id: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    fn network(err: &gloo_net::Error) -> Self {
        leptos::logging::warn!("request failed: {err}");
        Self {
            status: 0,
            message: "The browser could not reach the Railyard server. Is it running at this address?"
                .to_owned(),
            request_id: None,
        }
    }
}

/// Aborts the fetch when the future that owns it is dropped (a refetch or an unmounted
/// view), so no stale request keeps running.
struct AbortOnDrop(Option<AbortController>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(controller) = &self.0 {
            controller.abort();
        }
    }
}

/// GETs `path` and decodes the body as `T` when the status is one of `accepted`;
/// any other status is decoded as the error envelope.
async fn get_json<T: DeserializeOwned>(path: &str, accepted: &[u16]) -> Result<T, ApiError> {
    // Lives until the body is read; aborting a finished fetch does nothing.
    let guard = AbortOnDrop(AbortController::new().ok());
    let signal = guard.0.as_ref().map(AbortController::signal);
    let response = Request::get(path)
        .header("Accept", "application/json")
        .abort_signal(signal.as_ref())
        .send()
        .await
        .map_err(|err| ApiError::network(&err))?;
    let result = if accepted.contains(&response.status()) {
        decode(response).await
    } else {
        Err(error_from(response).await)
    };
    drop(guard);
    result
}

async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, ApiError> {
    let status = response.status();
    response.json::<T>().await.map_err(|err| ApiError {
        status,
        message: format!("unexpected answer from the server: {err}"),
        request_id: None,
    })
}

async fn error_from(response: Response) -> ApiError {
    let status = response.status();
    match response.json::<ErrorBody>().await {
        Ok(body) => ApiError {
            status,
            message: body.error.message,
            request_id: Some(body.error.request_id),
        },
        Err(_) => ApiError {
            status,
            message: format!("the server answered {status}"),
            request_id: None,
        },
    }
}

/// `GET /api/v1/health`. A 503 still carries the report, so it is not an error here.
pub async fn fetch_health() -> Result<HealthResponse, ApiError> {
    get_json(&format!("{API_V1}/health"), &[200, 503]).await
}
