//! Projects, services, deployments and variables.

use railyard_shared::{
    API_V1, DeploymentId, EnvironmentId, ProjectId, ServiceId, WorkspaceId,
    deployments::{
        CreateDeploymentRequest, Deployment, DeploymentResponse, DeploymentsResponse, ProjectOverview,
        ServiceSettings, ServiceSettingsResponse, ServiceStatus, ServiceStatusResponse,
    },
    projects::{
        CreateProjectRequest, CreateServiceRequest, Project, ProjectResponse, ProjectsResponse, Service,
        ServiceResponse, ServicesResponse, Source,
    },
    variables::{NewVariable, VariableList, VariablePatch, VariableResponse},
};
use web_sys::AbortController;

use super::{AbortOnDrop, ApiError, call_as, get, no_content, send_json};

pub async fn list_projects(workspace: WorkspaceId) -> Result<Vec<Project>, ApiError> {
    get::<ProjectsResponse>(&format!("{API_V1}/projects?workspace_id={workspace}&limit=100"))
        .await
        .map(|r| r.projects)
}

pub async fn create_project(workspace: WorkspaceId, name: String) -> Result<Project, ApiError> {
    let body = CreateProjectRequest {
        workspace_id: workspace,
        name,
    };
    send_json::<_, ProjectResponse>("POST", &format!("{API_V1}/projects"), &body, 201)
        .await
        .map(|r| r.project)
}

pub async fn find_project(id: ProjectId) -> Result<Project, ApiError> {
    get::<ProjectResponse>(&format!("{API_V1}/projects/{id}"))
        .await
        .map(|r| r.project)
}

pub async fn create_service(project: ProjectId, name: String, source: Source) -> Result<Service, ApiError> {
    let body = CreateServiceRequest {
        name,
        source,
        deploy: None,
    };
    send_json::<_, ServiceResponse>(
        "POST",
        &format!("{API_V1}/projects/{project}/services"),
        &body,
        201,
    )
    .await
    .map(|r| r.service)
}

pub async fn list_services(project: ProjectId) -> Result<Vec<Service>, ApiError> {
    get::<ServicesResponse>(&format!("{API_V1}/projects/{project}/services?limit=100"))
        .await
        .map(|r| r.services)
}

pub async fn find_service(id: ServiceId) -> Result<Service, ApiError> {
    get::<ServiceResponse>(&format!("{API_V1}/services/{id}"))
        .await
        .map(|r| r.service)
}

/// The canvas of a project in one environment (also live, on topic `project:<id>:<env>`).
pub async fn project_overview(
    project: ProjectId,
    environment: EnvironmentId,
) -> Result<ProjectOverview, ApiError> {
    get(&format!(
        "{API_V1}/projects/{project}/overview?environment={environment}"
    ))
    .await
}

/// What runs of a service in an environment: state, process, memory, uptime.
pub async fn service_status(
    service: ServiceId,
    environment: EnvironmentId,
) -> Result<ServiceStatus, ApiError> {
    get::<ServiceStatusResponse>(&format!(
        "{API_V1}/services/{service}/status?environment={environment}"
    ))
    .await
    .map(|r| r.status)
}

pub async fn list_deployments(
    service: ServiceId,
    environment: EnvironmentId,
) -> Result<Vec<Deployment>, ApiError> {
    get::<DeploymentsResponse>(&format!(
        "{API_V1}/services/{service}/deployments?environment={environment}&limit=50"
    ))
    .await
    .map(|r| r.deployments)
}

pub async fn deploy(service: ServiceId, environment: EnvironmentId) -> Result<Deployment, ApiError> {
    let body = CreateDeploymentRequest {
        environment_id: Some(environment),
        ..CreateDeploymentRequest::default()
    };
    send_json::<_, DeploymentResponse>(
        "POST",
        &format!("{API_V1}/services/{service}/deployments"),
        &body,
        201,
    )
    .await
    .map(|r| r.deployment.deployment)
}

/// What can be done to a deployment from its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentAction {
    Redeploy,
    Rollback,
    Cancel,
}

impl DeploymentAction {
    pub fn label(self) -> &'static str {
        match self {
            Self::Redeploy => "Redeploy",
            Self::Rollback => "Roll back to this",
            Self::Cancel => "Cancel",
        }
    }
}

/// One deployment with its plan, history and durations.
pub async fn find_deployment(
    id: DeploymentId,
) -> Result<railyard_shared::deployments::DeploymentDetail, ApiError> {
    get::<DeploymentResponse>(&format!("{API_V1}/deployments/{id}"))
        .await
        .map(|r| r.deployment)
}

pub async fn act_on_deployment(id: DeploymentId, action: DeploymentAction) -> Result<Deployment, ApiError> {
    let (path, ok) = match action {
        DeploymentAction::Redeploy => ("redeploy", 201),
        DeploymentAction::Rollback => ("rollback", 201),
        DeploymentAction::Cancel => ("cancel", 200),
    };
    send_json::<_, DeploymentResponse>(
        "POST",
        &format!("{API_V1}/deployments/{id}/{path}"),
        &serde_json::json!({}),
        ok,
    )
    .await
    .map(|r| r.deployment.deployment)
}

pub async fn service_settings(
    service: ServiceId,
    environment: EnvironmentId,
) -> Result<ServiceSettings, ApiError> {
    get::<ServiceSettingsResponse>(&format!(
        "{API_V1}/services/{service}/settings?environment={environment}"
    ))
    .await
    .map(|r| r.settings)
}

pub async fn save_service_settings(
    service: ServiceId,
    environment: EnvironmentId,
    settings: ServiceSettings,
) -> Result<ServiceSettings, ApiError> {
    send_json::<_, ServiceSettingsResponse>(
        "PUT",
        &format!("{API_V1}/services/{service}/settings?environment={environment}"),
        &settings,
        200,
    )
    .await
    .map(|r| r.settings)
}

/// "Deploy changes": the active release of `service` in `environment` again, with the
/// current variables.
pub async fn deploy_changes(service: ServiceId, environment: EnvironmentId) -> Result<Deployment, ApiError> {
    send_json::<_, DeploymentResponse>(
        "POST",
        &format!("{API_V1}/services/{service}/deploy-changes?environment={environment}"),
        &serde_json::json!({}),
        201,
    )
    .await
    .map(|r| r.deployment.deployment)
}

/// Where a set of variables lives: a service's in one environment, or an environment's
/// shared ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariablesOf {
    Service {
        service: ServiceId,
        environment: EnvironmentId,
    },
    Shared(EnvironmentId),
}

impl VariablesOf {
    fn base(self) -> String {
        match self {
            Self::Service { service, .. } => format!("{API_V1}/services/{service}/variables"),
            Self::Shared(id) => format!("{API_V1}/environments/{id}/shared-variables"),
        }
    }

    /// The query every request carries (a service's variables name their environment).
    fn query(self, extra: &str) -> String {
        let environment = match self {
            Self::Service { environment, .. } => Some(format!("environment={environment}")),
            Self::Shared(_) => None,
        };
        let parts: Vec<String> = environment
            .into_iter()
            .chain((!extra.is_empty()).then(|| extra.to_owned()))
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }

    fn path(self) -> String {
        format!("{}{}", self.base(), self.query(""))
    }

    fn one(self, name: &str) -> String {
        let name = js_sys::encode_uri_component(name).as_string().unwrap_or_default();
        format!("{}/{name}{}", self.base(), self.query(""))
    }
}

pub async fn list_variables(of: VariablesOf) -> Result<VariableList, ApiError> {
    get(&of.path()).await
}

pub async fn create_variable(of: VariablesOf, variable: NewVariable) -> Result<VariableResponse, ApiError> {
    send_json("POST", &of.path(), &variable, 201).await
}

pub async fn update_variable(
    of: VariablesOf,
    name: &str,
    patch: VariablePatch,
) -> Result<VariableResponse, ApiError> {
    send_json("PATCH", &of.one(name), &patch, 200).await
}

pub async fn delete_variable(of: VariablesOf, name: &str) -> Result<(), ApiError> {
    no_content("DELETE", &of.one(name), None).await
}

/// The variables as `.env` text (sealed values left out).
pub async fn export_variables(of: VariablesOf) -> Result<String, ApiError> {
    let guard = AbortOnDrop(AbortController::new().ok());
    let response = call_as(
        "GET",
        &format!("{}{}", of.base(), of.query("format=env")),
        None,
        "text/plain",
        &[200],
        &guard,
    )
    .await?;
    response.text().await.map_err(|err| ApiError::network(&err))
}

/// Replaces the variables with `.env` text.
pub async fn import_variables(of: VariablesOf, text: String) -> Result<VariableList, ApiError> {
    let guard = AbortOnDrop(AbortController::new().ok());
    let response = call_as("PUT", &of.path(), Some(text), "text/plain", &[200], &guard).await?;
    let status = response.status();
    response.json().await.map_err(|err| ApiError {
        status,
        message: format!("unexpected answer from the server: {err}"),
        request_id: None,
    })
}
