//! Deleting a service, an environment, a project or a workspace: its rows go (the
//! database cascades), and in the same transaction a `teardown` job records what of it
//! still runs or lies on disk, so the process that runs apps stops every instance and
//! removes its files even if it restarts in between.

use diesel::sql_types::{Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::InstanceState;
use uuid::Uuid;

use crate::{
    audit,
    auth::RequestMeta,
    jobs::kinds::{self, DroppedDatabase, Teardown, TornInstance},
    models::{project::Projects, workspace::Workspaces},
};

/// What is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Service(Uuid),
    Environment(Uuid),
    Project(Uuid),
    Workspace(Uuid),
}

impl Scope {
    fn describe(self) -> String {
        match self {
            Scope::Service(id) => format!("service {id}"),
            Scope::Environment(id) => format!("environment {id}"),
            Scope::Project(id) => format!("project {id}"),
            Scope::Workspace(id) => format!("workspace {id}"),
        }
    }

    /// The SQL condition on `s` (services), `p` (projects) and `e` (the environment
    /// column's table alias) that selects what the scope holds; `$1` is its id.
    fn condition(self, environment_column: &str) -> String {
        match self {
            Scope::Service(_) => "s.id = $1".to_owned(),
            Scope::Environment(_) => format!("{environment_column} = $1"),
            Scope::Project(_) => "s.project_id = $1".to_owned(),
            Scope::Workspace(_) => "p.workspace_id = $1".to_owned(),
        }
    }

    fn id(self) -> Uuid {
        match self {
            Scope::Service(id) | Scope::Environment(id) | Scope::Project(id) | Scope::Workspace(id) => id,
        }
    }
}

#[derive(diesel::QueryableByName)]
struct InstanceRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    service_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    environment_id: Uuid,
    #[diesel(sql_type = Nullable<diesel::sql_types::Int4>)]
    pid: Option<i32>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Int8>)]
    start_ticks: Option<i64>,
}

#[derive(diesel::QueryableByName)]
struct Ids {
    #[diesel(sql_type = SqlUuid)]
    a: Uuid,
    #[diesel(sql_type = SqlUuid)]
    b: Uuid,
}

#[derive(diesel::QueryableByName)]
struct PathRow {
    #[diesel(sql_type = Text)]
    path: String,
}

#[derive(diesel::QueryableByName)]
struct DatabaseRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    role_name: String,
    #[diesel(sql_type = Text)]
    driver: String,
    #[diesel(sql_type = Nullable<Text>)]
    external_id: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// What the rows of `scope` leave running or on disk.
pub async fn collect(conn: &mut AsyncPgConnection, scope: Scope) -> diesel::QueryResult<Teardown> {
    let from = "FROM services s JOIN projects p ON p.id = s.project_id";
    let live: Vec<String> = InstanceState::LIVE
        .iter()
        .chain([InstanceState::Stopping].iter())
        .map(|state| format!("'{}'", state.as_str()))
        .collect();
    let instances: Vec<InstanceRow> = diesel::sql_query(format!(
        "SELECT i.id, i.service_id, i.environment_id, i.pid, i.start_ticks {from} \
         JOIN instances i ON i.service_id = s.id WHERE i.state IN ({}) AND {}",
        live.join(", "),
        scope.condition("i.environment_id")
    ))
    .bind::<SqlUuid, _>(scope.id())
    .load(conn)
    .await?;
    let releases: Vec<PathRow> = diesel::sql_query(format!(
        "SELECT r.path {from} JOIN releases r ON r.service_id = s.id WHERE r.pruned_at IS NULL AND {}",
        scope.condition("r.environment_id")
    ))
    .bind::<SqlUuid, _>(scope.id())
    .load(conn)
    .await?;
    let uploads: Vec<IdRow> = diesel::sql_query(format!(
        "SELECT DISTINCT d.upload_id AS id {from} JOIN deployments d ON d.service_id = s.id \
         WHERE d.upload_id IS NOT NULL AND {}",
        scope.condition("d.environment_id")
    ))
    .bind::<SqlUuid, _>(scope.id())
    .load(conn)
    .await?;
    let databases: Vec<DatabaseRow> = diesel::sql_query(format!(
        "SELECT a.name, a.role_name, a.driver, a.external_id {from} JOIN app_databases a ON a.service_id = s.id WHERE {}",
        scope.condition("a.environment_id")
    ))
    .bind::<SqlUuid, _>(scope.id())
    .load(conn)
    .await?;
    let backup_objects: Vec<PathRow> = diesel::sql_query(format!(
        "SELECT b.object_key AS path {from} JOIN app_databases a ON a.service_id = s.id \
         JOIN backups b ON b.database_id = a.id WHERE {}",
        scope.condition("a.environment_id")
    ))
    .bind::<SqlUuid, _>(scope.id())
    .load(conn)
    .await?;
    let (services, logs) = match scope {
        // The services stay; their log files of this environment go.
        Scope::Environment(_) => {
            let pairs: Vec<Ids> = diesel::sql_query(format!(
                "SELECT s.id AS a, e.id AS b {from} JOIN environments e ON e.project_id = p.id WHERE e.id = $1"
            ))
            .bind::<SqlUuid, _>(scope.id())
            .load(conn)
            .await?;
            (Vec::new(), pairs.into_iter().map(|p| (p.a, p.b)).collect())
        }
        _ => {
            let services: Vec<IdRow> =
                diesel::sql_query(format!("SELECT s.id {from} WHERE {}", scope.condition("NULL")))
                    .bind::<SqlUuid, _>(scope.id())
                    .load(conn)
                    .await?;
            (services.into_iter().map(|s| s.id).collect(), Vec::new())
        }
    };
    Ok(Teardown {
        what: scope.describe(),
        instances: instances
            .into_iter()
            .map(|i| TornInstance {
                id: i.id,
                service_id: i.service_id,
                environment_id: i.environment_id,
                pid: i.pid,
                start_ticks: i.start_ticks,
            })
            .collect(),
        services,
        logs,
        releases: releases.into_iter().map(|r| r.path).collect(),
        uploads: uploads.into_iter().map(|u| u.id).collect(),
        databases: databases
            .into_iter()
            .map(|d| DroppedDatabase {
                name: d.name,
                role: d.role_name,
                driver: d.driver,
                external_id: d.external_id,
            })
            .collect(),
        backup_objects: backup_objects.into_iter().map(|b| b.path).collect(),
    })
}

/// Deletes `scope` with its audit entry, and enqueues its teardown, in one transaction.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    scope: Scope,
    meta: &RequestMeta,
    entry: audit::Entry<'_>,
) -> diesel::QueryResult<()> {
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let teardown = collect(conn, scope).await?;
        match scope {
            Scope::Service(id) => Projects::delete_service(conn, id).await?,
            Scope::Environment(id) => Projects::delete_environment(conn, id).await?,
            Scope::Project(id) => Projects::delete(conn, id).await?,
            Scope::Workspace(id) => Workspaces::delete(conn, id).await?,
        }
        audit::record(conn, meta, entry).await?;
        let nothing = teardown.instances.is_empty()
            && teardown.services.is_empty()
            && teardown.logs.is_empty()
            && teardown.releases.is_empty()
            && teardown.uploads.is_empty()
            && teardown.databases.is_empty();
        if !nothing {
            kinds::enqueue(conn, &teardown).await?;
        }
        Ok(())
    })
    .await
}
