//! Every route of the API, called as every workspace role and as a member of a foreign
//! workspace. The route list comes from the router itself (the OpenAPI document is built
//! from the same registrations), so a new route without an entry in `POLICY` fails this
//! test, and an entry whose handler forgets its check fails it too: each forbidden call
//! must answer 401/403/404 and change nothing; the least role allowed must succeed.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_server::{
    auth::RequestMeta,
    models::deployment::machine::{State, transition},
    models::{
        deployment::{Deployments, NewDeployment, RequestedBy},
        member::Members,
        project::Projects,
    },
    router,
    schema::{github_deliveries, memberships, projects, releases, services},
    testing::{
        Client, TestApp, admin_url, git_main, git_repo, new_project, new_service, new_workspace, typed,
    },
};
use railyard_shared::{auth::Role, projects::EnvironmentResponse};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user; acts on their own account only.
    SignedIn,
    /// At least this role in the workspace named by the path (or the body).
    Workspace(Role),
    /// The instance's admins only (the first account).
    InstanceAdmin,
}

/// Every API route and who may call it.
const POLICY: &[(&str, &str, Access)] = &[
    ("get", "/api/v1/health", Access::Public),
    ("get", "/api/v1/instance", Access::InstanceAdmin),
    ("get", "/.well-known/jwks.json", Access::Public),
    ("get", "/api/v1/auth/csrf", Access::Public),
    ("post", "/api/v1/auth/signup", Access::Public),
    ("post", "/api/v1/auth/login", Access::Public),
    ("post", "/api/v1/auth/refresh", Access::Public),
    ("post", "/api/v1/auth/logout", Access::Public),
    ("get", "/api/v1/invitations/preview", Access::Public),
    ("get", "/api/v1/auth/providers", Access::Public),
    ("get", "/api/v1/auth/github/start", Access::Public),
    ("get", "/api/v1/auth/github/callback", Access::Public),
    ("post", "/api/v1/auth/github/separate", Access::Public),
    ("post", "/api/v1/auth/verify-email", Access::Public),
    ("get", "/api/v1/me", Access::SignedIn),
    ("get", "/api/v1/me/sessions", Access::SignedIn),
    ("delete", "/api/v1/me/sessions/{id}", Access::SignedIn),
    ("put", "/api/v1/me/password", Access::SignedIn),
    ("post", "/api/v1/me/email/verification", Access::SignedIn),
    ("get", "/api/v1/tokens", Access::SignedIn),
    ("delete", "/api/v1/tokens/{id}", Access::SignedIn),
    ("post", "/api/v1/invitations/accept", Access::SignedIn),
    ("get", "/api/v1/workspaces", Access::SignedIn),
    ("post", "/api/v1/workspaces", Access::SignedIn),
    ("post", "/api/v1/tokens", Access::Workspace(Role::Viewer)),
    ("get", "/api/v1/workspaces/{id}", Access::Workspace(Role::Viewer)),
    (
        "get",
        "/api/v1/workspaces/{id}/usage",
        Access::Workspace(Role::Viewer),
    ),
    ("patch", "/api/v1/workspaces/{id}", Access::Workspace(Role::Admin)),
    (
        "delete",
        "/api/v1/workspaces/{id}",
        Access::Workspace(Role::Owner),
    ),
    (
        "get",
        "/api/v1/workspaces/{id}/members",
        Access::Workspace(Role::Viewer),
    ),
    (
        "patch",
        "/api/v1/workspaces/{id}/members/{user_id}",
        Access::Workspace(Role::Admin),
    ),
    (
        "delete",
        "/api/v1/workspaces/{id}/members/{user_id}",
        Access::Workspace(Role::Admin),
    ),
    (
        "post",
        "/api/v1/workspaces/{id}/transfer",
        Access::Workspace(Role::Owner),
    ),
    (
        "get",
        "/api/v1/workspaces/{id}/invitations",
        Access::Workspace(Role::Admin),
    ),
    (
        "post",
        "/api/v1/workspaces/{id}/invitations",
        Access::Workspace(Role::Admin),
    ),
    (
        "delete",
        "/api/v1/workspaces/{id}/invitations/{invitation_id}",
        Access::Workspace(Role::Admin),
    ),
    (
        "get",
        "/api/v1/workspaces/{id}/audit",
        Access::Workspace(Role::Admin),
    ),
    ("post", "/api/v1/projects", Access::Workspace(Role::Member)),
    ("get", "/api/v1/projects", Access::Workspace(Role::Viewer)),
    ("get", "/api/v1/projects/{id}", Access::Workspace(Role::Viewer)),
    (
        "get",
        "/api/v1/projects/{id}/overview",
        Access::Workspace(Role::Viewer),
    ),
    ("patch", "/api/v1/projects/{id}", Access::Workspace(Role::Member)),
    ("delete", "/api/v1/projects/{id}", Access::Workspace(Role::Admin)),
    (
        "post",
        "/api/v1/projects/{id}/environments",
        Access::Workspace(Role::Member),
    ),
    (
        "delete",
        "/api/v1/environments/{id}",
        Access::Workspace(Role::Admin),
    ),
    (
        "patch",
        "/api/v1/environments/{id}",
        Access::Workspace(Role::Member),
    ),
    (
        "get",
        "/api/v1/projects/{id}/matrix",
        Access::Workspace(Role::Viewer),
    ),
    // A dry run (the default) is a read; applying needs the member role (tests/environments.rs).
    (
        "post",
        "/api/v1/projects/{id}/promotions",
        Access::Workspace(Role::Viewer),
    ),
    (
        "post",
        "/api/v1/services/{id}/promotions",
        Access::Workspace(Role::Viewer),
    ),
    (
        "post",
        "/api/v1/projects/{id}/services",
        Access::Workspace(Role::Member),
    ),
    (
        "get",
        "/api/v1/projects/{id}/services",
        Access::Workspace(Role::Viewer),
    ),
    ("get", "/api/v1/services/{id}", Access::Workspace(Role::Viewer)),
    ("patch", "/api/v1/services/{id}", Access::Workspace(Role::Member)),
    ("delete", "/api/v1/services/{id}", Access::Workspace(Role::Admin)),
    (
        "get",
        "/api/v1/services/{id}/settings",
        Access::Workspace(Role::Viewer),
    ),
    (
        "put",
        "/api/v1/services/{id}/settings",
        Access::Workspace(Role::Member),
    ),
    (
        "post",
        "/api/v1/services/{id}/deployments",
        Access::Workspace(Role::Member),
    ),
    (
        "get",
        "/api/v1/services/{id}/deployments",
        Access::Workspace(Role::Viewer),
    ),
    ("get", "/api/v1/deployments/{id}", Access::Workspace(Role::Viewer)),
    (
        "post",
        "/api/v1/deployments/{id}/cancel",
        Access::Workspace(Role::Member),
    ),
    (
        "post",
        "/api/v1/deployments/{id}/redeploy",
        Access::Workspace(Role::Member),
    ),
    (
        "post",
        "/api/v1/deployments/{id}/rollback",
        Access::Workspace(Role::Member),
    ),
    (
        "get",
        "/api/v1/deployments/{id}/logs",
        // Logs are for members by default (the workspace's `log_read_role`).
        Access::Workspace(Role::Member),
    ),
    (
        "post",
        "/api/v1/services/{id}/uploads",
        Access::Workspace(Role::Member),
    ),
    (
        "get",
        "/api/v1/services/{id}/status",
        Access::Workspace(Role::Viewer),
    ),
    (
        "post",
        "/api/v1/services/{id}/restart",
        Access::Workspace(Role::Member),
    ),
    (
        "post",
        "/api/v1/services/{id}/stop",
        Access::Workspace(Role::Member),
    ),
    (
        "post",
        "/api/v1/services/{id}/start",
        Access::Workspace(Role::Member),
    ),
    (
        "get",
        "/api/v1/services/{id}/logs",
        // Logs are for members by default (the workspace's `log_read_role`).
        Access::Workspace(Role::Member),
    ),
    // Variables: values are for members (viewers see none).
    (
        "get",
        "/api/v1/services/{id}/variables",
        Access::Workspace(Role::Member),
    ),
    (
        "post",
        "/api/v1/services/{id}/variables",
        Access::Workspace(Role::Member),
    ),
    (
        "put",
        "/api/v1/services/{id}/variables",
        Access::Workspace(Role::Member),
    ),
    (
        "patch",
        "/api/v1/services/{id}/variables/{name}",
        Access::Workspace(Role::Member),
    ),
    (
        "delete",
        "/api/v1/services/{id}/variables/{name}",
        Access::Workspace(Role::Member),
    ),
    (
        "get",
        "/api/v1/environments/{id}/shared-variables",
        Access::Workspace(Role::Member),
    ),
    (
        "post",
        "/api/v1/environments/{id}/shared-variables",
        Access::Workspace(Role::Member),
    ),
    (
        "put",
        "/api/v1/environments/{id}/shared-variables",
        Access::Workspace(Role::Member),
    ),
    (
        "patch",
        "/api/v1/environments/{id}/shared-variables/{name}",
        Access::Workspace(Role::Member),
    ),
    (
        "delete",
        "/api/v1/environments/{id}/shared-variables/{name}",
        Access::Workspace(Role::Member),
    ),
    (
        "post",
        "/api/v1/services/{id}/deploy-changes",
        Access::Workspace(Role::Member),
    ),
    // GitHub's webhook: no session, the signature decides (tests/github_webhooks.rs).
    ("post", "/api/v1/github/webhook", Access::Public),
    ("get", "/api/v1/github/connect", Access::SignedIn),
    ("get", "/api/v1/github/connection", Access::SignedIn),
    ("delete", "/api/v1/github/connection", Access::SignedIn),
    ("get", "/api/v1/github/repositories", Access::SignedIn),
    (
        "get",
        "/api/v1/github/repositories/{owner}/{repo}/branches",
        Access::SignedIn,
    ),
    (
        "post",
        "/api/v1/github/templates",
        Access::Workspace(Role::Member),
    ),
    (
        "get",
        "/api/v1/projects/{id}/github/deliveries",
        Access::Workspace(Role::Viewer),
    ),
    (
        "post",
        "/api/v1/projects/{id}/github/deliveries/{delivery}/redeliver",
        Access::Workspace(Role::Member),
    ),
    (
        "post",
        "/api/v1/projects/{id}/github/deliveries/{delivery}/approve",
        Access::Workspace(Role::Member),
    ),
    (
        "get",
        "/api/v1/projects/{id}/previews",
        Access::Workspace(Role::Viewer),
    ),
    (
        "put",
        "/api/v1/projects/{id}/previews",
        Access::Workspace(Role::Admin),
    ),
    (
        "get",
        "/api/v1/services/{id}/database",
        Access::Workspace(Role::Viewer),
    ),
    (
        "post",
        "/api/v1/services/{id}/database/credentials",
        Access::Workspace(Role::Member),
    ),
    (
        "get",
        "/api/v1/services/{id}/backups",
        Access::Workspace(Role::Viewer),
    ),
    (
        "post",
        "/api/v1/services/{id}/backups",
        Access::Workspace(Role::Member),
    ),
    (
        "put",
        "/api/v1/services/{id}/backup-settings",
        Access::Workspace(Role::Admin),
    ),
    ("get", "/api/v1/backups/{id}", Access::Workspace(Role::Viewer)),
    (
        "post",
        "/api/v1/backups/{id}/restore",
        Access::Workspace(Role::Admin),
    ),
    (
        "get",
        "/api/v1/backups/{id}/download",
        Access::Workspace(Role::Admin),
    ),
    ("get", "/api/v1/restores/{id}", Access::Workspace(Role::Viewer)),
];

const PASSWORD: &str = "correct horse battery";

/// A deployment of `service`'s `commit` in `environment`, taken through `steps`.
async fn deployment_in(
    conn: &mut diesel_async::AsyncPgConnection,
    service: &str,
    environment: uuid::Uuid,
    commit: &str,
    steps: &[(State, State)],
) -> uuid::Uuid {
    let service: uuid::Uuid = service.parse().unwrap();
    // Requested by the workspace's owner.
    let workspace: uuid::Uuid = services::table
        .inner_join(projects::table)
        .filter(services::id.eq(service))
        .select(projects::workspace_id)
        .first(conn)
        .await
        .unwrap();
    let owner: uuid::Uuid = memberships::table
        .filter(memberships::workspace_id.eq(workspace))
        .filter(memberships::role.eq("owner"))
        .select(memberships::user_id)
        .first(conn)
        .await
        .unwrap();
    let new = NewDeployment {
        service,
        environment,
        source_kind: "git",
        branch: Some("main".into()),
        commit: Some(commit.to_owned()),
        upload: None,
        release_of: None,
        promoted_from: None,
    };
    let by = RequestedBy {
        meta: &RequestMeta::default(),
        user: owner,
        workspace,
        action: "deployment.create",
    };
    let id = Deployments::request(conn, new, by).await.unwrap();
    for (from, to) in steps {
        transition(conn, id, *from, *to, "built").await.unwrap();
    }
    id
}

/// The routes the router registers, as `(method, path)`.
fn registered_routes() -> Vec<(String, String)> {
    let (_, openapi) = router::api_routes().split_for_parts();
    let doc = serde_json::to_value(&openapi).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.push((method.clone(), path.clone()));
            }
        }
    }
    routes.sort();
    routes
}

#[test]
fn every_route_has_an_access_policy() {
    let registered = registered_routes();
    for (method, path) in &registered {
        assert!(
            POLICY.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path} has no entry in POLICY: decide who may call it and add a check"
        );
    }
    for (method, path, _) in POLICY {
        assert!(
            registered.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} is not a route any more"
        );
    }
}

/// A workspace with one member of each role, a pending invitation, and an outsider who
/// owns a workspace of their own.
struct World<'a> {
    app: &'a TestApp,
    workspace: String,
    project: String,
    environment: String,
    production: String,
    service: String,
    /// A `postgres` service with a ready database in production, a verified backup of it
    /// (its sealed file in the store) and a restore.
    database_service: String,
    backup: String,
    restore: String,
    deployment: String,
    _repo: tempfile::TempDir,
    target_member: String,
    invitation: String,
    /// A webhook delivery of the project, waiting for approval.
    delivery: String,
    users: Vec<(Role, Client<'a>)>,
    outsider: Client<'a>,
}

async fn signup<'a>(app: &'a TestApp, email: &str) -> Client<'a> {
    let mut client = Client::new(app);
    let res = client
        .post(
            "/api/v1/auth/signup",
            json!({"email": email, "password": PASSWORD, "name": email}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    client
}

async fn user_id(client: &mut Client<'_>) -> uuid::Uuid {
    client.get("/api/v1/me").await.json()["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn world(app: &TestApp) -> World<'_> {
    let mut owner = app.admin().await;
    let ws = new_workspace(&mut owner, "acme").await;
    let workspace = ws.to_string();
    let mut users = vec![(Role::Owner, owner)];
    let mut conn = app.state.db.get().await.unwrap();
    for role in [Role::Admin, Role::Member, Role::Viewer] {
        let mut client = signup(app, &format!("role-{}@example.com", role.as_str())).await;
        Members::add(&mut conn, ws, user_id(&mut client).await, role)
            .await
            .unwrap();
        users.push((role, client));
    }
    // The member that member-management routes act on.
    let mut target = signup(app, "target@example.com").await;
    let target_id = user_id(&mut target).await;
    Members::add(&mut conn, ws, target_id, Role::Member)
        .await
        .unwrap();

    let res = users[0]
        .1
        .post(
            &format!("/api/v1/workspaces/{workspace}/invitations"),
            json!({"email": "invitee@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let invitation = res.json()["invitation"]["id"].as_str().unwrap().to_owned();

    let owner = &mut users[0].1;
    let project = new_project(owner, ws, "shop").await.id;
    let res = owner
        .post(
            &format!("/api/v1/projects/{project}/environments"),
            json!({"name": "staging"}),
        )
        .await;
    let environment = typed::<EnvironmentResponse>(&res).environment.id.to_string();
    let (repo, commit) = git_repo(&[("index.html", "hi")]);
    let url = format!("file://{}", repo.path().display());
    let service = new_service(owner, project, "web", git_main(url))
        .await
        .to_string();
    let project = project.to_string();
    // A built deployment (no workers run here): its release is kept, so it can be rolled
    // back to, and it is deploying, so it can be cancelled.
    let built = [
        (State::Queued, State::Building),
        (State::Building, State::Deploying),
    ];
    let deployment = deployment_in(&mut conn, &service, environment.parse().unwrap(), &commit, &built).await;
    diesel::insert_into(releases::table)
        .values((
            releases::deployment_id.eq(deployment),
            releases::service_id.eq(service.parse::<uuid::Uuid>().unwrap()),
            releases::environment_id.eq(environment.parse::<uuid::Uuid>().unwrap()),
            releases::path.eq(format!("releases/{deployment}")),
            releases::plan.eq(
                json!({"provider": "static", "build": [], "start": null, "health_check": null, "root": ""}),
            ),
        ))
        .execute(&mut conn)
        .await
        .unwrap();

    // The service is live in production (an active deployment), so it can be restarted,
    // stopped and started.
    let production = Projects::environment_of(&mut conn, project.parse().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let live = [
        (State::Queued, State::Building),
        (State::Building, State::Deploying),
        (State::Deploying, State::Active),
    ];
    let active = deployment_in(&mut conn, &service, production, &commit, &live).await;
    // Its release is kept (so "deploy changes" can release it again), and it has a variable;
    // so has the staging environment, shared.
    diesel::insert_into(releases::table)
        .values((
            releases::deployment_id.eq(active),
            releases::service_id.eq(service.parse::<uuid::Uuid>().unwrap()),
            releases::environment_id.eq(production),
            releases::path.eq(format!("releases/{active}")),
            releases::plan.eq(
                json!({"provider": "static", "build": [], "start": null, "health_check": null, "root": ""}),
            ),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    for path in [
        format!("/api/v1/services/{service}/variables"),
        format!("/api/v1/environments/{environment}/shared-variables"),
    ] {
        let res = users[0].1.post(&path, json!({"name": "KEY", "value": "v"})).await;
        assert_eq!(res.status, 201, "{}", res.text());
    }

    // A pull request's delivery waiting for a member's approval (its body processes to
    // nothing).
    let delivery = uuid::Uuid::new_v4();
    diesel::insert_into(github_deliveries::table)
        .values((
            github_deliveries::id.eq(delivery),
            github_deliveries::delivery_id.eq("authz-delivery"),
            github_deliveries::event.eq("pull_request"),
            github_deliveries::outcome.eq("awaiting_approval"),
            github_deliveries::payload.eq(b"{}".to_vec()),
            github_deliveries::project_ids.eq(vec![project.parse::<uuid::Uuid>().unwrap()]),
        ))
        .execute(&mut conn)
        .await
        .unwrap();

    let actor = user_id(&mut users[0].1).await;
    let (database_service, backup, restore) = database_in(app, &mut conn, &project, production, actor).await;

    let mut outsider = signup(app, "outsider@example.com").await;
    let res = outsider
        .post("/api/v1/workspaces", json!({"name": "elsewhere"}))
        .await;
    assert_eq!(res.status, 201);
    World {
        app,
        workspace,
        project,
        environment,
        production: production.to_string(),
        service,
        database_service,
        backup,
        restore,
        deployment: deployment.to_string(),
        _repo: repo,
        target_member: target_id.to_string(),
        invitation,
        delivery: delivery.to_string(),
        users,
        outsider,
    }
}

/// The rows of a ready database (no server is asked: the authz app's database host is the
/// test server, where it does not exist), a verified backup whose sealed file is stored,
/// and a restore.
async fn database_in(
    app: &TestApp,
    conn: &mut diesel_async::AsyncPgConnection,
    project: &str,
    production: uuid::Uuid,
    actor: uuid::Uuid,
) -> (String, String, String) {
    use railyard_server::{
        databases::backup::{self, crypt},
        models::database::{Backups, Restores, password_aad},
        schema::app_databases,
    };
    let service = Projects::create_service(
        conn,
        project.parse().unwrap(),
        "postgres",
        &railyard_shared::projects::Source::Postgres {},
    )
    .await
    .unwrap();
    let id = uuid::Uuid::new_v4();
    let name = railyard_server::databases::name_of(id);
    let sealed = app
        .state
        .keys
        .encrypt(b"0123456789abcdef0123", &password_aad(id))
        .unwrap();
    diesel::insert_into(app_databases::table)
        .values((
            app_databases::id.eq(id),
            app_databases::service_id.eq(service.id.uuid()),
            app_databases::environment_id.eq(production),
            app_databases::driver.eq("local"),
            app_databases::name.eq(&name),
            app_databases::role_name.eq(&name),
            app_databases::password_sealed.eq(sealed),
            app_databases::host.eq("127.0.0.1"),
            app_databases::port.eq(5432),
            app_databases::state.eq("ready"),
        ))
        .execute(conn)
        .await
        .unwrap();
    let backup_id = uuid::Uuid::new_v4();
    let key = backup::object_key(id, backup_id);
    let row = Backups::insert(conn, backup_id, id, "manual", "local", &key, None)
        .await
        .unwrap();
    Backups::verified(conn, backup_id, 10, &[]).await.unwrap();
    let database = railyard_server::models::database::Databases::find(conn, id)
        .await
        .unwrap()
        .unwrap();
    let path = app.state.config.data_dir.join("backups").join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = Vec::new();
    crypt::seal(
        &app.state.keys,
        &backup::header_of(&row, &database),
        &b"PGDMP"[..],
        &mut file,
    )
    .await
    .unwrap();
    std::fs::write(&path, file).unwrap();
    let restore = uuid::Uuid::new_v4();
    Restores::insert(conn, restore, backup_id, "new", "restore_x", actor)
        .await
        .unwrap();
    (service.id.to_string(), backup_id.to_string(), restore.to_string())
}

impl World<'_> {
    fn path(&self, template: &str) -> String {
        // `{id}` names the resource the path is about.
        let database = ["/database", "/backups", "/backup-settings"];
        let id = if template.starts_with("/api/v1/projects/") {
            &self.project
        } else if template.starts_with("/api/v1/services/") && database.iter().any(|d| template.contains(d)) {
            &self.database_service
        } else if template.starts_with("/api/v1/backups/") {
            &self.backup
        } else if template.starts_with("/api/v1/restores/") {
            &self.restore
        } else if template.starts_with("/api/v1/services/") {
            &self.service
        } else if template.starts_with("/api/v1/deployments/") {
            &self.deployment
        } else if template.starts_with("/api/v1/environments/") {
            &self.environment
        } else {
            &self.workspace
        };
        if template == "/api/v1/projects" {
            return format!("{template}?workspace_id={}", self.workspace);
        }
        template
            .replace("{id}", id)
            .replace("{user_id}", &self.target_member)
            .replace("{invitation_id}", &self.invitation)
            .replace("{delivery}", &self.delivery)
            .replace("{name}", "KEY")
    }

    fn body(&self, method: &str, template: &str) -> Option<Value> {
        let body = match (method, template) {
            ("post", "/api/v1/tokens") => {
                json!({"workspace_id": self.workspace, "name": "ci", "role": "viewer"})
            }
            ("patch", "/api/v1/workspaces/{id}") => json!({"name": "renamed"}),
            ("patch", "/api/v1/workspaces/{id}/members/{user_id}") => json!({"role": "viewer"}),
            ("post", "/api/v1/workspaces/{id}/transfer") => json!({"user_id": self.target_member}),
            ("post", "/api/v1/workspaces/{id}/invitations") => {
                json!({"email": "new@example.com", "role": "viewer"})
            }
            ("post", "/api/v1/projects") => json!({"workspace_id": self.workspace, "name": "other"}),
            ("patch", "/api/v1/projects/{id}") => json!({"name": "renamed"}),
            ("post", "/api/v1/projects/{id}/environments") => json!({"name": "preview"}),
            ("post", "/api/v1/projects/{id}/services") => {
                json!({"name": "api", "source": {"push": {"branch": "main"}}})
            }
            ("patch", "/api/v1/services/{id}") => json!({"name": "renamed"}),
            ("patch", "/api/v1/environments/{id}") => json!({"name": "renamed"}),
            ("post", "/api/v1/services/{id}/promotions" | "/api/v1/projects/{id}/promotions") => {
                json!({"from_environment_id": self.production, "to_environment_id": self.environment})
            }
            ("put", "/api/v1/services/{id}/settings") => json!({"build_command": "make"}),
            ("put", "/api/v1/projects/{id}/previews") => json!({"ttl_days": 3, "sealed_variables": false}),
            ("post", "/api/v1/github/templates") => {
                json!({"workspace_id": self.workspace, "template": "octo/starter", "name": "from-template"})
            }
            (
                "post",
                "/api/v1/projects/{id}/github/deliveries/{delivery}/redeliver"
                | "/api/v1/projects/{id}/github/deliveries/{delivery}/approve",
            ) => json!({}),
            ("post", "/api/v1/services/{id}/deployments") => json!({}),
            ("post", "/api/v1/services/{id}/backups" | "/api/v1/services/{id}/database/credentials") => {
                json!({})
            }
            ("put", "/api/v1/services/{id}/backup-settings") => {
                json!({"schedule": "0 3 * * *", "keep_daily": 7, "keep_weekly": 4})
            }
            ("post", "/api/v1/backups/{id}/restore") => json!({"target": "new"}),
            ("post", "/api/v1/services/{id}/variables" | "/api/v1/environments/{id}/shared-variables") => {
                json!({"name": "NEW", "value": "v"})
            }
            ("patch", "/api/v1/services/{id}/variables/{name}")
            | ("patch", "/api/v1/environments/{id}/shared-variables/{name}") => json!({"value": "changed"}),
            _ => return None,
        };
        Some(body)
    }

    /// A digest of every table a forbidden call could touch.
    async fn snapshot(&self) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Digest {
            #[diesel(sql_type = diesel::sql_types::Text)]
            digest: String,
        }
        let mut conn = self.app.state.db.get().await.unwrap();
        let mut out = Vec::new();
        for table in [
            "users",
            "workspaces",
            "memberships",
            "invitations",
            "api_tokens",
            "audit_log",
            "projects",
            "environments",
            "services",
            "service_settings",
            "deployments",
            "deployment_events",
            "releases",
            "jobs",
            "variables",
            "deployment_variables",
            "github_deliveries",
            "github_connections",
            "github_repositories",
            "app_databases",
            "backups",
            "backup_schedules",
            "restores",
        ] {
            let query = format!(
                "SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') AS digest FROM {table} t"
            );
            let row: Digest = diesel::sql_query(query).get_result(&mut conn).await.unwrap();
            out.push(format!("{table}:{}", row.digest));
        }
        out
    }
}

async fn call(client: &mut Client<'_>, method: &str, path: &str, body: Option<Value>) -> u16 {
    if path.ends_with("/uploads") {
        return upload(client, path).await;
    }
    if method == "put" && path.ends_with("variables") {
        return client.put_text(path, "KEY=1\nOTHER=2\n").await.status;
    }
    client.call(&method.to_uppercase(), path, body).await.status
}

/// Uploads take a tarball, not JSON: a one-file site.
async fn upload(client: &Client<'_>, path: &str) -> u16 {
    use std::io::Write as _;
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(2);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "index.html", &b"hi"[..]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    let mut request = axum::http::Request::post(path).header("content-type", "application/gzip");
    if !client.cookies.is_empty() {
        request = request.header("cookie", client.cookie_header());
    }
    if let Some(csrf) = client.cookies.get("railyard_csrf") {
        request = request.header("x-csrf-token", csrf);
    }
    let request = request
        .body(axum::body::Body::from(gz.finish().unwrap()))
        .unwrap();
    client.app.send(request).await.status
}

#[tokio::test(flavor = "multi_thread")]
async fn every_forbidden_call_is_refused_and_changes_nothing() {
    for (method, template, access) in POLICY {
        let Access::Workspace(needed) = *access else {
            continue;
        };
        // A fresh world per route, so the allowed call at the end cannot disturb the next.
        let app = TestApp::with(
            &[
                ("RAILYARD_OPEN_SIGNUP", "true"),
                ("RAILYARD_APP_POSTGRES_ADMIN_URL", &admin_url()),
            ],
            axum::Router::new(),
        )
        .await;
        let mut world = world(&app).await;
        let path = world.path(template);
        let body = world.body(method, template);
        let before = world.snapshot().await;

        let mut anonymous = Client::new(&app);
        let status = call(&mut anonymous, method, &path, body.clone()).await;
        assert!(
            status == 401 || status == 415,
            "{method} {template} anonymously: {status}"
        );

        let status = call(&mut world.outsider, method, &path, body.clone()).await;
        assert_eq!(
            status, 404,
            "{method} {template} as a member of another workspace"
        );
        for (role, client) in world.users.iter_mut() {
            if role.at_least(needed) {
                continue;
            }
            let status = call(client, method, &path, body.clone()).await;
            assert!(
                status == 403 || status == 404,
                "{method} {template} as {}: {status}",
                role.as_str()
            );
        }
        assert_eq!(
            world.snapshot().await,
            before,
            "{method} {template}: a refused call changed something"
        );

        let allowed = world.users.iter_mut().find(|(role, _)| *role == needed).unwrap();
        let status = call(&mut allowed.1, method, &path, body).await;
        // A template needs the caller's GitHub connection, which no one here has: past the
        // authorization, the answer says to connect GitHub.
        let passed =
            (200..300).contains(&status) || (*template == "/api/v1/github/templates" && status == 409);
        assert!(passed, "{method} {template} as {}: {status}", needed.as_str());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_in_routes_refuse_anonymous_callers() {
    let app = TestApp::new().await;
    for (method, template, access) in POLICY {
        if *access != Access::SignedIn {
            continue;
        }
        let path = template
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{owner}", "octo")
            .replace("{repo}", "shop");
        let body = (*method != "get" && *method != "delete").then(|| json!({"token": "x", "name": "x"}));
        let status = Client::new(&app)
            .call(&method.to_uppercase(), &path, body)
            .await
            .status;
        assert_eq!(status, 401, "{method} {template}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_routes_are_for_instance_admins_only() {
    let app = TestApp::with(
        &[
            ("RAILYARD_OPEN_SIGNUP", "true"),
            ("RAILYARD_APP_POSTGRES_ADMIN_URL", &admin_url()),
        ],
        axum::Router::new(),
    )
    .await;
    let mut admin = app.admin().await;
    let mut user = signup(&app, "someone@example.com").await;
    // Even the owner of a workspace of their own is no instance admin.
    new_workspace(&mut user, "theirs").await;
    for (method, template, access) in POLICY {
        if *access != Access::InstanceAdmin {
            continue;
        }
        let method = method.to_uppercase();
        assert_eq!(
            Client::new(&app).call(&method, template, None).await.status,
            401,
            "{template}"
        );
        let refused = user.call(&method, template, None).await;
        assert_eq!(refused.status, 403, "{template}: {}", refused.text());
        let allowed = admin.call(&method, template, None).await;
        assert_eq!(allowed.status, 200, "{template}: {}", allowed.text());
    }
}
