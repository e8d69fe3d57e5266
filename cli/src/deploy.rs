//! `railyard up` (upload the current directory and deploy it) and `railyard deploy`
//! (deploy the service's own source), both following the build log until the deployment
//! is built or fails.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context as _;
use railyard_shared::{
    DeploymentId, DeploymentState, EnvironmentId, ErrorBody, ServiceId,
    deployments::{DeploymentResponse, LogsResponse},
};

/// Talks to the API with an API token.
pub struct Api {
    base: String,
    token: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let token = token
            .filter(|t| !t.trim().is_empty())
            .context("set RAILYARD_TOKEN (or --token) to an API token from your account page")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()?,
        })
    }

    pub async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            if let Ok(err) = serde_json::from_slice::<ErrorBody>(&bytes) {
                anyhow::bail!("{} ({status})", err.error.message);
            }
            anyhow::bail!("the server answered {status}");
        }
        serde_json::from_slice(&bytes).context("unexpected answer from the server")
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Packs `dir` as a .tar.gz: everything but `.git`, `node_modules` and `.railyard`
/// (rebuilt or not the app's), links kept as links.
pub fn pack(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&relative))
            .with_context(|| format!("cannot read {}", dir.join(&relative).display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            if relative.as_os_str().is_empty()
                && [".git", "node_modules", ".railyard"].iter().any(|n| name == *n)
            {
                continue;
            }
            let path = relative.join(&name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                tar.append_dir(&path, entry.path())?;
                stack.push(path);
            } else if kind.is_file() || kind.is_symlink() {
                tar.append_path_with_name(entry.path(), &path)?;
            }
        }
    }
    Ok(tar.into_inner()?.finish()?)
}

/// Uploads `dir` to `service` and follows the build.
pub async fn up(
    api: &Api,
    service: ServiceId,
    environment: Option<EnvironmentId>,
    dir: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let body = pack(dir)?;
    if !json {
        eprintln!("Uploading {} ({} KiB)…", dir.display(), body.len().div_ceil(1024));
    }
    let mut url = api.url(&format!("/api/v1/services/{service}/uploads"));
    if let Some(environment) = environment {
        url.push_str(&format!("?environment={environment}"));
    }
    let created: DeploymentResponse = api
        .send(
            api.http
                .post(url)
                .header("content-type", "application/gzip")
                .body(body),
        )
        .await?;
    follow(api, created.deployment.deployment.id, json).await
}

/// Deploys the service's own source (its branch head, or `commit`) and follows the build.
pub async fn deploy(
    api: &Api,
    service: ServiceId,
    environment: Option<EnvironmentId>,
    commit: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let body = serde_json::json!({ "environment_id": environment, "commit": commit });
    let created: DeploymentResponse = api
        .send(
            api.http
                .post(api.url(&format!("/api/v1/services/{service}/deployments")))
                .json(&body),
        )
        .await?;
    follow(api, created.deployment.deployment.id, json).await
}

/// Prints the build log as it grows until the deployment is built (0), or fails or is
/// cancelled (1).
#[allow(clippy::print_stdout)]
pub async fn follow(api: &Api, id: DeploymentId, json: bool) -> anyhow::Result<ExitCode> {
    if !json {
        eprintln!("Deployment {id}");
    }
    let mut cursor = 0i64;
    loop {
        let detail: DeploymentResponse = api
            .send(api.http.get(api.url(&format!("/api/v1/deployments/{id}"))))
            .await?;
        // Read the log after the state, so lines written before a final state are all seen.
        loop {
            let page: LogsResponse = api
                .send(api.http.get(api.url(&format!(
                    "/api/v1/deployments/{id}/logs?cursor={cursor}&limit=1000"
                ))))
                .await?;
            if !json {
                let mut out = std::io::stdout().lock();
                for line in &page.lines {
                    writeln!(out, "{}", line.text)?;
                }
            }
            match page.lines.last() {
                Some(last) => cursor = last.cursor,
                None => break,
            }
        }
        let deployment = detail.deployment;
        // Followed until it is live (`active`) or ended: a build that finished is not yet
        // a deployment that answers its health check.
        let state = deployment.deployment.state;
        if state == DeploymentState::Active || state.is_final() {
            if json {
                println!("{}", serde_json::to_string_pretty(&deployment)?);
            } else {
                match &deployment.deployment.reason {
                    Some(reason) => eprintln!("Deployment {state}: {reason}"),
                    None => eprintln!("Deployment {state}."),
                }
            }
            return Ok(
                if matches!(state, DeploymentState::Failed | DeploymentState::Cancelled) {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                },
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
