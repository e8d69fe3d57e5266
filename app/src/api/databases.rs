//! A `postgres` service's database in an environment: its state and tables, credentials
//! revealed on request, its backups.

use railyard_shared::{
    API_V1, EnvironmentId, ServiceId,
    databases::{
        Backup, BackupResponse, BackupsResponse, CredentialsResponse, Database, DatabaseResponse, Restore,
        RestoreRequest, RestoreResponse,
    },
};

use super::{ApiError, get, send_json};

pub async fn find_database(service: ServiceId, environment: EnvironmentId) -> Result<Database, ApiError> {
    get::<DatabaseResponse>(&format!(
        "{API_V1}/services/{service}/database?environment={environment}"
    ))
    .await
    .map(|r| r.database)
}

/// The connection string with its password (the server records who asked).
pub async fn reveal(service: ServiceId, environment: EnvironmentId) -> Result<String, ApiError> {
    send_json::<_, CredentialsResponse>(
        "POST",
        &format!("{API_V1}/services/{service}/database/credentials?environment={environment}"),
        &serde_json::json!({}),
        200,
    )
    .await
    .map(|r| r.credentials.url)
}

pub async fn list_backups(service: ServiceId, environment: EnvironmentId) -> Result<Vec<Backup>, ApiError> {
    get::<BackupsResponse>(&format!(
        "{API_V1}/services/{service}/backups?environment={environment}"
    ))
    .await
    .map(|r| r.backups)
}

pub async fn back_up(service: ServiceId, environment: EnvironmentId) -> Result<Backup, ApiError> {
    send_json::<_, BackupResponse>(
        "POST",
        &format!("{API_V1}/services/{service}/backups?environment={environment}"),
        &serde_json::json!({}),
        202,
    )
    .await
    .map(|r| r.backup)
}

/// Restores a verified backup into a new database beside it, or in place (`confirm` is
/// the database's name, typed by whoever restores).
pub async fn restore(
    backup: uuid::Uuid,
    in_place: bool,
    confirm: Option<String>,
) -> Result<Restore, ApiError> {
    let body = RestoreRequest {
        target: if in_place { "in_place" } else { "new" }.to_owned(),
        confirm,
    };
    send_json::<_, RestoreResponse>("POST", &format!("{API_V1}/backups/{backup}/restore"), &body, 202)
        .await
        .map(|r| r.restore)
}

pub async fn find_restore(id: uuid::Uuid) -> Result<Restore, ApiError> {
    get::<RestoreResponse>(&format!("{API_V1}/restores/{id}"))
        .await
        .map(|r| r.restore)
}

/// Where an admin downloads the decrypted dump (`pg_restore` reads it).
pub fn download_href(backup: uuid::Uuid) -> String {
    format!("{API_V1}/backups/{backup}/download")
}
