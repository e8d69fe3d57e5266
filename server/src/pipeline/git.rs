//! Fetching a git source, safely: argv only (no shell), `--end-of-options` before every user
//! value, only the `https`, `ssh` and `file` transports (`GIT_ALLOW_PROTOCOL`), no system or
//! global config, no hooks, no terminal prompts. URL, branch and commit are validated again
//! here, where git runs, whatever was checked when they were stored.

use std::{path::Path, process::Stdio, time::Duration};

use railyard_shared::projects::valid_branch;
use tokio::process::Command;

use crate::sources;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("invalid source: {0}")]
    Invalid(String),
    #[error("git failed: {0}")]
    Git(String),
    #[error("git took longer than {0} s")]
    Timeout(u64),
}

/// What to check out: a branch's head, or one commit (looked up on that branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout<'a> {
    pub url: &'a str,
    pub branch: &'a str,
    pub commit: Option<&'a str>,
}

/// A full or abbreviated commit id.
pub fn valid_commit(commit: &str) -> bool {
    (7..=40).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `git` with a clean environment and safe configuration; `home` becomes `$HOME`.
pub fn git(home: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_ALLOW_PROTOCOL", "https:ssh:file")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        )
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "protocol.ext.allow=never",
            "-c",
            "advice.detachedHead=false",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs `cmd`, returning its trimmed stdout, or its last stderr line as the error.
pub async fn run(mut cmd: Command, timeout: Duration) -> Result<String, FetchError> {
    let output = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| FetchError::Timeout(timeout.as_secs()))?
        .map_err(|err| FetchError::Git(format!("cannot run git: {err}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .trim()
            .to_owned();
        Err(FetchError::Git(last))
    }
}

/// Clones `source` into `dest` (which must not exist) and returns the checked-out commit id.
/// `data_dir` is Railyard's own directory, which a `file://` source may not point into;
/// `file_roots` the directories one may come from.
pub async fn fetch(
    source: &Checkout<'_>,
    dest: &Path,
    (data_dir, file_roots): (&Path, &[std::path::PathBuf]),
    timeout: Duration,
) -> Result<String, FetchError> {
    sources::check_git_url(source.url, data_dir, file_roots).map_err(FetchError::Invalid)?;
    if !valid_branch(source.branch) {
        return Err(FetchError::Invalid(format!(
            "{:?} is not a valid branch name",
            source.branch
        )));
    }
    if let Some(commit) = source.commit
        && !valid_commit(commit)
    {
        return Err(FetchError::Invalid(format!("{commit:?} is not a commit id")));
    }
    clone(source, dest, timeout).await
}

/// Clones a repository Railyard keeps itself (the target of `git push`), which lives in the
/// data directory that [`fetch`] refuses.
pub async fn fetch_pushed(
    repo: &Path,
    branch: &str,
    commit: Option<&str>,
    dest: &Path,
    timeout: Duration,
) -> Result<String, FetchError> {
    if !valid_branch(branch) || commit.is_some_and(|c| !valid_commit(c)) {
        return Err(FetchError::Invalid("invalid branch or commit".into()));
    }
    let url = format!("file://{}", repo.display());
    let source = Checkout {
        url: &url,
        branch,
        commit,
    };
    clone(&source, dest, timeout).await
}

/// A GitHub repository to fetch: `{base}/{repository}.git` at `branch` (or a pull
/// request's `pull/<n>/head`), with the connector's token for a private one.
#[derive(Debug, Clone)]
pub struct GithubCheckout<'a> {
    pub base: &'a str,
    pub repository: &'a str,
    pub branch: &'a str,
    pub commit: Option<&'a str>,
    pub token: Option<&'a str>,
}

/// Whether `branch` names a pull request's head (`pull/<n>/head`), which GitHub keeps in
/// the base repository (a fork's branch is not there).
fn pull_head(branch: &str) -> bool {
    branch
        .strip_prefix("pull/")
        .and_then(|rest| rest.strip_suffix("/head"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Clones a GitHub source. The token never reaches argv, the stored remote URL or a log:
/// git reads it as an `Authorization` header from configuration given in its environment
/// (`GIT_CONFIG_COUNT`), scoped to `{base}/`.
pub async fn fetch_github(
    source: &GithubCheckout<'_>,
    dest: &Path,
    timeout: Duration,
) -> Result<String, FetchError> {
    if !railyard_shared::projects::valid_repository(source.repository) {
        return Err(FetchError::Invalid(format!(
            "{:?} is not a GitHub repository",
            source.repository
        )));
    }
    if !valid_branch(source.branch) || source.commit.is_some_and(|c| !valid_commit(c)) {
        return Err(FetchError::Invalid("invalid branch or commit".into()));
    }
    let base = source.base.trim_end_matches('/');
    let url = format!("{base}/{}.git", source.repository);
    let mut env: Vec<(String, String)> = Vec::new();
    if base.starts_with("http://") {
        // A local GitHub (tests, GitHub Enterprise behind a proxy) may speak plain HTTP.
        env.push(("GIT_ALLOW_PROTOCOL".into(), "https:http".into()));
    }
    if let Some(token) = source.token {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        env.extend([
            ("GIT_CONFIG_COUNT".into(), "1".into()),
            ("GIT_CONFIG_KEY_0".into(), format!("http.{base}/.extraHeader")),
            (
                "GIT_CONFIG_VALUE_0".into(),
                format!("Authorization: Basic {basic}"),
            ),
        ]);
    }
    let checkout = Checkout {
        url: &url,
        branch: source.branch,
        commit: source.commit,
    };
    if pull_head(source.branch) {
        fetch_ref(&checkout, dest, timeout, &env).await
    } else {
        clone_with(&checkout, dest, timeout, &env).await
    }
}

/// `git init` and a fetch of one ref (a pull request's head) into `dest`.
async fn fetch_ref(
    source: &Checkout<'_>,
    dest: &Path,
    timeout: Duration,
    env: &[(String, String)],
) -> Result<String, FetchError> {
    let home = dest.parent().unwrap_or(dest);
    let mut init = git(home);
    init.args(["init", "--quiet", "--end-of-options"]).arg(dest);
    run(init, timeout).await?;
    let mut fetch = git(home);
    fetch
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("-C")
        .arg(dest)
        .args(["fetch", "--quiet", "--no-tags", "--end-of-options", source.url])
        .arg(format!("+refs/{}:refs/remotes/origin/pull", source.branch));
    run(fetch, timeout).await?;
    let target = source.commit.unwrap_or("refs/remotes/origin/pull");
    let mut checkout = git(home);
    checkout
        .arg("-C")
        .arg(dest)
        .args(["checkout", "--quiet", "--detach", "--end-of-options", target]);
    run(checkout, timeout).await?;
    let mut head = git(home);
    head.arg("-C")
        .arg(dest)
        .args(["rev-parse", "--verify", "HEAD^{commit}"]);
    run(head, timeout).await
}

async fn clone(source: &Checkout<'_>, dest: &Path, timeout: Duration) -> Result<String, FetchError> {
    clone_with(source, dest, timeout, &[]).await
}

async fn clone_with(
    source: &Checkout<'_>,
    dest: &Path,
    timeout: Duration,
    env: &[(String, String)],
) -> Result<String, FetchError> {
    let home = dest.parent().unwrap_or(dest);

    let mut clone = git(home);
    clone
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["clone", "--quiet", "--single-branch", "--no-tags"]);
    if source.commit.is_none() {
        clone.arg("--depth=1");
    }
    clone
        .arg(format!("--branch={}", source.branch))
        .arg("--end-of-options")
        .arg(source.url)
        .arg(dest);
    run(clone, timeout).await?;

    if let Some(commit) = source.commit {
        let mut checkout = git(home);
        checkout
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("-C")
            .arg(dest)
            .args(["checkout", "--quiet", "--detach", "--end-of-options", commit]);
        run(checkout, timeout).await.map_err(|err| match err {
            FetchError::Git(_) => {
                FetchError::Git(format!("commit {commit} is not on branch {}", source.branch))
            }
            other => other,
        })?;
    }
    let mut head = git(home);
    head.arg("-C")
        .arg(dest)
        .args(["rev-parse", "--verify", "HEAD^{commit}"]);
    run(head, timeout).await
}

/// A commit's author and subject line, read from a repository Railyard holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub sha: String,
    pub author: String,
    pub subject: String,
}

const FIELDS: &str = "--format=%H%x1f%an%x1f%s";

fn parse_log(out: &str) -> Vec<CommitInfo> {
    out.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\u{1f}');
            Some(CommitInfo {
                sha: parts.next()?.to_owned(),
                author: parts.next()?.to_owned(),
                subject: parts.next().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// `git -C repo` for reading history (works on bare repositories and work trees).
fn reader(repo: &Path) -> Command {
    let mut cmd = git(repo);
    cmd.arg("-C").arg(repo);
    cmd
}

const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// `commit`'s author and subject in `repo`; `None` where it is not there.
pub async fn describe(repo: &Path, commit: &str) -> Option<CommitInfo> {
    if !valid_commit(commit) {
        return None;
    }
    let mut cmd = reader(repo);
    cmd.args(["log", "-1", FIELDS, "--end-of-options", commit]);
    parse_log(&run(cmd, READ_TIMEOUT).await.ok()?).into_iter().next()
}

/// `(ahead, behind)`: commits reachable from `ours` and not from `theirs`, and the reverse.
pub async fn ahead_behind(repo: &Path, ours: &str, theirs: &str) -> Option<(i64, i64)> {
    if !valid_commit(ours) || !valid_commit(theirs) {
        return None;
    }
    let mut cmd = reader(repo);
    cmd.args(["rev-list", "--left-right", "--count", "--end-of-options"])
        .arg(format!("{ours}...{theirs}"));
    let out = run(cmd, READ_TIMEOUT).await.ok()?;
    let (ahead, behind) = out.split_once(char::is_whitespace)?;
    Some((ahead.trim().parse().ok()?, behind.trim().parse().ok()?))
}

/// The commits `to` has and `from` has not (all of `to`'s history without `from`), newest
/// first, at most `limit`.
pub async fn range(repo: &Path, from: Option<&str>, to: &str, limit: usize) -> Option<Vec<CommitInfo>> {
    if !valid_commit(to) || from.is_some_and(|f| !valid_commit(f)) {
        return None;
    }
    let mut cmd = reader(repo);
    cmd.args(["log", FIELDS])
        .arg(format!("--max-count={limit}"))
        .arg("--end-of-options");
    match from {
        Some(from) => cmd.arg(format!("{from}..{to}")),
        None => cmd.arg(to),
    };
    Some(parse_log(&run(cmd, READ_TIMEOUT).await.ok()?))
}
