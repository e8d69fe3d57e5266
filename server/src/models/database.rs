//! Apps' databases (`app_databases`), their backups and restores.

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, JoinOnDsl as _, OptionalExtension as _,
    QueryDsl as _, SelectableHelper as _,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::databases::{Backup, BackupSettings, TableCheck};
use uuid::Uuid;

use crate::schema::{app_databases, backup_schedules, backups, environments, projects, restores, services};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = app_databases)]
pub struct AppDatabase {
    pub id: Uuid,
    pub service_id: Uuid,
    pub environment_id: Uuid,
    pub driver: String,
    pub name: String,
    pub role_name: String,
    pub password_sealed: Vec<u8>,
    pub host: String,
    pub port: i32,
    pub external_id: Option<String>,
    pub state: String,
    pub reason: Option<String>,
    pub branched_from: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// The schedule of a database without a row of its own: daily at 03:00 UTC, 7 days and 4
/// weeks kept.
pub fn default_settings() -> BackupSettings {
    BackupSettings {
        schedule: "0 3 * * *".to_owned(),
        keep_daily: 7,
        keep_weekly: 4,
    }
}

/// The AAD of a database's sealed password: bound to its row.
pub fn password_aad(id: Uuid) -> Vec<u8> {
    format!("app_database:{id}:password").into_bytes()
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = backups)]
pub struct BackupRow {
    pub id: Uuid,
    pub database_id: Uuid,
    pub state: String,
    pub trigger: String,
    pub store: String,
    pub object_key: String,
    pub size_bytes: Option<i64>,
    pub reason: Option<String>,
    pub tables: serde_json::Value,
    pub requested_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    pub pruned_at: Option<DateTime<Utc>>,
}

impl BackupRow {
    pub fn to_api(&self, database: &str) -> Backup {
        Backup {
            id: self.id,
            state: self.state.clone(),
            size_bytes: self.size_bytes,
            created_at: self.created_at,
            verified_at: self.verified_at,
            reason: self.reason.clone(),
            trigger: self.trigger.clone(),
            store: self.store.clone(),
            database: database.to_owned(),
            tables: serde_json::from_value::<Vec<TableCheck>>(self.tables.clone()).unwrap_or_default(),
        }
    }
}

pub struct Databases;

impl Databases {
    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<Option<AppDatabase>> {
        app_databases::table
            .find(id)
            .select(AppDatabase::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn of(
        conn: &mut AsyncPgConnection,
        service: Uuid,
        environment: Uuid,
    ) -> diesel::QueryResult<Option<AppDatabase>> {
        app_databases::table
            .filter(app_databases::service_id.eq(service))
            .filter(app_databases::environment_id.eq(environment))
            .select(AppDatabase::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Every database of every environment (the backup scheduler's list).
    pub async fn all(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Vec<AppDatabase>> {
        app_databases::table
            .order(app_databases::created_at.asc())
            .select(AppDatabase::as_select())
            .load(conn)
            .await
    }

    /// The workspace a database belongs to.
    pub async fn workspace_of(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<Option<Uuid>> {
        app_databases::table
            .inner_join(services::table.inner_join(projects::table))
            .filter(app_databases::id.eq(id))
            .select(projects::workspace_id)
            .first(conn)
            .await
            .optional()
    }

    /// The names of a database's environment and project (the audit log and the dump's
    /// file name say them).
    pub async fn environment_name(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<String> {
        environments::table
            .inner_join(app_databases::table.on(app_databases::environment_id.eq(environments::id)))
            .filter(app_databases::id.eq(id))
            .select(environments::name)
            .first(conn)
            .await
    }

    pub async fn set_state(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        state: &str,
        reason: Option<&str>,
    ) -> diesel::QueryResult<()> {
        diesel::update(app_databases::table.find(id))
            .set((app_databases::state.eq(state), app_databases::reason.eq(reason)))
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn settings(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<BackupSettings> {
        let row: Option<(String, i32, i32)> = backup_schedules::table
            .find(id)
            .select((
                backup_schedules::schedule,
                backup_schedules::keep_daily,
                backup_schedules::keep_weekly,
            ))
            .first(conn)
            .await
            .optional()?;
        Ok(match row {
            Some((schedule, keep_daily, keep_weekly)) => BackupSettings {
                schedule,
                keep_daily,
                keep_weekly,
            },
            None => default_settings(),
        })
    }

    pub async fn set_settings(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        settings: &BackupSettings,
    ) -> diesel::QueryResult<()> {
        diesel::insert_into(backup_schedules::table)
            .values((
                backup_schedules::database_id.eq(id),
                backup_schedules::schedule.eq(&settings.schedule),
                backup_schedules::keep_daily.eq(settings.keep_daily),
                backup_schedules::keep_weekly.eq(settings.keep_weekly),
            ))
            .on_conflict(backup_schedules::database_id)
            .do_update()
            .set((
                backup_schedules::schedule.eq(&settings.schedule),
                backup_schedules::keep_daily.eq(settings.keep_daily),
                backup_schedules::keep_weekly.eq(settings.keep_weekly),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Claims the scheduled slot `slot` of a database: true once per slot.
    pub async fn claim_slot(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        slot: DateTime<Utc>,
    ) -> diesel::QueryResult<bool> {
        diesel::insert_into(backup_schedules::table)
            .values(backup_schedules::database_id.eq(id))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        let claimed = diesel::update(
            backup_schedules::table.find(id).filter(
                backup_schedules::scheduled_at
                    .is_null()
                    .or(backup_schedules::scheduled_at.lt(slot)),
            ),
        )
        .set(backup_schedules::scheduled_at.eq(slot))
        .execute(conn)
        .await?;
        Ok(claimed == 1)
    }
}

pub struct Backups;

impl Backups {
    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<Option<BackupRow>> {
        backups::table
            .find(id)
            .select(BackupRow::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn of_database(
        conn: &mut AsyncPgConnection,
        database: Uuid,
        limit: i64,
    ) -> diesel::QueryResult<Vec<BackupRow>> {
        backups::table
            .filter(backups::database_id.eq(database))
            .order(backups::created_at.desc())
            .limit(limit)
            .select(BackupRow::as_select())
            .load(conn)
            .await
    }

    pub async fn insert(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        database: Uuid,
        trigger: &str,
        store: &str,
        object_key: &str,
        requested_by: Option<Uuid>,
    ) -> diesel::QueryResult<BackupRow> {
        diesel::insert_into(backups::table)
            .values((
                backups::id.eq(id),
                backups::database_id.eq(database),
                backups::trigger.eq(trigger),
                backups::store.eq(store),
                backups::object_key.eq(object_key),
                backups::requested_by.eq(requested_by),
            ))
            .returning(BackupRow::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn start(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<()> {
        diesel::update(backups::table.find(id))
            .set((backups::state.eq("running"), backups::started_at.eq(Utc::now())))
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn verified(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        size: i64,
        tables: &[TableCheck],
    ) -> diesel::QueryResult<()> {
        let now = Utc::now();
        diesel::update(backups::table.find(id))
            .set((
                backups::state.eq("verified"),
                backups::size_bytes.eq(size),
                backups::tables.eq(serde_json::to_value(tables).unwrap_or_default()),
                backups::finished_at.eq(now),
                backups::verified_at.eq(now),
                backups::reason.eq(None::<String>),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn failed(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        size: Option<i64>,
        reason: &str,
    ) -> diesel::QueryResult<()> {
        diesel::update(backups::table.find(id))
            .set((
                backups::state.eq("failed"),
                backups::size_bytes.eq(size),
                backups::finished_at.eq(Utc::now()),
                backups::reason.eq(reason),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn pruned(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> diesel::QueryResult<()> {
        diesel::delete(backups::table.filter(backups::id.eq_any(ids)))
            .execute(conn)
            .await
            .map(drop)
    }
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = restores)]
pub struct RestoreRow {
    pub id: Uuid,
    pub backup_id: Uuid,
    pub target: String,
    pub database_name: String,
    pub state: String,
    pub reason: Option<String>,
    pub tables: serde_json::Value,
    pub requested_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub struct Restores;

impl Restores {
    pub async fn insert(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        backup: Uuid,
        target: &str,
        database: &str,
        requested_by: Uuid,
    ) -> diesel::QueryResult<RestoreRow> {
        diesel::insert_into(restores::table)
            .values((
                restores::id.eq(id),
                restores::backup_id.eq(backup),
                restores::target.eq(target),
                restores::database_name.eq(database),
                restores::requested_by.eq(requested_by),
            ))
            .returning(RestoreRow::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<Option<RestoreRow>> {
        restores::table
            .find(id)
            .select(RestoreRow::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn finish(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        state: &str,
        reason: Option<&str>,
        tables: &[TableCheck],
    ) -> diesel::QueryResult<()> {
        diesel::update(restores::table.find(id))
            .set((
                restores::state.eq(state),
                restores::reason.eq(reason),
                restores::tables.eq(serde_json::to_value(tables).unwrap_or_default()),
                restores::finished_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn start(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<()> {
        diesel::update(restores::table.find(id))
            .set(restores::state.eq("running"))
            .execute(conn)
            .await
            .map(drop)
    }
}
