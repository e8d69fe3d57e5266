//! Sessions: one refresh-token family per sign-in.
//!
//! The refresh token is opaque (32 random bytes), stored as SHA-256, lives 7 days and is
//! exchanged exactly once: the exchange is a single conditional `UPDATE ... WHERE rotated_at
//! IS NULL`, so of two concurrent refreshes exactly one wins. Presenting a token that was
//! already exchanged, after a short grace window for those concurrent requests, means it
//! was stolen or replayed: the whole family (the session) is revoked.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use serde::Serialize;
use uuid::Uuid;

use super::secret;
use crate::schema::{refresh_tokens, sessions};

pub const REFRESH_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A second exchange of the same token this soon after the first is a concurrent refresh
/// (two tabs), answered 401 without revoking; later, it is reuse.
pub const REUSE_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub session_id: Uuid,
    pub refresh_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub refresh_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the refresh token is not valid")]
    Invalid,
    #[error("the refresh token was already used by a concurrent request")]
    Concurrent,
    #[error("the refresh token was used twice; the session has been revoked")]
    Reused { session_id: Uuid, user_id: Uuid },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

#[derive(Debug, Clone, Serialize, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_agent: String,
    pub ip: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

fn expiry() -> DateTime<Utc> {
    Utc::now() + REFRESH_TTL
}

async fn insert_refresh(conn: &mut AsyncPgConnection, session_id: Uuid) -> diesel::QueryResult<String> {
    let token = secret::random_token().map_err(|_| diesel::result::Error::RollbackTransaction)?;
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(secret::sha256(&token)),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::expires_at.eq(expiry()),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// Starts a session for `user_id` and returns its first refresh token.
pub async fn create(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    user_agent: &str,
    ip: &str,
) -> diesel::QueryResult<NewSession> {
    let user_agent: String = user_agent.chars().take(300).collect();
    let ip = ip.to_owned();
    conn.transaction(async |conn| {
        let session_id = Uuid::new_v4();
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(session_id),
                sessions::user_id.eq(user_id),
                sessions::user_agent.eq(user_agent),
                sessions::ip.eq(ip),
                sessions::expires_at.eq(expiry()),
            ))
            .execute(conn)
            .await?;
        let refresh_token = insert_refresh(conn, session_id).await?;
        Ok(NewSession {
            session_id,
            refresh_token,
        })
    })
    .await
}

/// Exchanges a refresh token for a new one (see the module docs).
pub async fn refresh(conn: &mut AsyncPgConnection, token: &str) -> Result<Refreshed, RefreshError> {
    let hash = secret::sha256(token);
    conn.transaction::<_, RefreshError, _>(async |conn| {
        let won: Option<Uuid> = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&hash))
                .filter(refresh_tokens::rotated_at.is_null())
                .filter(refresh_tokens::expires_at.gt(Utc::now())),
        )
        .set(refresh_tokens::rotated_at.eq(Utc::now()))
        .returning(refresh_tokens::session_id)
        .get_result(conn)
        .await
        .optional()?;
        if let Some(session_id) = won {
            let user_id: Option<Uuid> = diesel::update(
                sessions::table
                    .filter(sessions::id.eq(session_id))
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::expires_at.gt(Utc::now())),
            )
            .set((
                sessions::last_used_at.eq(Utc::now()),
                sessions::expires_at.eq(expiry()),
            ))
            .returning(sessions::user_id)
            .get_result(conn)
            .await
            .optional()?;
            let user_id = user_id.ok_or(RefreshError::Invalid)?;
            let refresh_token = insert_refresh(conn, session_id).await?;
            return Ok(Ok(Refreshed {
                user_id,
                session_id,
                refresh_token,
            }));
        }
        // Not exchanged: unknown, expired, or already used.
        let used: Option<(Uuid, Option<DateTime<Utc>>)> = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(&hash))
            .select((refresh_tokens::session_id, refresh_tokens::rotated_at))
            .first(conn)
            .await
            .optional()?;
        match used {
            Some((session_id, Some(rotated_at))) => {
                let age = Utc::now()
                    .signed_duration_since(rotated_at)
                    .to_std()
                    .unwrap_or_default();
                if age <= REUSE_GRACE {
                    return Ok(Err(RefreshError::Concurrent));
                }
                let user_id: Option<Uuid> = diesel::update(
                    sessions::table
                        .filter(sessions::id.eq(session_id))
                        .filter(sessions::revoked_at.is_null()),
                )
                .set((
                    sessions::revoked_at.eq(Utc::now()),
                    sessions::revoked_reason.eq("refresh token reused"),
                ))
                .returning(sessions::user_id)
                .get_result(conn)
                .await
                .optional()?;
                match user_id {
                    // The revocation must commit, so report reuse as a value.
                    Some(user_id) => Ok(Err(RefreshError::Reused { session_id, user_id })),
                    None => Ok(Err(RefreshError::Invalid)),
                }
            }
            _ => Ok(Err(RefreshError::Invalid)),
        }
    })
    .await?
}

/// Revokes one session of `user_id`; false when there is no such active session.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    session_id: Uuid,
    reason: &str,
) -> diesel::QueryResult<bool> {
    let n = diesel::update(
        sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Utc::now()),
        sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Ends `session_id`, whoever's it is (the browser signs out, or signs in again); the
/// user it belonged to when it was still active.
pub async fn end(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    reason: &str,
) -> diesel::QueryResult<Option<Uuid>> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Utc::now()),
        sessions::revoked_reason.eq(reason),
    ))
    .returning(sessions::user_id)
    .get_result(conn)
    .await
    .optional()
}

/// Revokes every session of `user_id` except `keep`.
pub async fn revoke_others(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
) -> diesel::QueryResult<usize> {
    let mut query = diesel::update(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(keep) = keep {
        query = query.filter(sessions::id.ne(keep));
    }
    query
        .set((
            sessions::revoked_at.eq(Utc::now()),
            sessions::revoked_reason.eq(reason),
        ))
        .execute(conn)
        .await
}

/// Whether `session_id` of `user_id` is still active (checked on every authenticated request,
/// so logout and revocation take effect at once rather than when the access token expires).
pub async fn is_active(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    session_id: Uuid,
) -> diesel::QueryResult<bool> {
    let found: Option<Uuid> = sessions::table
        .filter(sessions::id.eq(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(Utc::now()))
        .select(sessions::id)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

/// The active sessions of `user_id`, newest first.
/// One page of a user's live sessions, newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    page: crate::pagination::Page,
) -> diesel::QueryResult<Vec<SessionRow>> {
    let query = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(Utc::now()))
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .limit(page.limit)
        .select(SessionRow::as_select())
        .into_boxed();
    crate::seek!(query, desc, sessions::created_at, sessions::id, page.after)
        .load(conn)
        .await
}
