//! The fixture builder: workspace → project → environment → service → deployment, through
//! the API as a signed-in owner, with typed responses (the shared API types), so tests
//! state what they set up in a line each instead of walking JSON.

use std::{path::Path, time::Duration};

use railyard_shared::{
    DeploymentState, ProjectId, ServiceId,
    auth::WorkspaceResponse,
    deployments::{DeploymentDetail, DeploymentResponse},
    projects::{EnvironmentResponse, Project, ProjectResponse, ServiceResponse, Source},
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{Client, TestApp, TestResponse};

/// A signed-in instance admin with a workspace and a project (and its `production`).
pub struct Fixture<'a> {
    pub client: Client<'a>,
    pub workspace: Uuid,
    pub project: Uuid,
    pub production: Uuid,
}

/// The body of a successful response as `T`; panics with the body otherwise.
pub fn typed<T: DeserializeOwned>(res: &TestResponse) -> T {
    assert!(res.status < 300, "HTTP {}: {}", res.status, res.text());
    serde_json::from_slice(&res.body).unwrap_or_else(|err| panic!("unexpected shape ({err}): {}", res.text()))
}

impl<'a> Fixture<'a> {
    /// The admin of `app`, a workspace `acme` and a project `shop`.
    pub async fn new(app: &'a TestApp) -> Self {
        Self::with(app.admin().await, "acme", "shop").await
    }

    /// `client`'s workspace `workspace` with project `project`.
    pub async fn with(mut client: Client<'a>, workspace: &str, project: &str) -> Self {
        let workspace = new_workspace(&mut client, workspace).await;
        let project = new_project(&mut client, workspace, project).await;
        let production = project
            .environments
            .iter()
            .find(|e| e.name == "production")
            .expect("a production environment")
            .id;
        Self {
            client,
            workspace,
            project: project.id.uuid(),
            production: production.uuid(),
        }
    }

    /// Adds environment `name` to the project.
    pub async fn environment(&mut self, name: &str) -> Uuid {
        let res = self
            .client
            .post(
                &format!("/api/v1/projects/{}/environments", self.project),
                serde_json::json!({"name": name}),
            )
            .await;
        typed::<EnvironmentResponse>(&res).environment.id.uuid()
    }

    /// Adds service `name` deploying branch `main` of the repository at `repo`.
    pub async fn git_service(&mut self, name: &str, repo: &Path) -> Uuid {
        self.service(name, git_main(format!("file://{}", repo.display())))
            .await
    }

    /// Adds service `name` deploying from `source`.
    pub async fn service(&mut self, name: &str, source: Source) -> Uuid {
        new_service(&mut self.client, self.project.into(), name, source)
            .await
            .uuid()
    }

    /// Adds service `name` that deploys what is pushed to its branch `main`.
    pub async fn push_service(&mut self, name: &str) -> Uuid {
        self.service(
            name,
            Source::Push {
                branch: "main".into(),
            },
        )
        .await
    }

    /// Requests a deployment of `service` in `environment`.
    pub async fn deploy(&mut self, service: Uuid, environment: Uuid) -> DeploymentDetail {
        let res = self
            .client
            .post(
                &format!("/api/v1/services/{service}/deployments"),
                serde_json::json!({"environment_id": environment}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        typed::<DeploymentResponse>(&res).deployment
    }

    pub async fn deployment(&mut self, id: Uuid) -> DeploymentDetail {
        let res = self.client.get(&format!("/api/v1/deployments/{id}")).await;
        typed::<DeploymentResponse>(&res).deployment
    }

    /// Waits (up to 60 s) until deployment `id` is in one of `states`.
    pub async fn wait_for(&mut self, id: Uuid, states: &[DeploymentState]) -> DeploymentDetail {
        self.wait_within(id, states, 60).await
    }

    /// Waits up to `secs` seconds until deployment `id` is in one of `states` (builds that
    /// download their packages take longer).
    pub async fn wait_within(&mut self, id: Uuid, states: &[DeploymentState], secs: u64) -> DeploymentDetail {
        for _ in 0..secs * 20 {
            let detail = self.deployment(id).await;
            if states.contains(&detail.deployment.state) {
                return detail;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = self.log(id).await;
        panic!("deployment {id} never reached {states:?}:\n{log}");
    }

    /// Deploys and waits until the deployment is live; fails on anything else.
    pub async fn deploy_live(&mut self, service: Uuid, environment: Uuid) -> DeploymentDetail {
        let id = self.deploy(service, environment).await.deployment.id.uuid();
        let done = self
            .wait_for(
                id,
                &[
                    DeploymentState::Active,
                    DeploymentState::Failed,
                    DeploymentState::Cancelled,
                ],
            )
            .await;
        assert_eq!(
            done.deployment.state,
            DeploymentState::Active,
            "{}",
            self.log(id).await
        );
        done
    }

    /// A deployment's build log as text.
    pub async fn log(&mut self, id: Uuid) -> String {
        self.client
            .get(&format!("/api/v1/deployments/{id}/logs?format=text"))
            .await
            .text()
    }
}

/// The steps of the ladder one at a time, for a test that holds its own client.
/// A workspace `name` of the caller's.
pub async fn new_workspace(client: &mut Client<'_>, name: &str) -> Uuid {
    let res = client
        .post("/api/v1/workspaces", serde_json::json!({"name": name}))
        .await;
    typed::<WorkspaceResponse>(&res).workspace.id.uuid()
}

/// A project `name` in `workspace` (with its `production`).
pub async fn new_project(client: &mut Client<'_>, workspace: Uuid, name: &str) -> Project {
    let res = client
        .post(
            "/api/v1/projects",
            serde_json::json!({"workspace_id": workspace, "name": name}),
        )
        .await;
    typed::<ProjectResponse>(&res).project
}

/// A service `name` of `project` deploying from `source`.
pub async fn new_service(
    client: &mut Client<'_>,
    project: ProjectId,
    name: &str,
    source: Source,
) -> ServiceId {
    let res = client
        .post(
            &format!("/api/v1/projects/{project}/services"),
            // Tests deploy when they mean to (a new repository service otherwise deploys at once).
            serde_json::json!({"name": name, "source": source, "deploy": false}),
        )
        .await;
    typed::<ServiceResponse>(&res).service.id
}

/// Branch `main` of the repository at `url`.
pub fn git_main(url: impl Into<String>) -> Source {
    Source::Git {
        url: url.into(),
        branch: "main".into(),
    }
}
