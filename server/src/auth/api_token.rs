//! API tokens for the CLI and automation: `ry_` + 32 random bytes (base64url), shown once,
//! stored as SHA-256, scoped to one workspace and a role no higher than the creator's.

use chrono::{DateTime, Utc};
use diesel::{BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::auth::{ApiToken, Role};
use uuid::Uuid;

use super::{caller::TokenScope, secret};
use crate::schema::api_tokens;

pub const PREFIX: &str = "ry_";

#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    pub user_id: Uuid,
    pub scope: TokenScope,
}

type Row = (
    Uuid,
    String,
    Uuid,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn to_api((id, name, workspace_id, role, prefix, created_at, expires_at, last_used_at): Row) -> ApiToken {
    ApiToken {
        id,
        name,
        workspace_id: workspace_id.into(),
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        prefix,
        created_at,
        expires_at,
        last_used_at,
    }
}

macro_rules! columns {
    () => {
        (
            api_tokens::id,
            api_tokens::name,
            api_tokens::workspace_id,
            api_tokens::role,
            api_tokens::prefix,
            api_tokens::created_at,
            api_tokens::expires_at,
            api_tokens::last_used_at,
        )
    };
}

/// Creates a token and returns `(secret, record)`; the secret is never stored.
pub async fn create(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    workspace_id: Uuid,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<(String, ApiToken)> {
    let secret = format!("{PREFIX}{}", secret::random_token()?);
    let row: Row = diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(Uuid::new_v4()),
            api_tokens::user_id.eq(user_id),
            api_tokens::workspace_id.eq(workspace_id),
            api_tokens::name.eq(name),
            api_tokens::role.eq(role.as_str()),
            api_tokens::token_hash.eq(secret::sha256(&secret)),
            api_tokens::prefix.eq(&secret[..PREFIX.len() + 6]),
            api_tokens::expires_at.eq(expires_at),
        ))
        .returning(columns!())
        .get_result(conn)
        .await?;
    Ok((secret, to_api(row)))
}

/// The live tokens of `user_id`, newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    page: crate::pagination::Page,
) -> diesel::QueryResult<Vec<ApiToken>> {
    let query = api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .filter(api_tokens::revoked_at.is_null())
        .order((api_tokens::created_at.desc(), api_tokens::id.desc()))
        .limit(page.limit)
        .select(columns!())
        .into_boxed();
    let rows: Vec<Row> = crate::seek!(query, desc, api_tokens::created_at, api_tokens::id, page.after)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(to_api).collect())
}

/// Revokes a token of `user_id`; false when there is no such live token.
pub async fn revoke(conn: &mut AsyncPgConnection, user_id: Uuid, id: Uuid) -> diesel::QueryResult<bool> {
    let n = diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Whether the token `id` is still live (not revoked, not expired).
pub async fn is_active(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<bool> {
    let now = Utc::now();
    diesel::select(diesel::dsl::exists(
        api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::revoked_at.is_null())
            .filter(
                api_tokens::expires_at
                    .is_null()
                    .or(api_tokens::expires_at.gt(now)),
            ),
    ))
    .get_result(conn)
    .await
}

/// Revokes every live token `user_id` holds for `workspace` (they left it, or were
/// removed): a member invited back later starts with no token of before.
pub async fn revoke_for_workspace(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    workspace: Uuid,
) -> diesel::QueryResult<usize> {
    diesel::update(
        api_tokens::table
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::workspace_id.eq(workspace))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await
}

/// Finds the live token with this secret and notes its use.
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    secret: &str,
) -> diesel::QueryResult<Option<Authenticated>> {
    if !secret.starts_with(PREFIX) {
        return Ok(None);
    }
    let now = Utc::now();
    let found: Option<(Uuid, Uuid, Uuid, String)> = diesel::update(
        api_tokens::table
            .filter(api_tokens::token_hash.eq(secret::sha256(secret)))
            .filter(api_tokens::revoked_at.is_null())
            .filter(
                api_tokens::expires_at
                    .is_null()
                    .or(api_tokens::expires_at.gt(now)),
            ),
    )
    .set(api_tokens::last_used_at.eq(now))
    .returning((
        api_tokens::id,
        api_tokens::user_id,
        api_tokens::workspace_id,
        api_tokens::role,
    ))
    .get_result(conn)
    .await
    .optional()?;
    Ok(found.and_then(|(token_id, user_id, workspace_id, role)| {
        Some(Authenticated {
            user_id,
            scope: TokenScope {
                token_id,
                workspace_id,
                role: Role::parse(&role)?,
            },
        })
    }))
}
