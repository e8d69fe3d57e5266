//! Types that cross the wire between the Railyard server, the dashboard and the CLI.
//!
//! Everything here builds for `wasm32-unknown-unknown` and native targets alike, so it
//! depends on nothing but serde (and utoipa behind the `openapi` feature, for the server).

pub mod ansi;
pub mod auth;
pub mod databases;
pub mod deployments;
pub mod error;
pub mod github;
pub mod health;
pub mod ids;
pub mod instance;
pub mod live;
pub mod pipeline;
pub mod projects;
pub mod states;
pub mod variables;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use health::{ComponentStatus, HealthResponse, HealthStatus};
pub use ids::{DeploymentId, EnvironmentId, ProjectId, ServiceId, UserId, WorkspaceId};
pub use states::{DeploymentState, InstanceState, ServiceState};

/// Prefix of every versioned API path.
pub const API_V1: &str = "/api/v1";
