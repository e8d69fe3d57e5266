//! `GET /api/v1/health` against real PostgreSQL and Redis, up and down.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use railyard_server::testing::{TestApp, redis_url};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn healthy_without_redis() {
    let app = TestApp::new().await;
    let res = app.get("/api/v1/health").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({"status": "ok", "database": "ok", "redis": "disabled", "version": env!("CARGO_PKG_VERSION")})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_with_redis() {
    let url = redis_url();
    let app = TestApp::with(&[("REDIS_URL", &url)], axum::Router::new()).await;
    let res = app.get("/api/v1/health").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["redis"], "ok");
    assert_eq!(res.json()["status"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn database_down_is_503_with_the_same_shape() {
    let app = TestApp::with(&[("RAILYARD_DB_ACQUIRE_TIMEOUT_MS", "500")], axum::Router::new()).await;
    assert_eq!(app.get("/api/v1/health").await.status, 200);

    // Take the database away under the running app (its connections are terminated).
    app.db.drop_now().await;

    let res = app.get("/api/v1/health").await;
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({"status": "unavailable", "database": "unavailable", "redis": "disabled", "version": env!("CARGO_PKG_VERSION")})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_ran_and_are_idempotent() {
    use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};

    let app = TestApp::new().await;
    // A second run on a migrated database applies nothing and fails nothing.
    railyard_server::db::run_migrations(&app.db.url).await.unwrap();

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(&app.db.url).await.unwrap();
    let rows: Vec<Row> =
        diesel::sql_query("SELECT count(*) AS n FROM instance_settings WHERE key = 'instance.created_at'")
            .load(&mut conn)
            .await
            .unwrap();
    assert_eq!(rows[0].n, 1);
    let rows: Vec<Row> = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .load(&mut conn)
        .await
        .unwrap();
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(
        rows[0].n as usize, on_disk,
        "every migration directory is applied once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn statement_timeout_is_set_on_pooled_connections() {
    let app = TestApp::with(
        &[("RAILYARD_DB_STATEMENT_TIMEOUT_MS", "1234")],
        axum::Router::new(),
    )
    .await;

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement_timeout: String,
    }
    let mut conn = app.state.db.get().await.unwrap();
    let setting: Setting =
        diesel_async::RunQueryDsl::get_result(diesel::sql_query("SHOW statement_timeout"), &mut conn)
            .await
            .unwrap();
    assert_eq!(setting.statement_timeout, "1234ms");
}
