//! "Continue with GitHub" against a local server that speaks GitHub's OAuth and REST
//! endpoints (`/login/oauth/authorize` is only a redirect target; `/login/oauth/access_token`,
//! `/user`, `/user/emails` answer as GitHub does, PKCE included).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, Request, StatusCode},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_server::{
    schema::users,
    testing::{Client, TestApp, TestResponse},
};
use serde_json::{Value, json};

const CLIENT_SECRET: &str = "test-client-secret";

#[derive(Default)]
struct Fake {
    /// code → (PKCE challenge, GitHub user id)
    codes: HashMap<String, (String, i64)>,
    /// GitHub user id → (profile, emails)
    accounts: HashMap<i64, (Value, Value)>,
}

type Shared = Arc<Mutex<Fake>>;

async fn access_token(State(fake): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Json<Value> {
    let mut fake = fake.lock().unwrap();
    let verified = (|| {
        if form.get("client_secret")? != CLIENT_SECRET {
            return None;
        }
        let (challenge, user) = fake.codes.remove(form.get("code")?)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, form.get("code_verifier")?.as_bytes());
        (URL_SAFE_NO_PAD.encode(digest.as_ref()) == challenge).then_some(user)
    })();
    Json(match verified {
        Some(user) => {
            json!({"access_token": format!("gho_secret_{user}"), "token_type": "bearer", "scope": "read:user,user:email"})
        }
        None => {
            json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})
        }
    })
}

fn account_of(fake: &Fake, headers: &HeaderMap) -> Option<(Value, Value)> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer gho_secret_")?;
    fake.accounts.get(&token.parse().ok()?).cloned()
}

async fn user(State(fake): State<Shared>, headers: HeaderMap) -> Result<Json<Value>, StatusCode> {
    account_of(&fake.lock().unwrap(), &headers)
        .map(|(profile, _)| Json(profile))
        .ok_or(StatusCode::UNAUTHORIZED)
}

async fn emails(State(fake): State<Shared>, headers: HeaderMap) -> Result<Json<Value>, StatusCode> {
    account_of(&fake.lock().unwrap(), &headers)
        .map(|(_, emails)| Json(emails))
        .ok_or(StatusCode::UNAUTHORIZED)
}

async fn fake_github() -> (String, Shared) {
    let fake: Shared = Arc::default();
    let router = Router::new()
        .route("/login/oauth/access_token", post(access_token))
        .route("/user", get(user))
        .route("/user/emails", get(emails))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, fake)
}

async fn app_with_github(open_signup: bool) -> (TestApp, Shared, String) {
    let (url, fake) = fake_github().await;
    let open = if open_signup { "true" } else { "false" };
    let app = TestApp::with(
        &[
            ("GITHUB_CLIENT_ID", "test-client"),
            ("GITHUB_CLIENT_SECRET", CLIENT_SECRET),
            ("GITHUB_OAUTH_URL", &url),
            ("GITHUB_API_URL", &url),
            ("RAILYARD_OPEN_SIGNUP", open),
        ],
        Router::new(),
    )
    .await;
    (app, fake, url)
}

fn add_account(fake: &Shared, id: i64, login: &str, emails: Value) {
    let profile = json!({"id": id, "login": login, "name": format!("{login} on GitHub")});
    fake.lock().unwrap().accounts.insert(id, (profile, emails));
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

/// Runs the browser's side of the flow: start, "authorise" on GitHub as `github_id`, come back.
async fn sign_in_with_github<'a>(
    app: &'a TestApp,
    fake: &Shared,
    github_url: &str,
    github_id: i64,
    redirect: &str,
) -> (TestResponse, Client<'a>) {
    let mut browser = Client::new(app);
    let res = browser
        .get(&format!("/api/v1/auth/github/start?redirect={redirect}"))
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let location = res.header("location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{github_url}/login/oauth/authorize?")),
        "{location}"
    );
    assert_eq!(query_param(&location, "code_challenge_method"), "S256");
    assert_eq!(query_param(&location, "client_id"), "test-client");
    let code = format!("code-{github_id}-{}", uuid::Uuid::new_v4().simple());
    fake.lock().unwrap().codes.insert(
        code.clone(),
        (query_param(&location, "code_challenge"), github_id),
    );
    let state = query_param(&location, "state");
    let res = browser
        .get(&format!("/api/v1/auth/github/callback?code={code}&state={state}"))
        .await;
    (res, browser)
}

#[tokio::test(flavor = "multi_thread")]
async fn links_an_account_by_a_verified_email_and_seals_the_token() {
    let (app, fake, url) = app_with_github(false).await;
    app.admin().await;
    add_account(
        &fake,
        42,
        "ada",
        json!([
            {"email": "ada@other.example", "primary": true, "verified": true, "visibility": "private"},
            {"email": "Admin@Example.com", "primary": false, "verified": true, "visibility": null},
        ]),
    );
    // The admin's address was never proven: GitHub links only once the password is given.
    let (res, mut browser) = sign_in_with_github(&app, &fake, &url, 42, "/account").await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(res.header("location"), Some("/login?error=github_link_password"));
    assert_eq!(browser.get("/api/v1/me").await.status, 401);
    let res = browser
        .post(
            "/api/v1/auth/login",
            json!({"email": "admin@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json()["user"]["email_verified"],
        true,
        "GitHub verified this address"
    );
    let me = browser.get("/api/v1/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["user"]["email"], "admin@example.com");

    let mut conn = app.state.db.get().await.unwrap();
    let (id, github_id, sealed): (uuid::Uuid, Option<i64>, Option<Vec<u8>>) = users::table
        .filter(users::email.eq("admin@example.com"))
        .select((users::id, users::github_id, users::github_token))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(github_id, Some(42));
    let sealed = sealed.unwrap();
    assert!(
        !String::from_utf8_lossy(&sealed).contains("gho_secret"),
        "no plain token in the database"
    );
    let aad = format!("railyard:user:{id}:github_token");
    assert_eq!(
        app.state.keys.decrypt(&sealed, aad.as_bytes()).unwrap(),
        b"gho_secret_42"
    );

    // Next time the GitHub id alone finds the account, whatever its emails say now, and
    // back to where the user started.
    add_account(&fake, 42, "ada", json!([]));
    let (res, _) = sign_in_with_github(&app, &fake, &url, 42, "/account").await;
    assert_eq!(res.header("location"), Some("/account"));
}

/// Finding 8 of the tenant boundary: with open sign-up, someone registers the victim's
/// address with a password of their own; when the victim signs in with GitHub, the
/// account must not become the victim's while the other keeps its password.
#[tokio::test(flavor = "multi_thread")]
async fn a_pre_registered_address_is_not_taken_over_through_github() {
    let (app, fake, url) = app_with_github(true).await;
    app.admin().await;
    let mut squatter = Client::new(&app);
    let res = squatter
        .post(
            "/api/v1/auth/signup",
            json!({"email": "victim@example.com", "password": "squatters own pass", "name": "Victim"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["user"]["email_verified"], false);
    add_account(
        &fake,
        9,
        "victim",
        json!([
            {"email": "victim@example.com", "primary": true, "verified": true},
            {"email": "9+victim@users.noreply.github.com", "primary": false, "verified": true},
        ]),
    );
    let (res, mut browser) = sign_in_with_github(&app, &fake, &url, 9, "/").await;
    assert_eq!(res.header("location"), Some("/login?error=github_link_password"));
    assert_eq!(
        browser.get("/api/v1/me").await.status,
        401,
        "not signed in to the squatter's account"
    );
    let github_of = |email: &'static str| {
        let app = &app;
        async move {
            let mut conn = app.state.db.get().await.unwrap();
            users::table
                .filter(users::email.eq(email))
                .select(users::github_id)
                .first::<Option<i64>>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(github_of("victim@example.com").await, None);

    // A wrong password links nothing; the victim makes a separate account instead.
    let res = browser
        .post(
            "/api/v1/auth/login",
            json!({"email": "victim@example.com", "password": "a guess at it"}),
        )
        .await;
    assert_eq!(res.status, 401);
    let res = browser.call("POST", "/api/v1/auth/github/separate", None).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["user"]["email"], "9+victim@users.noreply.github.com");
    assert_eq!(res.json()["user"]["email_verified"], true);
    assert_eq!(github_of("9+victim@users.noreply.github.com").await, Some(9));
    assert_eq!(
        github_of("victim@example.com").await,
        None,
        "the squatter's account stays apart"
    );
    // The cookie that was waiting is gone: it makes no second account.
    let res = browser.call("POST", "/api/v1/auth/github/separate", None).await;
    assert_eq!(res.status, 400, "{}", res.text());
    // And GitHub now signs in to the victim's own account.
    let (res, _) = sign_in_with_github(&app, &fake, &url, 9, "/").await;
    assert_eq!(res.header("location"), Some("/"));

    // With no other verified address, there is no separate account to make.
    add_account(
        &fake,
        10,
        "other",
        json!([{"email": "victim@example.com", "primary": true, "verified": true}]),
    );
    let (_, mut browser) = sign_in_with_github(&app, &fake, &url, 10, "/").await;
    let res = browser.call("POST", "/api/v1/auth/github/separate", None).await;
    assert_eq!(res.status, 409, "{}", res.text());
}

/// An address proven by the mailed link links GitHub at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_proven_address_links_without_the_password() {
    let (mail_url, sent) = railyard_server::testing::fake_resend(200).await;
    let (github_url, fake) = fake_github().await;
    let app = TestApp::with(
        &[
            ("GITHUB_CLIENT_ID", "test-client"),
            ("GITHUB_CLIENT_SECRET", CLIENT_SECRET),
            ("GITHUB_OAUTH_URL", &github_url),
            ("GITHUB_API_URL", &github_url),
            ("RAILYARD_OPEN_SIGNUP", "true"),
            ("RESEND_API_KEY", "re_test_key"),
            ("RESEND_API_URL", &mail_url),
            ("RAILYARD_MAIL_FROM", "noreply@example.com"),
        ],
        Router::new(),
    )
    .await;
    app.admin().await;
    let mut dev = Client::new(&app);
    let res = dev
        .post(
            "/api/v1/auth/signup",
            json!({"email": "dev@example.com", "password": "correct horse battery", "name": "Dev"}),
        )
        .await;
    assert_eq!(res.status, 201);
    let res = dev.call("POST", "/api/v1/me/email/verification", None).await;
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["email_sent"], true);
    let mail = sent.lock().unwrap().last().unwrap().1.clone();
    assert_eq!(mail["to"], json!(["dev@example.com"]));
    let text = mail["text"].as_str().unwrap();
    let token = text
        .split("verify-email?token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    // The link works once, from any browser.
    let mut elsewhere = Client::new(&app);
    let res = elsewhere
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    let res = elsewhere
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(dev.get("/api/v1/me").await.json()["user"]["email_verified"], true);

    add_account(
        &fake,
        5,
        "dev",
        json!([{"email": "dev@example.com", "primary": true, "verified": true}]),
    );
    let (res, mut browser) = sign_in_with_github(&app, &fake, &github_url, 5, "/").await;
    assert_eq!(res.header("location"), Some("/"));
    assert_eq!(
        browser.get("/api/v1/me").await.json()["user"]["email"],
        "dev@example.com"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unverified_emails_never_link() {
    let (app, fake, url) = app_with_github(true).await;
    app.admin().await;
    add_account(
        &fake,
        7,
        "mallory",
        json!([{"email": "admin@example.com", "primary": true, "verified": false}]),
    );
    let (res, mut browser) = sign_in_with_github(&app, &fake, &url, 7, "/").await;
    assert_eq!(res.header("location"), Some("/login?error=github_unverified"));
    assert_eq!(browser.get("/api/v1/me").await.status, 401);
    let mut conn = app.state.db.get().await.unwrap();
    let linked: Option<i64> = users::table
        .filter(users::email.eq("admin@example.com"))
        .select(users::github_id)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(linked, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_state_must_match_the_cookie() {
    let (app, fake, url) = app_with_github(false).await;
    app.admin().await;
    add_account(
        &fake,
        42,
        "ada",
        json!([{"email": "admin@example.com", "primary": true, "verified": true}]),
    );

    let mut browser = Client::new(&app);
    let location = browser
        .get("/api/v1/auth/github/start")
        .await
        .header("location")
        .unwrap()
        .to_owned();
    let code = "forged-code".to_owned();
    fake.lock()
        .unwrap()
        .codes
        .insert(code.clone(), (query_param(&location, "code_challenge"), 42));
    // An attacker's state (login CSRF), then no state cookie at all.
    let res = browser
        .get(&format!(
            "/api/v1/auth/github/callback?code={code}&state=attacker"
        ))
        .await;
    assert_eq!(res.header("location"), Some("/login?error=github_state"));
    let mut stranger = Client::new(&app);
    let state = query_param(&location, "state");
    let res = stranger
        .get(&format!("/api/v1/auth/github/callback?code={code}&state={state}"))
        .await;
    assert_eq!(res.header("location"), Some("/login?error=github_state"));
    assert_eq!(stranger.get("/api/v1/me").await.status, 401);
    assert!(location.starts_with(&url));
}

#[tokio::test(flavor = "multi_thread")]
async fn new_accounts_follow_the_sign_up_rules() {
    let (app, fake, url) = app_with_github(false).await;
    add_account(
        &fake,
        9,
        "grace",
        json!([{"email": "grace@example.com", "primary": true, "verified": true}]),
    );
    // No accounts yet: the first one comes from the setup link, not from GitHub.
    let (res, _) = sign_in_with_github(&app, &fake, &url, 9, "/").await;
    assert_eq!(res.header("location"), Some("/login?error=github_setup"));
    app.admin().await;
    // Invite-only: no account for this address.
    let (res, _) = sign_in_with_github(&app, &fake, &url, 9, "/").await;
    assert_eq!(res.header("location"), Some("/login?error=github_no_account"));

    let (app, fake, url) = app_with_github(true).await;
    app.admin().await;
    add_account(
        &fake,
        9,
        "grace",
        json!([{"email": "grace@example.com", "primary": true, "verified": true}]),
    );
    let (res, mut browser) = sign_in_with_github(&app, &fake, &url, 9, "//evil.example").await;
    assert_eq!(
        res.header("location"),
        Some("/"),
        "never redirected off the server"
    );
    let me = browser.get("/api/v1/me").await.json();
    assert_eq!(me["user"]["email"], "grace@example.com");
    assert_eq!(me["user"]["name"], "grace on GitHub");
    assert_eq!(me["user"]["is_instance_admin"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_configuration_github_sign_in_is_absent() {
    let app = TestApp::new().await;
    assert_eq!(
        app.get("/api/v1/auth/providers").await.json(),
        json!({"github": false, "open_signup": false})
    );
    let res = app
        .send(
            Request::get("/api/v1/auth/github/start")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, 404);
}
