//! Workspaces, members, invitations, API tokens and the audit endpoint: the rules users
//! rely on, including the attacks on them (invitation hijack, reuse, escalation).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use axum::{body::Body, http::Request};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_server::{
    schema::{api_tokens, invitations},
    testing::{Client, TestApp, TestResponse, new_workspace},
};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

async fn signup<'a>(app: &'a TestApp, email: &str, invitation: Option<&str>) -> (TestResponse, Client<'a>) {
    let mut client = Client::new(app);
    let res = client
        .post(
            "/api/v1/auth/signup",
            json!({"email": email, "password": PASSWORD, "name": email, "invitation_token": invitation}),
        )
        .await;
    (res, client)
}

async fn workspace(owner: &mut Client<'_>, name: &str) -> String {
    new_workspace(owner, name).await.to_string()
}

/// Invites `email` and returns the token from the accept URL.
async fn invite(owner: &mut Client<'_>, ws: &str, email: &str, role: &str) -> String {
    let res = owner
        .post(
            &format!("/api/v1/workspaces/{ws}/invitations"),
            json!({"email": email, "role": role}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let url = res.json()["accept_url"].as_str().unwrap().to_owned();
    assert!(url.contains("/invite?token="), "{url}");
    url.split("token=").nth(1).unwrap().to_owned()
}

fn member_roles(res: &TestResponse) -> Vec<(String, String)> {
    res.json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn bearer(app: &TestApp, method: &str, path: &str, token: &str, body: Option<Value>) -> TestResponse {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let request = match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    };
    app.send(request.unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn invitations_are_bound_single_use_and_capped() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let mut owner = app.admin().await;
    let ws = workspace(&mut owner, "acme").await;
    let token = invite(&mut owner, &ws, "Bob@Example.com", "member").await;

    // The preview shows what the link is for, without signing in.
    let res = app
        .get(&format!("/api/v1/invitations/preview?token={token}"))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["invitation"]["workspace_name"], "acme");
    assert_eq!(res.json()["invitation"]["email"], "bob@example.com");
    assert_eq!(res.json()["invitation"]["account_exists"], false);

    // Hijack: another account cannot accept it, and the attempt does not use it up.
    let (_, mut mallory) = signup(&app, "mallory@example.com", None).await;
    let res = mallory
        .post("/api/v1/invitations/accept", json!({"token": token}))
        .await;
    assert_eq!(res.status, 403, "{}", res.text());
    let res = signup(&app, "mallory2@example.com", Some(&token)).await.0;
    assert_eq!(
        res.status,
        403,
        "an invitation for another address fails the whole sign-up: {}",
        res.text()
    );
    let mut conn = app.state.db.get().await.unwrap();
    let stored: i64 = railyard_server::schema::users::table
        .filter(railyard_server::schema::users::email.eq("mallory2@example.com"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, 0, "and nothing of it is stored");
    let res = owner.get(&format!("/api/v1/workspaces/{ws}/members")).await;
    assert!(
        !member_roles(&res).iter().any(|(e, _)| e.starts_with("mallory")),
        "{:?}",
        member_roles(&res)
    );

    let (_, mut bob) = signup(&app, "bob@example.com", None).await;
    let res = bob
        .post("/api/v1/invitations/accept", json!({"token": token}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["workspace"]["role"], "member");

    // Reuse: the link works once.
    let res = bob
        .post("/api/v1/invitations/accept", json!({"token": token}))
        .await;
    assert_eq!(res.status, 404);
    assert_eq!(
        app.get(&format!("/api/v1/invitations/preview?token={token}"))
            .await
            .status,
        404
    );

    // Escalation: a member cannot invite; an admin cannot invite an owner.
    let res = bob
        .post(
            &format!("/api/v1/workspaces/{ws}/invitations"),
            json!({"email": "x@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(res.status, 403);
    let (_, mut alice) = signup(&app, "alice@example.com", None).await;
    let t = invite(&mut owner, &ws, "alice@example.com", "admin").await;
    assert_eq!(
        alice
            .post("/api/v1/invitations/accept", json!({"token": t}))
            .await
            .status,
        200
    );
    let res = alice
        .post(
            &format!("/api/v1/workspaces/{ws}/invitations"),
            json!({"email": "y@example.com", "role": "owner"}),
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.text());
    let res = alice
        .post(
            &format!("/api/v1/workspaces/{ws}/invitations"),
            json!({"email": "y@example.com", "role": "admin"}),
        )
        .await;
    assert_eq!(res.status, 201);

    // One pending invitation per address; members are not invited again.
    let res = owner
        .post(
            &format!("/api/v1/workspaces/{ws}/invitations"),
            json!({"email": "y@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(res.status, 409);
    let res = owner
        .post(
            &format!("/api/v1/workspaces/{ws}/invitations"),
            json!({"email": "bob@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(res.status, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_and_revoked_invitations_do_nothing() {
    let app = TestApp::new().await;
    let mut owner = app.admin().await;
    let ws = workspace(&mut owner, "acme").await;
    let expired = invite(&mut owner, &ws, "late@example.com", "viewer").await;
    let revoked = invite(&mut owner, &ws, "nope@example.com", "viewer").await;

    let mut conn = app.state.db.get().await.unwrap();
    diesel::update(invitations::table.filter(invitations::email.eq("late@example.com")))
        .set(invitations::expires_at.eq(chrono::Utc::now() - chrono::Duration::minutes(1)))
        .execute(&mut conn)
        .await
        .unwrap();
    let pending = owner
        .get(&format!("/api/v1/workspaces/{ws}/invitations"))
        .await
        .json();
    let pending = pending["invitations"].as_array().unwrap().clone();
    assert_eq!(pending.len(), 1, "the expired one is not pending");
    let id = pending[0]["id"].as_str().unwrap();
    assert_eq!(
        owner
            .call(
                "DELETE",
                &format!("/api/v1/workspaces/{ws}/invitations/{id}"),
                None
            )
            .await
            .status,
        204
    );
    assert_eq!(
        owner
            .get(&format!("/api/v1/workspaces/{ws}/invitations"))
            .await
            .json()["invitations"],
        json!([])
    );

    // Invite-only instance: neither token lets its address sign up.
    for (email, token) in [("late@example.com", expired), ("nope@example.com", revoked)] {
        let (res, _) = signup(&app, email, Some(&token)).await;
        assert_eq!(res.status, 404, "{email}: {}", res.text());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_signs_up_its_address_on_an_invite_only_instance() {
    let app = TestApp::new().await;
    let mut owner = app.admin().await;
    let ws = workspace(&mut owner, "acme").await;
    let token = invite(&mut owner, &ws, "new@example.com", "viewer").await;

    let (res, _) = signup(&app, "other@example.com", Some(&token)).await;
    assert_eq!(res.status, 403, "another address cannot use it: {}", res.text());
    let (res, _) = signup(&app, "someone@example.com", None).await;
    assert_eq!(res.status, 403, "no invitation, no account");

    let (res, mut new) = signup(&app, "new@example.com", Some(&token)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let res = new.get("/api/v1/workspaces").await;
    assert_eq!(res.json()["workspaces"][0]["name"], "acme");
    assert_eq!(res.json()["workspaces"][0]["role"], "viewer");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_always_keeps_an_owner() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let mut owner = app.admin().await;
    let ws = workspace(&mut owner, "acme").await;
    let me = owner.get("/api/v1/me").await.json()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, mut bob) = signup(&app, "bob@example.com", None).await;
    let token = invite(&mut owner, &ws, "bob@example.com", "admin").await;
    bob.post("/api/v1/invitations/accept", json!({"token": token}))
        .await;
    let bob_id = bob.get("/api/v1/me").await.json()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let members = format!("/api/v1/workspaces/{ws}/members");
    // The last owner can neither leave nor be demoted; an admin cannot touch owners.
    assert_eq!(
        owner
            .call("DELETE", &format!("{members}/{me}"), None)
            .await
            .status,
        409
    );
    assert_eq!(
        owner
            .call(
                "PATCH",
                &format!("{members}/{me}"),
                Some(json!({"role": "admin"}))
            )
            .await
            .status,
        409
    );
    assert_eq!(
        bob.call(
            "PATCH",
            &format!("{members}/{me}"),
            Some(json!({"role": "viewer"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        bob.call("DELETE", &format!("{members}/{me}"), None).await.status,
        403
    );
    assert_eq!(
        bob.call(
            "PATCH",
            &format!("{members}/{bob_id}"),
            Some(json!({"role": "owner"}))
        )
        .await
        .status,
        403
    );

    // Transfer: bob becomes owner, the old owner an admin, who may then leave.
    let res = owner
        .post(
            &format!("/api/v1/workspaces/{ws}/transfer"),
            json!({"user_id": bob_id}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let roles = member_roles(&bob.get(&members).await);
    assert!(
        roles.contains(&("bob@example.com".into(), "owner".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&("admin@example.com".into(), "admin".into())),
        "{roles:?}"
    );
    assert_eq!(
        owner
            .call("DELETE", &format!("{members}/{me}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        owner.get(&format!("/api/v1/workspaces/{ws}")).await.status,
        404,
        "gone after leaving"
    );
    assert_eq!(member_roles(&bob.get(&members).await).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_are_scoped_capped_shown_once_and_revocable() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let mut owner = app.admin().await;
    let ws = workspace(&mut owner, "acme").await;
    let other_ws = workspace(&mut owner, "other").await;
    let (_, mut dev) = signup(&app, "dev@example.com", None).await;
    let token = invite(&mut owner, &ws, "dev@example.com", "member").await;
    dev.post("/api/v1/invitations/accept", json!({"token": token}))
        .await;

    let res = dev
        .post(
            "/api/v1/tokens",
            json!({"workspace_id": ws, "name": "ci", "role": "admin"}),
        )
        .await;
    assert_eq!(res.status, 403, "above the creator's role");
    let res = dev
        .post("/api/v1/tokens", json!({"workspace_id": other_ws, "name": "ci"}))
        .await;
    assert_eq!(res.status, 404, "not a member there");
    let res = dev
        .post(
            "/api/v1/tokens",
            json!({"workspace_id": ws, "name": "ci", "expires_in_days": 400}),
        )
        .await;
    assert_eq!(res.status, 422);
    let res = dev
        .post("/api/v1/tokens", json!({"workspace_id": ws, "name": "ci"}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let secret = res.json()["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ry_"));
    assert_eq!(
        res.json()["api_token"]["role"],
        "member",
        "defaults to the creator's role"
    );

    // Listed without the secret; stored hashed.
    let listed = dev.get("/api/v1/tokens").await.text();
    assert!(!listed.contains(&secret));
    let mut conn = app.state.db.get().await.unwrap();
    let hashes: Vec<Vec<u8>> = api_tokens::table
        .select(api_tokens::token_hash)
        .load(&mut conn)
        .await
        .unwrap();
    assert!(
        hashes
            .iter()
            .all(|h| h.len() == 32 && !String::from_utf8_lossy(h).contains("ry_"))
    );

    // The token works without cookies or CSRF, inside its workspace only.
    let res = bearer(&app, "GET", &format!("/api/v1/workspaces/{ws}"), &secret, None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["workspace"]["role"], "member");
    assert_eq!(
        bearer(
            &app,
            "GET",
            &format!("/api/v1/workspaces/{other_ws}"),
            &secret,
            None
        )
        .await
        .status,
        404
    );
    let res = bearer(&app, "GET", "/api/v1/workspaces", &secret, None).await;
    assert_eq!(res.json()["workspaces"].as_array().unwrap().len(), 1);
    let res = bearer(
        &app,
        "POST",
        "/api/v1/tokens",
        &secret,
        Some(json!({"workspace_id": ws, "name": "again"})),
    )
    .await;
    assert_eq!(res.status, 403, "tokens do not mint tokens");
    // Nor reach the account: its tokens in other workspaces, its devices (finding 11).
    let sessions_before = dev.get("/api/v1/me/sessions").await.json()["sessions"].clone();
    let token_id = dev.get("/api/v1/tokens").await.json()["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session_id = sessions_before[0]["id"].as_str().unwrap().to_owned();
    for (method, path) in [
        ("GET", "/api/v1/tokens".to_owned()),
        ("DELETE", format!("/api/v1/tokens/{token_id}")),
        ("GET", "/api/v1/me/sessions".to_owned()),
        ("DELETE", format!("/api/v1/me/sessions/{session_id}")),
    ] {
        let res = bearer(&app, method, &path, &secret, None).await;
        assert_eq!(res.status, 403, "{method} {path} with a token: {}", res.text());
    }
    assert_eq!(
        dev.get("/api/v1/me/sessions").await.json()["sessions"],
        sessions_before
    );
    assert_eq!(
        bearer(&app, "GET", "/api/v1/me", &secret, None).await.status,
        200,
        "still working"
    );

    // A token's role is capped by the member's current role.
    let dev_id = dev.get("/api/v1/me").await.json()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    owner
        .call(
            "PATCH",
            &format!("/api/v1/workspaces/{ws}/members/{dev_id}"),
            Some(json!({"role": "viewer"})),
        )
        .await;
    let res = bearer(&app, "GET", &format!("/api/v1/workspaces/{ws}"), &secret, None).await;
    assert_eq!(res.json()["workspace"]["role"], "viewer");

    for bad in ["ry_nope", "not-a-token", ""] {
        assert_eq!(
            bearer(&app, "GET", "/api/v1/me", bad, None).await.status,
            401,
            "{bad:?}"
        );
    }
    let id = dev.get("/api/v1/tokens").await.json()["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        owner
            .call("DELETE", &format!("/api/v1/tokens/{id}"), None)
            .await
            .status,
        404,
        "not the owner's token"
    );
    assert_eq!(
        dev.call("DELETE", &format!("/api/v1/tokens/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        bearer(&app, "GET", "/api/v1/me", &secret, None).await.status,
        401,
        "revoked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_api_tokens_are_refused() {
    let app = TestApp::new().await;
    let mut owner = app.admin().await;
    let ws = workspace(&mut owner, "acme").await;
    let res = owner
        .post(
            "/api/v1/tokens",
            json!({"workspace_id": ws, "name": "short", "expires_in_days": 1}),
        )
        .await;
    let secret = res.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(bearer(&app, "GET", "/api/v1/me", &secret, None).await.status, 200);
    let mut conn = app.state.db.get().await.unwrap();
    diesel::update(api_tokens::table)
        .set(api_tokens::expires_at.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(bearer(&app, "GET", "/api/v1/me", &secret, None).await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_lists_filters_and_pages() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let mut owner = app.admin().await;
    let ws = workspace(&mut owner, "acme").await;
    for name in ["one", "two", "three"] {
        owner
            .call(
                "PATCH",
                &format!("/api/v1/workspaces/{ws}"),
                Some(json!({"name": name})),
            )
            .await;
    }
    invite(&mut owner, &ws, "bob@example.com", "viewer").await;
    let audit = format!("/api/v1/workspaces/{ws}/audit");

    let all = owner.get(&audit).await.json();
    let actions: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "invitation.create",
            "workspace.rename",
            "workspace.rename",
            "workspace.rename",
            "workspace.create"
        ]
    );
    let first = &all["entries"][0];
    assert!(!first["request_id"].as_str().unwrap().is_empty());
    assert_eq!(first["detail"]["email"], "bob@example.com");
    assert_eq!(
        first["actor_email"], "admin@example.com",
        "the actor is shown by their address"
    );

    let renames = owner
        .get(&format!("{audit}?action=workspace.rename"))
        .await
        .json();
    assert_eq!(renames["entries"].as_array().unwrap().len(), 3);
    let prefixed = owner.get(&format!("{audit}?action=workspace.*")).await.json();
    assert_eq!(prefixed["entries"].as_array().unwrap().len(), 4);

    let mut seen = Vec::new();
    let mut path = format!("{audit}?limit=2");
    loop {
        let page = owner.get(&path).await.json();
        seen.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{audit}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {seen:?}"
    );

    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let later = owner
        .get(&format!("{audit}?since={}", urlencode(&future)))
        .await
        .json();
    assert_eq!(later["entries"], json!([]));
    let someone = uuid::Uuid::new_v4();
    assert_eq!(
        owner.get(&format!("{audit}?actor_id={someone}")).await.json()["entries"],
        json!([])
    );
    assert_eq!(owner.get(&format!("{audit}?cursor=abc")).await.status, 400);
}

fn urlencode(value: &str) -> String {
    value.replace('+', "%2B").replace(':', "%3A")
}

/// A local server speaking Resend's `POST /emails`; records what it is sent.
#[tokio::test(flavor = "multi_thread")]
async fn invitations_are_emailed_when_a_mail_service_is_configured() {
    let (url, sent) = railyard_server::testing::fake_resend(200).await;
    let vars = [
        ("RESEND_API_KEY", "re_test_key"),
        ("RESEND_API_URL", url.as_str()),
        ("RAILYARD_MAIL_FROM", "Railyard <noreply@example.com>"),
    ];
    let app = TestApp::with(&vars, axum::Router::new()).await;
    let mut owner = app.admin().await;
    let ws = workspace(&mut owner, "Acme <script>").await;
    let res = owner
        .post(
            &format!("/api/v1/workspaces/{ws}/invitations"),
            json!({"email": "Grace@Example.com", "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["email_sent"], true);
    let accept_url = res.json()["accept_url"].as_str().unwrap().to_owned();

    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let (auth, mail) = &sent[0];
    assert_eq!(auth, "Bearer re_test_key");
    assert_eq!(mail["from"], "Railyard <noreply@example.com>");
    assert_eq!(mail["to"], json!(["grace@example.com"]));
    assert!(mail["subject"].as_str().unwrap().contains("Acme <script>"));
    assert!(mail["text"].as_str().unwrap().contains(&accept_url));
    assert!(
        mail.get("html").is_none(),
        "plain text only: names are user input"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_mail_service_leaves_the_invitation_and_its_link() {
    let (url, sent) = railyard_server::testing::fake_resend(500).await;
    let vars = [
        ("RESEND_API_KEY", "re_test_key"),
        ("RESEND_API_URL", url.as_str()),
        ("RAILYARD_MAIL_FROM", "noreply@example.com"),
    ];
    let app = TestApp::with(&vars, axum::Router::new()).await;
    let mut owner = app.admin().await;
    let ws = workspace(&mut owner, "acme").await;
    let res = owner
        .post(
            &format!("/api/v1/workspaces/{ws}/invitations"),
            json!({"email": "grace@example.com", "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201);
    assert_eq!(res.json()["email_sent"], false);
    assert_eq!(sent.lock().unwrap().len(), 1, "it was tried");
    let pending = owner
        .get(&format!("/api/v1/workspaces/{ws}/invitations"))
        .await
        .json();
    assert_eq!(pending["invitations"].as_array().unwrap().len(), 1);
}
