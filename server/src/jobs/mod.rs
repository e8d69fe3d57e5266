//! Durable jobs in PostgreSQL.
//!
//! - [`enqueue`] runs inside the caller's transaction: the job exists exactly when the rows
//!   that asked for it do, and `pg_notify` is delivered on commit.
//! - Workers claim with `FOR UPDATE SKIP LOCKED` (no two workers get one job), wake on
//!   `LISTEN railyard_jobs` (polling only as a fallback), and hold a lease renewed by a
//!   heartbeat. A job whose worker died is claimed again once its lease runs out.
//! - A failed attempt is retried after an exponential backoff with jitter; after
//!   `max_attempts` the job is `dead` with its last error. A panicking handler is a failed
//!   attempt, not a dead worker.
//! - Shutdown stops claiming, lets running jobs finish within a grace period, and hands the
//!   rest back to the queue.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, TextExpressionMethods as _, sql_types,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use futures_util::StreamExt as _;
use tokio::{sync::Notify, task::JoinSet};
use tracing::Instrument as _;

use crate::{db::DbPool, schema::jobs};

pub mod kinds;

pub const CHANNEL: &str = "railyard_jobs";

/// Where a job is in the queue, with its one mapping to `jobs.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobState {
    Queued,
    Running,
    Done,
    Dead,
}

impl JobState {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }
}

/// A claimed job, as its handler sees it.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct Job {
    #[diesel(sql_type = sql_types::Int8)]
    pub id: i64,
    #[diesel(sql_type = sql_types::Text)]
    pub kind: String,
    #[diesel(sql_type = sql_types::Jsonb)]
    pub payload: serde_json::Value,
    /// 1 for the first attempt.
    #[diesel(sql_type = sql_types::Int4)]
    pub attempts: i32,
    #[diesel(sql_type = sql_types::Int4)]
    pub max_attempts: i32,
}

/// Runs jobs of one kind. Handlers must be idempotent: a job whose worker died mid-way runs
/// again.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync {
    fn kind(&self) -> &'static str;
    async fn run(&self, job: &Job) -> anyhow::Result<()>;
}

/// Adds a job inside the caller's transaction. With a `dedupe_key` the job is added at most
/// once, ever; returns `None` when it already existed.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    kind: &str,
    payload: serde_json::Value,
    dedupe_key: Option<&str>,
    max_attempts: i32,
) -> diesel::QueryResult<Option<i64>> {
    let id: Option<i64> = diesel::insert_into(jobs::table)
        .values((
            jobs::kind.eq(kind),
            jobs::payload.eq(payload),
            jobs::dedupe_key.eq(dedupe_key),
            jobs::max_attempts.eq(max_attempts),
        ))
        .on_conflict(jobs::dedupe_key)
        .do_nothing()
        .returning(jobs::id)
        .get_result(conn)
        .await
        .optional()?;
    if id.is_some() {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<sql_types::Text, _>(CHANNEL)
            .bind::<sql_types::Text, _>(kind)
            .execute(conn)
            .await?;
    }
    Ok(id)
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Concurrent jobs in this process.
    pub workers: usize,
    /// How long a claim holds without a heartbeat.
    pub lease: Duration,
    /// Fallback wake-up when no notification arrives.
    pub poll_interval: Duration,
    /// First retry delay; doubles per attempt, capped at `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How long shutdown waits for running jobs before handing them back.
    pub shutdown_grace: Duration,
    /// Names this process in `locked_by`: `<host>:<pid>:<random>`, so a process restarted on
    /// the same host can tell a dead predecessor's leases ([`expire_dead_local_leases`]).
    pub worker_id: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            worker_id: format!(
                "{}:{}:{}",
                host_name(),
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(':', "_"))
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether the process `pid` on this host is a live Railyard server.
fn railyard_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim().starts_with("railyard"))
}

/// Expires at once the leases held by dead Railyard processes of this host (a server that
/// was killed and restarted), so their jobs are taken over now rather than when the lease
/// would have run out. Leases of other hosts are left to expire. Returns how many.
pub async fn expire_dead_local_leases(conn: &mut AsyncPgConnection) -> diesel::QueryResult<usize> {
    let prefix = format!("{}:", host_name());
    let held: Vec<(i64, Option<String>)> = jobs::table
        .filter(jobs::state.eq(JobState::Running.as_str()))
        .filter(jobs::locked_by.like(format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"))))
        .select((jobs::id, jobs::locked_by))
        .load(conn)
        .await?;
    let dead: Vec<i64> = held
        .into_iter()
        .filter(|(_, by)| {
            let pid = by
                .as_deref()
                .and_then(|b| b.strip_prefix(&prefix))
                .and_then(|rest| rest.split(':').next())
                .and_then(|pid| pid.parse::<i32>().ok());
            pid.is_some_and(|pid| pid != std::process::id() as i32 && !railyard_alive(pid))
        })
        .map(|(id, _)| id)
        .collect();
    if dead.is_empty() {
        return Ok(0);
    }
    diesel::update(
        jobs::table
            .filter(jobs::id.eq_any(&dead))
            .filter(jobs::state.eq(JobState::Running.as_str())),
    )
    .set(jobs::locked_until.eq(Utc::now() - chrono::Duration::seconds(1)))
    .execute(conn)
    .await
}

/// The delay before attempt `attempts + 1`: exponential, capped, with up to 20 % jitter.
pub fn backoff(config: &WorkerConfig, attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let base = config
        .retry_base
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(config.retry_max);
    let jitter = crate::auth::secret::random_bytes::<1>()
        .map(|[b]| f64::from(b) / 255.0 * 0.2)
        .unwrap_or(0.0);
    base.mul_f64(1.0 + jitter)
}

/// A running pool of workers; [`WorkerPool::shutdown`] stops it gracefully.
pub struct WorkerPool {
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    tasks: JoinSet<()>,
    db: DbPool,
    config: WorkerConfig,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WorkerPool {
    /// Starts `config.workers` workers for the kinds `handlers` cover, and a listener on
    /// a dedicated connection to `database_url`.
    pub fn start(
        db: DbPool,
        database_url: String,
        handlers: Vec<Arc<dyn JobHandler>>,
        config: WorkerConfig,
    ) -> Self {
        let (stop, _) = tokio::sync::watch::channel(false);
        let stop = Arc::new(stop);
        let wake = Arc::new(Notify::new());
        let handlers = Arc::new(handlers);
        let mut tasks = JoinSet::new();
        tasks.spawn(listen(database_url, wake.clone(), stop.subscribe()));
        for _ in 0..config.workers.max(1) {
            tasks.spawn(work(
                db.clone(),
                handlers.clone(),
                config.clone(),
                wake.clone(),
                stop.subscribe(),
            ));
        }
        Self {
            stop,
            tasks,
            db,
            config,
        }
    }

    /// Stops claiming, waits for running jobs up to the grace period, then hands any job
    /// still leased by this process back to the queue.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        match self.db.get().await {
            Ok(mut conn) => {
                let handed_back = diesel::update(
                    jobs::table
                        .filter(jobs::state.eq(JobState::Running.as_str()))
                        .filter(jobs::locked_by.eq(&self.config.worker_id)),
                )
                .set((
                    jobs::state.eq(JobState::Queued.as_str()),
                    jobs::attempts.eq(jobs::attempts - 1),
                    jobs::locked_by.eq(None::<String>),
                    jobs::locked_until.eq(None::<DateTime<Utc>>),
                    jobs::run_at.eq(Utc::now()),
                ))
                .execute(&mut conn)
                .await;
                match handed_back {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "handed unfinished jobs back to the queue"),
                    Err(err) => {
                        tracing::error!(error = %err, "could not hand jobs back; their leases will expire")
                    }
                }
            }
            Err(err) => tracing::error!(error = %err, "could not hand jobs back; their leases will expire"),
        }
    }
}

async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Forwards `NOTIFY railyard_jobs` to the workers; reconnects after errors.
async fn listen(url: String, wake: Arc<Notify>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let session = async {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            delay = Duration::from_millis(100);
            // Jobs may have been enqueued while nobody listened.
            wake.notify_waiters();
            let mut notifications = std::pin::pin!(conn.notifications_stream());
            while let Some(notification) = notifications.next().await {
                notification?;
                wake.notify_waiters();
            }
            Ok::<(), anyhow::Error>(())
        };
        tokio::select! {
            result = session => {
                if let Err(err) = result {
                    tracing::warn!(error = %format!("{err:#}"), "job listener lost its connection; workers poll meanwhile");
                }
            }
            () = stopped(&mut stop) => return,
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(&mut stop) => return,
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

async fn work(
    db: DbPool,
    handlers: Arc<Vec<Arc<dyn JobHandler>>>,
    config: WorkerConfig,
    wake: Arc<Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let kinds: Vec<String> = handlers.iter().map(|h| h.kind().to_owned()).collect();
    loop {
        if *stop.borrow() {
            return;
        }
        // Register interest before looking, so a notification between the two is not lost.
        let notified = wake.notified();
        let claimed = match db.get().await {
            Ok(mut conn) => claim(&mut conn, &kinds, &config).await,
            Err(err) => Err(anyhow::anyhow!("no database connection: {err}")),
        };
        let mut wait = config.poll_interval;
        match claimed {
            Ok(Some(job)) => {
                if let Some(handler) = handlers.iter().find(|h| h.kind() == job.kind) {
                    run(&db, handler.clone(), job, &config).await;
                }
                continue;
            }
            // Sleep until the next retry or lease expiry is due, if that comes first.
            Ok(None) => {
                if let Ok(mut conn) = db.get().await
                    && let Ok(Some(due)) = next_due(&mut conn, &kinds).await
                {
                    wait = wait.min((due - Utc::now()).to_std().unwrap_or_default());
                }
            }
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "claiming a job failed"),
        }
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(wait) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

/// When the next queued job of `kinds` becomes due, or the next lease runs out.
async fn next_due(
    conn: &mut AsyncPgConnection,
    kinds: &[String],
) -> diesel::QueryResult<Option<DateTime<Utc>>> {
    #[derive(diesel::QueryableByName)]
    struct Due {
        #[diesel(sql_type = sql_types::Nullable<sql_types::Timestamptz>)]
        due: Option<DateTime<Utc>>,
    }
    let row: Due = diesel::sql_query(
        "SELECT LEAST( \
             (SELECT min(run_at) FROM jobs WHERE state = $2 AND kind = ANY($1)), \
             (SELECT min(locked_until) FROM jobs WHERE state = $3 AND kind = ANY($1))) AS due",
    )
    .bind::<sql_types::Array<sql_types::Text>, _>(kinds)
    .bind::<sql_types::Text, _>(JobState::Queued.as_str())
    .bind::<sql_types::Text, _>(JobState::Running.as_str())
    .get_result(conn)
    .await?;
    Ok(row.due)
}

/// Claims the next due job of `kinds`: queued and due, or running with an expired lease.
async fn claim(
    conn: &mut AsyncPgConnection,
    kinds: &[String],
    config: &WorkerConfig,
) -> anyhow::Result<Option<Job>> {
    let job: Option<Job> = diesel::sql_query(
        "UPDATE jobs SET state = $4, attempts = attempts + 1, locked_by = $1, \
             locked_until = now() + make_interval(secs => $2), updated_at = now() \
         WHERE id = ( \
             SELECT id FROM jobs \
             WHERE kind = ANY($3) AND ((state = $5 AND run_at <= now()) \
                 OR (state = $4 AND locked_until < now())) \
             ORDER BY run_at, id \
             FOR UPDATE SKIP LOCKED \
             LIMIT 1) \
         RETURNING id, kind, payload, attempts, max_attempts",
    )
    .bind::<sql_types::Text, _>(&config.worker_id)
    .bind::<sql_types::Double, _>(config.lease.as_secs_f64())
    .bind::<sql_types::Array<sql_types::Text>, _>(kinds)
    .bind::<sql_types::Text, _>(JobState::Running.as_str())
    .bind::<sql_types::Text, _>(JobState::Queued.as_str())
    .get_result(conn)
    .await
    .optional()?;
    // A job whose workers kept dying has used up its attempts: it is dead, not run again.
    if let Some(job) = &job
        && job.attempts > job.max_attempts
    {
        finish(
            conn,
            job.id,
            &config.worker_id,
            Outcome::Dead("its worker stopped before finishing, on every attempt".into()),
        )
        .await?;
        return Ok(None);
    }
    Ok(job)
}

enum Outcome {
    Done,
    Retry(String, Duration),
    Dead(String),
}

async fn finish(conn: &mut AsyncPgConnection, id: i64, worker: &str, outcome: Outcome) -> anyhow::Result<()> {
    let mine = jobs::table
        .filter(jobs::id.eq(id))
        .filter(jobs::locked_by.eq(worker));
    let now = Utc::now();
    let free = (
        jobs::locked_by.eq(None::<String>),
        jobs::locked_until.eq(None::<DateTime<Utc>>),
        jobs::updated_at.eq(now),
    );
    let updated = match outcome {
        Outcome::Done => {
            diesel::update(mine)
                .set((
                    jobs::state.eq(JobState::Done.as_str()),
                    jobs::finished_at.eq(now),
                    free,
                ))
                .execute(conn)
                .await?
        }
        Outcome::Retry(error, delay) => {
            let run_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
            diesel::update(mine)
                .set((
                    jobs::state.eq(JobState::Queued.as_str()),
                    jobs::run_at.eq(run_at),
                    jobs::last_error.eq(error),
                    free,
                ))
                .execute(conn)
                .await?
        }
        Outcome::Dead(error) => {
            diesel::update(mine)
                .set((
                    jobs::state.eq(JobState::Dead.as_str()),
                    jobs::last_error.eq(error),
                    jobs::finished_at.eq(now),
                    free,
                ))
                .execute(conn)
                .await?
        }
    };
    if updated == 0 {
        tracing::warn!(
            job = id,
            "the job's lease was lost before it finished; another worker owns it now"
        );
    }
    Ok(())
}

async fn run(db: &DbPool, handler: Arc<dyn JobHandler>, job: Job, config: &WorkerConfig) {
    let span = tracing::info_span!("job", job.id = job.id, job.kind = %job.kind, job.attempt = job.attempts);
    run_attempt(db, handler, job, config).instrument(span).await;
}

async fn run_attempt(db: &DbPool, handler: Arc<dyn JobHandler>, job: Job, config: &WorkerConfig) {
    // Renew the lease while the handler runs.
    let heartbeat = {
        let (db, id, worker, lease) = (db.clone(), job.id, config.worker_id.clone(), config.lease);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(lease / 3);
            every.tick().await;
            loop {
                every.tick().await;
                if let Ok(mut conn) = db.get().await {
                    let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
                    let _ = diesel::update(
                        jobs::table
                            .filter(jobs::id.eq(id))
                            .filter(jobs::locked_by.eq(&worker)),
                    )
                    .set(jobs::locked_until.eq(until))
                    .execute(&mut conn)
                    .await;
                }
            }
        })
    };
    let result = {
        let job = job.clone();
        tokio::spawn(async move { handler.run(&job).await }).await
    };
    heartbeat.abort();
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(format!("{err:#}")),
        Err(join) if join.is_panic() => Some("the job handler panicked".to_owned()),
        Err(_) => Some("the job was cancelled".to_owned()),
    };
    let outcome = match error {
        None => Outcome::Done,
        Some(error) if job.attempts >= job.max_attempts => {
            tracing::error!(error, "job failed for the last time; it is dead");
            Outcome::Dead(error)
        }
        Some(error) => {
            let delay = backoff(config, job.attempts);
            tracing::warn!(
                error,
                retry_in_ms = delay.as_millis() as u64,
                "job failed; will retry"
            );
            Outcome::Retry(error, delay)
        }
    };
    match db.get().await {
        Ok(mut conn) => {
            if let Err(err) = finish(&mut conn, job.id, &config.worker_id, outcome).await {
                tracing::error!(error = %format!("{err:#}"), "recording the job's outcome failed; its lease will expire");
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "recording the job's outcome failed; its lease will expire")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let config = WorkerConfig {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(10),
            ..WorkerConfig::default()
        };
        let within = |attempt: i32, low: u64| {
            let d = backoff(&config, attempt);
            assert!(
                d >= Duration::from_secs(low) && d <= Duration::from_secs(low).mul_f64(1.2),
                "{attempt}: {d:?}"
            );
        };
        within(1, 1);
        within(2, 2);
        within(3, 4);
        within(4, 8);
        within(5, 10);
        within(60, 10);
    }
}
