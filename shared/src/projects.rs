//! Projects, environments and services on the wire, and the validation both sides share.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{EnvironmentId, ProjectId, ServiceId, WorkspaceId};

/// Names of projects, environments and services: `[a-z0-9][a-z0-9-]{0,38}`. They become
/// parts of host names, so nothing else is allowed.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 39
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// A git branch name Railyard accepts: git's `check-ref-format` rules, never anything that
/// could be read as an option, and only the characters real branch names use
/// (`A-Z a-z 0-9 . _ - / +`), so no shell metacharacter ever appears in one.
pub fn valid_branch(branch: &str) -> bool {
    !branch.is_empty()
        && branch.len() <= 255
        && !branch.starts_with('-')
        && !branch.starts_with('/')
        && !branch.ends_with('/')
        && !branch.ends_with('.')
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.contains("@{")
        && branch != "@"
        && !branch.split('/').any(|part| part.starts_with('.'))
        && branch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/+".contains(c))
}

/// What an environment is for. The pipeline runs development → staging → production;
/// previews (one per pull request, later) come last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentKind {
    Development,
    Staging,
    Production,
    Preview,
}

impl EnvironmentKind {
    pub const ALL: [Self; 4] = [Self::Development, Self::Staging, Self::Production, Self::Preview];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Staging => "staging",
            Self::Production => "production",
            Self::Preview => "preview",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The kind a new environment gets when none is asked for: from its name.
    pub fn guess(name: &str) -> Self {
        match name {
            "staging" | "stage" | "qa" | "uat" => Self::Staging,
            n if n.starts_with("pr-") || n.starts_with("preview") => Self::Preview,
            _ => Self::Development,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Environment {
    pub id: EnvironmentId,
    pub name: String,
    pub kind: EnvironmentKind,
    /// Its place in the project's pipeline, from 0 (environments are listed in this order).
    pub position: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Project {
    pub id: ProjectId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub environments: Vec<Environment>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateProjectRequest {
    pub workspace_id: WorkspaceId,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateProjectRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectResponse {
    pub project: Project,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectsResponse {
    pub projects: Vec<Project>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateEnvironmentRequest {
    pub name: String,
    /// Default: from the name (`staging` → staging), else development. A project has one
    /// production environment.
    #[serde(default)]
    pub kind: Option<EnvironmentKind>,
    /// Copy every service's settings and variables from this environment (sealed values
    /// re-encrypted for their new rows, never shown); no deployments are copied.
    #[serde(default)]
    pub clone_from: Option<EnvironmentId>,
}

/// Rename an environment, change its kind or move it in the pipeline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateEnvironmentRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<EnvironmentKind>,
    /// The new place in the pipeline (0 is first); the others move up or down.
    #[serde(default)]
    pub position: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentResponse {
    pub environment: Environment,
}

/// Where a service's code comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A git repository (`https://`, `ssh://`, or `file://` of a local repository) and branch.
    Git { url: String, branch: String },
    /// `git push` to Railyard; pushes to `branch` deploy.
    Push { branch: String },
    /// Tarball uploads (`railyard up`).
    Upload {},
    /// A GitHub repository (`owner/name`), cloned from `{GITHUB_URL}/owner/name.git` with
    /// the token of whoever connected it; pushes to `branch` deploy through the webhook.
    Github { repository: String, branch: String },
    /// A PostgreSQL database Railyard provisions: one database and role per environment,
    /// nothing built or deployed.
    Postgres {},
}

impl Source {
    /// Whether deployments build and run it (a database service is provisioned instead).
    pub fn deploys(&self) -> bool {
        !matches!(self, Source::Postgres {})
    }
}

/// A GitHub `owner/name`: each part 1–100 of `A-Z a-z 0-9 - _ .`, the owner not starting
/// with `-` and neither being `.` or `..` (GitHub's own rules are narrower).
pub fn valid_repository(full_name: &str) -> bool {
    let Some((owner, name)) = full_name.split_once('/') else {
        return false;
    };
    let part = |p: &str| {
        (1..=100).contains(&p.len())
            && p != "."
            && p != ".."
            && !p.starts_with('-')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    part(owner) && part(name) && !name.ends_with(".git")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Service {
    pub id: ServiceId,
    pub project_id: ProjectId,
    pub name: String,
    pub source: Source,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateServiceRequest {
    pub name: String,
    pub source: Source,
    /// Deploy a repository service to production at once (the default), as on Railway.
    /// Pushed and uploaded services deploy when code arrives.
    #[serde(default)]
    pub deploy: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateServiceRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub source: Option<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceResponse {
    pub service: Service,
    /// On creation: the deployment it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<crate::DeploymentId>,
    /// On creation from GitHub: what could not be set up (e.g. the webhook), said plainly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServicesResponse {
    pub services: Vec<Service>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["web", "a", "shop-2", "0api", &"x".repeat(39)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "-web",
            "Web",
            "we_b",
            "web.",
            "we b",
            "../x",
            "main;touch",
            "$(id)",
            &"x".repeat(40),
            "é",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn branches() {
        for good in ["main", "feature/login", "release-1.2", "v2"] {
            assert!(valid_branch(good), "{good}");
        }
        for bad in [
            "",
            "-x",
            "--upload-pack=touch /tmp/x",
            "a..b",
            "a b",
            "main;touch /tmp/x",
            "$(id)",
            "`id`",
            "a\nb",
            "x.lock",
            "/x",
            "x/",
            ".hidden",
            "a/.b",
            "a@{1}",
            "@",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            "a\0b",
        ] {
            assert!(!valid_branch(bad), "{bad:?}");
        }
    }

    #[test]
    fn sources_on_the_wire() {
        let git: Source =
            serde_json::from_str(r#"{"git":{"url":"https://x/y.git","branch":"main"}}"#).unwrap();
        assert_eq!(
            git,
            Source::Git {
                url: "https://x/y.git".into(),
                branch: "main".into()
            }
        );
        let upload: Source = serde_json::from_str(r#"{"upload":{}}"#).unwrap();
        assert_eq!(upload, Source::Upload {});
        assert!(serde_json::from_str::<Source>(r#"{"ftp":{}}"#).is_err());
    }
}
