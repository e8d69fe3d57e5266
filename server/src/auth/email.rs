//! Proving an account's email address: a single-use link mailed to it (24 h), or GitHub's
//! word for an address it verified. Only a proven address lets GitHub sign-in link to an
//! account without its password.

use chrono::{Duration, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use super::secret;
use crate::schema::{email_verifications, users};

/// How long a mailed link works.
pub const LINK_TTL_HOURS: i64 = 24;

/// A new verification token for `email` of `user_id` (only its hash is stored).
pub async fn issue(conn: &mut AsyncPgConnection, user_id: Uuid, email: &str) -> anyhow::Result<String> {
    let token = secret::random_token()?;
    diesel::insert_into(email_verifications::table)
        .values((
            email_verifications::token_hash.eq(secret::sha256(&token)),
            email_verifications::user_id.eq(user_id),
            email_verifications::email.eq(email),
            email_verifications::expires_at.eq(Utc::now() + Duration::hours(LINK_TTL_HOURS)),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// Uses `token`: the user whose email it proves, when it is unused, unexpired and for the
/// address the account still has; `None` otherwise.
pub async fn confirm(conn: &mut AsyncPgConnection, token: &str) -> diesel::QueryResult<Option<Uuid>> {
    let hash = secret::sha256(token);
    conn.transaction(async |conn| {
        let found: Option<(Uuid, String)> = diesel::update(
            email_verifications::table
                .filter(email_verifications::token_hash.eq(hash))
                .filter(email_verifications::used_at.is_null())
                .filter(email_verifications::expires_at.gt(Utc::now())),
        )
        .set(email_verifications::used_at.eq(Utc::now()))
        .returning((email_verifications::user_id, email_verifications::email))
        .get_result(conn)
        .await
        .optional()?;
        let Some((user_id, email)) = found else {
            return Ok(None);
        };
        let n = diesel::update(
            users::table
                .filter(users::id.eq(user_id))
                .filter(users::email.eq(email)),
        )
        .set(users::email_verified_at.eq(Utc::now()))
        .execute(conn)
        .await?;
        Ok((n == 1).then_some(user_id))
    })
    .await
}

/// Records that `user_id`'s email is proven (GitHub verified that very address).
pub async fn mark_verified(conn: &mut AsyncPgConnection, user_id: Uuid) -> diesel::QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .filter(users::email_verified_at.is_null())
        .set(users::email_verified_at.eq(Utc::now()))
        .execute(conn)
        .await?;
    Ok(())
}
