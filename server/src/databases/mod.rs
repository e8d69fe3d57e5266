//! Databases for apps: a `postgres` service has a database and a role of its own in each
//! environment, on a server Railyard manages ([`DatabaseHost`]: a cluster of its own, an
//! existing server, or Neon branches). Other services reach it through its variables
//! (`${{ postgres.DATABASE_URL }}`, `PGHOST`, ...). Cloning an environment or opening a
//! preview branches the source environment's database; deleting one drops it. `backup/`
//! takes, verifies and restores encrypted backups.

pub mod backup;
pub mod local;
pub mod provision;
pub mod schedule;
pub mod tools;

use std::{fmt::Debug, path::PathBuf, sync::Arc};

use anyhow::bail;
use railyard_shared::databases::Table;

use crate::config::Config;

/// One environment's database as the host knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub role: String,
    pub password: String,
    /// The host's own id of it (a Neon branch).
    pub external_id: Option<String>,
}

/// Where a database is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub host: String,
    pub port: u16,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub size_bytes: i64,
    pub connections: i64,
    pub tables: Vec<Table>,
}

/// A PostgreSQL server apps' databases live on. Every call is idempotent: provisioning and
/// teardown run as jobs, which may run again.
#[async_trait::async_trait]
pub trait DatabaseHost: Send + Sync + Debug {
    /// `local` or `neon`.
    fn driver(&self) -> &'static str;
    /// Where a new database will be reached, before it exists (`None` when only creating it
    /// tells, as with Neon).
    async fn place(&self) -> anyhow::Result<Placed>;
    /// Creates `spec`'s role and database, empty or as a copy of `from`.
    async fn create(&self, spec: &Spec, from: Option<&Spec>) -> anyhow::Result<Placed>;
    /// Drops the database and its role (nothing when already gone).
    async fn remove(&self, spec: &Spec) -> anyhow::Result<()>;
    async fn stats(&self, spec: &Spec) -> anyhow::Result<Stats>;
    /// A superuser URL of `database` (backups, their verification, restores).
    async fn admin_url(&self, database: &str) -> anyhow::Result<String>;
    /// `pg_dump` and `pg_restore` of the server's major version.
    async fn bin_dir(&self) -> anyhow::Result<PathBuf>;
    /// An empty database nobody else may connect to (verification, restores into a new one).
    async fn create_scratch(&self, name: &str) -> anyhow::Result<()>;
    async fn drop_database(&self, name: &str) -> anyhow::Result<()>;
    /// At start-up: brings up what apps' databases need when any were made before.
    async fn start_if_set_up(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The host of this instance's apps' databases, from the configuration.
pub fn host_of(config: &Config) -> anyhow::Result<Arc<dyn DatabaseHost>> {
    if config.databases.neon.is_some() {
        bail!("NEON_API_KEY is set, and the Neon driver is not built yet: unset it");
    }
    Ok(Arc::new(local::LocalHost::new(
        config.databases.admin_url.as_deref(),
        &config.data_dir,
        config.database.pg_bin_dir.as_deref(),
    )))
}

/// The name of a database and its role: `app_` and the row's id.
pub fn name_of(id: uuid::Uuid) -> String {
    format!("app_{}", id.simple())
}

/// A name Railyard made (`[a-z0-9_]`, starting with a letter, at most 63 bytes), so it is
/// safe between double quotes in SQL.
pub fn safe_name(name: &str) -> anyhow::Result<&str> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        bail!("{name:?} is not a name Railyard gives databases");
    }
    Ok(name)
}

/// A new random password (hex, 48 characters).
pub fn new_password(keys: &crate::crypto::KeyRing) -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    keys.random(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `postgres://user:password@host:port/database`.
pub fn url(spec: &Spec, host: &str, port: u16, password: Option<&str>) -> String {
    format!(
        "postgresql://{}:{}@{host}:{port}/{}",
        spec.role,
        password.unwrap_or("********"),
        spec.name
    )
}
