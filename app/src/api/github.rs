//! GitHub: the connection, repositories and branches to pick from, a project's webhook
//! deliveries (redeliver, approve) and its preview settings.

use railyard_shared::{
    API_V1, ProjectId,
    github::{
        Deliveries, Delivery, DeliveryResponse, GithubBranches, GithubConnection, GithubRepositories,
        GithubRepository, PreviewSettings,
    },
    projects::{CreateServiceRequest, ServiceResponse, Source},
};

use super::{ApiError, get, send_json};

pub async fn find_connection() -> Result<GithubConnection, ApiError> {
    get(&format!("{API_V1}/github/connection")).await
}

/// Where the browser goes to connect GitHub, coming back to `back` (a local path).
pub fn connect_url(back: &str) -> String {
    let back: String = js_sys::encode_uri_component(back).into();
    format!("{API_V1}/github/connect?redirect={back}")
}

pub async fn list_repositories(query: &str) -> Result<Vec<GithubRepository>, ApiError> {
    let q: String = js_sys::encode_uri_component(query).into();
    get::<GithubRepositories>(&format!("{API_V1}/github/repositories?q={q}"))
        .await
        .map(|r| r.repositories)
}

pub async fn list_branches(full_name: &str) -> Result<Vec<String>, ApiError> {
    get::<GithubBranches>(&format!("{API_V1}/github/repositories/{full_name}/branches"))
        .await
        .map(|r| r.branches)
}

/// Adds a service from a GitHub repository; the answer says what could not be set up.
pub async fn create_service(
    project: ProjectId,
    name: String,
    repository: String,
    branch: String,
) -> Result<ServiceResponse, ApiError> {
    let body = CreateServiceRequest {
        name,
        source: Source::Github { repository, branch },
        deploy: None,
    };
    send_json(
        "POST",
        &format!("{API_V1}/projects/{project}/services"),
        &body,
        201,
    )
    .await
}

pub async fn list_deliveries(project: ProjectId) -> Result<Vec<Delivery>, ApiError> {
    get::<Deliveries>(&format!(
        "{API_V1}/projects/{project}/github/deliveries?limit=100"
    ))
    .await
    .map(|r| r.deliveries)
}

pub async fn redeliver(project: ProjectId, delivery: uuid::Uuid) -> Result<Delivery, ApiError> {
    send_json::<_, DeliveryResponse>(
        "POST",
        &format!("{API_V1}/projects/{project}/github/deliveries/{delivery}/redeliver"),
        &serde_json::json!({}),
        201,
    )
    .await
    .map(|r| r.delivery)
}

pub async fn approve(project: ProjectId, delivery: uuid::Uuid) -> Result<Delivery, ApiError> {
    send_json::<_, DeliveryResponse>(
        "POST",
        &format!("{API_V1}/projects/{project}/github/deliveries/{delivery}/approve"),
        &serde_json::json!({}),
        200,
    )
    .await
    .map(|r| r.delivery)
}

pub async fn find_previews(project: ProjectId) -> Result<PreviewSettings, ApiError> {
    get(&format!("{API_V1}/projects/{project}/previews")).await
}

pub async fn save_previews(
    project: ProjectId,
    settings: PreviewSettings,
) -> Result<PreviewSettings, ApiError> {
    send_json(
        "PUT",
        &format!("{API_V1}/projects/{project}/previews"),
        &settings,
        200,
    )
    .await
}

pub async fn disconnect() -> Result<(), ApiError> {
    super::no_content("DELETE", &format!("{API_V1}/github/connection"), None).await
}

/// A new project from a template repository (made in the connected GitHub account).
pub async fn create_from_template(
    workspace: railyard_shared::WorkspaceId,
    template: String,
    name: String,
    private: bool,
) -> Result<railyard_shared::github::FromTemplateResponse, ApiError> {
    let body = railyard_shared::github::FromTemplateRequest {
        workspace_id: workspace,
        template,
        name,
        private,
    };
    send_json("POST", &format!("{API_V1}/github/templates"), &body, 201).await
}
