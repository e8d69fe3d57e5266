//! Creating an environment, empty or cloned, in one transaction: the API's "New
//! environment" and pull-request previews both come here. A preview is counted against the
//! project's limit under the project's row lock, and gets the base's sealed variables only
//! where the project allows it.

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::{
    ErrorCode,
    projects::{Environment, EnvironmentKind},
};
use uuid::Uuid;

use crate::{
    crypto::KeyRing,
    databases::{DatabaseHost, provision},
    error::{AppError, conflict_on_unique},
    models::{deployment::Deployments, hosts, project::Projects},
    schema::{environments, projects, services},
    variables::{PublicUrls, store},
};

/// Live previews a project may have at once.
pub const PREVIEW_LIMIT: i64 = 15;

/// A new environment.
#[derive(Debug, Clone, Copy)]
pub struct NewEnvironment<'a> {
    pub project: Uuid,
    pub name: &'a str,
    pub kind: EnvironmentKind,
    pub clone_from: Option<Uuid>,
    pub actor: Uuid,
    /// A pull request's preview: `(repository, number)`.
    pub pull_request: Option<(&'a str, i32)>,
}

/// What creating it copied: `(settings, variables)`.
pub type Copied = (usize, usize);

/// What creating an environment reaches beyond the database.
pub struct Context<'a> {
    pub keys: &'a KeyRing,
    pub base_domain: &'a str,
    pub urls: PublicUrls,
    /// Where its databases (of `postgres` services) are made.
    pub databases: &'a dyn DatabaseHost,
}

impl<'a> Context<'a> {
    pub fn of(app: &'a crate::app::App) -> Self {
        Self {
            keys: &app.keys,
            base_domain: &app.config.runtime.base_domain,
            urls: PublicUrls::of(&app.config),
            databases: &*app.databases,
        }
    }
}

/// Creates `new` (409 on a taken name or host, `ENV_PREVIEW_LIMIT_REACHED` past the limit),
/// with a database (a branch of the source's, when cloned) for each `postgres` service.
pub async fn create(
    conn: &mut AsyncPgConnection,
    context: &Context<'_>,
    new: NewEnvironment<'_>,
) -> Result<(Environment, Copied), AppError> {
    let (keys, base_domain) = (context.keys, context.base_domain);
    let has_databases: bool = diesel::select(diesel::dsl::exists(
        services::table
            .filter(services::project_id.eq(new.project))
            .filter(services::source_kind.eq("postgres")),
    ))
    .get_result(conn)
    .await?;
    let placed = match has_databases {
        true => Some(context.databases.place().await.map_err(AppError::internal)?),
        false => None,
    };
    conn.transaction::<_, AppError, _>(async |conn| {
        // The project's row: one creation at a time counts its previews.
        let with_sealed: bool = projects::table
            .find(new.project)
            .select(projects::preview_sealed_variables)
            .for_update()
            .first(conn)
            .await?;
        if new.kind == EnvironmentKind::Preview {
            let live: i64 = environments::table
                .filter(environments::project_id.eq(new.project))
                .filter(environments::kind.eq(EnvironmentKind::Preview.as_str()))
                .count()
                .get_result(conn)
                .await?;
            if live >= PREVIEW_LIMIT {
                return Err(AppError::new(
                    ErrorCode::EnvPreviewLimitReached,
                    format!(
                        "this project has {live} live preview environments, the most it may have: close a pull request or delete a preview first"
                    ),
                ));
            }
        }
        hosts::lock(conn).await?;
        if let Some(host) = hosts::taken(
            conn,
            hosts::Change::Environment {
                project: new.project,
                name: new.name,
            },
        )
        .await?
        {
            return Err(AppError::conflict(format!(
                "{host}.{base_domain} is the address of another service on this instance: choose another name"
            )));
        }
        let environment = Projects::add_environment(conn, new.project, new.name, new.kind)
            .await
            .map_err(|err| conflict_on_unique(err, "an environment with this name exists in the project"))?;
        let to = environment.id.uuid();
        if let Some((repository, number)) = new.pull_request {
            diesel::update(environments::table.find(to))
                .set((
                    environments::preview_repository.eq(repository.to_ascii_lowercase()),
                    environments::preview_pr.eq(number),
                    environments::preview_pushed_at.eq(chrono::Utc::now()),
                ))
                .execute(conn)
                .await?;
        }
        let mut copied = (0, 0);
        if let Some(from) = new.clone_from {
            copied.0 = Deployments::copy_settings(conn, from, to).await?;
            let sealed = new.kind != EnvironmentKind::Preview || with_sealed;
            copied.1 = store::copy_environment(conn, keys, from, to, new.actor, sealed)
                .await
                .map_err(AppError::internal)?;
        }
        if let Some(placed) = &placed {
            let writer = provision::Writer {
                keys,
                urls: &context.urls,
                driver: context.databases.driver(),
                placed,
                actor: new.actor,
            };
            provision::for_environment(conn, &writer, new.project, to, new.clone_from)
                .await
                .map_err(AppError::from)?;
        }
        Ok((environment, copied))
    })
    .await
}
