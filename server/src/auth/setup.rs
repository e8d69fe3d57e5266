//! The one-time setup token: on an instance without accounts, only a sign-up carrying it
//! creates the first account, which becomes the instance admin. Nobody becomes admin by
//! being the first visitor.

use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::secret;
use crate::schema::{setup_tokens, users};

/// What start-up should tell the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupState {
    /// Accounts exist; no setup token is valid.
    Done,
    /// No accounts; the configured `RAILYARD_SETUP_TOKEN` is the valid one.
    Configured,
    /// No accounts; this freshly generated token is the valid one (print it).
    Generated(String),
}

/// Called at start: replaces any unused setup token with the configured or a new one while
/// the instance has no accounts, and clears them once it has.
pub async fn prepare(conn: &mut AsyncPgConnection, configured: Option<&str>) -> anyhow::Result<SetupState> {
    let has_users: Option<uuid::Uuid> = users::table.select(users::id).first(conn).await.optional()?;
    diesel::delete(setup_tokens::table.filter(setup_tokens::used_at.is_null()))
        .execute(conn)
        .await?;
    if has_users.is_some() {
        return Ok(SetupState::Done);
    }
    let (token, state) = match configured {
        Some(token) => (token.to_owned(), SetupState::Configured),
        None => {
            let token = secret::random_token()?;
            (token.clone(), SetupState::Generated(token))
        }
    };
    diesel::insert_into(setup_tokens::table)
        .values(setup_tokens::token_hash.eq(secret::sha256(&token)))
        .execute(conn)
        .await?;
    Ok(state)
}

/// Marks `token` used; true only for a valid, unused token (exactly once).
pub async fn consume(conn: &mut AsyncPgConnection, token: &str) -> diesel::QueryResult<bool> {
    let n = diesel::update(
        setup_tokens::table
            .filter(setup_tokens::token_hash.eq(secret::sha256(token)))
            .filter(setup_tokens::used_at.is_null()),
    )
    .set(setup_tokens::used_at.eq(chrono::Utc::now()))
    .execute(conn)
    .await?;
    Ok(n == 1)
}
