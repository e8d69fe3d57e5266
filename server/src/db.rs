//! PostgreSQL: the connection pool and the embedded migrations.

use std::time::Duration;

use anyhow::Context as _;
use diesel::ConnectionError;
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, bb8::Pool},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt as _;

use crate::config::{DatabaseConfig, redact_url};

pub type DbPool = Pool<AsyncPgConnection>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Key of the advisory lock that serialises migrations between replicas starting at once.
const MIGRATION_LOCK: i64 = 0x5241_494c_5941_5244; // "RAILYARD"

/// Builds the pool; every new connection gets `statement_timeout` so no query holds a
/// connection forever. Fails fast when the database does not answer.
pub async fn connect_pool(config: &DatabaseConfig, url: &str) -> anyhow::Result<DbPool> {
    let statement_timeout_ms = config.statement_timeout.as_millis();
    let mut manager_config = ManagerConfig::default();
    manager_config.custom_setup = Box::new(move |url| {
        async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.batch_execute(&format!(
                "SET statement_timeout = {statement_timeout_ms}; SET application_name = 'railyard-server'"
            ))
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, manager_config);
    let pool = Pool::builder()
        .max_size(config.pool_size)
        .connection_timeout(config.acquire_timeout)
        .build(manager)
        .await
        .with_context(|| format!("cannot build the database pool for {}", redact_url(url)))?;
    // Prove the database answers now rather than on the first request.
    let mut conn = pool
        .get()
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact_url(url)))?;
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .context("PostgreSQL does not answer")?;
    drop(conn);
    Ok(pool)
}

/// Runs pending migrations under an advisory lock. Needs the multi-thread runtime.
pub async fn run_migrations(url: &str) -> anyhow::Result<()> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {} to migrate", redact_url(url)))?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map_err(|err| anyhow::anyhow!("migration failed: {err}"))?
        .len();
    let mut conn = harness.into_inner();
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .await?;
    tracing::info!(applied, "database migrations are up to date");
    Ok(())
}

/// `SELECT 1` through the pool within `timeout`.
pub async fn ping(pool: &DbPool, timeout: Duration) -> bool {
    let check = async {
        let mut conn = pool.get().await.ok()?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await.ok()
    };
    matches!(tokio::time::timeout(timeout, check).await, Ok(Some(_)))
}
