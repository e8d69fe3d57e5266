use std::{ops::Deref, sync::Arc};

use crate::{config::Config, db::DbPool, redis::RedisBus};

/// Everything a handler may reach. Outside services (GitHub, mail, clock, ...) join here as
/// `Arc<dyn Trait>` so tests swap them for local servers that speak the real protocol.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub db: DbPool,
    /// `None` when no `REDIS_URL` is configured (the log bus stays in-process).
    pub redis: Option<RedisBus>,
}

#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

impl AppState {
    pub fn new(app: App) -> Self {
        Self(Arc::new(app))
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
