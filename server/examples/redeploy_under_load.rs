//! Zero-downtime redeploys (`bench/redeploy-under-load.sh`): under a constant stream of
//! requests through the router (8 keep-alive clients), 20 redeploys of a Node app, every
//! fourth of them (5) with a health check that fails. Prints requests served, requests
//! failed (target 0), and how the deploys ended: 15 live, 5 failed with the release that was
//! serving kept (the "rollback to the serving release").

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use railyard_server::testing::{TestApp, git_commit, git_repo};

const SERVER: &str = "const fs = require('fs');\n\
const v = fs.readFileSync('version.txt', 'utf8').trim();\n\
const healthy = fs.readFileSync('healthy.txt', 'utf8').trim() === 'yes';\n\
require('http').createServer((q, s) => {\n\
  if (q.url === '/health') { s.statusCode = healthy ? 200 : 500; }\n\
  s.end(v);\n\
}).listen(process.env.PORT, '127.0.0.1');\n";
const TOML: &str = "start = \"node server.js\"\nhealth_check = \"/health\"\n";
const HOST: &str = "web-production-bench.localhost";
const CLIENTS: usize = 8;

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let app = TestApp::with(
                &[
                    ("RAILYARD_DRAIN_SECS", "2"),
                    ("RAILYARD_HEALTH_TIMEOUT_SECS", "3"),
                    ("RAILYARD_STOP_GRACE_SECS", "5"),
                ],
                axum::Router::new(),
            )
            .await;
            let (workers, edge) = app.start_runtime().await;
            let router = TestApp::serve_edge(edge).await;
            let (repo, _) = git_repo(&[
                ("railyard.toml", TOML),
                ("server.js", SERVER),
                ("version.txt", "v0"),
                ("healthy.txt", "yes"),
            ]);
            let mut owner = app.admin().await;
            let service = owner.git_service("bench", "web", repo.path()).await;
            let first = owner.deploy_and_wait(&service).await;
            anyhow::ensure!(first["state"] == "active", "{first}");

            let url = format!("http://{router}/");
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()?;
            while client
                .get(&url)
                .header("host", HOST)
                .send()
                .await
                .map(|r| r.status() != 200)
                .unwrap_or(true)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let streaming = Arc::new(AtomicBool::new(true));
            let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
            let mut stream = Vec::new();
            for _ in 0..CLIENTS {
                let (client, url, streaming) = (client.clone(), url.clone(), streaming.clone());
                let (served, failed, failures) = (served.clone(), failed.clone(), failures.clone());
                stream.push(tokio::spawn(async move {
                    while streaming.load(Ordering::Relaxed) {
                        match client.get(&url).header("host", HOST).send().await {
                            Ok(res) if res.status() == 200 => {
                                let _ = res.bytes().await;
                                served.fetch_add(1, Ordering::Relaxed);
                            }
                            other => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut list) = failures.lock() {
                                    list.push(match other {
                                        Ok(res) => res.status().to_string(),
                                        Err(err) => err.to_string(),
                                    });
                                }
                            }
                        }
                    }
                }));
            }

            let began = Instant::now();
            let (mut live, mut kept) = (0, 0);
            let mut serving = "v0".to_owned();
            for run in 1..=20 {
                let healthy = run % 4 != 0;
                let version = format!("v{run}");
                git_commit(
                    repo.path(),
                    &[
                        ("version.txt", &version),
                        ("healthy.txt", if healthy { "yes" } else { "no" }),
                    ],
                    false,
                );
                let done = owner.deploy_and_wait(&service).await;
                let state = done["state"].as_str().unwrap_or_default().to_owned();
                if healthy {
                    anyhow::ensure!(state == "active", "run {run}: {done}");
                    live += 1;
                    serving = version;
                } else {
                    anyhow::ensure!(
                        state == "failed",
                        "run {run} should fail its health check: {done}"
                    );
                    let body = client.get(&url).header("host", HOST).send().await?.text().await?;
                    if body == serving {
                        kept += 1;
                    }
                }
                println!(
                    "deploy {run:>2}: {state:<6} ({})",
                    done["reason"].as_str().unwrap_or("healthy")
                );
            }
            // Let the last switch's drain and the last requests finish.
            tokio::time::sleep(Duration::from_secs(3)).await;
            streaming.store(false, Ordering::Relaxed);
            for task in stream {
                task.await?;
            }
            workers.shutdown().await;

            let failed = failed.load(Ordering::Relaxed);
            println!();
            println!(
                "20 redeploys in {:.1} s under {CLIENTS} streaming clients",
                began.elapsed().as_secs_f64()
            );
            println!("requests served:  {}", served.load(Ordering::Relaxed));
            println!("requests failed:  {failed} (target 0)");
            println!("deploys live:     {live} (expected 15)");
            println!("failed health checks that left the serving release in place: {kept} of 5 (target 5)");
            if failed > 0 {
                let list = failures.lock().map(|l| l.clone()).unwrap_or_default();
                println!("failures: {list:?}");
            }
            anyhow::Ok(())
        })
}
