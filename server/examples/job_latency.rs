//! Enqueue → worker-start latency of the job queue (`bench/job-latency.sh`): 200 jobs, each
//! enqueued (and committed) while the workers are idle; prints p50/p95/p99/max.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use railyard_server::{
    db,
    jobs::{self, Job, JobHandler, WorkerConfig, WorkerPool},
    testing::{TestDb, config},
};

struct Stamp {
    origin: Instant,
    started: Mutex<Vec<(i64, Duration)>>,
}

#[async_trait::async_trait]
impl JobHandler for Stamp {
    fn kind(&self) -> &'static str {
        "bench.noop"
    }

    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        self.started
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .push((job.id, self.origin.elapsed()));
        Ok(())
    }
}

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let database = TestDb::new().await;
            let settings = config(&database.url, &[]);
            let pool = db::connect_pool(&settings.database, &database.url).await?;
            let stamp = Arc::new(Stamp {
                origin: Instant::now(),
                started: Mutex::new(Vec::new()),
            });
            let workers = WorkerPool::start(
                pool.clone(),
                database.url.clone(),
                vec![stamp.clone()],
                WorkerConfig {
                    workers: 4,
                    poll_interval: Duration::from_secs(60),
                    ..WorkerConfig::default()
                },
            );
            tokio::time::sleep(Duration::from_millis(500)).await;

            let mut enqueued = Vec::new();
            let mut conn = pool.get().await?;
            for _ in 0..200 {
                let before = stamp.origin.elapsed();
                let id = jobs::enqueue(&mut conn, "bench.noop", serde_json::json!({}), None, 1)
                    .await?
                    .unwrap_or_default();
                enqueued.push((id, before));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            drop(conn);
            tokio::time::sleep(Duration::from_millis(500)).await;
            workers.shutdown().await;

            let started = stamp
                .started
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .clone();
            let mut latencies: Vec<Duration> = enqueued
                .iter()
                .filter_map(|(id, at)| {
                    started
                        .iter()
                        .find(|(s, _)| s == id)
                        .map(|(_, start)| start.saturating_sub(*at))
                })
                .collect();
            anyhow::ensure!(latencies.len() == 200, "only {} of 200 jobs ran", latencies.len());
            latencies.sort();
            let pick = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "enqueue -> worker start over {} jobs (4 workers, NOTIFY wake-up, 60 s poll fallback)",
                latencies.len()
            );
            println!(
                "  p50 {:.2} ms   p95 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
                ms(pick(0.5)),
                ms(pick(0.95)),
                ms(pick(0.99)),
                ms(pick(1.0))
            );
            println!(
                "  target: p99 <= 20 ms -> {}",
                if pick(0.99) <= Duration::from_millis(20) {
                    "met"
                } else {
                    "NOT met"
                }
            );
            Ok(())
        })
}
