//! Databases Railyard provisions for apps (a `postgres` service's database in one
//! environment), and their backups.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{EnvironmentId, ServiceId};

/// A service's database in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Database {
    pub service_id: ServiceId,
    pub environment_id: EnvironmentId,
    /// `provisioning`, `ready` or `failed`.
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// `local` (a cluster Railyard manages, or the server of `RAILYARD_APP_POSTGRES_ADMIN_URL`) or `neon`.
    pub driver: String,
    pub database: String,
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The environment whose data it started from (a clone or a preview).
    #[serde(default)]
    pub branched_from: Option<EnvironmentId>,
    /// Measured when asked for; absent while it is not ready.
    #[serde(default)]
    pub size_bytes: Option<i64>,
    #[serde(default)]
    pub connections: Option<i64>,
    #[serde(default)]
    pub tables: Vec<Table>,
    /// The connection string with the password masked.
    pub url: String,
    pub backup_settings: BackupSettings,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Table {
    /// `schema.name`.
    pub name: String,
    /// PostgreSQL's estimate (`pg_class.reltuples`, or an exact count for small tables).
    pub rows: i64,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatabaseResponse {
    pub database: Database,
}

/// The connection string with its password (audited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Credentials {
    pub url: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialsResponse {
    pub credentials: Credentials,
}

/// When backups are taken and how many are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupSettings {
    /// A five-field cron expression (UTC), e.g. `0 3 * * *`.
    pub schedule: String,
    /// The newest backup of each of the last `keep_daily` days is kept...
    pub keep_daily: i32,
    /// ... and of each of the last `keep_weekly` weeks.
    pub keep_weekly: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupSettingsResponse {
    pub backup_settings: BackupSettings,
}

/// A backup's states: `queued` → `running` → `verified` or `failed`.
pub const BACKUP_STATES: &[&str] = &["queued", "running", "verified", "failed"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Backup {
    pub id: uuid::Uuid,
    /// One of [`BACKUP_STATES`].
    pub state: String,
    #[serde(default)]
    pub size_bytes: Option<i64>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub verified_at: Option<DateTime<Utc>>,
    /// Why it failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// `manual` or `schedule`.
    #[serde(default)]
    pub trigger: String,
    /// `local` or `s3`.
    #[serde(default)]
    pub store: String,
    #[serde(default)]
    pub database: String,
    /// What verification compared, table by table.
    #[serde(default)]
    pub tables: Vec<TableCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TableCheck {
    pub name: String,
    pub rows: i64,
    /// md5 of the table's rows in a fixed order.
    pub checksum: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupResponse {
    pub backup: Backup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupsResponse {
    pub backups: Vec<Backup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestoreRequest {
    /// `new` (a new database beside it) or `in_place`.
    pub target: String,
    /// The database's name, typed by whoever restores (required for `in_place`).
    #[serde(default)]
    pub confirm: Option<String>,
}

/// A restore: `queued` → `running` → `done` or `failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Restore {
    pub id: uuid::Uuid,
    pub backup_id: uuid::Uuid,
    /// `new` or `in_place`.
    pub target: String,
    /// The database restored into.
    pub database: String,
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// The restored tables, counted and summed.
    #[serde(default)]
    pub tables: Vec<TableCheck>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestoreResponse {
    pub restore: Restore,
}
