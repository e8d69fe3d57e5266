//! The router's host names are the instance's, not a workspace's: every service answers at
//! `<service>-<environment>-<project>.<base domain>`, and two tenants' projects may share a
//! name, so a new service, environment or name is checked against every other one of the
//! instance before it is stored ([`taken`], under [`lock`] so two changes cannot both pass).

use diesel::{QueryableByName, sql_types};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

/// The host label (before the base domain) of a service in an environment.
pub fn label(service: &str, environment: &str, project: &str) -> String {
    format!("{service}-{environment}-{project}")
}

/// What a change would make hosts for.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Service `name` in `project`: a new one, or `renamed` one renamed to it.
    Service {
        project: Uuid,
        name: &'a str,
        renamed: Option<Uuid>,
    },
    /// A new environment `name` of `project`.
    Environment { project: Uuid, name: &'a str },
    /// `project` renamed to `name`.
    Project { project: Uuid, name: &'a str },
}

/// Makes the rest of the transaction the only one changing host names (released at commit).
pub async fn lock(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    // A fixed key of Railyard's: "hosts" in ASCII.
    diesel::sql_query("SELECT pg_advisory_xact_lock(115104111115116)")
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Pair {
    #[diesel(sql_type = sql_types::Text)]
    host: String,
    #[diesel(sql_type = sql_types::Uuid)]
    project: Uuid,
    #[diesel(sql_type = sql_types::Uuid)]
    service: Uuid,
    #[diesel(sql_type = sql_types::Text)]
    service_name: String,
    #[diesel(sql_type = sql_types::Text)]
    environment_name: String,
    #[diesel(sql_type = sql_types::Text)]
    project_name: String,
}

const PAIRS: &str = "SELECT s.name || '-' || e.name || '-' || p.name AS host, p.id AS project, s.id AS service, \
     s.name AS service_name, e.name AS environment_name, p.name AS project_name \
     FROM services s JOIN projects p ON p.id = s.project_id JOIN environments e ON e.project_id = p.id";

/// The first host label `change` would make that another service and environment of the
/// instance answers at already.
pub async fn taken(conn: &mut AsyncPgConnection, change: Change<'_>) -> diesel::QueryResult<Option<String>> {
    let project = match change {
        Change::Service { project, .. }
        | Change::Environment { project, .. }
        | Change::Project { project, .. } => project,
    };
    let own: Vec<Pair> = diesel::sql_query(format!("{PAIRS} WHERE p.id = $1"))
        .bind::<sql_types::Uuid, _>(project)
        .load(conn)
        .await?;
    let (project_name, environments, services) = names_of(conn, project, &own).await?;
    let wanted: Vec<String> = match change {
        Change::Service { name, .. } => environments
            .iter()
            .map(|e| label(name, e, &project_name))
            .collect(),
        Change::Environment { name, .. } => services.iter().map(|s| label(s, name, &project_name)).collect(),
        Change::Project { name, .. } => own
            .iter()
            .map(|p| label(&p.service_name, &p.environment_name, name))
            .collect(),
    };
    if wanted.is_empty() {
        return Ok(None);
    }
    let holders: Vec<Pair> = diesel::sql_query(format!(
        "{PAIRS} WHERE s.name || '-' || e.name || '-' || p.name = ANY($1)"
    ))
    .bind::<sql_types::Array<sql_types::Text>, _>(&wanted)
    .load(conn)
    .await?;
    let mine = |pair: &Pair| match change {
        Change::Service { renamed, .. } => renamed == Some(pair.service),
        Change::Project { project, .. } => pair.project == project,
        Change::Environment { .. } => false,
    };
    Ok(holders.into_iter().find(|pair| !mine(pair)).map(|pair| pair.host))
}

/// The project's name, its environments' and its services' names (also when it has no
/// service, or no environment, yet).
async fn names_of(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    own: &[Pair],
) -> diesel::QueryResult<(String, Vec<String>, Vec<String>)> {
    use diesel::{ExpressionMethods as _, QueryDsl as _};

    use crate::schema::{environments, projects, services};
    let project_name = match own.first() {
        Some(pair) => pair.project_name.clone(),
        None => {
            projects::table
                .find(project)
                .select(projects::name)
                .first(conn)
                .await?
        }
    };
    let environments = environments::table
        .filter(environments::project_id.eq(project))
        .select(environments::name)
        .load(conn)
        .await?;
    let services = services::table
        .filter(services::project_id.eq(project))
        .select(services::name)
        .load(conn)
        .await?;
    Ok((project_name, environments, services))
}
