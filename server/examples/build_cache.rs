//! The build cache (`bench/build-cache.sh`): a Rust app with dependencies and a Node.js app
//! with a lockfile (bench/fixtures), each built twice with nothing changed; prints both
//! build times and their ratio. Target: the second build takes at most 0.2 of the first.

use std::time::Duration;

use railyard_server::testing::{Fixture, TestApp, git_repo};
use railyard_shared::DeploymentState;

const DONE: &[DeploymentState] = &[
    DeploymentState::Active,
    DeploymentState::Failed,
    DeploymentState::Cancelled,
];

/// The files of the sample app in `bench/fixtures/<name>`.
fn fixture(name: &str) -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bench/fixtures")
        .join(name);
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                let relative = path
                    .strip_prefix(&root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                files.push((relative, text));
            }
        }
    }
    files
}

/// Builds `service` in production once, live; the build's own duration.
async fn build(fx: &mut Fixture<'_>, service: uuid::Uuid) -> anyhow::Result<Duration> {
    let id = fx.deploy(service, fx.production).await.deployment.id.uuid();
    let done = fx.wait_within(id, DONE, 900).await;
    anyhow::ensure!(
        done.deployment.state == DeploymentState::Active,
        "the build did not go live:\n{}",
        fx.log(id).await
    );
    let ms = done.durations.build_ms.unwrap_or_default();
    Ok(Duration::from_millis(u64::try_from(ms).unwrap_or_default()))
}

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let app = TestApp::with(&[("RAILYARD_DRAIN_SECS", "0")], axum::Router::new()).await;
            let (workers, _edge) = app.start_runtime().await;
            let mut fx = Fixture::new(&app).await;
            let mut worst: f64 = 0.0;
            for name in ["rust", "express"] {
                let files = fixture(name);
                let borrowed: Vec<(&str, &str)> =
                    files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
                let (repo, _) = git_repo(&borrowed);
                let service = fx.git_service(name, repo.path()).await;
                let first = build(&mut fx, service).await?;
                let second = build(&mut fx, service).await?;
                let ratio = second.as_secs_f64() / first.as_secs_f64().max(0.001);
                worst = worst.max(ratio);
                println!(
                    "{name:<8} first build {:>7.2} s   second build {:>6.2} s   ratio {ratio:.3}",
                    first.as_secs_f64(),
                    second.as_secs_f64()
                );
            }
            println!(
                "worst ratio {worst:.3} (target <= 0.2): {}",
                if worst <= 0.2 { "met" } else { "NOT met" }
            );
            workers.shutdown().await;
            Ok(())
        })
}
