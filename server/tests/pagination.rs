//! Every list endpoint pages with `limit` and an opaque `next_cursor`: a full page names
//! the next one, the pages together hold every item once, and the last page ends it.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeSet;

use railyard_server::testing::{Client, Fixture, TestApp};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// Reads `path` page by page (2 items each) and returns the ids of `key`'s items, in order.
async fn all_pages(client: &mut Client<'_>, path: &str, key: &str, id: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let sep = if path.contains('?') { '&' } else { '?' };
    for page in 0.. {
        assert!(page < 20, "{path}: pages never end");
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=2&cursor={c}"),
            None => format!("{path}{sep}limit=2"),
        };
        let res = client.get(&url).await;
        assert_eq!(res.status, 200, "{url}: {}", res.text());
        let body: Value = res.json();
        let items = body[key].as_array().unwrap();
        assert!(items.len() <= 2, "{url}: the limit holds");
        ids.extend(items.iter().map(|i| i[id].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), 2, "{url}: only a full page has a next one");
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    ids
}

fn assert_every_item_once(ids: &[String], expected: usize, what: &str) {
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "{what}: an item repeated across pages: {ids:?}"
    );
    assert_eq!(ids.len(), expected, "{what}: {ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_and_workspace_lists_page() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let mut fixture = Fixture::new(&app).await;
    let (workspace, project) = (fixture.workspace, fixture.project);

    // Services (by name, across pages).
    for name in ["e", "a", "d", "b", "c"] {
        let res = fixture
            .client
            .post(
                &format!("/api/v1/projects/{project}/services"),
                json!({"name": name, "source": {"upload": {}}}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    let ids = all_pages(
        &mut fixture.client,
        &format!("/api/v1/projects/{project}/services"),
        "services",
        "id",
    )
    .await;
    assert_every_item_once(&ids, 5, "services");
    let names: Vec<String> = {
        let res = fixture
            .client
            .get(&format!("/api/v1/projects/{project}/services?limit=100"))
            .await;
        res.json()["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names, ["a", "b", "c", "d", "e"], "in name order");

    // Invitations and members: three invited, two of them joined.
    let mut tokens = Vec::new();
    for n in 0..3 {
        let res = fixture
            .client
            .post(
                &format!("/api/v1/workspaces/{workspace}/invitations"),
                json!({"email": format!("m{n}@example.com"), "role": "member"}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        tokens.push(
            res.json()["accept_url"]
                .as_str()
                .unwrap()
                .split("token=")
                .nth(1)
                .unwrap()
                .to_owned(),
        );
    }
    let ids = all_pages(
        &mut fixture.client,
        &format!("/api/v1/workspaces/{workspace}/invitations"),
        "invitations",
        "id",
    )
    .await;
    assert_every_item_once(&ids, 3, "invitations");
    for (n, token) in tokens.iter().enumerate().take(2) {
        let mut member = Client::new(&app);
        let res = member
            .post(
                "/api/v1/auth/signup",
                json!({"email": format!("m{n}@example.com"), "password": PASSWORD, "name": "M", "invitation_token": token}),
            )
            .await;
        assert!(res.status < 300, "{}", res.text());
    }
    let ids = all_pages(
        &mut fixture.client,
        &format!("/api/v1/workspaces/{workspace}/members"),
        "members",
        "user_id",
    )
    .await;
    assert_every_item_once(&ids, 3, "members");

    // API tokens.
    for n in 0..3 {
        let res = fixture
            .client
            .post(
                "/api/v1/tokens",
                json!({"workspace_id": workspace, "name": format!("t{n}"), "role": "member"}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    let ids = all_pages(&mut fixture.client, "/api/v1/tokens", "tokens", "id").await;
    assert_every_item_once(&ids, 3, "tokens");

    // Sessions: the admin signs in from two more devices.
    for _ in 0..2 {
        let mut device = Client::new(&app);
        let res = device
            .post(
                "/api/v1/auth/login",
                json!({"email": "admin@example.com", "password": PASSWORD}),
            )
            .await;
        assert!(res.status < 300, "{}", res.text());
    }
    let ids = all_pages(&mut fixture.client, "/api/v1/me/sessions", "sessions", "id").await;
    assert_every_item_once(&ids, 3, "sessions");

    // A cursor this server did not issue is a clear 400.
    let res = fixture.client.get("/api/v1/tokens?cursor=nonsense").await;
    assert_eq!(res.status, 400, "{}", res.text());
}
