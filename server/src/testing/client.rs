//! The test client: a browser-like client of a [`TestApp`] (cookies, CSRF header) and what
//! it gets back, with the flows tests share (an admin, a service from a git repository, a
//! deployment waited for).

use std::{collections::HashMap, path::Path};

use axum::{body::Body, http::Request};

use super::TestApp;

#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A browser-like client of a [`TestApp`]: keeps cookies and sends the CSRF header on writes.
#[derive(Debug)]
pub struct Client<'a> {
    pub app: &'a TestApp,
    pub cookies: HashMap<String, String>,
    /// Send `X-CSRF-Token` (from the `railyard_csrf` cookie) on writes.
    pub csrf: bool,
}

impl<'a> Client<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
            csrf: true,
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends `method path` with an optional JSON body; stores the cookies the server sets.
    pub async fn call(&mut self, method: &str, path: &str, body: Option<serde_json::Value>) -> TestResponse {
        let body = body.map(|json| ("application/json", json.to_string()));
        self.call_with(method, path, body).await
    }

    /// Sends `method path` with a plain-text body (e.g. `.env` text).
    pub async fn put_text(&mut self, path: &str, text: &str) -> TestResponse {
        self.call_with("PUT", path, Some(("text/plain", text.to_owned())))
            .await
    }

    async fn call_with(&mut self, method: &str, path: &str, body: Option<(&str, String)>) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(path);
        if !self.cookies.is_empty() {
            builder = builder.header("cookie", self.cookie_header());
        }
        if self.csrf
            && method != "GET"
            && let Some(token) = self.cookies.get("railyard_csrf")
        {
            builder = builder.header("x-csrf-token", token);
        }
        let request = match body {
            Some((content_type, body)) => builder
                .header("content-type", content_type)
                .body(Body::from(body))
                .expect("valid request"),
            None => builder.body(Body::empty()).expect("valid request"),
        };
        let response = self.app.send(request).await;
        for value in response.headers.get_all("set-cookie") {
            let Ok(header) = value.to_str() else { continue };
            let pair = header.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = value.is_empty() || header.contains("Max-Age=0");
                if expired {
                    self.cookies.remove(name)
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned())
                };
            }
        }
        response
    }

    pub async fn get(&mut self, path: &str) -> TestResponse {
        self.call("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, body: serde_json::Value) -> TestResponse {
        self.call("POST", path, Some(body)).await
    }

    /// A workspace, project `project` and a service `name` deploying `repo`'s `main`
    /// branch; the service id.
    pub async fn git_service(&mut self, project: &str, name: &str, repo: &Path) -> String {
        let workspace = super::new_workspace(self, &format!("{project}-team")).await;
        let project = super::new_project(self, workspace, project).await;
        self.add_git_service(&project.id.to_string(), name, repo).await
    }

    /// Adds service `name` (deploying branch `main` of `repo`) to an existing project.
    pub async fn add_git_service(&mut self, project: &str, name: &str, repo: &Path) -> String {
        let project = project.parse().expect("a project id");
        let source = super::git_main(format!("file://{}", repo.display()));
        super::new_service(self, project, name, source).await.to_string()
    }

    /// The project of `service` and that project's `production` environment.
    pub async fn project_and_production(&mut self, service: &str) -> (String, String) {
        let res = self.get(&format!("/api/v1/services/{service}")).await;
        let project = res.json()["service"]["project_id"]
            .as_str()
            .expect("the service's project")
            .to_owned();
        let res = self.get(&format!("/api/v1/projects/{project}")).await;
        let environment = res.json()["project"]["environments"]
            .as_array()
            .expect("environments")
            .iter()
            .find(|e| e["name"] == "production")
            .and_then(|e| e["id"].as_str())
            .expect("a production environment")
            .to_owned();
        (project, environment)
    }

    /// Deploys `service` and waits (up to 60 s) until the deployment is active or failed;
    /// its detail.
    pub async fn deploy_and_wait(&mut self, service: &str) -> serde_json::Value {
        let res = self
            .post(
                &format!("/api/v1/services/{service}/deployments"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        let id = res.json()["deployment"]["id"].as_str().expect("an id").to_owned();
        for _ in 0..6000 {
            let detail = self.get(&format!("/api/v1/deployments/{id}")).await.json()["deployment"].clone();
            let state = railyard_shared::DeploymentState::parse(detail["state"].as_str().unwrap_or_default());
            if state.is_some_and(|s| s == railyard_shared::DeploymentState::Active || s.is_final()) {
                return detail;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("deployment {id} never finished");
    }
}
