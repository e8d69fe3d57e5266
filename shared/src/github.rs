//! The GitHub integration's API types: the connection, repositories and branches to pick
//! from, and the deliveries of webhooks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DeploymentId, ProjectId};

/// The signed-in user's GitHub connection for repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GithubConnection {
    pub connected: bool,
    #[serde(default)]
    pub login: Option<String>,
    /// Why the connection no longer works (GitHub refused its token), when it does not.
    #[serde(default)]
    pub broken: Option<String>,
    /// Whether this instance can connect GitHub at all (an OAuth app is configured).
    pub available: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GithubRepository {
    /// `owner/name`.
    pub full_name: String,
    pub private: bool,
    pub default_branch: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GithubRepositories {
    pub repositories: Vec<GithubRepository>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GithubBranches {
    pub branches: Vec<String>,
}

/// One webhook delivery as Railyard received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: uuid::Uuid,
    /// GitHub's `X-GitHub-Delivery`.
    pub delivery_id: String,
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    /// `processed`, `skipped`, `ignored`, `refused`, `awaiting_approval`, `approved`, `failed`.
    pub outcome: String,
    pub detail: String,
    pub deployments: Vec<DeploymentId>,
    pub projects: Vec<ProjectId>,
    /// Set on a delivery made again from the dashboard: the one it repeats.
    #[serde(default)]
    pub redelivery_of: Option<uuid::Uuid>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deliveries {
    pub deliveries: Vec<Delivery>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryResponse {
    pub delivery: Delivery,
}

/// A project's preview settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewSettings {
    /// The environment previews are cloned from; `None`: staging, else production.
    #[serde(default)]
    pub base_environment_id: Option<crate::EnvironmentId>,
    /// Days since a pull request's last push after which its preview is removed.
    pub ttl_days: i32,
    /// Whether previews get the base's sealed variables.
    pub sealed_variables: bool,
}

/// Start a project from a template repository: Railyard creates `owner/name` in the
/// connected account from `template`, then the project `name` with a service of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FromTemplateRequest {
    pub workspace_id: crate::WorkspaceId,
    /// The template repository, `owner/name`.
    pub template: String,
    /// The new repository's, project's and service's name.
    pub name: String,
    #[serde(default)]
    pub private: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FromTemplateResponse {
    pub project: crate::projects::Project,
    pub service: crate::projects::Service,
    pub repository: GithubRepository,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<DeploymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}
