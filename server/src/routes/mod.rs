//! Handlers, one module per domain; [`crate::router`] lists every route.

pub mod auth;
pub mod health;
pub mod jwks;
pub mod me;
pub mod workspaces;
