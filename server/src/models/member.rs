use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::auth::{Member, Role};
use uuid::Uuid;

use crate::schema::{memberships, users};

pub struct Members;

type Row = (Uuid, String, String, String, DateTime<Utc>);

fn to_api((user_id, email, name, role, joined_at): Row) -> Member {
    Member {
        user_id: user_id.into(),
        email,
        name,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        joined_at,
    }
}

impl Members {
    /// The members of `workspace`, in the order they joined.
    /// One page of a workspace's members, earliest joined first.
    pub async fn list(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        page: crate::pagination::Page,
    ) -> diesel::QueryResult<Vec<Member>> {
        let query = memberships::table
            .inner_join(users::table)
            .filter(memberships::workspace_id.eq(workspace))
            .order((memberships::created_at.asc(), memberships::user_id.asc()))
            .limit(page.limit)
            .into_boxed();
        let rows: Vec<Row> = crate::seek!(
            query,
            asc,
            memberships::created_at,
            memberships::user_id,
            page.after
        )
        .select((
            users::id,
            users::email,
            users::name,
            memberships::role,
            memberships::created_at,
        ))
        .load(conn)
        .await?;
        Ok(rows.into_iter().map(to_api).collect())
    }

    pub async fn find(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        user: Uuid,
    ) -> diesel::QueryResult<Option<Member>> {
        let row: Option<Row> = memberships::table
            .inner_join(users::table)
            .filter(memberships::workspace_id.eq(workspace))
            .filter(memberships::user_id.eq(user))
            .select((
                users::id,
                users::email,
                users::name,
                memberships::role,
                memberships::created_at,
            ))
            .first(conn)
            .await
            .optional()?;
        Ok(row.map(to_api))
    }

    pub async fn add(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        user: Uuid,
        role: Role,
    ) -> diesel::QueryResult<()> {
        diesel::insert_into(memberships::table)
            .values((
                memberships::workspace_id.eq(workspace),
                memberships::user_id.eq(user),
                memberships::role.eq(role.as_str()),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    pub async fn set_role(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        user: Uuid,
        role: Role,
    ) -> diesel::QueryResult<()> {
        diesel::update(memberships::table.find((workspace, user)))
            .set(memberships::role.eq(role.as_str()))
            .execute(conn)
            .await?;
        Ok(())
    }

    pub async fn remove(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        user: Uuid,
    ) -> diesel::QueryResult<()> {
        diesel::delete(memberships::table.find((workspace, user)))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Owners of `workspace`, locked for the rest of the transaction so two demotions
    /// cannot both see "another owner remains".
    pub async fn lock_owners(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
    ) -> diesel::QueryResult<Vec<Uuid>> {
        memberships::table
            .filter(memberships::workspace_id.eq(workspace))
            .filter(memberships::role.eq(Role::Owner.as_str()))
            .select(memberships::user_id)
            .for_update()
            .load(conn)
            .await
    }
}
