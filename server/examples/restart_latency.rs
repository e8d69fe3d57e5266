//! Crash → restarted for a supervised Node app (`bench/restart-latency.sh`): 20 apps, each
//! crashed once after it serves (a first failure: the policy's 100 ms backoff applies);
//! prints p50/p95 of crash → new process started and crash → answering again.
//! Target: crash → restarted p50 ≤ 150 ms.

use std::time::{Duration, Instant};

use railyard_server::{
    runtime::{Launch, RestartPolicy, Runtime, native::NativeRuntime},
    sandbox::processes_in,
    testing::TestApp,
};
use railyard_shared::deployments::Step;

const APP: &str = "require('http').createServer((q, s) => { if (q.url === '/crash') process.exit(1); s.end('ok'); })\n\
  .listen(process.env.PORT, '127.0.0.1');\n";
const RUNS: usize = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[allow(clippy::print_stdout)]
fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{name:<36} p50 {:>7.1} ms   p95 {:>7.1} ms   (n={})",
        percentile(&times, 50.0).as_secs_f64() * 1000.0,
        percentile(&times, 95.0).as_secs_f64() * 1000.0,
        times.len()
    );
}

async fn answers(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
}

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let app = TestApp::new().await;
            let runtime = NativeRuntime::new(app.state.db.clone());
            let client = reqwest::Client::builder().no_proxy().build()?;
            let (mut restarted, mut serving) = (Vec::new(), Vec::new());
            for _ in 0..RUNS {
                let dir = tempfile::tempdir()?;
                let dir = std::fs::canonicalize(dir.path())?;
                std::fs::write(dir.join("app.js"), APP)?;
                let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
                let launch = Launch {
                    instance: uuid::Uuid::new_v4(),
                    dir: dir.clone(),
                    start: Step::Shell("exec node app.js".into()),
                    env: vec![("PATH".into(), std::env::var_os("PATH").unwrap_or_default())],
                    port,
                    log: dir.join("app.log"),
                    restart: RestartPolicy::OnFailure,
                    secrets: Vec::new(),
                    deployment: None,
                    health_check: None,
                    memory_limit_mb: None,
                    jail: None,
                };
                let id = launch.instance;
                let first = runtime.start(launch).await?.pid;
                runtime.supervise(id);
                while !answers(port).await {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let began = Instant::now();
                let _ = client.get(format!("http://127.0.0.1:{port}/crash")).send().await;
                loop {
                    let now = processes_in(&dir);
                    if !now.is_empty() && !now.contains(&first) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                restarted.push(began.elapsed());
                while !answers(port).await {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                serving.push(began.elapsed());
                runtime.stop(id, Duration::from_secs(2)).await?;
            }
            println!("Crash -> restart of a supervised Node app (target: restarted p50 <= 150 ms)");
            report("crash -> new process started", restarted);
            report("crash -> answering again", serving);
            anyhow::Ok(())
        })
}
