//! Projects, environments and services: the contract the CLI relies on, names, sources, and
//! the injection corpus through every name, branch and URL field.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use railyard_server::testing::{Client, TestApp, new_project, new_service, new_workspace};
use railyard_shared::projects::Source;
use serde_json::{Value, json};

async fn setup(app: &TestApp) -> (Client<'_>, String) {
    let mut owner = app.admin().await;
    let ws = new_workspace(&mut owner, "acme").await.to_string();
    (owner, ws)
}

const INJECTIONS: &[&str] = &[
    "main;touch /tmp/railyard-pwned",
    "$(touch /tmp/railyard-pwned)",
    "`touch /tmp/railyard-pwned`",
    "main\ntouch /tmp/railyard-pwned",
    "--upload-pack=touch /tmp/railyard-pwned",
    "-c core.hooksPath=/tmp",
    "ext::sh -c touch% /tmp/railyard-pwned",
    "../../etc",
    "main\u{0}x",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_project_comes_with_production_as_the_contract_says() {
    let app = TestApp::new().await;
    let (mut owner, ws) = setup(&app).await;
    let res = owner
        .post("/api/v1/projects", json!({"workspace_id": ws, "name": "shop"}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let project = &res.json()["project"];
    assert_eq!(project["name"], "shop");
    let envs = project["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 1);
    assert_eq!(envs[0]["name"], "production");
    assert!(envs[0]["id"].as_str().is_some());
    let id = project["id"].as_str().unwrap().to_owned();

    assert_eq!(
        owner
            .post("/api/v1/projects", json!({"workspace_id": ws, "name": "shop"}))
            .await
            .status,
        409
    );
    let res = owner
        .post(
            &format!("/api/v1/projects/{id}/environments"),
            json!({"name": "staging"}),
        )
        .await;
    assert_eq!(res.status, 201);
    let staging = res.json()["environment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        owner
            .post(
                &format!("/api/v1/projects/{id}/environments"),
                json!({"name": "staging"})
            )
            .await
            .status,
        409
    );

    let listed = owner
        .get(&format!("/api/v1/projects?workspace_id={ws}"))
        .await
        .json();
    let envs: Vec<&str> = listed["projects"][0]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    // In pipeline order: staging before production.
    assert_eq!(envs, ["staging", "production"]);
    assert_eq!(listed["projects"][0]["environments"][1]["kind"], "production");
    assert_eq!(listed["projects"][0]["environments"][0]["kind"], "staging");

    let production = listed["projects"][0]["environments"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        owner
            .call("DELETE", &format!("/api/v1/environments/{production}"), None)
            .await
            .status,
        409
    );
    assert_eq!(
        owner
            .call("DELETE", &format!("/api/v1/environments/{staging}"), None)
            .await
            .status,
        204
    );

    let res = owner
        .call(
            "PATCH",
            &format!("/api/v1/projects/{id}"),
            Some(json!({"name": "store"})),
        )
        .await;
    assert_eq!(res.json()["project"]["name"], "store");
    assert_eq!(
        owner
            .call("DELETE", &format!("/api/v1/projects/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(owner.get(&format!("/api/v1/projects/{id}")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn services_take_each_kind_of_source() {
    let app = TestApp::new().await;
    let (mut owner, ws) = setup(&app).await;
    let project = owner
        .post("/api/v1/projects", json!({"workspace_id": ws, "name": "shop"}))
        .await
        .json()["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let services = format!("/api/v1/projects/{project}/services");
    // Under RAILYARD_FILE_SOURCE_ROOTS (the tests' temporary directory).
    let local = format!("file://{}/git/shop", railyard_server::testing::file_source_root());
    for (name, source) in [
        (
            "web",
            json!({"git": {"url": "https://github.com/acme/shop.git", "branch": "main"}}),
        ),
        ("api", json!({"push": {"branch": "release/1.2"}})),
        ("docs", json!({"upload": {}})),
        ("local", json!({"git": {"url": local, "branch": "main"}})),
    ] {
        let res = owner
            .post(&services, json!({"name": name, "source": source}))
            .await;
        assert_eq!(res.status, 201, "{name}: {}", res.text());
        assert_eq!(res.json()["service"]["source"], source, "{name}");
        assert!(res.json()["service"]["id"].as_str().is_some());
    }
    let listed = owner.get(&services).await.json();
    let names: Vec<&str> = listed["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "docs", "local", "web"]);
    assert_eq!(
        owner
            .post(&services, json!({"name": "web", "source": {"upload": {}}}))
            .await
            .status,
        409
    );

    let id = listed["services"][3]["id"].as_str().unwrap().to_owned();
    let res = owner
        .call(
            "PATCH",
            &format!("/api/v1/services/{id}"),
            Some(json!({"source": {"push": {"branch": "main"}}})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["service"]["name"], "web");
    assert_eq!(
        res.json()["service"]["source"],
        json!({"push": {"branch": "main"}})
    );
    assert_eq!(
        owner
            .call("DELETE", &format!("/api/v1/services/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(owner.get(&format!("/api/v1/services/{id}")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_injection_corpus_is_refused_in_every_field_and_nothing_is_stored() {
    let app = TestApp::new().await;
    let (mut owner, ws) = setup(&app).await;
    let project = owner
        .post("/api/v1/projects", json!({"workspace_id": ws, "name": "shop"}))
        .await
        .json()["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let services = format!("/api/v1/projects/{project}/services");
    let data_dir = app
        .state
        .config
        .data_dir
        .canonicalize()
        .unwrap_or(app.state.config.data_dir.clone());
    let mut bodies: Vec<(String, Value)> = Vec::new();
    for bad in INJECTIONS {
        bodies.push((
            "/api/v1/projects".into(),
            json!({"workspace_id": ws, "name": bad}),
        ));
        bodies.push((
            format!("/api/v1/projects/{project}/environments"),
            json!({"name": bad}),
        ));
        bodies.push((services.clone(), json!({"name": bad, "source": {"upload": {}}})));
        bodies.push((
            services.clone(),
            json!({"name": "web", "source": {"push": {"branch": bad}}}),
        ));
        bodies.push((
            services.clone(),
            json!({"name": "web", "source": {"git": {"url": "https://github.com/a/b.git", "branch": bad}}}),
        ));
        bodies.push((
            services.clone(),
            json!({"name": "web", "source": {"git": {"url": bad, "branch": "main"}}}),
        ));
    }
    bodies.push((services.clone(), json!({"name": "web", "source": {"git": {"url": format!("file://{}/postgres", data_dir.display()), "branch": "main"}}})));
    // Credentials in the URL (they would be stored, shown to viewers and logged), a
    // repository outside RAILYARD_FILE_SOURCE_ROOTS, and percent-encoding git would decode.
    for url in [
        "https://user:ghp_secret@github.com/a/b.git".to_owned(),
        "https://ghp_secret@github.com/a/b.git".to_owned(),
        "file:///srv/elsewhere/repo".to_owned(),
        format!(
            "file://{}/%2e%2e/etc",
            railyard_server::testing::file_source_root()
        ),
    ] {
        bodies.push((
            services.clone(),
            json!({"name": "web", "source": {"git": {"url": url, "branch": "main"}}}),
        ));
    }
    for (path, body) in bodies {
        let res = owner.post(&path, body.clone()).await;
        assert!(
            res.status == 422 || res.status == 400,
            "{path} {body}: {} {}",
            res.status,
            res.text()
        );
        assert!(!res.json()["error"]["message"].as_str().unwrap().is_empty());
    }
    // The fields of a service that exists: its settings and what a deployment asks for.
    let store = owner
        .post("/api/v1/projects", json!({"workspace_id": ws, "name": "store"}))
        .await
        .json()["project"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let web = owner
        .post(
            &format!("/api/v1/projects/{store}/services"),
            json!({"name": "web", "source": {"git": {"url": "https://github.com/a/b.git", "branch": "main"}},
                   "deploy": false}),
        )
        .await
        .json()["service"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for bad in INJECTIONS {
        for field in ["root_dir", "health_check_path", "branch"] {
            let res = owner
                .call(
                    "PUT",
                    &format!("/api/v1/services/{web}/settings"),
                    Some(json!({ field: bad })),
                )
                .await;
            assert_eq!(res.status, 422, "{field}={bad:?}: {}", res.text());
        }
        for field in ["branch", "commit"] {
            let res = owner
                .post(
                    &format!("/api/v1/services/{web}/deployments"),
                    json!({ field: bad }),
                )
                .await;
            assert_eq!(res.status, 422, "{field}={bad:?}: {}", res.text());
        }
    }
    let settings = owner
        .get(&format!("/api/v1/services/{web}/settings"))
        .await
        .json();
    assert_eq!(
        settings["settings"]["root_dir"],
        Value::Null,
        "nothing was stored"
    );
    let deployments = owner
        .get(&format!("/api/v1/services/{web}/deployments"))
        .await
        .json();
    assert_eq!(deployments["deployments"], json!([]));

    assert!(!std::path::Path::new("/tmp/railyard-pwned").exists());
    assert_eq!(owner.get(&services).await.json()["services"], json!([]));
    let projects = owner
        .get(&format!("/api/v1/projects?workspace_id={ws}"))
        .await
        .json();
    assert_eq!(projects["projects"].as_array().unwrap().len(), 2);
    for project in projects["projects"].as_array().unwrap() {
        assert_eq!(project["environments"].as_array().unwrap().len(), 1);
    }
}

/// Every service answers at `<service>-<environment>-<project>`: two workspaces' projects
/// may share a name, but never a host (it would hand one tenant's traffic to another).
#[tokio::test(flavor = "multi_thread")]
async fn host_names_are_unique_across_the_instance() {
    let app = TestApp::new().await;
    let mut owner = app.admin().await;
    let push = || Source::Push {
        branch: "main".into(),
    };
    // Tenant A: shop/web, shop/web-staging, store/web.
    let a = new_workspace(&mut owner, "acme").await;
    let shop_a = new_project(&mut owner, a, "shop").await.id;
    new_service(&mut owner, shop_a, "web", push()).await;
    new_service(&mut owner, shop_a, "web-staging", push()).await;
    let store_a = new_project(&mut owner, a, "store").await.id;
    new_service(&mut owner, store_a, "web", push()).await;

    // Tenant B has a project `shop` too: its `web` would take A's host.
    let b = new_workspace(&mut owner, "globex").await;
    let shop_b = new_project(&mut owner, b, "shop").await.id;
    let services = format!("/api/v1/projects/{shop_b}/services");
    let res = owner
        .post(
            &services,
            json!({"name": "web", "source": {"push": {"branch": "main"}}}),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text());
    let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("web-production-shop.localhost"), "{message}");
    let res = owner
        .post(
            &services,
            json!({"name": "shop-web", "source": {"push": {"branch": "main"}}}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let mine = res.json()["service"]["id"].as_str().unwrap().to_owned();

    // Renaming into another tenant's host is refused as creating is.
    let res = owner
        .call(
            "PATCH",
            &format!("/api/v1/services/{mine}"),
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(res.status, 409, "renaming into A's host: {}", res.text());
    let other = new_service(&mut owner, shop_b, "api", push()).await;
    let res = owner
        .call(
            "PATCH",
            &format!("/api/v1/services/{other}"),
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text());
    // Renaming a service to its own name keeps its hosts.
    let res = owner
        .call(
            "PATCH",
            &format!("/api/v1/services/{mine}"),
            Some(json!({"name": "shop-web"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());

    // B's project `other` with a `web` service may not be renamed `store` (A's store/web).
    let other_b = new_project(&mut owner, b, "other").await.id;
    new_service(&mut owner, other_b, "web", push()).await;
    let res = owner
        .call(
            "PATCH",
            &format!("/api/v1/projects/{other_b}"),
            Some(json!({"name": "store"})),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text());

    // An environment: `web` in B's `other` plus `staging` would be `web-staging-other`,
    // free; in A's `shop`, `web` + `staging-production` would be A's own `web-staging`
    // in production, so it is refused there too.
    let res = owner
        .post(
            &format!("/api/v1/projects/{other_b}/environments"),
            json!({"name": "staging"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let res = owner
        .post(
            &format!("/api/v1/projects/{shop_a}/environments"),
            json!({"name": "staging-production"}),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text());
}
