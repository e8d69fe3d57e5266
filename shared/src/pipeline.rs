//! The environment pipeline on the wire: the matrix (every service in every environment,
//! with its drift against another environment) and build-once promotions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DeploymentId, EnvironmentId, ServiceId, ServiceState, projects::Environment};

/// A commit as the matrix and plans show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Commit {
    pub sha: String,
    /// The subject line (absent where Railyard does not hold the history).
    pub message: Option<String>,
    pub author: Option<String>,
}

/// A setting whose value differs: `from` in the earlier (or source) environment, `to` in
/// the later (or target) one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingChange {
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A variable name that differs between two environments (values are never shown).
/// `change`: `added` (only on the side being looked at: the cell, or the promotion's
/// source), `removed` (only on the other side) or `changed` (both, different values).
/// Shared variables are named `shared.NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariableChange {
    pub name: String,
    pub change: String,
}

/// How a cell differs from the same service in another environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Drift {
    /// The environment compared against.
    pub against: EnvironmentId,
    /// Commits this cell runs that the other does not (absent where the history is not
    /// held by Railyard, or either side runs nothing).
    pub commits_ahead: Option<i64>,
    pub commits_behind: Option<i64>,
    pub settings: Vec<SettingChange>,
    pub variables: Vec<VariableChange>,
}

/// One service in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatrixCell {
    pub service_id: ServiceId,
    pub environment_id: EnvironmentId,
    /// The active deployment.
    pub deployment_id: Option<DeploymentId>,
    /// The deployment whose build it runs (itself, the one it rolled back to, or the one
    /// of another environment it was promoted from).
    pub release_id: Option<DeploymentId>,
    pub commit: Option<Commit>,
    pub state: ServiceState,
    /// `healthy` (running), `unhealthy` (crashed, or nothing runs and its newest deployment
    /// failed) or `unknown` (nothing runs).
    pub health: String,
    pub url: String,
    pub deployed_at: Option<DateTime<Utc>>,
    /// Against the environment before it in the pipeline (or the one asked for with
    /// `?compare=`); absent for the first environment and the compared one itself.
    pub drift: Option<Drift>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatrixService {
    pub id: ServiceId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Matrix {
    /// In pipeline order (previews last).
    pub environments: Vec<Environment>,
    pub services: Vec<MatrixService>,
    /// One per service and environment.
    pub cells: Vec<MatrixCell>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatrixResponse {
    pub matrix: Matrix,
}

/// Plan (`dry_run`, the default) or apply (`dry_run: false` with the plan's id) a
/// promotion of the build running in `from_environment_id` to `to_environment_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromotionRequest {
    pub from_environment_id: EnvironmentId,
    pub to_environment_id: EnvironmentId,
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(default)]
    pub plan_id: Option<String>,
}

/// The commits a promotion brings: `from` is what the target runs now, `to` what it will.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitRange {
    pub from: Option<String>,
    pub to: Option<String>,
    /// Newest first, at most 50 (absent where Railyard does not hold the history).
    pub commits: Option<Vec<Commit>>,
}

/// What promoting one service does: the build it moves and what differs. The target keeps
/// its own settings and variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Promotion {
    /// Bound to both environments' state: applying it after anything changed is a 409.
    pub plan_id: String,
    pub service_id: ServiceId,
    pub from_environment_id: EnvironmentId,
    pub to_environment_id: EnvironmentId,
    /// The deployment whose build is promoted.
    pub release_id: DeploymentId,
    pub commit: Option<Commit>,
    pub commit_range: CommitRange,
    pub settings: Vec<SettingChange>,
    pub variables: Vec<VariableChange>,
    /// The target's new deployment, once applied.
    #[serde(default)]
    pub deployment_id: Option<DeploymentId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromotionResponse {
    pub promotion: Promotion,
}

/// Every service that differs, in the order their variable references need (a service
/// comes after the ones its variables refer to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectPromotion {
    pub plan_id: String,
    pub from_environment_id: EnvironmentId,
    pub to_environment_id: EnvironmentId,
    pub services: Vec<Promotion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectPromotionResponse {
    pub promotion: ProjectPromotion,
}
