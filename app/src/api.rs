//! Typed calls to the Railyard API with gloo-net, using the `shared/` types.
//!
//! Reads retry once after refreshing the session when the access token has expired;
//! writes carry the CSRF token from the `railyard_csrf` cookie.

use gloo_net::http::{Request, RequestBuilder, Response};
use railyard_shared::{
    API_V1, ErrorBody, HealthResponse,
    auth::{LoginRequest, SignupRequest, User, UserResponse},
};
use serde::{Serialize, de::DeserializeOwned};
use wasm_bindgen::JsCast as _;
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

/// The value of the readable `railyard_csrf` cookie.
fn csrf_token() -> Option<String> {
    let document = web_sys::window()?
        .document()?
        .dyn_into::<web_sys::HtmlDocument>()
        .ok()?;
    let cookies = document.cookie().ok()?;
    cookies
        .split(';')
        .find_map(|pair| pair.trim().strip_prefix("railyard_csrf=").map(str::to_owned))
}

async fn send(
    builder: RequestBuilder,
    body: Option<String>,
    guard: &AbortOnDrop,
) -> Result<Response, ApiError> {
    let signal = guard.0.as_ref().map(AbortController::signal);
    let builder = builder
        .header("Accept", "application/json")
        .abort_signal(signal.as_ref());
    let result = match body {
        Some(body) => {
            builder
                .header("Content-Type", "application/json")
                .body(body)
                .map_err(|err| ApiError::network(&err))?
                .send()
                .await
        }
        None => builder.send().await,
    };
    result.map_err(|err| ApiError::network(&err))
}

fn write(method: &str, path: &str) -> RequestBuilder {
    let builder = match method {
        "DELETE" => Request::delete(path),
        "PATCH" => Request::patch(path),
        "PUT" => Request::put(path),
        _ => Request::post(path),
    };
    match csrf_token() {
        Some(token) => builder.header("X-CSRF-Token", &token),
        None => builder,
    }
}

/// Exchanges the refresh cookie for new session cookies; true when that worked.
async fn refresh_session() -> bool {
    let guard = AbortOnDrop(AbortController::new().ok());
    matches!(send(write("POST", &format!("{API_V1}/auth/refresh")), None, &guard).await, Ok(r) if r.ok())
}

/// Sends a request (retrying once after a session refresh on 401) and decodes the body as
/// `T` when the status is one of `accepted`; other statuses decode the error envelope.
async fn call<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<String>,
    accepted: &[u16],
) -> Result<T, ApiError> {
    // Lives until the body is read; aborting a finished fetch does nothing.
    let guard = AbortOnDrop(AbortController::new().ok());
    let build = || {
        if method == "GET" {
            Request::get(path)
        } else {
            write(method, path)
        }
    };
    let mut response = send(build(), body.clone(), &guard).await?;
    if response.status() == 401 && !path.starts_with(&format!("{API_V1}/auth/")) && refresh_session().await {
        response = send(build(), body, &guard).await?;
    }
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

fn json<B: Serialize>(body: &B) -> Option<String> {
    serde_json::to_string(body).ok()
}

/// `GET /api/v1/health`. A 503 still carries the report, so it is not an error here.
pub async fn fetch_health() -> Result<HealthResponse, ApiError> {
    call("GET", &format!("{API_V1}/health"), None, &[200, 503]).await
}

/// The signed-in user, or `None` when nobody is signed in.
pub async fn fetch_me() -> Result<Option<User>, ApiError> {
    match call::<UserResponse>("GET", &format!("{API_V1}/me"), None, &[200]).await {
        Ok(res) => Ok(Some(res.user)),
        Err(err) if err.status == 401 => Ok(None),
        Err(err) => Err(err),
    }
}

pub async fn signup(request: SignupRequest) -> Result<User, ApiError> {
    call::<UserResponse>("POST", &format!("{API_V1}/auth/signup"), json(&request), &[201])
        .await
        .map(|r| r.user)
}

pub async fn login(request: LoginRequest) -> Result<User, ApiError> {
    call::<UserResponse>("POST", &format!("{API_V1}/auth/login"), json(&request), &[200])
        .await
        .map(|r| r.user)
}

pub async fn logout() -> Result<(), ApiError> {
    let guard = AbortOnDrop(AbortController::new().ok());
    let response = send(write("POST", &format!("{API_V1}/auth/logout")), None, &guard).await?;
    if response.status() == 204 {
        Ok(())
    } else {
        Err(error_from(response).await)
    }
}
