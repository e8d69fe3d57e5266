//! A local GitHub for tests: the REST endpoints Railyard calls (repositories, branches,
//! hooks, Deployments and their statuses, issue comments), answering in GitHub's documented
//! shapes, and git's smart HTTP protocol for `{url}/owner/name.git` through the real
//! `git http-backend`. Private repositories need `x-access-token:<token>` as Basic
//! credentials, as GitHub does; while a git request is served, every process's argv is
//! read, and one that carries the token is recorded as a leak.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use super::git_in as git;

/// A REST call Railyard made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub body: Value,
}

#[derive(Debug, Default)]
pub struct FakeState {
    /// The one token GitHub accepts (another answers 401).
    pub token: String,
    /// Repositories (`owner/name`) and whether each is private.
    pub repositories: BTreeMap<String, bool>,
    pub calls: Vec<Call>,
    /// Git requests: `(path, had credentials)`.
    pub git_requests: Vec<(String, bool)>,
    /// Command lines seen holding the token while git ran.
    pub argv_leaks: Vec<String>,
    next_id: i64,
}

#[derive(Clone)]
pub struct FakeGithub {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
    root: Arc<tempfile::TempDir>,
}

impl FakeGithub {
    /// Starts it on a free loopback port; `token` is the one it accepts.
    pub async fn start(token: &str) -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            token: token.to_owned(),
            next_id: 1000,
            ..FakeState::default()
        }));
        let root = Arc::new(tempfile::tempdir().expect("a directory for the fake GitHub"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let addr: SocketAddr = listener.local_addr().expect("its address");
        let fake = Self {
            url: format!("http://{addr}"),
            state,
            root,
        };
        let app = Router::new().fallback(handle).with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bare(&self, full_name: &str) -> PathBuf {
        self.root.path().join("git").join(format!("{full_name}.git"))
    }

    fn work(&self, full_name: &str) -> PathBuf {
        self.root.path().join("work").join(full_name)
    }

    /// Creates `owner/name` with `files` on `main`; returns the commit.
    pub fn create_repo(&self, full_name: &str, private: bool, files: &[(&str, &str)]) -> String {
        let bare = self.bare(full_name);
        std::fs::create_dir_all(&bare).expect("mkdir");
        git(&bare, &["init", "--quiet", "--bare"]);
        git(&bare, &["config", "http.receivepack", "false"]);
        let work = self.work(full_name);
        std::fs::create_dir_all(&work).expect("mkdir");
        git(&work, &["init", "--quiet"]);
        git(&work, &["remote", "add", "origin", &bare.to_string_lossy()]);
        self.lock().repositories.insert(full_name.to_owned(), private);
        self.commit(full_name, "main", files)
    }

    /// Commits `files` on `branch` (made from the current one when new) and pushes it.
    pub fn commit(&self, full_name: &str, branch: &str, files: &[(&str, &str)]) -> String {
        self.commit_to(
            full_name,
            branch,
            &format!("refs/heads/{branch}"),
            files,
            "change",
        )
    }

    /// Commits `files` with `message` on `branch` of the working copy and pushes it to
    /// `reference` (e.g. `refs/pull/7/head` for a fork's pull request).
    pub fn commit_to(
        &self,
        full_name: &str,
        branch: &str,
        reference: &str,
        files: &[(&str, &str)],
        message: &str,
    ) -> String {
        let work = self.work(full_name);
        let has_commits = std::process::Command::new("git")
            .args(["rev-parse", "--verify", "HEAD"])
            .current_dir(&work)
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if has_commits {
            git(&work, &["checkout", "--quiet", "-B", branch]);
        } else {
            git(&work, &["checkout", "--quiet", "--orphan", branch]);
        }
        for (name, content) in files {
            let path = work.join(name);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&path, content).expect("write");
        }
        git(&work, &["add", "--all"]);
        git(&work, &["commit", "--quiet", "--allow-empty", "-m", message]);
        git(
            &work,
            &[
                "push",
                "--quiet",
                "--force",
                "origin",
                &format!("HEAD:{reference}"),
            ],
        );
        git(&work, &["rev-parse", "HEAD"])
    }

    /// The REST calls made with `method` to paths starting with `prefix`.
    pub fn calls(&self, method: &str, prefix: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method && c.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// The secret of the last webhook created on `full_name`.
    pub fn hook_secret(&self, full_name: &str) -> Option<String> {
        self.calls("POST", &format!("/repos/{full_name}/hooks"))
            .last()
            .and_then(|c| c.body["config"]["secret"].as_str().map(str::to_owned))
    }

    /// Refuses every token from now on (GitHub revoked it).
    pub fn revoke(&self) {
        self.lock().token = "revoked-so-nothing-matches".to_owned();
    }

    pub fn argv_leaks(&self) -> Vec<String> {
        self.lock().argv_leaks.clone()
    }

    pub fn git_requests(&self) -> Vec<(String, bool)> {
        self.lock().git_requests.clone()
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

async fn handle(
    State(fake): State<FakeGithub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if path.contains(".git/") {
        return serve_git(&fake, &method, &uri, &headers, body).await;
    }
    let token = fake.lock().token.clone();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(token.as_str()) {
        return json_response(StatusCode::UNAUTHORIZED, json!({"message": "Bad credentials"}));
    }
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut state = fake.lock();
    state.calls.push(Call {
        method: method.to_string(),
        path: path.clone(),
        body: body_json.clone(),
    });
    state.next_id += 1;
    let id = state.next_id;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["user", "repos"]) => {
            let list: Vec<Value> = state
                .repositories
                .iter()
                .map(|(name, private)| {
                    json!({"id": 1, "full_name": name, "name": name.split('/').nth(1), "private": private,
                           "default_branch": "main", "description": "a test repository"})
                })
                .collect();
            json_response(StatusCode::OK, Value::Array(list))
        }
        ("GET", ["repos", owner, repo, "branches"]) => {
            let full_name = format!("{owner}/{repo}");
            if !state.repositories.contains_key(&full_name) {
                return json_response(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
            }
            drop(state);
            let refs = git(
                &fake.bare(&full_name),
                &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
            );
            let list: Vec<Value> = refs
                .lines()
                .map(|b| json!({"name": b, "protected": false}))
                .collect();
            json_response(StatusCode::OK, Value::Array(list))
        }
        ("POST", ["repos", _, _, "hooks"]) => json_response(
            StatusCode::CREATED,
            json!({"id": id, "type": "Repository", "active": true, "events": body_json["events"]}),
        ),
        ("POST", ["repos", _, _, "deployments"]) => json_response(
            StatusCode::CREATED,
            json!({"id": id, "ref": body_json["ref"], "environment": body_json["environment"]}),
        ),
        ("POST", ["repos", _, _, "deployments", _, "statuses"]) => json_response(
            StatusCode::CREATED,
            json!({"id": id, "state": body_json["state"]}),
        ),
        ("POST", ["repos", _, _, "issues", _, "comments"]) => {
            json_response(StatusCode::CREATED, json!({"id": id, "body": body_json["body"]}))
        }
        ("PATCH", ["repos", _, _, "issues", "comments", comment]) => json_response(
            StatusCode::OK,
            json!({"id": comment.parse::<i64>().unwrap_or(0), "body": body_json["body"]}),
        ),
        ("POST", ["repos", owner, repo, "generate"]) => {
            let template = format!("{owner}/{repo}");
            let full_name = format!(
                "{}/{}",
                body_json["owner"].as_str().unwrap_or("octo"),
                body_json["name"].as_str().unwrap_or("new")
            );
            if !state.repositories.contains_key(&template) {
                return json_response(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
            }
            let private = body_json["private"].as_bool().unwrap_or(false);
            state.repositories.insert(full_name.clone(), private);
            drop(state);
            // The new repository starts with the template's files, as GitHub's does.
            let target = fake.bare(&full_name);
            std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
            git(
                fake.root.path(),
                &[
                    "clone",
                    "--quiet",
                    "--bare",
                    &fake.bare(&template).to_string_lossy(),
                    &target.to_string_lossy(),
                ],
            );
            json_response(
                StatusCode::CREATED,
                json!({"id": id, "full_name": full_name, "private": body_json["private"], "default_branch": "main"}),
            )
        }
        _ => json_response(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    }
}

/// Every command line on the machine that holds `needle`.
fn argv_holding(needle: &str) -> Vec<String> {
    let mut found = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if text.contains(needle) {
                    found.insert(text);
                }
            }
        }
    }
    found.into_iter().collect()
}

async fn serve_git(
    fake: &FakeGithub,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let full_name = path
        .trim_start_matches('/')
        .split(".git/")
        .next()
        .unwrap_or_default()
        .to_owned();
    let (token, private, known) = {
        let state = fake.lock();
        let private = state.repositories.get(&full_name).copied();
        (state.token.clone(), private.unwrap_or(false), private.is_some())
    };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"))
    );
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    {
        let mut state = fake.lock();
        state.git_requests.push((path.clone(), given.is_some()));
        let leaks = argv_holding(&token);
        // This process's own argv never holds it; anything else that does is a leak.
        state.argv_leaks.extend(leaks);
    }
    if !known {
        return (StatusCode::NOT_FOUND, "Repository not found.").into_response();
    }
    if private && given != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"GitHub\"")],
            "Authentication failed",
        )
            .into_response();
    }
    let mut child = match tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", fake.root.path().join("git"))
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env(
            "CONTENT_TYPE",
            headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        )
        .env(
            "GIT_PROTOCOL",
            headers
                .get("git-protocol")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        )
        .env(
            "HTTP_CONTENT_ENCODING",
            headers
                .get("content-encoding")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body).await;
    }
    let Ok(output) = child.wait_with_output().await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let out = output.stdout;
    let Some(split) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut response = Response::builder();
    let mut status = StatusCode::OK;
    for line in head.lines() {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("status") {
                status = value
                    .trim()
                    .split(' ')
                    .next()
                    .and_then(|c| c.parse().ok())
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .unwrap_or(StatusCode::OK);
            } else {
                response = response.header(name.trim(), value.trim());
            }
        }
    }
    response
        .status(status)
        .body(Body::from(out[split + 4..].to_vec()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
