//! Trigger → first 200 through the router for a no-build Node app (`bench/deploy-latency.sh`),
//! beside the floor of doing it by hand: `git clone && node server.js` until it answers.
//! 20 runs each after a warm-up; prints p50/p95. Target: p50 ≤ 1 s.

use std::time::{Duration, Instant};

use railyard_server::testing::{TestApp, git_commit, git_repo};

const SERVER: &str = "const v = require('fs').readFileSync('version.txt', 'utf8').trim();\n\
require('http').createServer((q, s) => s.end(v)).listen(process.env.PORT, '127.0.0.1');\n";
const RUNS: usize = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
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
fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{name:<44} p50 {:>7.1} ms   p95 {:>7.1} ms   (n={})",
        percentile(&times, 50.0).as_secs_f64() * 1000.0,
        percentile(&times, 95.0).as_secs_f64() * 1000.0,
        times.len()
    );
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
            let client = reqwest::Client::builder().no_proxy().build()?;
            let url = format!("http://{router}/");
            let host = "web-production-bench.localhost";
            owner.deploy_and_wait(&service).await;
            until_serves(&client, &url, host, "v0").await;

            let mut platform = Vec::new();
            for run in 1..=RUNS {
                let version = format!("v{run}");
                git_commit(repo.path(), &[("version.txt", &version)], false);
                let began = Instant::now();
                let res = owner
                    .post(
                        &format!("/api/v1/services/{service}/deployments"),
                        serde_json::json!({}),
                    )
                    .await;
                anyhow::ensure!(res.status == 201, "deploy: {}", res.text());
                tokio::time::timeout(
                    Duration::from_secs(60),
                    until_serves(&client, &url, host, &version),
                )
                .await?;
                platform.push(began.elapsed());
                // The next deploy starts from a settled state (the old release stopped).
                tokio::time::sleep(Duration::from_millis(200)).await;
            }

            let mut floor = Vec::new();
            let scratch = tempfile::tempdir()?;
            for run in 0..=RUNS {
                let dir = scratch.path().join(format!("clone-{run}"));
                let port = free_port()?;
                let began = Instant::now();
                let status = tokio::process::Command::new("git")
                    .args(["clone", "--quiet", "--depth", "1", "--"])
                    .arg(format!("file://{}", repo.path().display()))
                    .arg(&dir)
                    .status()
                    .await?;
                anyhow::ensure!(status.success(), "git clone failed");
                let mut node = tokio::process::Command::new("node")
                    .arg("server.js")
                    .current_dir(&dir)
                    .env("PORT", port.to_string())
                    .kill_on_drop(true)
                    .spawn()?;
                let version = format!("v{RUNS}");
                until_serves(
                    &client,
                    &format!("http://127.0.0.1:{port}/"),
                    "localhost",
                    &version,
                )
                .await;
                if run > 0 {
                    floor.push(began.elapsed());
                }
                node.kill().await?;
            }
            workers.shutdown().await;

            println!("Trigger -> first 200 of the new release, no-build Node app (target p50 <= 1000 ms)");
            report("railyard (API -> fetch, detect, start, switch)", platform);
            report("floor (git clone && node server.js)", floor);
            anyhow::Ok(())
        })
}
