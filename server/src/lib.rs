//! The Railyard control plane.
//!
//! `railyard-server serve` runs everything in one process: the HTTP API and dashboard
//! ([`router`]), the app router ([`edge`]) and, in later milestones, the job workers and
//! the process runtime. See `docs/ARCHITECTURE.md` for the map.

pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod dashboard;
pub mod databases;
pub mod db;
pub mod edge;
pub mod error;
pub mod extract;
pub mod git_http;
pub mod github;
pub mod jobs;
pub mod layout;
pub mod listener;
pub mod logbus;
pub mod logs;
pub mod mail;
pub mod middleware;
pub mod models;
pub mod openapi;
pub mod pagination;
pub mod pipeline;
pub mod postgres;
pub mod promote;
pub mod ratelimit;
pub mod redis;
pub mod router;
pub mod routes;
pub mod runtime;
pub mod sandbox;
pub mod schema;
pub mod serve;
pub mod sources;
pub mod status;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod uploads;
pub mod variables;
pub mod webhooks;
pub mod worker;

pub use app::{App, AppState};
pub use config::Config;
pub use error::{AppError, AppResult};
