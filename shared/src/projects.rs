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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Environment {
    pub id: EnvironmentId,
    pub name: String,
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
