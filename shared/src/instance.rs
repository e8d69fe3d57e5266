//! What an instance admin sees of the instance itself (`GET /api/v1/instance`).

use serde::{Deserialize, Serialize};

/// Whether builds and apps run isolated from the platform and from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IsolationMode {
    /// Each service and environment runs as a user of its own, in namespaces of its own.
    On,
    /// The operator turned it off (`RAILYARD_ISOLATION=off`): tenant code runs as Railyard.
    Off,
    /// Asked for, but this host cannot give it: no build or app runs.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Isolation {
    pub mode: IsolationMode,
    /// One sentence: what runs how, or why it cannot.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceResponse {
    pub isolation: Isolation,
    pub version: String,
}
