//! Typed calls to the Railyard API with gloo-net, using the `shared/` types.
//!
//! Reads retry once after refreshing the session when the access token has expired;
//! writes carry the CSRF token from the `railyard_csrf` cookie. Projects, services,
//! deployments and variables are in [`projects`].

pub mod databases;
pub mod environments;
pub mod github;
pub mod projects;

use gloo_net::http::{Request, RequestBuilder, Response};
use railyard_shared::{
    API_V1, ErrorBody, HealthResponse,
    auth::{
        AcceptInvitationRequest, AuditResponse, ChangePasswordRequest, CreateInvitationRequest,
        CreateTokenRequest, CreateWorkspaceRequest, CreatedInvitation, CreatedToken,
        InvitationPreviewResponse, InvitationsResponse, LoginRequest, MemberResponse, MembersResponse, Role,
        SessionsResponse, SignupRequest, TokensResponse, UpdateMemberRequest, User, UserResponse, Workspace,
        WorkspaceResponse, WorkspacesResponse,
    },
};
use railyard_shared::{UserId, WorkspaceId};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;
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
    /// What the page asked for is not there (a malformed id in the address, say).
    pub fn not_found(message: &str) -> Self {
        Self {
            status: 404,
            message: message.to_owned(),
            request_id: None,
        }
    }

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
    content_type: &str,
    guard: &AbortOnDrop,
) -> Result<Response, ApiError> {
    let signal = guard.0.as_ref().map(AbortController::signal);
    let builder = builder
        .header("Accept", "application/json")
        .abort_signal(signal.as_ref());
    let result = match body {
        Some(body) => {
            builder
                .header("Content-Type", content_type)
                .body(body)
                .map_err(|err| ApiError::network(&err))?
                .send()
                .await
        }
        None => builder.send().await,
    };
    result.map_err(|err| ApiError::network(&err))
}

fn request(method: &str, path: &str) -> RequestBuilder {
    let builder = match method {
        "GET" => return Request::get(path),
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
    let refresh = request("POST", &format!("{API_V1}/auth/refresh"));
    matches!(send(refresh, None, JSON, &guard).await, Ok(r) if r.ok())
}

/// Sends a request (retrying once after a session refresh on 401) and returns the response
/// when its status is one of `accepted`; other statuses decode the error envelope. `guard`
/// must outlive the reading of the body.
async fn call(
    method: &str,
    path: &str,
    body: Option<String>,
    accepted: &[u16],
    guard: &AbortOnDrop,
) -> Result<Response, ApiError> {
    call_as(method, path, body, JSON, accepted, guard).await
}

const JSON: &str = "application/json";

async fn call_as(
    method: &str,
    path: &str,
    body: Option<String>,
    content_type: &str,
    accepted: &[u16],
    guard: &AbortOnDrop,
) -> Result<Response, ApiError> {
    let mut response = send(request(method, path), body.clone(), content_type, guard).await?;
    if response.status() == 401 && !path.starts_with(&format!("{API_V1}/auth/")) && refresh_session().await {
        response = send(request(method, path), body, content_type, guard).await?;
    }
    if accepted.contains(&response.status()) {
        Ok(response)
    } else {
        Err(error_from(response).await)
    }
}

async fn json_call<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<String>,
    accepted: &[u16],
) -> Result<T, ApiError> {
    // Lives until the body is read; aborting a finished fetch does nothing.
    let guard = AbortOnDrop(AbortController::new().ok());
    let response = call(method, path, body, accepted, &guard).await?;
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

async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    json_call("GET", path, None, &[200]).await
}

async fn send_json<B: Serialize, T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: &B,
    ok: u16,
) -> Result<T, ApiError> {
    json_call(method, path, json(body), &[ok]).await
}

async fn no_content(method: &str, path: &str, body: Option<String>) -> Result<(), ApiError> {
    let guard = AbortOnDrop(AbortController::new().ok());
    call(method, path, body, &[204], &guard).await.map(drop)
}

/// `GET /api/v1/health`. A 503 still carries the report, so it is not an error here.
pub async fn fetch_health() -> Result<HealthResponse, ApiError> {
    json_call("GET", &format!("{API_V1}/health"), None, &[200, 503]).await
}

/// `GET /api/v1/instance` (instance admins only).
pub async fn fetch_instance() -> Result<railyard_shared::instance::InstanceResponse, ApiError> {
    get(&format!("{API_V1}/instance")).await
}

/// The signed-in user, or `None` when nobody is signed in.
pub async fn fetch_me() -> Result<Option<User>, ApiError> {
    match get::<UserResponse>(&format!("{API_V1}/me")).await {
        Ok(res) => Ok(Some(res.user)),
        Err(err) if err.status == 401 => Ok(None),
        Err(err) => Err(err),
    }
}

pub async fn signup(request: SignupRequest) -> Result<User, ApiError> {
    send_json::<_, UserResponse>("POST", &format!("{API_V1}/auth/signup"), &request, 201)
        .await
        .map(|r| r.user)
}

pub async fn login(request: LoginRequest) -> Result<User, ApiError> {
    send_json::<_, UserResponse>("POST", &format!("{API_V1}/auth/login"), &request, 200)
        .await
        .map(|r| r.user)
}

/// Mails a link that proves the account's email; true when it was sent (false: proven
/// already).
pub async fn request_email_verification() -> Result<bool, ApiError> {
    let answer: serde_json::Value =
        json_call("POST", &format!("{API_V1}/me/email/verification"), None, &[202]).await?;
    Ok(answer["email_sent"] == true)
}

/// Confirms an email address with the token of the mailed link.
pub async fn verify_email(token: String) -> Result<(), ApiError> {
    let body = serde_json::json!({ "token": token }).to_string();
    no_content("POST", &format!("{API_V1}/auth/verify-email"), Some(body)).await
}

/// Makes the GitHub identity waiting for a password an account of its own.
pub async fn github_separate_account() -> Result<User, ApiError> {
    json_call::<UserResponse>("POST", &format!("{API_V1}/auth/github/separate"), None, &[201])
        .await
        .map(|r| r.user)
}

pub async fn logout() -> Result<(), ApiError> {
    no_content("POST", &format!("{API_V1}/auth/logout"), None).await
}

pub async fn change_password(request: ChangePasswordRequest) -> Result<(), ApiError> {
    no_content("PUT", &format!("{API_V1}/me/password"), json(&request)).await
}

pub async fn list_sessions() -> Result<SessionsResponse, ApiError> {
    get(&format!("{API_V1}/me/sessions")).await
}

pub async fn revoke_session(id: Uuid) -> Result<(), ApiError> {
    no_content("DELETE", &format!("{API_V1}/me/sessions/{id}"), None).await
}

pub async fn list_workspaces() -> Result<Vec<Workspace>, ApiError> {
    // The first page holds 100; workspaces beyond that are rare enough to page in later.
    get::<WorkspacesResponse>(&format!("{API_V1}/workspaces?limit=100"))
        .await
        .map(|r| r.workspaces)
}

pub async fn create_workspace(name: String) -> Result<Workspace, ApiError> {
    let body = CreateWorkspaceRequest { name };
    send_json::<_, WorkspaceResponse>("POST", &format!("{API_V1}/workspaces"), &body, 201)
        .await
        .map(|r| r.workspace)
}

pub async fn list_members(workspace: WorkspaceId) -> Result<MembersResponse, ApiError> {
    get(&format!("{API_V1}/workspaces/{workspace}/members")).await
}

pub async fn update_member(
    workspace: WorkspaceId,
    user: UserId,
    role: Role,
) -> Result<MemberResponse, ApiError> {
    let path = format!("{API_V1}/workspaces/{workspace}/members/{user}");
    send_json("PATCH", &path, &UpdateMemberRequest { role }, 200).await
}

pub async fn remove_member(workspace: WorkspaceId, user: UserId) -> Result<(), ApiError> {
    no_content(
        "DELETE",
        &format!("{API_V1}/workspaces/{workspace}/members/{user}"),
        None,
    )
    .await
}

pub async fn list_invitations(workspace: WorkspaceId) -> Result<InvitationsResponse, ApiError> {
    get(&format!("{API_V1}/workspaces/{workspace}/invitations")).await
}

pub async fn create_invitation(
    workspace: WorkspaceId,
    email: String,
    role: Role,
) -> Result<CreatedInvitation, ApiError> {
    let path = format!("{API_V1}/workspaces/{workspace}/invitations");
    send_json("POST", &path, &CreateInvitationRequest { email, role }, 201).await
}

pub async fn revoke_invitation(workspace: WorkspaceId, id: Uuid) -> Result<(), ApiError> {
    no_content(
        "DELETE",
        &format!("{API_V1}/workspaces/{workspace}/invitations/{id}"),
        None,
    )
    .await
}

pub async fn preview_invitation(token: String) -> Result<InvitationPreviewResponse, ApiError> {
    let token = js_sys::encode_uri_component(&token)
        .as_string()
        .unwrap_or_default();
    get(&format!("{API_V1}/invitations/preview?token={token}")).await
}

pub async fn accept_invitation(token: String) -> Result<Workspace, ApiError> {
    let body = AcceptInvitationRequest { token };
    send_json::<_, WorkspaceResponse>("POST", &format!("{API_V1}/invitations/accept"), &body, 200)
        .await
        .map(|r| r.workspace)
}

pub async fn list_audit(
    workspace: WorkspaceId,
    action: String,
    cursor: Option<String>,
) -> Result<AuditResponse, ApiError> {
    let mut path = format!("{API_V1}/workspaces/{workspace}/audit?limit=50");
    if !action.trim().is_empty() {
        path.push_str(&format!(
            "&action={}",
            js_sys::encode_uri_component(action.trim())
        ));
    }
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={cursor}"));
    }
    get(&path).await
}

pub async fn list_tokens() -> Result<TokensResponse, ApiError> {
    get(&format!("{API_V1}/tokens")).await
}

pub async fn create_token(request: CreateTokenRequest) -> Result<CreatedToken, ApiError> {
    send_json("POST", &format!("{API_V1}/tokens"), &request, 201).await
}

pub async fn revoke_token(id: Uuid) -> Result<(), ApiError> {
    no_content("DELETE", &format!("{API_V1}/tokens/{id}"), None).await
}

#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct Providers {
    pub github: bool,
    pub open_signup: bool,
}

pub async fn fetch_providers() -> Result<Providers, ApiError> {
    get(&format!("{API_V1}/auth/providers")).await
}

pub async fn rename_workspace(workspace: WorkspaceId, name: String) -> Result<Workspace, ApiError> {
    let body = railyard_shared::auth::UpdateWorkspaceRequest {
        name: Some(name),
        log_read_role: None,
    };
    send_json::<_, WorkspaceResponse>("PATCH", &format!("{API_V1}/workspaces/{workspace}"), &body, 200)
        .await
        .map(|r| r.workspace)
}

/// What the workspace keeps on disk, and its quota.
pub async fn fetch_usage(workspace: WorkspaceId) -> Result<railyard_shared::auth::WorkspaceUsage, ApiError> {
    get::<railyard_shared::auth::WorkspaceUsageResponse>(&format!("{API_V1}/workspaces/{workspace}/usage"))
        .await
        .map(|r| r.usage)
}

/// Who may read the workspace's logs from now on.
pub async fn set_log_readers(workspace: WorkspaceId, role: Role) -> Result<Workspace, ApiError> {
    let body = railyard_shared::auth::UpdateWorkspaceRequest {
        name: None,
        log_read_role: Some(role),
    };
    send_json::<_, WorkspaceResponse>("PATCH", &format!("{API_V1}/workspaces/{workspace}"), &body, 200)
        .await
        .map(|r| r.workspace)
}

pub async fn delete_workspace(workspace: WorkspaceId) -> Result<(), ApiError> {
    no_content("DELETE", &format!("{API_V1}/workspaces/{workspace}"), None).await
}

pub async fn transfer_ownership(workspace: WorkspaceId, user: UserId) -> Result<MemberResponse, ApiError> {
    let body = railyard_shared::auth::TransferOwnershipRequest { user_id: user };
    send_json(
        "POST",
        &format!("{API_V1}/workspaces/{workspace}/transfer"),
        &body,
        200,
    )
    .await
}
