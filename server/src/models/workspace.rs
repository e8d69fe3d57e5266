use chrono::{DateTime, Utc};
use diesel::{BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::auth::{Role, Workspace};
use uuid::Uuid;

use crate::schema::{memberships, workspaces};

/// Workspaces as their members see them.
pub struct Workspaces;

type Row = (Uuid, String, String, String, DateTime<Utc>);

fn to_api((id, name, role, log_read_role, created_at): Row) -> Workspace {
    // The CHECK constraints allow only the four roles; anything else reads as the lowest
    // for the caller, and as the default for who reads logs.
    Workspace {
        id: id.into(),
        name,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        log_read_role: Role::parse(&log_read_role).unwrap_or(Role::default_log_reader()),
        created_at,
    }
}

impl Workspaces {
    /// Creates a workspace with `owner` as its first owner.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        name: &str,
        owner: Uuid,
    ) -> diesel::QueryResult<Workspace> {
        let id = Uuid::new_v4();
        let created_at: DateTime<Utc> = diesel::insert_into(workspaces::table)
            .values((workspaces::id.eq(id), workspaces::name.eq(name)))
            .returning(workspaces::created_at)
            .get_result(conn)
            .await?;
        diesel::insert_into(memberships::table)
            .values((
                memberships::workspace_id.eq(id),
                memberships::user_id.eq(owner),
                memberships::role.eq(Role::Owner.as_str()),
            ))
            .execute(conn)
            .await?;
        Ok(Workspace {
            id: id.into(),
            name: name.to_owned(),
            role: Role::Owner,
            log_read_role: Role::default_log_reader(),
            created_at,
        })
    }

    /// The caller's workspaces, oldest first, after the cursor (a workspace id).
    pub async fn list_for(
        conn: &mut AsyncPgConnection,
        user: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> diesel::QueryResult<Vec<Workspace>> {
        let mut query = workspaces::table
            .inner_join(memberships::table)
            .filter(memberships::user_id.eq(user))
            .select((
                workspaces::id,
                workspaces::name,
                memberships::role,
                workspaces::log_read_role,
                workspaces::created_at,
            ))
            .order((workspaces::created_at.asc(), workspaces::id.asc()))
            .limit(limit)
            .into_boxed();
        if let Some((created_at, id)) = after {
            query = query.filter(
                workspaces::created_at
                    .gt(created_at)
                    .or(workspaces::created_at.eq(created_at).and(workspaces::id.gt(id))),
            );
        }
        Ok(query.load::<Row>(conn).await?.into_iter().map(to_api).collect())
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid, role: Role) -> diesel::QueryResult<Workspace> {
        let (name, log_read_role, created_at) = workspaces::table
            .find(id)
            .select((
                workspaces::name,
                workspaces::log_read_role,
                workspaces::created_at,
            ))
            .first::<(String, String, DateTime<Utc>)>(conn)
            .await?;
        Ok(to_api((
            id,
            name,
            role.as_str().to_owned(),
            log_read_role,
            created_at,
        )))
    }

    /// The lowest role that reads `id`'s logs.
    pub async fn log_read_role(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<Role> {
        let role: String = workspaces::table
            .find(id)
            .select(workspaces::log_read_role)
            .first(conn)
            .await?;
        Ok(Role::parse(&role).unwrap_or(Role::default_log_reader()))
    }

    pub async fn set_log_read_role(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        role: Role,
    ) -> diesel::QueryResult<()> {
        diesel::update(workspaces::table.find(id))
            .set((
                workspaces::log_read_role.eq(role.as_str()),
                workspaces::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    pub async fn rename(conn: &mut AsyncPgConnection, id: Uuid, name: &str) -> diesel::QueryResult<()> {
        diesel::update(workspaces::table.find(id))
            .set((workspaces::name.eq(name), workspaces::updated_at.eq(Utc::now())))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Deletes the workspace; memberships, tokens and invitations go with it.
    pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<()> {
        diesel::delete(workspaces::table.find(id)).execute(conn).await?;
        Ok(())
    }

    /// The caller's role in `workspace`, `None` when not a member (which callers answer 404).
    pub async fn role_of(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        user: Uuid,
    ) -> diesel::QueryResult<Option<Role>> {
        let role: Option<String> = memberships::table
            .filter(memberships::workspace_id.eq(workspace))
            .filter(memberships::user_id.eq(user))
            .select(memberships::role)
            .first(conn)
            .await
            .optional()?;
        Ok(role.as_deref().and_then(Role::parse))
    }
}
