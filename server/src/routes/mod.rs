//! Handlers, one module per domain; [`crate::router`] lists every route.

pub mod audit;
pub mod auth;
pub mod deployments;
pub mod health;
pub mod invitations;
pub mod jwks;
pub mod live;
pub mod logs;
pub mod me;
pub mod members;
pub mod projects;
pub mod runtime;
pub mod services;
pub mod shared_variables;
pub mod tokens;
pub mod uploads;
pub mod variables;
pub mod workspaces;
