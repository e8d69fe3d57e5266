//! Variables and secrets through the API: validation (nothing stored on an error),
//! sealed values never returned, references resolved and checked, raw `.env` import and
//! export, shared variables, audit entries, encryption at rest bound to the row.
#![allow(clippy::unwrap_used)]

use diesel::{ExpressionMethods as _, QueryDsl as _, TextExpressionMethods as _};
use diesel_async::RunQueryDsl as _;
use railyard_server::{
    schema::{audit_log, variables},
    testing::{Client, TestApp, git_repo},
    variables::{PublicUrls, store::Loaded},
};
use serde_json::{Value, json};

const SECRET: &str = "sk_live_canary_4f9d2e7a1b";

async fn count(app: &TestApp) -> i64 {
    let mut conn = app.state.db.get().await.unwrap();
    variables::table.count().get_result(&mut conn).await.unwrap()
}

async fn names(owner: &mut Client<'_>, path: &str) -> Vec<(String, Value, bool)> {
    let res = owner.get(path).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["value"].clone(),
                v["sealed"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// A project with services `web` and `api`; (web id, api id, production environment id).
/// Their repository lives as long as the fixture.
struct Fixture {
    web: String,
    api: String,
    environment: String,
    _repo: tempfile::TempDir,
}

async fn project(owner: &mut Client<'_>) -> Fixture {
    let (repo, _) = git_repo(&[("index.html", "hi")]);
    let web = owner.git_service("shop", "web", repo.path()).await;
    let (project, environment) = owner.project_and_production(&web).await;
    let api = owner.add_git_service(&project, "api", repo.path()).await;
    Fixture {
        web,
        api,
        environment,
        _repo: repo,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_are_validated_and_a_bad_one_stores_nothing() {
    let app = TestApp::new().await;
    let mut owner = app.admin().await;
    let fixture = project(&mut owner).await;
    let web = fixture.web.clone();
    let vars = format!("/api/v1/services/{web}/variables");

    let res = owner
        .post(&vars, json!({"name": "GREETING", "value": "hello"}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["variable"]["value"], "hello");
    let stored = count(&app).await;

    let long_name = "N".repeat(257);
    let big_value = "x".repeat(64 * 1024 + 1);
    for (body, says) in [
        (json!({"name": "1ABC", "value": "x"}), "1ABC"),
        (json!({"name": "A-B", "value": "x"}), "A-B"),
        (json!({"name": "", "value": "x"}), "empty"),
        (json!({"name": long_name, "value": "x"}), "longer than 256"),
        (json!({"name": "BIG", "value": big_value}), "BIG"),
        (json!({"name": "PORT", "value": "80"}), "PORT"),
        (
            json!({"name": "REF", "value": "${{ shared.NOPE }}"}),
            "shared.NOPE",
        ),
        (json!({"name": "REF", "value": "${{ nobody.X }}"}), "nobody.X"),
        (json!({"name": "REF", "value": "${{ unclosed"}), "REF"),
        (json!({"name": "SELF", "value": "a${{ SELF }}"}), "cycle"),
    ] {
        let res = owner.post(&vars, body.clone()).await;
        assert_eq!(res.status, 422, "{body}: {}", res.text());
        let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(says), "{message} should name {says}");
    }
    let res = owner
        .post(&vars, json!({"name": "GREETING", "value": "again"}))
        .await;
    assert_eq!(res.status, 409, "{}", res.text());
    let res = owner.post(&vars, json!({"name": "X", "value": 5})).await;
    assert_eq!(res.status, 422, "a number is not a value: {}", res.text());

    // A cycle across two variables: the second write is refused, the first stays.
    assert_eq!(
        owner
            .post(&vars, json!({"name": "A", "value": "${{ GREETING }}-a"}))
            .await
            .status,
        201
    );
    let res = owner
        .call(
            "PATCH",
            &format!("{vars}/GREETING"),
            Some(json!({"value": "${{ A }}"})),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text());
    assert!(res.text().contains("cycle"), "{}", res.text());
    // Deleting what another variable refers to is refused too.
    let res = owner.call("DELETE", &format!("{vars}/GREETING"), None).await;
    assert_eq!(res.status, 422, "{}", res.text());
    assert!(res.text().contains("GREETING"), "{}", res.text());

    // 1,001 variables in one `.env` text: refused whole.
    let text: String = (0..1001).map(|i| format!("V{i}=x\n")).collect();
    let res = owner.put_text(&vars, &text).await;
    assert_eq!(res.status, 422, "{}", res.text());
    assert!(res.text().contains("1000"), "{}", res.text());
    let res = owner.put_text(&vars, "GOOD=1\n2BAD=2\n").await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("line 2"), "{}", res.text());

    assert_eq!(count(&app).await, stored + 1, "only the valid writes were stored");
    let list = names(&mut owner, &vars).await;
    assert_eq!(
        list.iter()
            .map(|(n, v, _)| (n.as_str(), v.as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![("A", "${{ GREETING }}-a"), ("GREETING", "hello")]
    );
    let resolved = owner.get(&vars).await.json()["variables"][0].clone();
    assert_eq!(resolved["resolved"], "hello-a");
    assert_eq!(resolved["references"], json!(["GREETING"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn sealed_values_are_never_returned_and_masked_where_resolved() {
    let app = TestApp::new().await;
    let mut owner = app.admin().await;
    let fixture = project(&mut owner).await;
    let (web, environment) = (fixture.web.clone(), fixture.environment.clone());
    let vars = format!("/api/v1/services/{web}/variables");
    let shared = format!("/api/v1/environments/{environment}/shared-variables");

    let res = owner
        .post(
            &shared,
            json!({"name": "DB_PASSWORD", "value": SECRET, "sealed": true}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert!(!res.text().contains(SECRET), "{}", res.text());
    assert_eq!(res.json()["variable"]["value"], Value::Null);
    let res = owner
        .post(
            &vars,
            json!({"name": "DATABASE_URL", "value": "postgres://app:${{ shared.DB_PASSWORD }}@db/app"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        res.json()["variable"]["resolved"],
        "postgres://app:*****@db/app",
        "the resolved value masks the sealed part"
    );
    let res = owner
        .post(&vars, json!({"name": "TOKEN", "value": SECRET, "sealed": true}))
        .await;
    assert_eq!(res.status, 201);

    let workspace = owner.get("/api/v1/workspaces").await.json()["workspaces"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut seen = String::new();
    for path in [
        vars.clone(),
        format!("{vars}?format=env"),
        shared.clone(),
        format!("{shared}?format=env"),
        format!("/api/v1/workspaces/{workspace}/audit"),
    ] {
        let res = owner.get(&path).await;
        assert_eq!(res.status, 200, "{path}: {}", res.text());
        seen.push_str(&res.text());
    }
    assert!(!seen.contains(SECRET), "a sealed value came back: {seen}");
    let export = owner.get(&format!("{vars}?format=env")).await.text();
    assert!(export.contains("# TOKEN is sealed"), "{export}");
    assert!(export.contains("DATABASE_URL="), "{export}");

    // Sealed stays sealed: unsealing is refused; a new value may be written.
    let res = owner
        .call("PATCH", &format!("{vars}/TOKEN"), Some(json!({"sealed": false})))
        .await;
    assert_eq!(res.status, 422, "{}", res.text());
    let res = owner
        .call(
            "PATCH",
            &format!("{vars}/TOKEN"),
            Some(json!({"value": "rotated-token-value"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["variable"]["sealed"], true);
    assert_eq!(res.json()["variable"]["value"], Value::Null);
    let res = owner
        .call("PATCH", &format!("{vars}/NOPE"), Some(json!({"value": "x"})))
        .await;
    assert_eq!(res.status, 404);

    // A raw `.env` import keeps sealed variables it does not name.
    let res = owner.put_text(&vars, "DATABASE_URL=plain\nNEW='a b'\n").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let list = names(&mut owner, &vars).await;
    assert_eq!(
        list,
        vec![
            ("DATABASE_URL".to_owned(), json!("plain"), false),
            ("NEW".to_owned(), json!("a b"), false),
            ("TOKEN".to_owned(), Value::Null, true),
        ]
    );

    // Writes are audited by name and flag, never value.
    let mut conn = app.state.db.get().await.unwrap();
    let entries: Vec<(String, Value)> = audit_log::table
        .filter(audit_log::action.like("variable.%"))
        .select((audit_log::action, audit_log::detail))
        .load(&mut conn)
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|(a, d)| a == "variable.create" && d["name"] == "TOKEN" && d["sealed"] == true),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|(a, d)| a == "variable.update" && d["name"] == "TOKEN")
    );
    assert!(!format!("{entries:?}").contains(SECRET));
    assert!(!format!("{entries:?}").contains("rotated-token-value"));

    // At rest: ciphertext only.
    let stored: Vec<Vec<u8>> = variables::table
        .select(variables::ciphertext)
        .load(&mut conn)
        .await
        .unwrap();
    for ciphertext in &stored {
        assert!(!ciphertext.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
        assert!(!ciphertext.windows(5).any(|w| w == b"plain"));
    }

    // A viewer reads no variables.
    let res = owner.call("DELETE", &format!("{vars}/NEW"), None).await;
    assert_eq!(res.status, 204);
    let res = owner.call("DELETE", &format!("{vars}/NEW"), None).await;
    assert_eq!(res.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ciphertext_moved_to_another_row_does_not_decrypt() {
    let app = TestApp::new().await;
    let mut owner = app.admin().await;
    let fixture = project(&mut owner).await;
    let (web, api, environment) = (
        fixture.web.clone(),
        fixture.api.clone(),
        fixture.environment.clone(),
    );
    for service in [&web, &api] {
        let res = owner
            .post(
                &format!("/api/v1/services/{service}/variables"),
                json!({"name": "KEY", "value": format!("value-of-{service}")}),
            )
            .await;
        assert_eq!(res.status, 201);
    }
    // Swap the two ciphertexts (same name, other service).
    let mut conn = app.state.db.get().await.unwrap();
    let rows: Vec<(uuid::Uuid, Vec<u8>)> = variables::table
        .select((variables::id, variables::ciphertext))
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for (i, (id, _)) in rows.iter().enumerate() {
        diesel::update(variables::table.find(id))
            .set(variables::ciphertext.eq(&rows[1 - i].1))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let err = Loaded::load(
        &mut conn,
        &app.state.keys,
        &PublicUrls::of(&app.state.config),
        environment.parse().unwrap(),
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("`KEY`") && message.contains("cannot be decrypted") && message.contains("moved"),
        "{message}"
    );
    // Over HTTP: the error envelope (no garbage value, no detail).
    let res = owner.get(&format!("/api/v1/services/{web}/variables")).await;
    assert_eq!(res.status, 500);
    assert!(!res.text().contains("value-of"), "{}", res.text());
    assert!(res.json()["error"]["request_id"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reference_that_no_longer_resolves_fails_the_deployment_with_the_reason() {
    let app = TestApp::new().await;
    let workers = app.start_workers();
    let mut owner = app.admin().await;
    let fixture = project(&mut owner).await;
    let (web, api) = (fixture.web.clone(), fixture.api.clone());
    let res = owner
        .post(
            &format!("/api/v1/services/{api}/variables"),
            json!({"name": "URL", "value": "http://api"}),
        )
        .await;
    assert_eq!(res.status, 201);
    let res = owner
        .post(
            &format!("/api/v1/services/{web}/variables"),
            json!({"name": "API_URL", "value": "${{ api.URL }}"}),
        )
        .await;
    assert_eq!(res.status, 201);
    // The service it refers to goes away (its variables with it).
    assert_eq!(
        owner
            .call("DELETE", &format!("/api/v1/services/{api}"), None)
            .await
            .status,
        204
    );
    let deployment = owner.deploy_and_wait(&web).await;
    assert_eq!(deployment["state"], "failed", "{deployment}");
    let reason = deployment["reason"].as_str().unwrap();
    assert!(
        reason.contains("the variables do not resolve") && reason.contains("api.URL"),
        "{reason}"
    );
    workers.shutdown().await;
}
