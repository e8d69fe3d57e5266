//! GitHub's REST API as Railyard uses it with a user's token: repositories and branches to
//! pick from, webhooks, repositories from templates, Deployments and their statuses, and
//! pull-request comments. One HTTP implementation at `GITHUB_API_URL`; tests point it at a
//! local server fed GitHub's documented shapes.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// GitHub refused the token (401): the connection is broken.
    #[error("GitHub refused the token")]
    BadToken,
    #[error("GitHub answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("GitHub could not be reached: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RestRepository {
    pub full_name: String,
    #[serde(default)]
    pub private: bool,
    #[serde(default = "main")]
    pub default_branch: String,
    #[serde(default)]
    pub description: Option<String>,
}

fn main() -> String {
    "main".to_owned()
}

/// A GitHub Deployment to create (`POST /repos/{owner}/{repo}/deployments`).
#[derive(Debug, Clone)]
pub struct NewDeployment<'a> {
    pub sha: &'a str,
    pub environment: &'a str,
    pub description: &'a str,
    pub production: bool,
    pub transient: bool,
}

#[async_trait::async_trait]
pub trait GitHubRest: Send + Sync + std::fmt::Debug {
    /// The repositories the token's user can reach, most recently updated first.
    async fn repositories(&self, token: &str) -> Result<Vec<RestRepository>, RestError>;
    async fn branches(&self, token: &str, repository: &str) -> Result<Vec<String>, RestError>;
    /// Creates a `push` + `pull_request` webhook to `url`; returns its id.
    async fn create_hook(
        &self,
        token: &str,
        repository: &str,
        url: &str,
        secret: &str,
    ) -> Result<i64, RestError>;
    /// Creates `owner/name` from the template repository `template`.
    async fn generate(
        &self,
        token: &str,
        template: &str,
        owner: &str,
        name: &str,
        private: bool,
    ) -> Result<RestRepository, RestError>;
    async fn create_deployment(
        &self,
        token: &str,
        repository: &str,
        new: NewDeployment<'_>,
    ) -> Result<i64, RestError>;
    /// Adds a status (`pending`, `in_progress`, `success`, `failure`, `error`, `inactive`).
    async fn deployment_status(
        &self,
        token: &str,
        repository: &str,
        deployment: i64,
        state: &str,
        environment_url: Option<&str>,
        log_url: &str,
    ) -> Result<(), RestError>;
    /// Writes the comment on issue (pull request) `number`: a new one, or `existing` edited.
    async fn comment(
        &self,
        token: &str,
        repository: &str,
        number: i64,
        existing: Option<i64>,
        body: &str,
    ) -> Result<i64, RestError>;
}

#[derive(Debug)]
pub struct HttpGitHubRest {
    http: reqwest::Client,
    api_url: String,
}

impl HttpGitHubRest {
    pub fn new(api_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("railyard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Result<T, RestError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api_url))
            .bearer_auth(token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|err| RestError::Unavailable(err.without_url().to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(RestError::BadToken);
        }
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Message {
                message: Option<String>,
            }
            let message = response
                .json::<Message>()
                .await
                .ok()
                .and_then(|m| m.message)
                .unwrap_or_default();
            return Err(RestError::Refused {
                status: status.as_u16(),
                message: message.chars().take(200).collect(),
            });
        }
        response
            .json()
            .await
            .map_err(|err| RestError::Unavailable(err.without_url().to_string()))
    }
}

#[derive(Deserialize)]
struct Id {
    id: i64,
}

#[async_trait::async_trait]
impl GitHubRest for HttpGitHubRest {
    async fn repositories(&self, token: &str) -> Result<Vec<RestRepository>, RestError> {
        self.call(
            Method::GET,
            "/user/repos?per_page=100&sort=updated&affiliation=owner,collaborator,organization_member",
            token,
            None,
        )
        .await
    }

    async fn branches(&self, token: &str, repository: &str) -> Result<Vec<String>, RestError> {
        #[derive(Deserialize)]
        struct Branch {
            name: String,
        }
        let found: Vec<Branch> = self
            .call(
                Method::GET,
                &format!("/repos/{repository}/branches?per_page=100"),
                token,
                None,
            )
            .await?;
        Ok(found.into_iter().map(|b| b.name).collect())
    }

    async fn create_hook(
        &self,
        token: &str,
        repository: &str,
        url: &str,
        secret: &str,
    ) -> Result<i64, RestError> {
        let body = json!({
            "name": "web",
            "active": true,
            "events": ["push", "pull_request"],
            "config": { "url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0" },
        });
        let hook: Id = self
            .call(
                Method::POST,
                &format!("/repos/{repository}/hooks"),
                token,
                Some(body),
            )
            .await?;
        Ok(hook.id)
    }

    async fn generate(
        &self,
        token: &str,
        template: &str,
        owner: &str,
        name: &str,
        private: bool,
    ) -> Result<RestRepository, RestError> {
        let body = json!({ "owner": owner, "name": name, "private": private, "include_all_branches": false });
        self.call(
            Method::POST,
            &format!("/repos/{template}/generate"),
            token,
            Some(body),
        )
        .await
    }

    async fn create_deployment(
        &self,
        token: &str,
        repository: &str,
        new: NewDeployment<'_>,
    ) -> Result<i64, RestError> {
        let body = json!({
            "ref": new.sha,
            "environment": new.environment,
            "description": new.description,
            "auto_merge": false,
            "required_contexts": [],
            "production_environment": new.production,
            "transient_environment": new.transient,
        });
        let made: Id = self
            .call(
                Method::POST,
                &format!("/repos/{repository}/deployments"),
                token,
                Some(body),
            )
            .await?;
        Ok(made.id)
    }

    async fn deployment_status(
        &self,
        token: &str,
        repository: &str,
        deployment: i64,
        state: &str,
        environment_url: Option<&str>,
        log_url: &str,
    ) -> Result<(), RestError> {
        let mut body = json!({ "state": state, "log_url": log_url, "auto_inactive": true });
        if let Some(url) = environment_url {
            body["environment_url"] = json!(url);
        }
        let _: Value = self
            .call(
                Method::POST,
                &format!("/repos/{repository}/deployments/{deployment}/statuses"),
                token,
                Some(body),
            )
            .await?;
        Ok(())
    }

    async fn comment(
        &self,
        token: &str,
        repository: &str,
        number: i64,
        existing: Option<i64>,
        body: &str,
    ) -> Result<i64, RestError> {
        let payload = Some(json!({ "body": body }));
        let written: Id = match existing {
            Some(id) => {
                self.call(
                    Method::PATCH,
                    &format!("/repos/{repository}/issues/comments/{id}"),
                    token,
                    payload,
                )
                .await?
            }
            None => {
                self.call(
                    Method::POST,
                    &format!("/repos/{repository}/issues/{number}/comments"),
                    token,
                    payload,
                )
                .await?
            }
        };
        Ok(written.id)
    }
}
