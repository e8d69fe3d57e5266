//! A `postgres` service's database in an environment: what it holds, its credentials
//! (revealed on request, audited), its backups, their schedule, restores and downloads.

use axum::{
    body::Body,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use diesel_async::AsyncConnection as _;
use railyard_shared::{
    auth::Role,
    databases::{
        BackupResponse, BackupSettings, BackupSettingsResponse, BackupsResponse, Credentials,
        CredentialsResponse, Database, DatabaseResponse, Restore, RestoreRequest, RestoreResponse,
    },
    projects::Source,
};
use serde::Deserialize;
use uuid::Uuid;

use super::scope::{authorize_backup, authorize_service, environment_of};
use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta},
    databases::{backup, provision},
    error::{AppError, AppResult},
    extract::{Json, Path, Query},
    jobs::kinds::{self, RestoreBackup},
    models::database::{AppDatabase, Databases, RestoreRow, Restores},
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EnvironmentParams {
    /// The environment (default `production`).
    pub environment: Option<Uuid>,
}

/// The database of a `postgres` service in an environment, and the caller's workspace.
async fn database_of(
    state: &AppState,
    caller: &Caller,
    service: Uuid,
    environment: Option<Uuid>,
    needed: Role,
) -> AppResult<(AppDatabase, Uuid)> {
    let mut conn = state.db.get().await?;
    let (service, workspace) = authorize_service(&mut conn, caller, service, needed).await?;
    if service.source != (Source::Postgres {}) {
        return Err(AppError::not_found("this service is not a database"));
    }
    let environment = environment_of(&mut conn, service.project_id.uuid(), environment).await?;
    let database = Databases::of(&mut conn, service.id.uuid(), environment)
        .await?
        .ok_or_else(|| AppError::not_found("this environment has no database of this service"))?;
    Ok((database, workspace))
}

fn to_api(database: &AppDatabase, settings: BackupSettings, spec: &crate::databases::Spec) -> Database {
    Database {
        service_id: database.service_id.into(),
        environment_id: database.environment_id.into(),
        state: database.state.clone(),
        reason: database.reason.clone(),
        driver: database.driver.clone(),
        database: database.name.clone(),
        user: database.role_name.clone(),
        host: database.host.clone(),
        port: database.port as u16,
        branched_from: database.branched_from.map(Into::into),
        size_bytes: None,
        connections: None,
        tables: Vec::new(),
        url: crate::databases::url(spec, &database.host, database.port as u16, None),
        backup_settings: settings,
        created_at: database.created_at,
    }
}

/// A service's database in an environment: its state, size, connections and tables.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/database",
    tag = "databases",
    params(("id" = Uuid, Path, description = "A `postgres` service"), EnvironmentParams),
    responses(
        (status = 200, description = "The database", body = DatabaseResponse),
        (status = 404, description = "No such database service of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_database(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<EnvironmentParams>,
) -> AppResult<axum::Json<DatabaseResponse>> {
    let (database, _) = database_of(&state, &caller, id, params.environment, Role::Viewer).await?;
    let spec = provision::spec_of(&state.keys, &database).map_err(AppError::internal)?;
    let mut conn = state.db.get().await?;
    let settings = Databases::settings(&mut conn, database.id).await?;
    drop(conn);
    let mut out = to_api(&database, settings, &spec);
    if database.state == "ready" {
        match state.databases.stats(&spec).await {
            Ok(stats) => {
                out.size_bytes = Some(stats.size_bytes);
                out.connections = Some(stats.connections);
                out.tables = stats.tables;
            }
            Err(err) => {
                tracing::warn!(database = %database.name, error = %format!("{err:#}"), "cannot read a database's statistics")
            }
        }
    }
    Ok(axum::Json(DatabaseResponse { database: out }))
}

/// The connection string with its password (members; audited).
#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/database/credentials",
    tag = "databases",
    params(("id" = Uuid, Path, description = "A `postgres` service"), EnvironmentParams),
    responses(
        (status = 200, description = "The credentials", body = CredentialsResponse),
        (status = 403, description = "Viewers cannot see passwords", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such database service of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn reveal_credentials(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<EnvironmentParams>,
) -> AppResult<axum::Json<CredentialsResponse>> {
    let (database, workspace) = database_of(&state, &caller, id, params.environment, Role::Member).await?;
    let spec = provision::spec_of(&state.keys, &database).map_err(AppError::internal)?;
    let mut conn = state.db.get().await?;
    let entry = audit::Entry::new("database.credentials.reveal")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("database", database.id)
        .detail(serde_json::json!({ "database": database.name }));
    audit::record(&mut conn, &meta, entry).await?;
    Ok(axum::Json(CredentialsResponse {
        credentials: Credentials {
            url: crate::databases::url(&spec, &database.host, database.port as u16, Some(&spec.password)),
            password: spec.password,
        },
    }))
}

/// The database's backups, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/backups",
    tag = "databases",
    params(("id" = Uuid, Path, description = "A `postgres` service"), EnvironmentParams),
    responses(
        (status = 200, description = "Backups, newest first", body = BackupsResponse),
        (status = 404, description = "No such database service of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_backups(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<EnvironmentParams>,
) -> AppResult<axum::Json<BackupsResponse>> {
    let (database, _) = database_of(&state, &caller, id, params.environment, Role::Viewer).await?;
    let mut conn = state.db.get().await?;
    let rows = crate::models::database::Backups::of_database(&mut conn, database.id, 100).await?;
    Ok(axum::Json(BackupsResponse {
        backups: rows.iter().map(|b| b.to_api(&database.name)).collect(),
    }))
}

/// Take a backup now: queued, then taken, stored and verified.
#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/backups",
    tag = "databases",
    params(("id" = Uuid, Path, description = "A `postgres` service"), EnvironmentParams),
    responses(
        (status = 202, description = "Queued", body = BackupResponse),
        (status = 403, description = "Viewers cannot take backups", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such database service of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "The database is not ready", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_backup(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<EnvironmentParams>,
) -> AppResult<(StatusCode, axum::Json<BackupResponse>)> {
    let (database, workspace) = database_of(&state, &caller, id, params.environment, Role::Member).await?;
    if database.state != "ready" {
        return Err(AppError::conflict(format!(
            "the database is {}: back it up once it is ready",
            database.state
        )));
    }
    let mut conn = state.db.get().await?;
    let store = state.backup_store.clone();
    let row = conn
        .transaction::<_, AppError, _>(async |conn| {
            let row = backup::request(conn, &*store, &database, "manual", Some(caller.user_id)).await?;
            let entry = audit::Entry::new("backup.create")
                .workspace(workspace)
                .actor(caller.user_id)
                .target("backup", row.id)
                .detail(serde_json::json!({ "database": database.name }));
            audit::record(conn, &meta, entry).await?;
            Ok(row)
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(BackupResponse {
            backup: row.to_api(&database.name),
        }),
    ))
}

/// Change when the database is backed up and how many backups are kept (admins).
#[utoipa::path(
    put,
    path = "/api/v1/services/{id}/backup-settings",
    tag = "databases",
    params(("id" = Uuid, Path, description = "A `postgres` service"), EnvironmentParams),
    request_body = BackupSettings,
    responses(
        (status = 200, description = "Saved", body = BackupSettingsResponse),
        (status = 403, description = "Needs the admin role", body = railyard_shared::ErrorBody),
        (status = 422, description = "A bad cron expression or retention", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_backup_settings(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<EnvironmentParams>,
    Json(req): Json<BackupSettings>,
) -> AppResult<axum::Json<BackupSettingsResponse>> {
    let schedule = crate::databases::schedule::normalized(&req.schedule).map_err(AppError::unprocessable)?;
    for (name, value) in [("keep_daily", req.keep_daily), ("keep_weekly", req.keep_weekly)] {
        if !(1..=366).contains(&value) {
            return Err(AppError::unprocessable(format!(
                "`{name}` must be 1 to 366 (a retention of {value} would keep nothing)"
            )));
        }
    }
    let (database, workspace) = database_of(&state, &caller, id, params.environment, Role::Admin).await?;
    let settings = BackupSettings { schedule, ..req };
    let mut conn = state.db.get().await?;
    Databases::set_settings(&mut conn, database.id, &settings).await?;
    let entry = audit::Entry::new("backup.settings")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("database", database.id)
        .detail(serde_json::json!({
            "schedule": settings.schedule,
            "keep_daily": settings.keep_daily,
            "keep_weekly": settings.keep_weekly,
        }));
    audit::record(&mut conn, &meta, entry).await?;
    Ok(axum::Json(BackupSettingsResponse {
        backup_settings: settings,
    }))
}

/// One backup.
#[utoipa::path(
    get,
    path = "/api/v1/backups/{id}",
    tag = "databases",
    params(("id" = Uuid, Path, description = "Backup id")),
    responses(
        (status = 200, description = "The backup", body = BackupResponse),
        (status = 404, description = "No such backup of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_backup(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<BackupResponse>> {
    let mut conn = state.db.get().await?;
    let (backup, database, _) = authorize_backup(&mut conn, &caller, id, Role::Viewer).await?;
    Ok(axum::Json(BackupResponse {
        backup: backup.to_api(&database.name),
    }))
}

fn restore_to_api(row: &RestoreRow) -> Restore {
    Restore {
        id: row.id,
        backup_id: row.backup_id,
        target: row.target.clone(),
        database: row.database_name.clone(),
        state: row.state.clone(),
        reason: row.reason.clone(),
        tables: serde_json::from_value(row.tables.clone()).unwrap_or_default(),
        created_at: row.created_at,
        finished_at: row.finished_at,
    }
}

/// Restore a verified backup into a new database beside it, or in place (the database's
/// name typed as `confirm`; its connections are closed and refused while it runs). Admins.
#[utoipa::path(
    post,
    path = "/api/v1/backups/{id}/restore",
    tag = "databases",
    params(("id" = Uuid, Path, description = "Backup id")),
    request_body = RestoreRequest,
    responses(
        (status = 202, description = "Queued", body = RestoreResponse),
        (status = 403, description = "Needs the admin role", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such backup of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "The backup is not verified", body = railyard_shared::ErrorBody),
        (status = 422, description = "A bad target or confirmation", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn restore_backup(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<RestoreRequest>,
) -> AppResult<(StatusCode, axum::Json<RestoreResponse>)> {
    let in_place = match req.target.as_str() {
        "new" => false,
        "in_place" => true,
        other => {
            return Err(AppError::unprocessable(format!(
                "`target` must be `new` or `in_place`, not {other:?}"
            )));
        }
    };
    let mut conn = state.db.get().await?;
    let (backup, database, workspace) = authorize_backup(&mut conn, &caller, id, Role::Admin).await?;
    if in_place && req.confirm.as_deref() != Some(database.name.as_str()) {
        return Err(AppError::unprocessable(format!(
            "a restore in place replaces everything in the database: type its name ({}) as `confirm`",
            database.name
        )));
    }
    if let Some(confirm) = &req.confirm
        && confirm != &database.name
    {
        return Err(AppError::unprocessable(format!(
            "`confirm` must be the database's name ({})",
            database.name
        )));
    }
    if backup.state != "verified" {
        return Err(AppError::conflict(format!(
            "the backup is {}: only a verified backup is restored",
            backup.state
        )));
    }
    let restore_id = Uuid::new_v4();
    let target = match in_place {
        true => database.name.clone(),
        false => format!("restore_{}", restore_id.simple()),
    };
    let row = conn
        .transaction::<_, AppError, _>(async |conn| {
            let row =
                Restores::insert(conn, restore_id, backup.id, &req.target, &target, caller.user_id).await?;
            kinds::enqueue(conn, &RestoreBackup { restore_id }).await?;
            let entry = audit::Entry::new("backup.restore")
                .workspace(workspace)
                .actor(caller.user_id)
                .target("backup", backup.id)
                .detail(serde_json::json!({ "target": req.target, "database": target }));
            audit::record(conn, &meta, entry).await?;
            Ok(row)
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(RestoreResponse {
            restore: restore_to_api(&row),
        }),
    ))
}

/// One restore.
#[utoipa::path(
    get,
    path = "/api/v1/restores/{id}",
    tag = "databases",
    params(("id" = Uuid, Path, description = "Restore id")),
    responses(
        (status = 200, description = "The restore", body = RestoreResponse),
        (status = 404, description = "No such restore of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<RestoreResponse>> {
    let mut conn = state.db.get().await?;
    let row = Restores::find(&mut conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("restore not found"))?;
    authorize_backup(&mut conn, &caller, row.backup_id, Role::Viewer)
        .await
        .map_err(|_| AppError::not_found("restore not found"))?;
    Ok(axum::Json(RestoreResponse {
        restore: restore_to_api(&row),
    }))
}

/// Download a backup as a plain `pg_dump` custom-format file (admins; audited). The whole
/// file is authenticated before a byte is sent.
#[utoipa::path(
    get,
    path = "/api/v1/backups/{id}/download",
    tag = "databases",
    params(("id" = Uuid, Path, description = "Backup id")),
    responses(
        (status = 200, description = "The dump (`pg_restore` reads it)", content_type = "application/octet-stream"),
        (status = 403, description = "Needs the admin role", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such backup of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "The backup has no file", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn download_backup(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let mut conn = state.db.get().await?;
    let (backup, database, workspace) = authorize_backup(&mut conn, &caller, id, Role::Admin).await?;
    if backup.state != "verified" {
        return Err(AppError::conflict(format!(
            "the backup is {}: only a verified backup is downloaded",
            backup.state
        )));
    }
    let engine = state.backups();
    let spool = crate::layout::Layout::new(&state.config.data_dir).backup_spool();
    std::fs::create_dir_all(&spool).map_err(AppError::internal)?;
    let fetched = state
        .backup_store
        .fetch(
            &backup.object_key,
            &spool.join(format!("{}.download", Uuid::new_v4())),
        )
        .await
        .map_err(|err| AppError::conflict(format!("the backup cannot be read from its store: {err:#}")))?;
    let header = backup::header_of(&backup, &database);
    if let Err(err) = backup::authenticate(&engine.keys, &fetched, Some(&header)).await {
        return Err(AppError::conflict(format!(
            "the stored backup does not open: {err:#}"
        )));
    }
    let entry = audit::Entry::new("backup.download")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("backup", backup.id)
        .detail(serde_json::json!({ "database": database.name }));
    audit::record(&mut conn, &meta, entry).await?;
    drop(conn);
    let (reader, writer) = tokio::io::duplex(1 << 20);
    let keys = engine.keys.clone();
    let temporary = fetched.starts_with(&spool).then(|| fetched.clone());
    tokio::spawn(async move {
        if let Ok(file) = tokio::fs::File::open(&fetched).await
            && let Err(err) =
                backup::crypt::open(&keys, Some(&header), tokio::io::BufReader::new(file), writer).await
        {
            tracing::warn!(error = %format!("{err:#}"), "a backup download stopped");
        }
        if let Some(path) = temporary {
            let _ = tokio::fs::remove_file(path).await;
        }
    });
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
    let name = format!(
        "{}-{}.dump",
        database.name,
        backup.created_at.format("%Y%m%dT%H%M%SZ")
    );
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
