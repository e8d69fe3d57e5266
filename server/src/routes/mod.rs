//! Handlers, one module per domain; [`crate::router`] lists every route.

pub mod health;
