//! Environments, the matrix, promotions, service controls and deletions.

use railyard_shared::{
    API_V1, EnvironmentId, ProjectId, ServiceId,
    deployments::ServiceActionResponse,
    pipeline::{
        Matrix, MatrixResponse, ProjectPromotion, ProjectPromotionResponse, Promotion, PromotionRequest,
        PromotionResponse,
    },
    projects::{
        CreateEnvironmentRequest, Environment, EnvironmentKind, EnvironmentResponse, UpdateEnvironmentRequest,
    },
};

use super::{ApiError, get, no_content, send_json};

pub async fn create_environment(
    project: ProjectId,
    name: String,
    kind: Option<EnvironmentKind>,
    clone_from: Option<EnvironmentId>,
) -> Result<Environment, ApiError> {
    let body = CreateEnvironmentRequest {
        name,
        kind,
        clone_from,
    };
    send_json::<_, EnvironmentResponse>(
        "POST",
        &format!("{API_V1}/projects/{project}/environments"),
        &body,
        201,
    )
    .await
    .map(|r| r.environment)
}

pub async fn rename_environment(id: EnvironmentId, name: String) -> Result<Environment, ApiError> {
    let body = UpdateEnvironmentRequest {
        name: Some(name),
        ..UpdateEnvironmentRequest::default()
    };
    send_json::<_, EnvironmentResponse>("PATCH", &format!("{API_V1}/environments/{id}"), &body, 200)
        .await
        .map(|r| r.environment)
}

pub async fn delete_environment(id: EnvironmentId) -> Result<(), ApiError> {
    no_content("DELETE", &format!("{API_V1}/environments/{id}"), None).await
}

pub async fn delete_service(id: ServiceId) -> Result<(), ApiError> {
    no_content("DELETE", &format!("{API_V1}/services/{id}"), None).await
}

pub async fn delete_project(id: ProjectId) -> Result<(), ApiError> {
    no_content("DELETE", &format!("{API_V1}/projects/{id}"), None).await
}

pub async fn matrix(project: ProjectId) -> Result<Matrix, ApiError> {
    get::<MatrixResponse>(&format!("{API_V1}/projects/{project}/matrix"))
        .await
        .map(|r| r.matrix)
}

/// The plan of promoting `service` from one environment to the other.
pub async fn plan_promotion(
    service: ServiceId,
    from: EnvironmentId,
    to: EnvironmentId,
) -> Result<Promotion, ApiError> {
    let body = PromotionRequest {
        from_environment_id: from,
        to_environment_id: to,
        dry_run: Some(true),
        plan_id: None,
    };
    send_json::<_, PromotionResponse>(
        "POST",
        &format!("{API_V1}/services/{service}/promotions"),
        &body,
        200,
    )
    .await
    .map(|r| r.promotion)
}

/// Applies a plan (409 when either environment changed since it was made).
pub async fn apply_promotion(plan: &Promotion) -> Result<Promotion, ApiError> {
    let body = PromotionRequest {
        from_environment_id: plan.from_environment_id,
        to_environment_id: plan.to_environment_id,
        dry_run: Some(false),
        plan_id: Some(plan.plan_id.clone()),
    };
    send_json::<_, PromotionResponse>(
        "POST",
        &format!("{API_V1}/services/{}/promotions", plan.service_id),
        &body,
        201,
    )
    .await
    .map(|r| r.promotion)
}

/// The plan of promoting every service of `project` whose build differs.
pub async fn plan_project_promotion(
    project: ProjectId,
    from: EnvironmentId,
    to: EnvironmentId,
) -> Result<ProjectPromotion, ApiError> {
    let body = PromotionRequest {
        from_environment_id: from,
        to_environment_id: to,
        dry_run: Some(true),
        plan_id: None,
    };
    send_json::<_, ProjectPromotionResponse>(
        "POST",
        &format!("{API_V1}/projects/{project}/promotions"),
        &body,
        200,
    )
    .await
    .map(|r| r.promotion)
}

pub async fn apply_project_promotion(
    project: ProjectId,
    plan: &ProjectPromotion,
) -> Result<ProjectPromotion, ApiError> {
    let body = PromotionRequest {
        from_environment_id: plan.from_environment_id,
        to_environment_id: plan.to_environment_id,
        dry_run: Some(false),
        plan_id: Some(plan.plan_id.clone()),
    };
    send_json::<_, ProjectPromotionResponse>(
        "POST",
        &format!("{API_V1}/projects/{project}/promotions"),
        &body,
        201,
    )
    .await
    .map(|r| r.promotion)
}

/// Restart, stop or start a service in an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Restart,
    Stop,
    Start,
}

impl Control {
    pub fn label(self) -> &'static str {
        match self {
            Self::Restart => "Restart",
            Self::Stop => "Stop",
            Self::Start => "Start",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Stop => "stop",
            Self::Start => "start",
        }
    }
}

pub async fn control(
    service: ServiceId,
    environment: EnvironmentId,
    control: Control,
) -> Result<(), ApiError> {
    send_json::<_, ServiceActionResponse>(
        "POST",
        &format!(
            "{API_V1}/services/{service}/{}?environment={environment}",
            control.path()
        ),
        &serde_json::json!({}),
        202,
    )
    .await
    .map(|_| ())
}
