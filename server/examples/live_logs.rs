//! Live logs under load (`bench/live-logs.sh`): a Node app prints 5,000 lines/s (each line
//! carries the time it was printed) for `BENCH_SECS` (60) seconds while 50 WebSocket viewers
//! follow its runtime log. Prints, per viewer, the lines delivered and "dropped" markers, and
//! the app stdout → viewer latency p50/p99 over every delivered line.
//! Target: 5,000 lines/s sustained, p99 ≤ 250 ms, 0 drops for viewers that keep up.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use railyard_server::testing::{TestApp, git_repo};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue};

const VIEWERS: usize = 50;
const RATE: u64 = 5_000;

fn app_js(seconds: u64) -> String {
    format!(
        "let n = 0; const end = Date.now() + {ms};\n\
         const tick = () => {{\n\
           if (Date.now() > end) return;\n\
           let out = '';\n\
           for (let i = 0; i < 50; i++) {{ n++; out += `t=${{(performance.timeOrigin + performance.now()).toFixed(3)}} n=${{n}}\\n`; }}\n\
           process.stdout.write(out);\n\
           setTimeout(tick, 10 - (Date.now() % 10));\n\
         }};\n\
         require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT, '127.0.0.1', tick);\n",
        ms = seconds * 1000
    )
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or_default()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let app = TestApp::new().await;
            let (workers, _edge) = app.start_runtime().await;
            let addr = app.serve().await;
            let (repo, _) = git_repo(&[("Procfile", "web: node app.js\n"), ("app.js", &app_js(seconds))]);
            let mut owner = app.admin().await;
            let service = owner.git_service("bench", "web", repo.path()).await;
            let project =
                owner.get(&format!("/api/v1/services/{service}")).await.json()["service"]["project_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
            let environment =
                owner.get(&format!("/api/v1/projects/{project}")).await.json()["project"]["environments"][0]
                    ["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
            let topic = format!("service:{service}:{environment}");
            let cookies = owner.cookie_header();

            // The viewers connect first and follow from the start of the log.
            let mut viewers = Vec::new();
            for _ in 0..VIEWERS {
                let mut request = format!("ws://{addr}/api/v1/live").into_client_request()?;
                request
                    .headers_mut()
                    .insert("cookie", HeaderValue::from_str(&cookies)?);
                let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
                let subscribe = json!({"type": "subscribe", "topic": topic, "cursor": 0});
                socket.send(Message::Text(subscribe.to_string().into())).await?;
                viewers.push(tokio::spawn(async move {
                    let (mut lines, mut dropped, mut latencies) = (0u64, 0u64, Vec::new());
                    let idle = Duration::from_secs(seconds + 30);
                    while let Ok(Some(Ok(message))) = tokio::time::timeout(idle, socket.next()).await {
                        let Message::Text(text) = message else { continue };
                        let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
                            continue;
                        };
                        match message["type"].as_str() {
                            Some("lines") => {
                                let received = now_ms();
                                for line in message["lines"].as_array().into_iter().flatten() {
                                    let text = line["text"].as_str().unwrap_or_default();
                                    let Some(sent) = text
                                        .strip_prefix("t=")
                                        .and_then(|t| t.split(' ').next())
                                        .and_then(|t| t.parse::<f64>().ok())
                                    else {
                                        continue;
                                    };
                                    lines += 1;
                                    latencies.push(received - sent);
                                    if text.ends_with(&format!("n={}", seconds * RATE)) {
                                        return (lines, dropped, latencies);
                                    }
                                }
                            }
                            Some("dropped") => dropped += message["count"].as_u64().unwrap_or(0),
                            _ => {}
                        }
                    }
                    (lines, dropped, latencies)
                }));
            }
            let deployment = owner.deploy_and_wait(&service).await;
            println!(
                "app deployed ({}); printing {RATE} lines/s for {seconds} s to {VIEWERS} viewers",
                deployment["state"]
            );
            let mut all = Vec::new();
            let (mut least, mut most, mut drops) = (u64::MAX, 0u64, 0u64);
            for viewer in viewers {
                let (lines, dropped, latencies) = viewer.await?;
                least = least.min(lines);
                most = most.max(lines);
                drops += dropped;
                all.extend(latencies);
            }
            all.sort_by(f64::total_cmp);
            println!("expected lines per viewer        {}", seconds * RATE);
            println!("delivered per viewer (min..max)  {least}..{most}");
            println!("dropped markers (all viewers)    {drops} lines");
            if !all.is_empty() {
                println!(
                    "stdout → viewer latency          p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
                    percentile(&all, 50.0),
                    percentile(&all, 99.0),
                    all[all.len() - 1]
                );
            }
            workers.shutdown().await;
            anyhow::Ok(())
        })
}
