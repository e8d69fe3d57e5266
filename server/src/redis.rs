//! Redis through fred: the shared log bus and, later, rate limits and revocations.

use std::time::Duration;

use anyhow::Context as _;
use fred::prelude::{ClientLike, Config, KeysInterface, ReconnectPolicy};

use crate::config::redact_url;

#[derive(Clone)]
pub struct RedisBus {
    client: fred::clients::Client,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").finish_non_exhaustive()
    }
}

impl RedisBus {
    /// Connects and waits for the first connection, failing fast when Redis is unreachable;
    /// later outages are retried in the background with exponential backoff.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let config =
            Config::from_url(url).with_context(|| format!("invalid REDIS_URL {}", redact_url(url)))?;
        let client = fred::types::Builder::from_config(config)
            .with_connection_config(|conn| {
                conn.connection_timeout = Duration::from_secs(3);
                conn.internal_command_timeout = Duration::from_secs(3);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .build()
            .context("cannot build the Redis client")?;
        tokio::time::timeout(Duration::from_secs(5), client.init())
            .await
            .map_err(|_| anyhow::anyhow!("timed out"))
            .and_then(|res| res.map(drop).map_err(anyhow::Error::from))
            .with_context(|| format!("cannot connect to Redis at {}", redact_url(url)))?;
        Ok(Self { client })
    }

    pub async fn ping(&self, timeout: Duration) -> bool {
        let ping = self.client.ping::<String>(None);
        matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(_)))
    }

    /// `INCR key`, setting `EXPIRE key window` when the key is new; the new count.
    pub async fn incr_with_expiry(&self, key: &str, window: Duration) -> Result<i64, fred::error::Error> {
        let count: i64 = self.client.incr(key).await?;
        if count == 1 {
            let _: () = self.client.expire(key, window.as_secs() as i64, None).await?;
        }
        Ok(count)
    }

    pub async fn close(&self) {
        let _ = self.client.quit().await;
    }
}
