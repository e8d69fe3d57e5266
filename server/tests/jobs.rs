//! The durable job queue against a real PostgreSQL: transactional enqueue, NOTIFY wake-up,
//! exactly-once claiming under concurrency, retries with backoff, dead jobs, expired leases,
//! panics, graceful shutdown.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use railyard_server::{
    jobs::{self, Job, JobHandler, WorkerConfig, WorkerPool},
    schema::jobs as jobs_table,
    testing::TestApp,
};
use serde_json::json;

/// Records every run; fails the first `fail_times` attempts of each job; sleeps `sleep`.
#[derive(Default)]
struct Recorder {
    runs: Mutex<Vec<i64>>,
    fail_times: i32,
    sleep: Duration,
    panic: bool,
}

#[async_trait::async_trait]
impl JobHandler for Recorder {
    fn kind(&self) -> &'static str {
        "test.record"
    }

    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        self.runs.lock().unwrap().push(job.id);
        tokio::time::sleep(self.sleep).await;
        if self.panic {
            panic!("handler bug");
        }
        anyhow::ensure!(
            job.attempts > self.fail_times,
            "attempt {} fails on purpose",
            job.attempts
        );
        Ok(())
    }
}

fn config(workers: usize) -> WorkerConfig {
    WorkerConfig {
        workers,
        lease: Duration::from_secs(2),
        // Long: a test that finishes quickly proves NOTIFY woke the worker.
        poll_interval: Duration::from_secs(30),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(5),
        ..WorkerConfig::default()
    }
}

async fn enqueue(app: &TestApp, dedupe: Option<&str>, max_attempts: i32) -> Option<i64> {
    let mut conn = app.state.db.get().await.unwrap();
    jobs::enqueue(&mut conn, "test.record", json!({"n": 1}), dedupe, max_attempts)
        .await
        .unwrap()
}

async fn states(app: &TestApp) -> HashMap<i64, (String, i32, Option<String>)> {
    let mut conn = app.state.db.get().await.unwrap();
    let rows: Vec<(i64, String, i32, Option<String>)> = jobs_table::table
        .select((
            jobs_table::id,
            jobs_table::state,
            jobs_table::attempts,
            jobs_table::last_error,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(id, state, attempts, error)| (id, (state, attempts, error)))
        .collect()
}

async fn wait_until(
    app: &TestApp,
    what: &str,
    done: impl Fn(&HashMap<i64, (String, i32, Option<String>)>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let current = states(app).await;
        if done(&current) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn start(app: &TestApp, handler: Arc<Recorder>, workers: usize) -> WorkerPool {
    WorkerPool::start(
        app.state.db.clone(),
        app.db.url.clone(),
        vec![handler],
        config(workers),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_exists_only_if_its_transaction_commits() {
    let app = TestApp::new().await;
    let mut conn = app.state.db.get().await.unwrap();
    let rolled_back = conn
        .transaction::<(), diesel::result::Error, _>(async |conn| {
            jobs::enqueue(conn, "test.record", json!({}), None, 3).await?;
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(rolled_back.is_err());
    assert!(states(&app).await.is_empty());

    // With a dedupe key, a job is added once, ever.
    assert!(enqueue(&app, Some("deploy:1"), 3).await.is_some());
    assert!(enqueue(&app, Some("deploy:1"), 3).await.is_none());
    assert_eq!(states(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_wakes_an_idle_worker_at_once() {
    let app = TestApp::new().await;
    let handler = Arc::new(Recorder::default());
    let pool = start(&app, handler.clone(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await; // idle, listening
    let started = Instant::now();
    let id = enqueue(&app, None, 3).await.unwrap();
    wait_until(&app, "the job to finish", |s| s[&id].0 == "done").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken by NOTIFY, not the 30 s poll: {:?}",
        started.elapsed()
    );
    pool.shutdown().await;
    assert_eq!(*handler.runs.lock().unwrap(), [id]);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_workers_run_every_job_exactly_once() {
    let app = TestApp::new().await;
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(enqueue(&app, None, 3).await.unwrap());
    }
    let handler = Arc::new(Recorder {
        sleep: Duration::from_millis(5),
        ..Recorder::default()
    });
    // Two pools, as two processes would be.
    let first = start(&app, handler.clone(), 4);
    let second = start(&app, handler.clone(), 4);
    wait_until(&app, "all jobs", |s| {
        s.values().all(|(state, _, _)| state == "done")
    })
    .await;
    first.shutdown().await;
    second.shutdown().await;
    let mut runs = handler.runs.lock().unwrap().clone();
    runs.sort_unstable();
    assert_eq!(runs, ids, "each job ran once");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_retry_with_backoff_then_die_with_the_last_error() {
    let app = TestApp::new().await;
    let handler = Arc::new(Recorder {
        fail_times: 100,
        ..Recorder::default()
    });
    let flaky = Arc::new(Recorder {
        fail_times: 2,
        ..Recorder::default()
    });
    let dead = enqueue(&app, None, 3).await.unwrap();
    let pool = start(&app, handler.clone(), 2);
    wait_until(&app, "the job to die", |s| s[&dead].0 == "dead").await;
    pool.shutdown().await;
    let states = states(&app).await;
    assert_eq!(states[&dead].1, 3, "three attempts");
    assert_eq!(states[&dead].2.as_deref(), Some("attempt 3 fails on purpose"));

    let recovers = enqueue(&app, None, 5).await.unwrap();
    let pool = start(&app, flaky.clone(), 1);
    wait_until(&app, "the flaky job", |s| s[&recovers].0 == "done").await;
    pool.shutdown().await;
    assert_eq!(states_of(&app, recovers).await.1, 3, "failed twice, then done");
}

async fn states_of(app: &TestApp, id: i64) -> (String, i32, Option<String>) {
    states(app).await.remove(&id).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_workers_job_is_claimed_again_after_its_lease() {
    let app = TestApp::new().await;
    let id = enqueue(&app, None, 3).await.unwrap();
    // A worker claimed it and died: running, leased to a process that no longer exists.
    let mut conn = app.state.db.get().await.unwrap();
    diesel::update(jobs_table::table.find(id))
        .set((
            jobs_table::state.eq("running"),
            jobs_table::attempts.eq(1),
            jobs_table::locked_by.eq("ghost"),
            jobs_table::locked_until.eq(chrono::Utc::now() + chrono::Duration::milliseconds(500)),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let handler = Arc::new(Recorder::default());
    let pool = WorkerPool::start(
        app.state.db.clone(),
        app.db.url.clone(),
        vec![handler.clone()],
        WorkerConfig {
            poll_interval: Duration::from_millis(100),
            ..config(1)
        },
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        handler.runs.lock().unwrap().is_empty(),
        "not while the lease holds"
    );
    wait_until(&app, "the re-claimed job", |s| s[&id].0 == "done").await;
    pool.shutdown().await;
    assert_eq!(states_of(&app, id).await.1, 2, "the second attempt finished it");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_handler_is_a_failed_attempt() {
    let app = TestApp::new().await;
    let id = enqueue(&app, None, 2).await.unwrap();
    let handler = Arc::new(Recorder {
        panic: true,
        ..Recorder::default()
    });
    let pool = start(&app, handler.clone(), 1);
    wait_until(&app, "the job to die", |s| s[&id].0 == "dead").await;
    pool.shutdown().await;
    assert_eq!(
        states_of(&app, id).await.2.as_deref(),
        Some("the job handler panicked")
    );
    assert_eq!(handler.runs.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_finishes_running_jobs_or_hands_them_back() {
    let app = TestApp::new().await;
    let quick = enqueue(&app, None, 3).await.unwrap();
    let handler = Arc::new(Recorder {
        sleep: Duration::from_millis(400),
        ..Recorder::default()
    });
    let pool = start(&app, handler.clone(), 1);
    wait_until(&app, "the job to start", |s| s[&quick].0 == "running").await;
    pool.shutdown().await;
    assert_eq!(
        states_of(&app, quick).await.0,
        "done",
        "finished within the grace period"
    );

    let slow = enqueue(&app, None, 3).await.unwrap();
    let handler = Arc::new(Recorder {
        sleep: Duration::from_secs(30),
        ..Recorder::default()
    });
    let pool = WorkerPool::start(
        app.state.db.clone(),
        app.db.url.clone(),
        vec![handler],
        WorkerConfig {
            shutdown_grace: Duration::from_millis(300),
            ..config(1)
        },
    );
    wait_until(&app, "the job to start", |s| s[&slow].0 == "running").await;
    pool.shutdown().await;
    let (state, attempts, _) = states_of(&app, slow).await;
    assert_eq!(
        (state.as_str(), attempts),
        ("queued", 0),
        "handed back, the attempt not counted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_with_a_runtime_handles_every_job_kind() {
    let app = TestApp::new().await;
    let state = &app.state;
    let (runtime, handlers) = railyard_server::worker::with_runtime(state).await.unwrap();
    let mut handled: Vec<&str> = handlers.iter().map(|h| h.kind()).collect();
    handled.sort_unstable();
    let mut kinds = railyard_server::jobs::kinds::ALL.to_vec();
    kinds.sort_unstable();
    assert_eq!(handled, kinds, "one handler per job kind");
    // A build-only process leaves what needs the runtime to one that has it (reporting to
    // GitHub and apps' databases need none).
    let builds = railyard_server::worker::handlers(state, None);
    assert_eq!(
        builds.iter().map(|h| h.kind()).collect::<Vec<_>>(),
        [
            "deploy",
            "github_status",
            "github_comment",
            "provision_database",
            "backup_database",
            "restore_backup"
        ]
    );
    runtime.detach_all();
}
