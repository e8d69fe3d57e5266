//! Brute-force limits for sign-in, sign-up, refresh and token creation, per account and per
//! client address. With Redis configured the counters are shared by every replica (fixed
//! windows: `INCR` + `EXPIRE`); without it they live in this process (governor's GCRA).
//! A refused attempt gets 429 with `Retry-After`.

use std::{num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as Governor, clock::Clock as _};

use crate::{error::AppError, redis::RedisBus};

/// What is being limited, and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Sign-in attempts per client address.
    LoginAddress,
    /// Sign-in attempts per account from one address (and password changes per account).
    LoginAccount,
    /// Sign-ups per client address.
    SignupAddress,
    /// Session refreshes per client address.
    RefreshAddress,
    /// API tokens created per user.
    TokenUser,
    /// Verification emails sent per user.
    VerifyMail,
}

impl Bucket {
    const ALL: [Bucket; 6] = [
        Bucket::LoginAddress,
        Bucket::LoginAccount,
        Bucket::SignupAddress,
        Bucket::RefreshAddress,
        Bucket::TokenUser,
        Bucket::VerifyMail,
    ];

    /// `(attempts, per window)`.
    pub fn limit(self) -> (u32, Duration) {
        match self {
            Bucket::LoginAddress => (30, Duration::from_secs(60)),
            Bucket::LoginAccount => (10, Duration::from_secs(300)),
            Bucket::SignupAddress => (20, Duration::from_secs(600)),
            Bucket::RefreshAddress => (120, Duration::from_secs(60)),
            Bucket::TokenUser => (30, Duration::from_secs(3600)),
            Bucket::VerifyMail => (5, Duration::from_secs(3600)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Bucket::LoginAddress => "login-address",
            Bucket::LoginAccount => "login-account",
            Bucket::SignupAddress => "signup-address",
            Bucket::RefreshAddress => "refresh-address",
            Bucket::TokenUser => "token-user",
            Bucket::VerifyMail => "verify-mail",
        }
    }
}

pub struct RateLimiter {
    local: Vec<(Bucket, DefaultKeyedRateLimiter<String>)>,
    redis: Option<RedisBus>,
    /// Keeps this instance's counters apart from other instances sharing the Redis.
    namespace: String,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("shared", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// `namespace` is the same on every replica of one instance and differs between
    /// instances (the app derives it from the master key).
    pub fn new(redis: Option<RedisBus>, namespace: String) -> Self {
        let local = Bucket::ALL
            .into_iter()
            .map(|bucket| {
                let (attempts, window) = bucket.limit();
                let burst = NonZeroU32::new(attempts).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(window / attempts.max(1))
                    .unwrap_or_else(|| Quota::per_second(burst))
                    .allow_burst(burst);
                (bucket, Governor::keyed(quota))
            })
            .collect();
        Self {
            local,
            redis,
            namespace,
        }
    }

    /// Counts one attempt; 429 with `Retry-After` once the bucket is empty.
    pub async fn check(&self, bucket: Bucket, key: &str) -> Result<(), AppError> {
        let wait = match &self.redis {
            Some(redis) => self.check_shared(redis, bucket, key).await,
            None => self.check_local(bucket, key),
        };
        match wait {
            None => Ok(()),
            Some(wait) => {
                tracing::warn!(bucket = bucket.name(), "rate limit reached");
                Err(AppError::too_many_requests(wait))
            }
        }
    }

    fn check_local(&self, bucket: Bucket, key: &str) -> Option<Duration> {
        let (_, limiter) = self.local.iter().find(|(b, _)| *b == bucket)?;
        match limiter.check_key(&key.to_owned()) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(governor::clock::DefaultClock::default().now())),
        }
    }

    async fn check_shared(&self, redis: &RedisBus, bucket: Bucket, key: &str) -> Option<Duration> {
        let (attempts, window) = bucket.limit();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let slot = now.as_secs() / window.as_secs().max(1);
        let redis_key = format!(
            "railyard:{}:ratelimit:{}:{key}:{slot}",
            self.namespace,
            bucket.name()
        );
        match redis.incr_with_expiry(&redis_key, window).await {
            Ok(count) if count > i64::from(attempts) => {
                let window_end = (slot + 1) * window.as_secs();
                Some(Duration::from_secs(
                    window_end.saturating_sub(now.as_secs()).max(1),
                ))
            }
            Ok(_) => None,
            // Redis down: fall back to this process's counters rather than failing open.
            Err(err) => {
                tracing::warn!(error = %err, "shared rate limit unavailable; using the local one");
                self.check_local(bucket, key)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_limits_refuse_after_the_burst_with_a_wait() {
        let limiter = RateLimiter::new(None, "test".into());
        let (attempts, _) = Bucket::LoginAccount.limit();
        for _ in 0..attempts {
            limiter
                .check(Bucket::LoginAccount, "a@example.com")
                .await
                .unwrap();
        }
        let err = limiter
            .check(Bucket::LoginAccount, "a@example.com")
            .await
            .unwrap_err();
        assert_eq!(err.code, railyard_shared::ErrorCode::TooManyRequests);
        assert!(err.retry_after.is_some_and(|s| s >= 1));
        // Other keys and other buckets are not affected.
        limiter
            .check(Bucket::LoginAccount, "b@example.com")
            .await
            .unwrap();
        limiter
            .check(Bucket::LoginAddress, "a@example.com")
            .await
            .unwrap();
    }
}
