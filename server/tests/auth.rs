//! Accounts and sessions: the setup link, sign-up rules, sign-in, CSRF, refresh rotation
//! and reuse detection, sign-out, session management, the audit trail.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_server::{
    schema::{audit_log, refresh_tokens, users},
    testing::{Client, TestApp},
};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

fn signup_body(email: &str, token: Option<&str>) -> serde_json::Value {
    json!({"email": email, "password": PASSWORD, "name": "Someone", "setup_token": token})
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let mut conn = app.state.db.get().await.unwrap();
    audit_log::table
        .order(audit_log::id.asc())
        .select(audit_log::action)
        .load(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_setup_link_creates_the_first_admin() {
    let app = TestApp::new().await;
    let token = app.setup_token().await;
    let mut visitor = Client::new(&app);

    // The first visitor does not become admin by being first.
    let res = visitor
        .post("/api/v1/auth/signup", signup_body("first@example.com", None))
        .await;
    assert_eq!(res.status, 403, "{}", res.text());
    let res = visitor
        .post(
            "/api/v1/auth/signup",
            signup_body("first@example.com", Some("guessed-token")),
        )
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(res.json()["error"]["code"], "forbidden");

    let mut admin = Client::new(&app);
    let res = admin
        .post(
            "/api/v1/auth/signup",
            signup_body("Admin@Example.com ", Some(&token)),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let user = &res.json()["user"];
    assert_eq!(user["email"], "admin@example.com", "normalised");
    assert_eq!(user["is_instance_admin"], true);
    for cookie in ["railyard_access", "railyard_session", "railyard_csrf"] {
        assert!(admin.cookies.contains_key(cookie), "{cookie} set");
    }
    let set_cookie: Vec<_> = res
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let access = set_cookie
        .iter()
        .find(|c| c.starts_with("railyard_access="))
        .unwrap();
    assert!(
        access.contains("HttpOnly") && access.contains("SameSite=Lax"),
        "{access}"
    );
    // The long-lived refresh secret goes only to the endpoints that exchange or end it.
    let refresh = set_cookie
        .iter()
        .find(|c| c.starts_with("railyard_session="))
        .unwrap();
    assert!(
        refresh.contains("Path=/api/v1/auth") && refresh.contains("HttpOnly"),
        "{refresh}"
    );
    assert!(
        access.contains("Path=/;") || access.ends_with("Path=/"),
        "{access}"
    );
    let csrf = set_cookie
        .iter()
        .find(|c| c.starts_with("railyard_csrf="))
        .unwrap();
    assert!(
        !csrf.contains("HttpOnly"),
        "the SPA reads the CSRF cookie: {csrf}"
    );

    // The link works once; afterwards sign-up is invitation-only by default.
    let res = visitor
        .post(
            "/api/v1/auth/signup",
            signup_body("second@example.com", Some(&token)),
        )
        .await;
    assert_eq!(res.status, 403);
    assert!(
        res.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invitation")
    );

    let res = admin.get("/api/v1/me").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["user"]["email"], "admin@example.com");
    let actions = audit_actions(&app).await;
    assert!(actions.contains(&"user.signup".to_owned()), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_signup_creates_ordinary_accounts_and_validates_input() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    app.admin().await;
    let mut client = Client::new(&app);
    let res = client
        .post("/api/v1/auth/signup", signup_body("dev@example.com", None))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["user"]["is_instance_admin"], false);

    let res = client
        .post("/api/v1/auth/signup", signup_body("DEV@example.com", None))
        .await;
    assert_eq!(res.status, 409, "the same address in another case");

    for (body, field) in [
        (
            json!({"email": "a@example.com", "password": "password1", "name": "A"}),
            "commonly used",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "name": "A"}),
            "at least 8",
        ),
        (
            json!({"email": "a@example.com", "password": "x".repeat(129), "name": "A"}),
            "at most 128",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD, "name": "A"}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "  "}),
            "name",
        ),
        (
            json!({"email": "a@example.com", "password": " \t  \u{3000}    ", "name": "A"}),
            "only spaces",
        ),
        // Text that reads otherwise than it is: "Ada" shown, "ada\u{202E}nimda" stored.
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "ada\u{202E}nimda"}),
            "bidirectional",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "ad\u{200B}min"}),
            "zero-width",
        ),
    ] {
        let res = client.post("/api/v1/auth/signup", body).await;
        assert_eq!(res.status, 422, "{}", res.text());
        assert!(
            res.json()["error"]["message"].as_str().unwrap().contains(field),
            "{}",
            res.text()
        );
    }
    let mut conn = app.state.db.get().await.unwrap();
    let count: i64 = users::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(count, 2, "nothing stored for refused sign-ups");
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_refuses_wrong_passwords_alike_and_audits_both() {
    let app = TestApp::new().await;
    app.admin().await;
    let mut client = Client::new(&app);
    let wrong = client
        .post(
            "/api/v1/auth/login",
            json!({"email": "admin@example.com", "password": "nope nope nope"}),
        )
        .await;
    let unknown = client
        .post(
            "/api/v1/auth/login",
            json!({"email": "ghost@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(
        wrong.json()["error"]["message"],
        unknown.json()["error"]["message"],
        "no account enumeration"
    );
    assert!(!client.cookies.contains_key("railyard_access"));

    let res = client
        .post(
            "/api/v1/auth/login",
            json!({"email": " ADMIN@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(client.get("/api/v1/me").await.status, 200);

    let actions = audit_actions(&app).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.login_failed").count(),
        2,
        "{actions:?}"
    );
    assert!(actions.contains(&"auth.login".to_owned()));
    let mut conn = app.state.db.get().await.unwrap();
    let request_ids: Vec<String> = audit_log::table
        .select(audit_log::request_id)
        .load(&mut conn)
        .await
        .unwrap();
    assert!(
        request_ids.iter().all(|id| !id.is_empty()),
        "every entry has its request id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cookie_writes_need_the_csrf_token_of_their_session() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let mut admin = app.admin().await;

    admin.csrf = false;
    let res = admin.post("/api/v1/workspaces", json!({"name": "acme"})).await;
    assert_eq!(res.status, 403, "{}", res.text());
    assert!(res.json()["error"]["message"].as_str().unwrap().contains("CSRF"));

    // A token issued for another session does not verify for this one, even when the
    // attacker sets both the cookie and the header.
    let mut other = Client::new(&app);
    other
        .post("/api/v1/auth/signup", signup_body("other@example.com", None))
        .await;
    let foreign = other.cookies["railyard_csrf"].clone();
    admin.cookies.insert("railyard_csrf".into(), foreign);
    admin.csrf = true;
    let res = admin.post("/api/v1/workspaces", json!({"name": "acme"})).await;
    assert_eq!(res.status, 403);

    // A fresh token for this session works; GET needs none.
    let res = admin.get("/api/v1/auth/csrf").await;
    assert_eq!(res.json()["csrf_token"], admin.cookies["railyard_csrf"].as_str());
    let res = admin.post("/api/v1/workspaces", json!({"name": "acme"})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    admin.csrf = false;
    assert_eq!(admin.get("/api/v1/workspaces").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = TestApp::new().await;
    let mut admin = app.admin().await;
    let first_refresh = admin.cookies["railyard_session"].clone();
    let first_access = admin.cookies["railyard_access"].clone();

    let res = admin.call("POST", "/api/v1/auth/refresh", None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let second_refresh = admin.cookies["railyard_session"].clone();
    assert_ne!(first_refresh, second_refresh, "rotated");
    assert_ne!(first_access, admin.cookies["railyard_access"], "new access token");
    assert_eq!(admin.get("/api/v1/me").await.status, 200);

    // Replaying the first token right away is a concurrent refresh: refused, nothing revoked.
    let mut thief = Client::new(&app);
    thief.cookies = admin.cookies.clone();
    thief
        .cookies
        .insert("railyard_session".into(), first_refresh.clone());
    let res = thief.call("POST", "/api/v1/auth/refresh", None).await;
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(admin.get("/api/v1/me").await.status, 200);

    // Later, the same replay is reuse: the whole session ends.
    let mut conn = app.state.db.get().await.unwrap();
    diesel::update(refresh_tokens::table.filter(refresh_tokens::rotated_at.is_not_null()))
        .set(refresh_tokens::rotated_at.eq(chrono::Utc::now() - chrono::Duration::minutes(5)))
        .execute(&mut conn)
        .await
        .unwrap();
    thief.cookies.insert("railyard_session".into(), first_refresh);
    let res = thief.call("POST", "/api/v1/auth/refresh", None).await;
    assert_eq!(res.status, 401, "{}", res.text());
    assert_eq!(
        admin.get("/api/v1/me").await.status,
        401,
        "the victim's access token stops working too"
    );
    let res = admin.call("POST", "/api/v1/auth/refresh", None).await;
    assert_eq!(
        res.status, 401,
        "and so does the newest refresh token of the family"
    );
    assert!(
        audit_actions(&app)
            .await
            .contains(&"auth.refresh_reuse".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_refreshes_have_exactly_one_winner() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let cookie = admin.cookie_header();
    let csrf = admin.cookies["railyard_csrf"].clone();
    let requests = (0..8).map(|_| {
        let request = axum::http::Request::post("/api/v1/auth/refresh")
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .body(axum::body::Body::empty())
            .unwrap();
        app.send(request)
    });
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_session_at_once() {
    let app = TestApp::new().await;
    let mut admin = app.admin().await;
    let kept = admin.cookies.clone();

    admin.csrf = false;
    assert_eq!(
        admin.call("POST", "/api/v1/auth/logout", None).await.status,
        403,
        "CSRF needed"
    );
    admin.csrf = true;
    let res = admin.call("POST", "/api/v1/auth/logout", None).await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert!(!admin.cookies.contains_key("railyard_access"), "cookies cleared");

    // Someone holding the old cookies gets nothing: the access token's session is revoked.
    let mut replay = Client::new(&app);
    replay.cookies = kept;
    assert_eq!(replay.get("/api/v1/me").await.status, 401);
    assert_eq!(
        replay.call("POST", "/api/v1/auth/refresh", None).await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_again_ends_the_browsers_previous_session() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let mut admin = app.admin().await;
    let mut other = Client::new(&app);
    let res = other
        .post("/api/v1/auth/signup", signup_body("dev@example.com", None))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let before = admin.cookies.clone();

    // In the admin's browser, someone signs in as another user.
    let res = admin
        .post(
            "/api/v1/auth/login",
            json!({"email": "dev@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        admin.get("/api/v1/me").await.json()["user"]["email"],
        "dev@example.com"
    );
    let mut replay = Client::new(&app);
    replay.cookies = before;
    assert_eq!(
        replay.get("/api/v1/me").await.status,
        401,
        "the admin's session ended"
    );
    assert_eq!(
        replay.call("POST", "/api/v1/auth/refresh", None).await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_refresh_cookie_beside_the_real_one_is_refused() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let refresh = admin.cookies["railyard_session"].clone();
    let request = |cookies: String| {
        axum::http::Request::builder()
            .method("POST")
            .uri("/api/v1/auth/refresh")
            .header("cookie", cookies)
            .header("x-csrf-token", admin.cookies["railyard_csrf"].clone())
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let csrf = format!("railyard_csrf={}", admin.cookies["railyard_csrf"]);
    // One tossed in by a subdomain (its own session's token) next to the real one.
    let res = app
        .send(request(format!(
            "railyard_session=ry_tossed; railyard_session={refresh}; {csrf}"
        )))
        .await;
    assert_eq!(res.status, 401, "{}", res.text());
    assert!(
        res.text().contains("more than one session cookie"),
        "{}",
        res.text()
    );
    let res = app
        .send(request(format!("railyard_session={refresh}; {csrf}")))
        .await;
    assert_eq!(res.status, 200, "the real one alone still works: {}", res.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn users_list_and_revoke_their_own_sessions_only() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let mut laptop = app.admin().await;
    let mut phone = Client::new(&app);
    let res = phone
        .post(
            "/api/v1/auth/login",
            json!({"email": "admin@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 200);

    let res = laptop.get("/api/v1/me/sessions").await;
    let sessions = res.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let phone_session = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another user cannot revoke it (404, not 403: it is not theirs to know about).
    let mut stranger = Client::new(&app);
    stranger
        .post("/api/v1/auth/signup", signup_body("stranger@example.com", None))
        .await;
    let res = stranger
        .call("DELETE", &format!("/api/v1/me/sessions/{phone_session}"), None)
        .await;
    assert_eq!(res.status, 404);
    assert_eq!(phone.get("/api/v1/me").await.status, 200);

    let res = laptop
        .call("DELETE", &format!("/api/v1/me/sessions/{phone_session}"), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(
        phone.get("/api/v1/me").await.status,
        401,
        "the phone is signed out"
    );
    assert_eq!(
        laptop.get("/api/v1/me/sessions").await.json()["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workspaces_are_created_owned_and_paginated() {
    let app = TestApp::new().await;
    let mut admin = app.admin().await;
    assert_eq!(Client::new(&app).get("/api/v1/workspaces").await.status, 401);
    for name in ["one", "two", "three"] {
        let res = admin.post("/api/v1/workspaces", json!({"name": name})).await;
        assert_eq!(res.status, 201, "{}", res.text());
        assert_eq!(res.json()["workspace"]["role"], "owner");
    }
    let res = admin.post("/api/v1/workspaces", json!({"name": ""})).await;
    assert_eq!(res.status, 422);

    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/workspaces?limit=2&cursor={c}"),
            None => "/api/v1/workspaces?limit=2".to_owned(),
        };
        let page = admin.get(&path).await.json();
        names.extend(
            page["workspaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(names, ["one", "two", "three"]);
    assert_eq!(admin.get("/api/v1/workspaces?cursor=garbage").await.status, 400);
    assert_eq!(admin.get("/api/v1/workspaces?limit=1000").await.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_is_append_only() {
    let app = TestApp::new().await;
    app.admin().await;
    let mut conn = app.state.db.get().await.unwrap();
    let update = diesel::update(audit_log::table)
        .set(audit_log::action.eq("nothing happened"))
        .execute(&mut conn)
        .await;
    assert!(update.is_err(), "UPDATE refused");
    let delete = diesel::delete(audit_log::table).execute(&mut conn).await;
    assert!(delete.is_err(), "DELETE refused");
    assert_eq!(audit_actions(&app).await, ["user.signup"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_signs_out_every_other_session() {
    let app = TestApp::new().await;
    let mut laptop = app.admin().await;
    let mut phone = Client::new(&app);
    phone
        .post(
            "/api/v1/auth/login",
            json!({"email": "admin@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(phone.get("/api/v1/me").await.status, 200);

    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let res = laptop
        .call(
            "PUT",
            "/api/v1/me/password",
            Some(change("wrong one here", "a brand new passphrase")),
        )
        .await;
    assert_eq!(res.status, 403);
    let res = laptop
        .call(
            "PUT",
            "/api/v1/me/password",
            Some(change(PASSWORD, "password123")),
        )
        .await;
    assert_eq!(res.status, 422, "the policy applies");
    assert_eq!(
        phone.get("/api/v1/me").await.status,
        200,
        "refused changes revoke nothing"
    );

    let res = laptop
        .call(
            "PUT",
            "/api/v1/me/password",
            Some(change(PASSWORD, "a brand new passphrase")),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(laptop.get("/api/v1/me").await.status, 200, "this session stays");
    assert_eq!(
        phone.get("/api/v1/me").await.status,
        401,
        "the other is signed out"
    );
    let mut client = Client::new(&app);
    let old = client
        .post(
            "/api/v1/auth/login",
            json!({"email": "admin@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, 401);
    let new = client
        .post(
            "/api/v1/auth/login",
            json!({"email": "admin@example.com", "password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(new.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_is_rate_limited_per_account() {
    let app = TestApp::new().await;
    app.admin().await;
    let mut client = Client::new(&app);
    let (attempts, _) = railyard_server::ratelimit::Bucket::LoginAccount.limit();
    for _ in 0..attempts {
        let res = client
            .post(
                "/api/v1/auth/login",
                json!({"email": "admin@example.com", "password": "guess guess"}),
            )
            .await;
        assert_eq!(res.status, 401);
    }
    // Even the right password waits now: the account is being guessed at.
    let res = client
        .post(
            "/api/v1/auth/login",
            json!({"email": "admin@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 429, "{}", res.text());
    assert_eq!(res.json()["error"]["code"], "too_many_requests");
    let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    // Another account is not locked by it.
    let res = client
        .post(
            "/api/v1/auth/login",
            json!({"email": "other@example.com", "password": "guess guess"}),
        )
        .await;
    assert_eq!(res.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_rate_limits_hold_across_replicas() {
    // Two app instances on one database and one Redis act as two replicas.
    let redis = railyard_server::testing::redis_url();
    let app = TestApp::with(&[("REDIS_URL", &redis)], axum::Router::new()).await;
    app.admin().await;
    let second = railyard_server::testing::TestApp::replica_of(&app).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (attempts, _) = railyard_server::ratelimit::Bucket::LoginAccount.limit();
    for i in 0..attempts {
        let replica = if i % 2 == 0 { &app } else { &second };
        let res = Client::new(replica)
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": "guess guess"}),
            )
            .await;
        assert_eq!(res.status, 401);
    }
    let res = Client::new(&second)
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": "guess guess"}),
        )
        .await;
    assert_eq!(res.status, 429, "the count is shared");
}

/// A sign-in from client address `ip` (as the listener's peer), outside any session.
async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> u16 {
    let mut request = axum::http::Request::post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"email": email, "password": password}).to_string(),
        ))
        .unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
            ip.parse().unwrap(),
            40_000,
        )));
    app.send(request).await.status
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_from_one_address_never_locks_the_owner_out_from_another() {
    let app = TestApp::new().await;
    app.admin().await;
    let (attempts, _) = railyard_server::ratelimit::Bucket::LoginAccount.limit();
    for _ in 0..attempts {
        assert_eq!(
            login_from(&app, "198.51.100.7", "admin@example.com", "guess guess").await,
            401
        );
    }
    // The guessing address waits, even with the right password ...
    assert_eq!(
        login_from(&app, "198.51.100.7", "admin@example.com", PASSWORD).await,
        429
    );
    // ... and keeps waiting at one try every 30 s (the window does not reopen per try) ...
    assert_eq!(
        login_from(&app, "198.51.100.7", "admin@example.com", "guess guess").await,
        429
    );
    // ... while the owner, from an address that has not been failing, signs in.
    assert_eq!(
        login_from(&app, "203.0.113.5", "admin@example.com", PASSWORD).await,
        200
    );
}
