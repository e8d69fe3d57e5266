use chrono::{DateTime, Duration, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::auth::{Invitation, Role};
use uuid::Uuid;

use crate::{auth::secret, schema::invitations};

pub const TTL_DAYS: i64 = 7;

pub struct Invitations;

type Row = (Uuid, Uuid, String, String, Uuid, DateTime<Utc>, DateTime<Utc>);

macro_rules! columns {
    () => {
        (
            invitations::id,
            invitations::workspace_id,
            invitations::email,
            invitations::role,
            invitations::invited_by,
            invitations::created_at,
            invitations::expires_at,
        )
    };
}

fn to_api((id, workspace_id, email, role, invited_by, created_at, expires_at): Row) -> Invitation {
    Invitation {
        id,
        workspace_id: workspace_id.into(),
        email,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        invited_by: invited_by.into(),
        created_at,
        expires_at,
    }
}

impl Invitations {
    /// Creates a pending invitation whose secret is `token` (only its SHA-256 is stored). A
    /// second pending invitation for the same address violates a unique index (the caller
    /// answers 409).
    pub async fn create(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        email: &str,
        role: Role,
        invited_by: Uuid,
        token: &str,
    ) -> diesel::QueryResult<Invitation> {
        let row: Row = diesel::insert_into(invitations::table)
            .values((
                invitations::id.eq(Uuid::new_v4()),
                invitations::workspace_id.eq(workspace),
                invitations::email.eq(email),
                invitations::role.eq(role.as_str()),
                invitations::token_hash.eq(secret::sha256(token)),
                invitations::invited_by.eq(invited_by),
                invitations::expires_at.eq(Utc::now() + Duration::days(TTL_DAYS)),
            ))
            .returning(columns!())
            .get_result(conn)
            .await?;
        Ok(to_api(row))
    }

    /// Pending (unaccepted, unrevoked, unexpired) invitations of `workspace`, newest first.
    pub async fn pending(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        page: crate::pagination::Page,
    ) -> diesel::QueryResult<Vec<Invitation>> {
        let query = invitations::table
            .filter(invitations::workspace_id.eq(workspace))
            .filter(invitations::accepted_at.is_null())
            .filter(invitations::revoked_at.is_null())
            .filter(invitations::expires_at.gt(Utc::now()))
            .order((invitations::created_at.desc(), invitations::id.desc()))
            .limit(page.limit)
            .select(columns!())
            .into_boxed();
        let rows: Vec<Row> = crate::seek!(query, desc, invitations::created_at, invitations::id, page.after)
            .load(conn)
            .await?;
        Ok(rows.into_iter().map(to_api).collect())
    }

    /// The pending invitation with this token.
    pub async fn find_pending(
        conn: &mut AsyncPgConnection,
        token: &str,
    ) -> diesel::QueryResult<Option<Invitation>> {
        let row: Option<Row> = invitations::table
            .filter(invitations::token_hash.eq(secret::sha256(token)))
            .filter(invitations::accepted_at.is_null())
            .filter(invitations::revoked_at.is_null())
            .filter(invitations::expires_at.gt(Utc::now()))
            .select(columns!())
            .first(conn)
            .await
            .optional()?;
        Ok(row.map(to_api))
    }

    /// Marks the invitation accepted by `user`; true only the first time (single use).
    pub async fn mark_accepted(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        user: Uuid,
    ) -> diesel::QueryResult<bool> {
        let n = diesel::update(
            invitations::table
                .filter(invitations::id.eq(id))
                .filter(invitations::accepted_at.is_null())
                .filter(invitations::revoked_at.is_null())
                .filter(invitations::expires_at.gt(Utc::now())),
        )
        .set((
            invitations::accepted_at.eq(Utc::now()),
            invitations::accepted_by.eq(user),
        ))
        .execute(conn)
        .await?;
        Ok(n == 1)
    }

    /// Revokes a pending invitation of `workspace`; false when there is none.
    pub async fn revoke(
        conn: &mut AsyncPgConnection,
        workspace: Uuid,
        id: Uuid,
    ) -> diesel::QueryResult<bool> {
        let n = diesel::update(
            invitations::table
                .filter(invitations::id.eq(id))
                .filter(invitations::workspace_id.eq(workspace))
                .filter(invitations::accepted_at.is_null())
                .filter(invitations::revoked_at.is_null()),
        )
        .set(invitations::revoked_at.eq(Utc::now()))
        .execute(conn)
        .await?;
        Ok(n == 1)
    }
}
