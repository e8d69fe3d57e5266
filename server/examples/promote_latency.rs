//! Promotion apply → first 200 of the promoted commit through the router, for a no-build
//! Node app (`bench/promote-latency.sh`): each run deploys a new commit to staging (not
//! timed), makes the plan (not timed), then times applying it until production serves the
//! new commit. 20 runs after a warm-up; prints p50/p95. Target: p50 ≤ 200 ms.

use std::time::{Duration, Instant};

use railyard_server::testing::{TestApp, git_commit, git_repo};
use serde_json::json;

const SERVER: &str = "const v = require('fs').readFileSync('version.txt', 'utf8').trim();\n\
require('http').createServer((q, s) => s.end(v)).listen(process.env.PORT, '127.0.0.1');\n";
const RUNS: usize = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Polls `url` (with `host`) every 2 ms until it answers 200 with `body`.
async fn until_serves(client: &reqwest::Client, url: &str, host: &str, body: &str) {
    loop {
        if let Ok(res) = client.get(url).header("host", host).send().await
            && res.status() == 200
            && res.text().await.is_ok_and(|b| b == body)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let app = TestApp::with(&[("RAILYARD_DRAIN_SECS", "0")], axum::Router::new()).await;
            let (workers, edge) = app.start_runtime().await;
            let router = TestApp::serve_edge(edge).await;
            let (repo, _) = git_repo(&[
                ("Procfile", "web: node server.js\n"),
                ("server.js", SERVER),
                ("version.txt", "v0"),
            ]);
            let mut owner = app.admin().await;
            let service = owner.git_service("bench", "web", repo.path()).await;
            let (project, production) = owner.project_and_production(&service).await;
            let res = owner
                .post(
                    &format!("/api/v1/projects/{project}/environments"),
                    json!({"name": "staging", "clone_from": production}),
                )
                .await;
            anyhow::ensure!(res.status == 201, "staging: {}", res.text());
            let staging = res.json()["environment"]["id"].as_str().unwrap_or_default().to_owned();
            let client = reqwest::Client::builder().no_proxy().build()?;
            let url = format!("http://{router}/");
            owner.deploy_and_wait(&service).await;
            until_serves(&client, &url, "web-production-bench.localhost", "v0").await;

            let mut times = Vec::new();
            for run in 0..=RUNS {
                let version = format!("v{}", run + 1);
                git_commit(repo.path(), &[("version.txt", &version)], false);
                let res = owner
                    .post(
                        &format!("/api/v1/services/{service}/deployments"),
                        json!({"environment_id": staging}),
                    )
                    .await;
                anyhow::ensure!(res.status == 201, "deploy to staging: {}", res.text());
                tokio::time::timeout(
                    Duration::from_secs(60),
                    until_serves(&client, &url, "web-staging-bench.localhost", &version),
                )
                .await?;
                // The plan is bound to both environments' state: let staging's switch settle
                // first, and plan again if it moved after all.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let promotions = format!("/api/v1/services/{service}/promotions");
                let ask = json!({"from_environment_id": staging, "to_environment_id": production});
                let mut attempt = 0;
                let (began, res) = loop {
                    let plan = owner.post(&promotions, ask.clone()).await;
                    anyhow::ensure!(plan.status == 200, "plan: {}", plan.text());
                    let plan_id = plan.json()["promotion"]["plan_id"].clone();
                    let apply = json!({"from_environment_id": staging, "to_environment_id": production,
                                       "dry_run": false, "plan_id": plan_id});
                    let began = Instant::now();
                    let res = owner.post(&promotions, apply).await;
                    attempt += 1;
                    if res.status != 409 || attempt == 3 {
                        break (began, res);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                anyhow::ensure!(res.status == 201, "apply: {}", res.text());
                tokio::time::timeout(
                    Duration::from_secs(60),
                    until_serves(&client, &url, "web-production-bench.localhost", &version),
                )
                .await?;
                if run > 0 {
                    times.push(began.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            workers.shutdown().await;

            times.sort();
            println!("Promotion apply -> first 200 of the promoted commit, no-build Node app (target p50 <= 200 ms)");
            println!(
                "{:<44} p50 {:>7.1} ms   p95 {:>7.1} ms   (n={})",
                "railyard (plan applied -> copy, start, switch)",
                percentile(&times, 50.0).as_secs_f64() * 1000.0,
                percentile(&times, 95.0).as_secs_f64() * 1000.0,
                times.len()
            );
            anyhow::Ok(())
        })
}
