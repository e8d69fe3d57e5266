use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::projects::{Environment, EnvironmentKind, Project, Service, Source};
use uuid::Uuid;

use crate::schema::{environments, projects, services};

pub struct Projects;

type ProjectRow = (Uuid, Uuid, String, DateTime<Utc>);
type ServiceRow = (
    Uuid,
    Uuid,
    String,
    String,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    Option<String>,
);

macro_rules! service_columns {
    () => {
        (
            services::id,
            services::project_id,
            services::name,
            services::source_kind,
            services::git_url,
            services::branch,
            services::created_at,
            services::github_repository,
        )
    };
}

fn to_service((id, project_id, name, kind, git_url, branch, created_at, repository): ServiceRow) -> Service {
    let source = match (kind.as_str(), git_url, branch) {
        ("github", _, Some(branch)) => Source::Github {
            repository: repository.unwrap_or_default(),
            branch,
        },
        // A URL stored with credentials before they were refused is never shown (or
        // fetched: the redacted form is refused at fetch time, saying why).
        ("git", Some(url), Some(branch)) => Source::Git {
            url: crate::sources::redact_credentials(&url),
            branch,
        },
        ("push", _, Some(branch)) => Source::Push { branch },
        ("postgres", _, _) => Source::Postgres {},
        _ => Source::Upload {},
    };
    Service {
        id: id.into(),
        project_id: project_id.into(),
        name,
        source,
        created_at,
    }
}

/// `(kind, git url, branch, GitHub repository)` as stored.
fn source_columns(source: &Source) -> (&'static str, Option<&str>, Option<&str>, Option<&str>) {
    match source {
        Source::Git { url, branch } => ("git", Some(url), Some(branch), None),
        Source::Push { branch } => ("push", None, Some(branch), None),
        Source::Upload {} => ("upload", None, None, None),
        Source::Github { repository, branch } => ("github", None, Some(branch), Some(repository)),
        Source::Postgres {} => ("postgres", None, None, None),
    }
}

impl Projects {
    /// Creates a project with its `production` environment.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        name: &str,
    ) -> diesel::QueryResult<Project> {
        let id = Uuid::new_v4();
        let created_at: DateTime<Utc> = diesel::insert_into(projects::table)
            .values((
                projects::id.eq(id),
                projects::workspace_id.eq(workspace),
                projects::name.eq(name),
            ))
            .returning(projects::created_at)
            .get_result(conn)
            .await?;
        let production = Self::add_environment(conn, id, "production", EnvironmentKind::Production).await?;
        Ok(Project {
            id: id.into(),
            workspace_id: workspace.into(),
            name: name.to_owned(),
            environments: vec![production],
            created_at,
        })
    }

    /// The workspace that owns `project` (`None`: no such project).
    pub async fn workspace_of(
        conn: &mut AsyncPgConnection,
        project: Uuid,
    ) -> diesel::QueryResult<Option<Uuid>> {
        projects::table
            .find(project)
            .select(projects::workspace_id)
            .first(conn)
            .await
            .optional()
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<Project> {
        let row: ProjectRow = projects::table
            .find(id)
            .select((
                projects::id,
                projects::workspace_id,
                projects::name,
                projects::created_at,
            ))
            .first(conn)
            .await?;
        Ok(Self::with_environments(conn, vec![row]).await?.remove(0))
    }

    /// Projects of `workspace` by name, after the cursor.
    pub async fn list(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> diesel::QueryResult<Vec<Project>> {
        let mut query = projects::table
            .filter(projects::workspace_id.eq(workspace))
            .select((
                projects::id,
                projects::workspace_id,
                projects::name,
                projects::created_at,
            ))
            .order((projects::created_at.asc(), projects::id.asc()))
            .limit(limit)
            .into_boxed();
        if let Some((created_at, id)) = after {
            use diesel::BoolExpressionMethods as _;
            query = query.filter(
                projects::created_at
                    .gt(created_at)
                    .or(projects::created_at.eq(created_at).and(projects::id.gt(id))),
            );
        }
        let rows: Vec<ProjectRow> = query.load(conn).await?;
        Self::with_environments(conn, rows).await
    }

    async fn with_environments(
        conn: &mut AsyncPgConnection,
        rows: Vec<ProjectRow>,
    ) -> diesel::QueryResult<Vec<Project>> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        let envs: Vec<(Uuid, Environment)> = Self::environments_of(conn, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|(id, workspace_id, name, created_at)| Project {
                id: id.into(),
                workspace_id: workspace_id.into(),
                name,
                created_at,
                environments: envs
                    .iter()
                    .filter(|(p, _)| *p == id)
                    .map(|(_, env)| env.clone())
                    .collect(),
            })
            .collect())
    }

    /// The environments of `projects` in pipeline order, with their project.
    async fn environments_of(
        conn: &mut AsyncPgConnection,
        projects: &[Uuid],
    ) -> diesel::QueryResult<Vec<(Uuid, Environment)>> {
        let rows: Vec<(Uuid, Uuid, String, String, i32)> = environments::table
            .filter(environments::project_id.eq_any(projects))
            .order((
                environments::position.asc(),
                environments::created_at.asc(),
                environments::id.asc(),
            ))
            .select((
                environments::project_id,
                environments::id,
                environments::name,
                environments::kind,
                environments::position,
            ))
            .load(conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(project, id, name, kind, position)| {
                let environment = Environment {
                    id: id.into(),
                    name,
                    // A kind this build does not know reads as development (never production).
                    kind: EnvironmentKind::parse(&kind).unwrap_or(EnvironmentKind::Development),
                    position,
                };
                (project, environment)
            })
            .collect())
    }

    /// A project's environments in pipeline order.
    pub async fn environments(
        conn: &mut AsyncPgConnection,
        project: Uuid,
    ) -> diesel::QueryResult<Vec<Environment>> {
        Ok(Self::environments_of(conn, &[project])
            .await?
            .into_iter()
            .map(|(_, env)| env)
            .collect())
    }

    pub async fn rename(conn: &mut AsyncPgConnection, id: Uuid, name: &str) -> diesel::QueryResult<()> {
        diesel::update(projects::table.find(id))
            .set((projects::name.eq(name), projects::updated_at.eq(Utc::now())))
            .execute(conn)
            .await?;
        Ok(())
    }

    pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<()> {
        diesel::delete(projects::table.find(id)).execute(conn).await?;
        Ok(())
    }

    /// Adds an environment of `kind` after the others of its kind in the pipeline (those
    /// after it move one place down). Call inside a transaction.
    pub async fn add_environment(
        conn: &mut AsyncPgConnection,
        project: Uuid,
        name: &str,
        kind: EnvironmentKind,
    ) -> diesel::QueryResult<Environment> {
        let existing = Self::environments(conn, project).await?;
        let position = existing
            .iter()
            .filter(|e| e.kind <= kind)
            .map(|e| e.position + 1)
            .max()
            .unwrap_or(0);
        diesel::update(
            environments::table
                .filter(environments::project_id.eq(project))
                .filter(environments::position.ge(position)),
        )
        .set(environments::position.eq(environments::position + 1))
        .execute(conn)
        .await?;
        let id = Uuid::new_v4();
        diesel::insert_into(environments::table)
            .values((
                environments::id.eq(id),
                environments::project_id.eq(project),
                environments::name.eq(name),
                environments::kind.eq(kind.as_str()),
                environments::position.eq(position),
            ))
            .execute(conn)
            .await?;
        Ok(Environment {
            id: id.into(),
            name: name.to_owned(),
            kind,
            position,
        })
    }

    /// Renames an environment, changes its kind or moves it to `position` (clamped to the
    /// pipeline; the others close the gap). Call inside a transaction.
    pub async fn update_environment(
        conn: &mut AsyncPgConnection,
        project: Uuid,
        id: Uuid,
        name: Option<&str>,
        kind: Option<EnvironmentKind>,
        position: Option<i32>,
    ) -> diesel::QueryResult<()> {
        if let Some(name) = name {
            diesel::update(environments::table.find(id))
                .set((
                    environments::name.eq(name),
                    environments::updated_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
        }
        if let Some(kind) = kind {
            diesel::update(environments::table.find(id))
                .set((
                    environments::kind.eq(kind.as_str()),
                    environments::updated_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
        }
        if let Some(position) = position {
            let mut order: Vec<Uuid> = Self::environments(conn, project)
                .await?
                .into_iter()
                .map(|e| e.id.uuid())
                .filter(|e| *e != id)
                .collect();
            let at = usize::try_from(position.max(0)).unwrap_or(0).min(order.len());
            order.insert(at, id);
            for (n, env) in order.into_iter().enumerate() {
                diesel::update(environments::table.find(env))
                    .set(environments::position.eq(i32::try_from(n).unwrap_or(i32::MAX)))
                    .execute(conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// One environment with its project.
    pub async fn find_environment(
        conn: &mut AsyncPgConnection,
        id: Uuid,
    ) -> diesel::QueryResult<Option<(Uuid, Environment)>> {
        let project: Option<Uuid> = environments::table
            .find(id)
            .select(environments::project_id)
            .first(conn)
            .await
            .optional()?;
        let Some(project) = project else {
            return Ok(None);
        };
        Ok(Self::environments(conn, project)
            .await?
            .into_iter()
            .find(|e| e.id.uuid() == id)
            .map(|e| (project, e)))
    }

    /// `(project, name)` of an environment.
    pub async fn environment(
        conn: &mut AsyncPgConnection,
        id: Uuid,
    ) -> diesel::QueryResult<Option<(Uuid, String)>> {
        environments::table
            .find(id)
            .select((environments::project_id, environments::name))
            .first(conn)
            .await
            .optional()
    }

    /// The environment `requested` if it belongs to `project`, or by default the project's
    /// production environment; `None` when there is no such environment.
    pub async fn environment_of(
        conn: &mut AsyncPgConnection,
        project: Uuid,
        requested: Option<Uuid>,
    ) -> diesel::QueryResult<Option<Uuid>> {
        let query = environments::table
            .filter(environments::project_id.eq(project))
            .select(environments::id)
            .into_boxed();
        let query = match requested {
            Some(id) => query.filter(environments::id.eq(id)),
            None => query.filter(environments::kind.eq(EnvironmentKind::Production.as_str())),
        };
        query.first(conn).await.optional()
    }

    pub async fn delete_environment(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<()> {
        diesel::delete(environments::table.find(id)).execute(conn).await?;
        Ok(())
    }

    pub async fn create_service(
        conn: &mut AsyncPgConnection,
        project: Uuid,
        name: &str,
        source: &Source,
    ) -> diesel::QueryResult<Service> {
        let (kind, url, branch, repository) = source_columns(source);
        let row: ServiceRow = diesel::insert_into(services::table)
            .values((
                services::id.eq(Uuid::new_v4()),
                services::project_id.eq(project),
                services::name.eq(name),
                services::source_kind.eq(kind),
                services::git_url.eq(url),
                services::branch.eq(branch),
                services::github_repository.eq(repository),
            ))
            .returning(service_columns!())
            .get_result(conn)
            .await?;
        Ok(to_service(row))
    }

    /// Every service of a project (the overview and the canvas show them all).
    pub async fn services(conn: &mut AsyncPgConnection, project: Uuid) -> diesel::QueryResult<Vec<Service>> {
        let rows: Vec<ServiceRow> = services::table
            .filter(services::project_id.eq(project))
            .order((services::name.asc(), services::id.asc()))
            .select(service_columns!())
            .load(conn)
            .await?;
        Ok(rows.into_iter().map(to_service).collect())
    }

    /// One page of a project's services in name order, after `after` (`(name, id)`).
    pub async fn services_page(
        conn: &mut AsyncPgConnection,
        project: Uuid,
        after: Option<(String, Uuid)>,
        limit: i64,
    ) -> diesel::QueryResult<Vec<Service>> {
        use diesel::BoolExpressionMethods as _;
        let mut query = services::table
            .filter(services::project_id.eq(project))
            .order((services::name.asc(), services::id.asc()))
            .limit(limit)
            .select(service_columns!())
            .into_boxed();
        if let Some((name, id)) = after {
            query = query.filter(
                services::name
                    .gt(name.clone())
                    .or(services::name.eq(name).and(services::id.gt(id))),
            );
        }
        let rows: Vec<ServiceRow> = query.load(conn).await?;
        Ok(rows.into_iter().map(to_service).collect())
    }

    pub async fn service(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<Option<Service>> {
        let row: Option<ServiceRow> = services::table
            .find(id)
            .select(service_columns!())
            .first(conn)
            .await
            .optional()?;
        Ok(row.map(to_service))
    }

    pub async fn update_service(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        name: &str,
        source: &Source,
    ) -> diesel::QueryResult<Service> {
        let (kind, url, branch, repository) = source_columns(source);
        let row: ServiceRow = diesel::update(services::table.find(id))
            .set((
                services::name.eq(name),
                services::source_kind.eq(kind),
                services::git_url.eq(url),
                services::branch.eq(branch),
                services::github_repository.eq(repository),
                services::updated_at.eq(Utc::now()),
            ))
            .returning(service_columns!())
            .get_result(conn)
            .await?;
        Ok(to_service(row))
    }

    pub async fn delete_service(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<()> {
        diesel::delete(services::table.find(id)).execute(conn).await?;
        Ok(())
    }
}
