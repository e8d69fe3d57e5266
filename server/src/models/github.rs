//! GitHub rows: a user's connection for repositories (token sealed with the key ring), the
//! repositories Railyard has a webhook on (secret sealed), and the webhook deliveries.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::github::Delivery;
use uuid::Uuid;

use crate::{
    crypto::KeyRing,
    pagination::Page,
    schema::{github_connections, github_deliveries, github_repositories},
};

fn token_aad(user: Uuid) -> Vec<u8> {
    format!("railyard:github_connection:{user}:token").into_bytes()
}

fn secret_aad(repository: &str) -> Vec<u8> {
    format!("railyard:github_repository:{repository}:hook_secret").into_bytes()
}

/// A connection as shown: login and, when GitHub refused its token, why.
#[derive(Debug, Clone)]
pub struct Connection {
    pub login: String,
    pub broken: Option<String>,
}

pub struct Connections;

impl Connections {
    pub async fn save(
        conn: &mut AsyncPgConnection,
        keys: &KeyRing,
        user: Uuid,
        (github_id, login): (i64, &str),
        token: &str,
    ) -> anyhow::Result<()> {
        let sealed = keys.encrypt(token.as_bytes(), &token_aad(user))?;
        diesel::insert_into(github_connections::table)
            .values((
                github_connections::user_id.eq(user),
                github_connections::github_id.eq(github_id),
                github_connections::login.eq(login),
                github_connections::token.eq(&sealed),
            ))
            .on_conflict(github_connections::user_id)
            .do_update()
            .set((
                github_connections::github_id.eq(github_id),
                github_connections::login.eq(login),
                github_connections::token.eq(&sealed),
                github_connections::broken_reason.eq(None::<String>),
                github_connections::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    pub async fn find(conn: &mut AsyncPgConnection, user: Uuid) -> diesel::QueryResult<Option<Connection>> {
        let row: Option<(String, Option<String>)> = github_connections::table
            .find(user)
            .select((github_connections::login, github_connections::broken_reason))
            .first(conn)
            .await
            .optional()?;
        Ok(row.map(|(login, broken)| Connection { login, broken }))
    }

    /// The user's token, when connected and not broken.
    pub async fn token(
        conn: &mut AsyncPgConnection,
        keys: &KeyRing,
        user: Uuid,
    ) -> anyhow::Result<Option<String>> {
        let row: Option<(Vec<u8>, Option<String>)> = github_connections::table
            .find(user)
            .select((github_connections::token, github_connections::broken_reason))
            .first(conn)
            .await
            .optional()?;
        match row {
            Some((sealed, None)) => Ok(Some(String::from_utf8(keys.decrypt(&sealed, &token_aad(user))?)?)),
            _ => Ok(None),
        }
    }

    /// GitHub refused the token: the dashboard says so until the user reconnects.
    pub async fn mark_broken(
        conn: &mut AsyncPgConnection,
        user: Uuid,
        reason: &str,
    ) -> diesel::QueryResult<()> {
        diesel::update(github_connections::table.find(user))
            .set((
                github_connections::broken_reason.eq(reason),
                github_connections::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    pub async fn delete(conn: &mut AsyncPgConnection, user: Uuid) -> diesel::QueryResult<()> {
        diesel::delete(github_connections::table.find(user))
            .execute(conn)
            .await?;
        Ok(())
    }
}

pub struct Repositories;

impl Repositories {
    /// Records `repository` (lower-cased) as used, by `user` unless someone was first.
    /// Returns whether it still needs a webhook.
    pub async fn ensure(
        conn: &mut AsyncPgConnection,
        repository: &str,
        user: Uuid,
    ) -> diesel::QueryResult<bool> {
        let name = repository.to_ascii_lowercase();
        diesel::insert_into(github_repositories::table)
            .values((
                github_repositories::full_name.eq(&name),
                github_repositories::connected_by.eq(user),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        let hook: Option<Option<i64>> = github_repositories::table
            .find(&name)
            .select(github_repositories::hook_id)
            .first(conn)
            .await
            .optional()?;
        Ok(hook.flatten().is_none())
    }

    pub async fn set_hook(
        conn: &mut AsyncPgConnection,
        keys: &KeyRing,
        repository: &str,
        (hook_id, secret): (i64, &str),
        user: Uuid,
    ) -> anyhow::Result<()> {
        let name = repository.to_ascii_lowercase();
        let sealed = keys.encrypt(secret.as_bytes(), &secret_aad(&name))?;
        diesel::update(github_repositories::table.find(&name))
            .set((
                github_repositories::hook_id.eq(hook_id),
                github_repositories::hook_secret.eq(sealed),
                github_repositories::connected_by.eq(user),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// The repository's own webhook secret, when Railyard made its hook.
    pub async fn hook_secret(
        conn: &mut AsyncPgConnection,
        keys: &KeyRing,
        repository: &str,
    ) -> anyhow::Result<Option<String>> {
        let name = repository.to_ascii_lowercase();
        let sealed: Option<Option<Vec<u8>>> = github_repositories::table
            .find(&name)
            .select(github_repositories::hook_secret)
            .first(conn)
            .await
            .optional()?;
        match sealed.flatten() {
            Some(sealed) => Ok(Some(String::from_utf8(
                keys.decrypt(&sealed, &secret_aad(&name))?,
            )?)),
            None => Ok(None),
        }
    }

    /// The repository Railyard's hook `hook_id` is on.
    pub async fn of_hook(conn: &mut AsyncPgConnection, hook_id: i64) -> diesel::QueryResult<Option<String>> {
        github_repositories::table
            .filter(github_repositories::hook_id.eq(hook_id))
            .select(github_repositories::full_name)
            .first(conn)
            .await
            .optional()
    }

    /// Who connected the repository: the account whose token reports to it.
    pub async fn connector(
        conn: &mut AsyncPgConnection,
        repository: &str,
    ) -> diesel::QueryResult<Option<Uuid>> {
        let found: Option<Option<Uuid>> = github_repositories::table
            .find(repository.to_ascii_lowercase())
            .select(github_repositories::connected_by)
            .first(conn)
            .await
            .optional()?;
        Ok(found.flatten())
    }
}

/// A delivery about to be recorded.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub payload: &'a [u8],
    pub redelivery_of: Option<Uuid>,
}

/// What processing a delivery came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub outcome: &'static str,
    pub detail: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub projects: Vec<Uuid>,
    pub deployments: Vec<Uuid>,
}

type DeliveryRow = (
    Uuid,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Vec<Uuid>,
    Vec<Uuid>,
    Option<Uuid>,
    DateTime<Utc>,
);

macro_rules! delivery_columns {
    () => {
        (
            github_deliveries::id,
            github_deliveries::delivery_id,
            github_deliveries::event,
            github_deliveries::action,
            github_deliveries::repository,
            github_deliveries::outcome,
            github_deliveries::detail,
            github_deliveries::project_ids,
            github_deliveries::deployment_ids,
            github_deliveries::redelivery_of,
            github_deliveries::received_at,
        )
    };
}

fn to_api(row: DeliveryRow) -> Delivery {
    let (
        id,
        delivery_id,
        event,
        action,
        repository,
        outcome,
        detail,
        projects,
        deployments,
        redelivery_of,
        at,
    ) = row;
    Delivery {
        id,
        delivery_id,
        event,
        action,
        repository,
        outcome,
        detail,
        deployments: deployments.into_iter().map(Into::into).collect(),
        projects: projects.into_iter().map(Into::into).collect(),
        redelivery_of,
        received_at: at,
    }
}

pub struct Deliveries;

impl Deliveries {
    /// Records a delivery as received (`ignored` until processed); `None` when GitHub's
    /// delivery id was seen before (and this is not a redelivery asked for).
    pub async fn start(
        conn: &mut AsyncPgConnection,
        new: NewDelivery<'_>,
    ) -> diesel::QueryResult<Option<Uuid>> {
        let id = Uuid::new_v4();
        let inserted = diesel::insert_into(github_deliveries::table)
            .values((
                github_deliveries::id.eq(id),
                github_deliveries::delivery_id.eq(new.delivery_id),
                github_deliveries::event.eq(new.event),
                github_deliveries::outcome.eq("ignored"),
                github_deliveries::payload.eq(new.payload),
                github_deliveries::redelivery_of.eq(new.redelivery_of),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok((inserted == 1).then_some(id))
    }

    /// Stores what processing came to. The projects it concerns are kept when this run
    /// names none (a redelivery or an approval of a body that no longer matches anything
    /// stays on the project's list).
    pub async fn finish(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        outcome: &Outcome,
    ) -> diesel::QueryResult<()> {
        diesel::update(github_deliveries::table.find(id))
            .set((
                github_deliveries::outcome.eq(outcome.outcome),
                github_deliveries::detail.eq(&outcome.detail),
                github_deliveries::action.eq(&outcome.action),
                github_deliveries::repository.eq(&outcome.repository),
                github_deliveries::deployment_ids.eq(&outcome.deployments),
            ))
            .execute(conn)
            .await?;
        if !outcome.projects.is_empty() {
            diesel::update(github_deliveries::table.find(id))
                .set(github_deliveries::project_ids.eq(&outcome.projects))
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    /// A redelivery starts on the projects of the delivery it repeats.
    pub async fn inherit_projects(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        from: Uuid,
    ) -> diesel::QueryResult<()> {
        let projects: Vec<Uuid> = github_deliveries::table
            .find(from)
            .select(github_deliveries::project_ids)
            .first(conn)
            .await?;
        diesel::update(github_deliveries::table.find(id))
            .set(github_deliveries::project_ids.eq(projects))
            .execute(conn)
            .await?;
        Ok(())
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<Option<Delivery>> {
        let row: Option<DeliveryRow> = github_deliveries::table
            .find(id)
            .select(delivery_columns!())
            .first(conn)
            .await
            .optional()?;
        Ok(row.map(to_api))
    }

    /// The stored body and event of a delivery (to process it again).
    pub async fn payload(
        conn: &mut AsyncPgConnection,
        id: Uuid,
    ) -> diesel::QueryResult<(String, String, Vec<u8>)> {
        github_deliveries::table
            .find(id)
            .select((
                github_deliveries::delivery_id,
                github_deliveries::event,
                github_deliveries::payload,
            ))
            .first(conn)
            .await
    }

    /// A project's deliveries, newest first.
    pub async fn for_project(
        conn: &mut AsyncPgConnection,
        project: Uuid,
        page: Page,
    ) -> diesel::QueryResult<Vec<Delivery>> {
        use diesel::PgArrayExpressionMethods as _;
        let query = github_deliveries::table
            .filter(github_deliveries::project_ids.contains(vec![project]))
            .order((
                github_deliveries::received_at.desc(),
                github_deliveries::id.desc(),
            ))
            .limit(page.limit)
            .select(delivery_columns!())
            .into_boxed();
        let query = crate::seek!(
            query,
            desc,
            github_deliveries::received_at,
            github_deliveries::id,
            page.after
        );
        let rows: Vec<DeliveryRow> = query.load(conn).await?;
        Ok(rows.into_iter().map(to_api).collect())
    }

    /// Marks a delivery waiting for approval as approved (once: `false` if it was not
    /// waiting).
    pub async fn approve(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<bool> {
        let updated = diesel::update(
            github_deliveries::table
                .find(id)
                .filter(github_deliveries::outcome.eq("awaiting_approval")),
        )
        .set(github_deliveries::outcome.eq("approved"))
        .execute(conn)
        .await?;
        Ok(updated == 1)
    }
}

/// A service whose source is a GitHub repository.
#[derive(Debug, Clone)]
pub struct TrackingService {
    pub service: Uuid,
    pub project: Uuid,
    pub workspace: Uuid,
    pub branch: String,
}

/// Every service (of every project) whose source is `repository`.
pub async fn services_of(
    conn: &mut AsyncPgConnection,
    repository: &str,
) -> diesel::QueryResult<Vec<TrackingService>> {
    use crate::schema::{projects, services};
    let rows: Vec<(Uuid, Uuid, Uuid, Option<String>)> = services::table
        .inner_join(projects::table)
        .filter(services::source_kind.eq("github"))
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(services.github_repository) = ")
                .bind::<diesel::sql_types::Text, _>(repository.to_ascii_lowercase()),
        )
        .order(services::created_at.asc())
        .select((
            services::id,
            services::project_id,
            projects::workspace_id,
            services::branch,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(service, project, workspace, branch)| TrackingService {
            service,
            project,
            workspace,
            branch: branch.unwrap_or_default(),
        })
        .collect())
}

/// A preview environment: its id, project, pull request and the time of its last push.
#[derive(Debug, Clone)]
pub struct Preview {
    pub environment: Uuid,
    pub project: Uuid,
    pub workspace: Uuid,
    pub repository: String,
    pub pr: i32,
}

pub struct Previews;

impl Previews {
    pub async fn find(
        conn: &mut AsyncPgConnection,
        project: Uuid,
        repository: &str,
        pr: i32,
    ) -> diesel::QueryResult<Option<Uuid>> {
        use crate::schema::environments;
        environments::table
            .filter(environments::project_id.eq(project))
            .filter(environments::preview_repository.eq(repository.to_ascii_lowercase()))
            .filter(environments::preview_pr.eq(pr))
            .select(environments::id)
            .first(conn)
            .await
            .optional()
    }

    pub async fn pushed(conn: &mut AsyncPgConnection, environment: Uuid) -> diesel::QueryResult<()> {
        use crate::schema::environments;
        diesel::update(environments::table.find(environment))
            .set(environments::preview_pushed_at.eq(Utc::now()))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Previews whose last push is older than their project's TTL at `now`.
    pub async fn expired(
        conn: &mut AsyncPgConnection,
        now: DateTime<Utc>,
    ) -> diesel::QueryResult<Vec<Preview>> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: Uuid,
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            project_id: Uuid,
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            workspace_id: Uuid,
            #[diesel(sql_type = diesel::sql_types::Text)]
            preview_repository: String,
            #[diesel(sql_type = diesel::sql_types::Int4)]
            preview_pr: i32,
        }
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT e.id, e.project_id, p.workspace_id, e.preview_repository, e.preview_pr \
             FROM environments e JOIN projects p ON p.id = e.project_id \
             WHERE e.kind = 'preview' AND e.preview_pr IS NOT NULL \
               AND e.preview_pushed_at < $1 - make_interval(days => p.preview_ttl_days)",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .load(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Preview {
                environment: r.id,
                project: r.project_id,
                workspace: r.workspace_id,
                repository: r.preview_repository,
                pr: r.preview_pr,
            })
            .collect())
    }

    /// The GitHub Deployments of an environment's deployments: `(repository, GitHub id)`.
    pub async fn github_deployments(
        conn: &mut AsyncPgConnection,
        environment: Uuid,
    ) -> diesel::QueryResult<Vec<(Uuid, String, i64)>> {
        use crate::schema::{deployments, github_deployments};
        let rows: Vec<(Uuid, String, Option<i64>)> = github_deployments::table
            .inner_join(deployments::table)
            .filter(deployments::environment_id.eq(environment))
            .select((
                github_deployments::deployment_id,
                github_deployments::repository,
                github_deployments::github_id,
            ))
            .load(conn)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(d, r, id)| Some((d, r, id?)))
            .collect())
    }
}

/// Whether GitHub user `github_id` is linked to an account that is a member of `workspace`.
pub async fn is_member(
    conn: &mut AsyncPgConnection,
    github_id: i64,
    workspace: Uuid,
) -> diesel::QueryResult<bool> {
    use crate::schema::{memberships, users};
    let found: i64 = memberships::table
        .inner_join(users::table)
        .filter(memberships::workspace_id.eq(workspace))
        .filter(users::github_id.eq(github_id))
        .count()
        .get_result(conn)
        .await?;
    Ok(found > 0)
}

/// A workspace's owner: who Railyard acts for when no connector is known.
pub async fn owner_of(conn: &mut AsyncPgConnection, workspace: Uuid) -> diesel::QueryResult<Option<Uuid>> {
    use crate::schema::memberships;
    memberships::table
        .filter(memberships::workspace_id.eq(workspace))
        .filter(memberships::role.eq("owner"))
        .select(memberships::user_id)
        .first(conn)
        .await
        .optional()
}
