//! What differs between one service in two environments: the commits between what each
//! runs (from the history Railyard holds), the settings, and the variable names.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use diesel::QueryDsl as _;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::{
    deployments::ServiceSettings,
    pipeline::{Commit, SettingChange, VariableChange},
    projects::{Service, Source},
};
use uuid::Uuid;

use crate::{
    config::Config,
    layout::Layout,
    models::deployment::{DeploymentRow, Deployments},
    pipeline::git,
    schema::commits,
    sources,
};

/// The repository whose history Railyard holds for a service: the one pushed to it, or a
/// local (`file://`) source repository; `None` for uploads and remote repositories.
pub fn history(config: &Config, service: &Service) -> Option<PathBuf> {
    match &service.source {
        Source::Push { .. } => {
            Some(Layout::new(&config.data_dir).push_repo(service.id.uuid())).filter(|p| p.exists())
        }
        Source::Git { url, .. } => {
            let roots = config.pipeline.file_source_roots.as_slice();
            sources::check_git_url(url, &config.data_dir, roots).ok()?;
            url.strip_prefix("file://")
                .map(PathBuf::from)
                .filter(|p| p.exists())
        }
        Source::Upload {} | Source::Github { .. } | Source::Postgres {} => None,
    }
}

/// A commit with its subject and author where Railyard knows them.
pub async fn commit(conn: &mut AsyncPgConnection, service: Uuid, sha: &str) -> diesel::QueryResult<Commit> {
    use diesel::OptionalExtension as _;
    let described: Option<(String, String)> = commits::table
        .find((service, sha))
        .select((commits::message, commits::author))
        .first(conn)
        .await
        .optional()?;
    let (message, author) = described.unzip();
    Ok(Commit {
        sha: sha.to_owned(),
        message,
        author,
    })
}

/// The deployment whose build `row` runs, following rollbacks and promotions (a promotion
/// of a promotion leads to the environment that built it).
pub async fn build_of(conn: &mut AsyncPgConnection, row: &DeploymentRow) -> diesel::QueryResult<Uuid> {
    let mut current = row.clone();
    for _ in 0..16 {
        let Some(from) = current.promoted_from else {
            break;
        };
        match Deployments::find(conn, from).await? {
            Some(source) => current = source,
            None => break,
        }
    }
    Ok(current.release_id())
}

/// `(ahead, behind)` of `ours` against `theirs` in the service's history.
pub async fn ahead_behind(
    repo: Option<&Path>,
    ours: Option<&str>,
    theirs: Option<&str>,
) -> (Option<i64>, Option<i64>) {
    match (repo, ours, theirs) {
        (Some(repo), Some(ours), Some(theirs)) => git::ahead_behind(repo, ours, theirs).await.unzip(),
        _ => (None, None),
    }
}

/// The commits `to` brings over `from` (newest first, at most 50).
pub async fn commits_between(
    conn: &mut AsyncPgConnection,
    service: Uuid,
    repo: Option<&Path>,
    from: Option<&str>,
    to: Option<&str>,
) -> diesel::QueryResult<Option<Vec<Commit>>> {
    let (Some(repo), Some(to)) = (repo, to) else {
        return Ok(None);
    };
    let Some(found) = git::range(repo, from, to, 50).await else {
        return Ok(None);
    };
    for info in &found {
        Deployments::describe_commit(conn, service, &info.sha, &info.subject, &info.author).await?;
    }
    Ok(Some(
        found
            .into_iter()
            .map(|info| Commit {
                sha: info.sha,
                message: Some(info.subject),
                author: Some(info.author),
            })
            .collect(),
    ))
}

fn fields(settings: &ServiceSettings) -> [(&'static str, Option<String>); 8] {
    [
        ("root_dir", settings.root_dir.clone()),
        ("build_command", settings.build_command.clone()),
        ("start_command", settings.start_command.clone()),
        ("health_check_path", settings.health_check_path.clone()),
        (
            "restart_policy",
            Some(
                settings
                    .restart_policy
                    .clone()
                    .unwrap_or_else(|| "on_failure".into()),
            ),
        ),
        ("port", settings.port.map(|p| p.to_string())),
        ("memory_limit_mb", settings.memory_limit_mb.map(|m| m.to_string())),
        ("branch", settings.branch.clone()),
    ]
}

/// The settings that differ, `from` the first environment's value `to` the second's.
pub fn settings(from: &ServiceSettings, to: &ServiceSettings) -> Vec<SettingChange> {
    fields(from)
        .into_iter()
        .zip(fields(to))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((name, from), (_, to))| SettingChange {
            name: name.to_owned(),
            from,
            to,
        })
        .collect()
}

/// The variable names that differ: `added` (only in `ours`), `removed` (only in
/// `theirs`) or `changed`. Values are compared here and never leave.
pub fn variables(ours: &BTreeMap<String, String>, theirs: &BTreeMap<String, String>) -> Vec<VariableChange> {
    let mut out = Vec::new();
    for (name, value) in ours {
        match theirs.get(name) {
            None => out.push(change(name, "added")),
            Some(other) if other != value => out.push(change(name, "changed")),
            Some(_) => {}
        }
    }
    for name in theirs.keys().filter(|name| !ours.contains_key(*name)) {
        out.push(change(name, "removed"));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn change(name: &str, what: &str) -> VariableChange {
    VariableChange {
        name: name.to_owned(),
        change: what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_that_differ() {
        let ours = BTreeMap::from([
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "2".to_owned()),
            ("C".to_owned(), "3".to_owned()),
        ]);
        let theirs = BTreeMap::from([
            ("B".to_owned(), "2".to_owned()),
            ("C".to_owned(), "x".to_owned()),
            ("D".to_owned(), "4".to_owned()),
        ]);
        let got: Vec<(String, String)> = variables(&ours, &theirs)
            .into_iter()
            .map(|c| (c.name, c.change))
            .collect();
        assert_eq!(
            got,
            [("A", "added"), ("C", "changed"), ("D", "removed")].map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[test]
    fn settings_that_differ() {
        let from = ServiceSettings {
            start_command: Some("node a.js".into()),
            ..ServiceSettings::default()
        };
        let to = ServiceSettings {
            start_command: Some("node b.js".into()),
            restart_policy: Some("on_failure".into()),
            ..ServiceSettings::default()
        };
        let got = settings(&from, &to);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].name, "start_command");
        assert_eq!(got[0].from.as_deref(), Some("node a.js"));
        assert_eq!(got[0].to.as_deref(), Some("node b.js"));
    }
}
