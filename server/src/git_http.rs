//! `git push` to Railyard: git's smart HTTP protocol at `/git/{project}/{service}.git`,
//! served by `git http-backend` (run as CGI with argv only and a clean environment, hooks
//! off). Authentication is an API token, as the Basic-auth password (any user name) or as
//! `Authorization: Bearer`. Fetching needs the viewer role, pushing the member role; a
//! push that moves a branch deploys that commit to every environment tracking it (production
//! tracks the service's branch unless its settings name another).
//!
//! These routes speak git's protocol, not the JSON API: errors are plain text, which git
//! shows to the user, and 401 asks for credentials.

use std::{path::Path, process::Stdio, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{Path as UrlPath, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::any,
};
use base64::Engine as _;
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use futures_util::StreamExt as _;
use railyard_shared::{
    auth::Role,
    projects::{Source, valid_branch, valid_name},
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::{Caller, RequestMeta, api_token},
    layout::Layout,
    models::{
        deployment::{Deployments, NewDeployment, RequestedBy},
        project::Projects,
    },
    pipeline::git,
    schema::{projects, services},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/git/{project}/{repo}/{*rest}", any(serve))
}

fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn ask_for_credentials(message: &str) -> Response {
    let mut response = text(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Railyard\", charset=\"UTF-8\""),
    );
    response
}

/// The API token of a git request: the Basic password (or user, when the password is
/// empty), or a Bearer token.
fn token_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_owned());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.strip_prefix("Basic ")?.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    Some(if password.is_empty() { user } else { password }.to_owned())
}

/// The service named by `project` (name or id) and `repo` (`<service>.git`) in `workspace`.
async fn find_service(
    conn: &mut AsyncPgConnection,
    workspace: Uuid,
    project: &str,
    repo: &str,
) -> diesel::QueryResult<Option<Uuid>> {
    let Some(service) = repo.strip_suffix(".git").filter(|s| valid_name(s)) else {
        return Ok(None);
    };
    let mut query = services::table
        .inner_join(projects::table)
        .filter(projects::workspace_id.eq(workspace))
        .filter(services::name.eq(service))
        .select(services::id)
        .into_boxed();
    query = match project.parse::<Uuid>() {
        Ok(id) => query.filter(projects::id.eq(id)),
        Err(_) if valid_name(project) => query.filter(projects::name.eq(project.to_owned())),
        Err(_) => return Ok(None),
    };
    query.first(conn).await.optional()
}

async fn serve(
    State(state): State<AppState>,
    UrlPath((project, repo, rest)): UrlPath<(String, String, String)>,
    meta: RequestMeta,
    request: Request,
) -> Response {
    match handle(&state, &project, &repo, &rest, meta, request).await {
        Ok(response) => response,
        Err(response) => response,
    }
}

async fn handle(
    state: &AppState,
    project: &str,
    repo: &str,
    rest: &str,
    meta: RequestMeta,
    request: Request,
) -> Result<Response, Response> {
    let internal = |err: &dyn std::fmt::Display| {
        tracing::error!(error = %err, "git request failed");
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Railyard could not serve this git request",
        )
    };
    // Only the smart protocol's three endpoints.
    let query = request.uri().query().unwrap_or_default().to_owned();
    let push = match (request.method(), rest) {
        (&Method::GET, "info/refs") if query == "service=git-receive-pack" => true,
        (&Method::GET, "info/refs") if query == "service=git-upload-pack" => false,
        (&Method::POST, "git-receive-pack") => true,
        (&Method::POST, "git-upload-pack") => false,
        _ => {
            return Err(text(
                StatusCode::NOT_FOUND,
                "Railyard serves git's smart HTTP protocol only",
            ));
        }
    };

    let token = token_of(request.headers())
        .ok_or_else(|| ask_for_credentials("Railyard needs an API token: use it as the password"))?;
    let mut conn = state.db.get().await.map_err(|err| internal(&err))?;
    let found = api_token::authenticate(&mut conn, &token)
        .await
        .map_err(|err| internal(&err))?
        .ok_or_else(|| ask_for_credentials("the API token is invalid, expired or revoked"))?;
    let caller = Caller {
        user_id: found.user_id,
        session_id: None,
        token: Some(found.scope),
    };
    let not_found = || {
        text(
            StatusCode::NOT_FOUND,
            "no such repository in this token's workspace",
        )
    };
    let service_id = find_service(&mut conn, found.scope.workspace_id, project, repo)
        .await
        .map_err(|err| internal(&err))?
        .ok_or_else(not_found)?;
    let needed = if push { Role::Member } else { Role::Viewer };
    caller
        .require(&mut conn, found.scope.workspace_id, needed)
        .await
        .map_err(|err| text(StatusCode::FORBIDDEN, &err.message))?;
    let service = Projects::service(&mut conn, service_id)
        .await
        .map_err(|err| internal(&err))?
        .ok_or_else(not_found)?;
    if push {
        let used = crate::models::storage::used_by(&mut conn, found.scope.workspace_id)
            .await
            .map_err(|err| internal(&err))?;
        if let Some(message) =
            crate::models::storage::over_quota(used, state.config.pipeline.workspace_storage_limit)
        {
            return Err(text(StatusCode::INSUFFICIENT_STORAGE, &message));
        }
    }
    let Source::Push { branch } = &service.source else {
        return Err(text(
            StatusCode::FORBIDDEN,
            "this service does not deploy from git push (its source is a repository URL or uploads)",
        ));
    };
    // Which environment tracks which branch, read before the push lands.
    let tracked =
        Deployments::tracked_branches(&mut conn, service.project_id.uuid(), service.id.uuid(), branch)
            .await
            .map_err(|err| internal(&err))?;
    drop(conn);

    let layout = Layout::new(&state.config.data_dir);
    let repo_dir = layout.push_repo(service.id.uuid());
    ensure_repo(&repo_dir, branch)
        .await
        .map_err(|err| internal(&err))?;
    let mut before = std::collections::BTreeMap::new();
    for (_, tracked) in &tracked {
        before.insert(tracked.clone(), head_of(&repo_dir, tracked).await);
    }
    let push_limit = state.config.pipeline.push_limit;
    let response = http_backend(&layout, &repo_dir, rest, &query, &meta, request, push_limit)
        .await
        .map_err(|err| internal(&err))?;

    if push && rest == "git-receive-pack" {
        let mut moved = std::collections::BTreeMap::new();
        for (name, was) in before {
            if let Some(now) = head_of(&repo_dir, &name)
                .await
                .filter(|now| Some(now) != was.as_ref())
            {
                moved.insert(name, now);
            }
        }
        if !moved.is_empty() {
            let mut conn = state.db.get().await.map_err(|err| internal(&err))?;
            for (environment, tracked) in &tracked {
                let Some(commit) = moved.get(tracked) else {
                    continue;
                };
                let push = Pushed {
                    service: service.id.uuid(),
                    project: service.project_id.uuid(),
                    environment: *environment,
                    branch: tracked,
                    commit,
                };
                deploy_push(&mut conn, &meta, &caller, push)
                    .await
                    .map_err(|err| internal(&err))?;
            }
        }
    }
    Ok(response)
}

/// Creates the bare repository a service's pushes land in, its `HEAD` on the service's
/// branch (so a clone checks that out).
async fn ensure_repo(dir: &Path, branch: &str) -> anyhow::Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    if !dir.join("HEAD").is_file() {
        tokio::fs::create_dir_all(parent).await?;
        let mut init = git::git(parent);
        init.args(["init", "--quiet", "--bare"]).arg(dir);
        git::run(init, Duration::from_secs(30)).await?;
    }
    anyhow::ensure!(valid_branch(branch), "invalid branch");
    let mut head = git::git(parent);
    head.arg("--git-dir")
        .arg(dir)
        .args(["symbolic-ref", "HEAD"])
        .arg(format!("refs/heads/{branch}"));
    git::run(head, Duration::from_secs(30)).await?;
    Ok(())
}

/// The commit `branch` points at in the repository, if it exists.
pub(crate) async fn head_of(repo: &Path, branch: &str) -> Option<String> {
    if !valid_branch(branch) {
        return None;
    }
    let mut cmd = git::git(repo);
    cmd.arg("--git-dir")
        .arg(repo)
        .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("refs/heads/{branch}^{{commit}}"));
    git::run(cmd, Duration::from_secs(30)).await.ok()
}

/// A branch a push moved, and the environment that tracks it.
struct Pushed<'a> {
    service: Uuid,
    project: Uuid,
    environment: Uuid,
    branch: &'a str,
    commit: &'a str,
}

async fn deploy_push(
    conn: &mut AsyncPgConnection,
    meta: &RequestMeta,
    caller: &Caller,
    push: Pushed<'_>,
) -> anyhow::Result<()> {
    let workspace = Projects::workspace_of(conn, push.project)
        .await?
        .unwrap_or_default();
    let new = NewDeployment {
        service: push.service,
        environment: push.environment,
        source_kind: "push",
        branch: Some(push.branch.to_owned()),
        commit: Some(push.commit.to_owned()),
        upload: None,
        release_of: None,
        promoted_from: None,
    };
    let by = RequestedBy {
        meta,
        user: caller.user_id,
        workspace,
        action: "deployment.push",
    };
    let id = Deployments::request(conn, new, by).await?;
    tracing::info!(service = %push.service, environment = %push.environment, commit = %push.commit, deployment = %id, "push deploys");
    Ok(())
}

/// Runs `git http-backend` for one request and turns its CGI output into a response.
async fn http_backend(
    layout: &Layout,
    repo: &Path,
    rest: &str,
    query: &str,
    meta: &RequestMeta,
    request: Request,
    push_limit: u64,
) -> anyhow::Result<Response> {
    let root = repo.parent().unwrap_or(repo);
    let name = repo.file_name().unwrap_or_default().to_string_lossy();
    let (parts, body) = request.into_parts();
    let header = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, encoding, length) = (
        header(header::CONTENT_TYPE),
        header(header::CONTENT_ENCODING),
        header(header::CONTENT_LENGTH),
    );
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &layout.data_dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "2")
        .env("GIT_CONFIG_KEY_0", "core.hooksPath")
        .env("GIT_CONFIG_VALUE_0", "/dev/null")
        .env("GIT_CONFIG_KEY_1", "http.receivepack")
        .env("GIT_CONFIG_VALUE_1", "true")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{name}/{rest}"))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", content_type)
        .env("REMOTE_USER", "railyard")
        .env("REMOTE_ADDR", &meta.ip)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !encoding.is_empty() {
        cmd.env("HTTP_CONTENT_ENCODING", encoding);
    }
    if !length.is_empty() {
        cmd.env("CONTENT_LENGTH", &length);
    }
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the push is larger than {} MiB (RAILYARD_PUSH_LIMIT_BYTES): push less at once",
                push_limit / (1024 * 1024)
            ),
        )
    };
    if length.parse::<u64>().is_ok_and(|n| n > push_limit) {
        return Ok(too_large());
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let mut stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut stderr = child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut body = body.into_data_stream();
    // Fed as it arrives, counted: past the limit the rest is not read (and git sees the
    // pack end early, so no ref moves).
    let feed = async move {
        let mut sent = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            sent = sent.saturating_add(chunk.len() as u64);
            if sent > push_limit {
                return anyhow::Ok(false);
            }
            stdin.write_all(&chunk).await?;
        }
        stdin.shutdown().await?;
        anyhow::Ok(true)
    };
    let errors = tokio::spawn(async move {
        let mut err = Vec::new();
        let _ = stderr.read_to_end(&mut err).await;
        err
    });
    if rest == "git-receive-pack" {
        // A push: its whole pack is read before answering, so a push past the limit is told
        // so (its answer, git's report, is small).
        let read = async {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).await?;
            anyhow::Ok(out)
        };
        let (fed, out) = tokio::join!(feed, read);
        if !fed? {
            let _ = child.kill().await;
            return Ok(too_large());
        }
        let out = out?;
        finish(child, errors).await;
        return cgi_response(&out, Body::from);
    }
    // A fetch or clone: the pack streams out as git writes it (never whole in memory).
    let fed = tokio::spawn(feed);
    let mut head = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let split = loop {
        if let Some(split) = header_end(&head) {
            break split;
        }
        anyhow::ensure!(
            head.len() < 64 * 1024,
            "git http-backend sent headers longer than 64 KiB"
        );
        let n = stdout.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "git http-backend sent no headers");
        head.extend_from_slice(&chunk[..n]);
    };
    let rest_of_head = axum::body::Bytes::copy_from_slice(&head[split.1..]);
    head.truncate(split.1);
    let rest_of_body = futures_util::stream::unfold(
        (stdout, vec![0u8; 64 * 1024]),
        |(mut stdout, mut buf)| async move {
            match stdout.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(&buf[..n])),
                    (stdout, buf),
                )),
                Err(err) => Some((Err(err), (stdout, buf))),
            }
        },
    );
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(rest_of_head) }).chain(rest_of_body);
    tokio::spawn(async move {
        if let Ok(Err(err)) = fed.await {
            tracing::debug!(error = %format!("{err:#}"), "feeding git http-backend stopped");
        }
        finish(child, errors).await;
    });
    let body = Body::from_stream(stream);
    cgi_response(&head, move |_| body)
}

/// Waits for git http-backend to exit and says why when it failed.
async fn finish(mut child: tokio::process::Child, errors: tokio::task::JoinHandle<Vec<u8>>) {
    let status = child.wait().await;
    let err = errors.await.unwrap_or_default();
    if !status.is_ok_and(|s| s.success()) {
        tracing::warn!(stderr = %String::from_utf8_lossy(&err), "git http-backend failed");
    }
}

/// Where a CGI head ends: (end of the headers, start of the body).
fn header_end(out: &[u8]) -> Option<(usize, usize)> {
    out.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2)))
}

/// A CGI response: headers (with `Status:`), a blank line, the body (`body` makes it of
/// the bytes after the headers).
fn cgi_response(out: &[u8], body: impl FnOnce(Vec<u8>) -> Body) -> anyhow::Result<Response> {
    let split = header_end(out).ok_or_else(|| anyhow::anyhow!("git http-backend sent no headers"))?;
    let head = String::from_utf8_lossy(&out[..split.0]);
    let mut response = Response::new(body(out[split.1..].to_vec()));
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("200");
            *response.status_mut() =
                StatusCode::from_bytes(code.as_bytes()).unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    Ok(response)
}
