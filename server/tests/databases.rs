//! Apps' databases (issue 22): a `postgres` service has a database of its own in every
//! environment on a cluster Railyard runs for apps (never the control plane's), apps reach
//! it through `${{ postgres.DATABASE_URL }}`, a clone or preview branches it, deleting an
//! environment drops it; backups are sealed, stored, verified and restored, and a flipped
//! byte restores nothing.
#![allow(clippy::unwrap_used)]

use std::{path::Path, time::Duration};

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use railyard_server::{
    layout::Layout,
    testing::{Client, Fixture, TestApp, git_repo, typed},
};
use railyard_shared::{
    databases::{BackupResponse, BackupsResponse, CredentialsResponse, DatabaseResponse, RestoreResponse},
    projects::Source,
};
use serde_json::json;
use uuid::Uuid;

const SERVER: &str =
    "require('http').createServer((q, s) => s.end('up')).listen(process.env.PORT, '127.0.0.1');\n";

/// Stops the apps' cluster a test started (also when it fails).
struct Cluster(std::path::PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = railyard_server::postgres::EmbeddedPostgres::stop_at(&self.0.join("app-postgres"), None);
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Word {
    #[diesel(sql_type = Text)]
    w: String,
}

async fn ready(fx: &mut Fixture<'_>, service: Uuid, environment: Uuid) -> DatabaseResponse {
    for _ in 0..200 {
        let res = fx
            .client
            .get(&format!(
                "/api/v1/services/{service}/database?environment={environment}"
            ))
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
        let db: DatabaseResponse = typed(&res);
        match db.database.state.as_str() {
            "ready" => return db,
            "failed" => panic!("the database failed: {:?}", db.database.reason),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the database of {service} in {environment} did not become ready");
}

async fn credentials(fx: &mut Fixture<'_>, service: Uuid, environment: Uuid) -> String {
    let res = fx
        .client
        .post(
            &format!("/api/v1/services/{service}/database/credentials?environment={environment}"),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    typed::<CredentialsResponse>(&res).credentials.url
}

async fn words(url: &str) -> Vec<String> {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let rows: Vec<Word> = diesel::sql_query("SELECT w FROM notes ORDER BY w")
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter().map(|r| r.w).collect()
}

async fn wait_file(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.contains("done")
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} was not written", path.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn each_environment_has_its_own_database_and_a_clone_branches_it() {
    let app = TestApp::new().await;
    let data = app.state.config.data_dir.clone();
    let _cluster = Cluster(data.clone());
    let (_pool, _edge) = app.start_runtime().await;
    let mut fx = Fixture::new(&app).await;
    let production = fx.production;
    let staging = fx.environment("staging").await;

    let postgres = fx.service("postgres", Source::Postgres {}).await;
    ready(&mut fx, postgres, production).await;
    let db = ready(&mut fx, postgres, staging).await.database;
    assert_eq!(db.driver, "local");
    assert!(db.url.contains("********"), "the password is masked: {}", db.url);

    // A database service is not deployed.
    let res = fx
        .client
        .post(&format!("/api/v1/services/{postgres}/deployments"), json!({}))
        .await;
    assert_eq!(res.status, 422, "{}", res.text());

    // The app writes its environment's name into the database it is given, and tries
    // what it must not reach.
    let script = format!(
        r#"#!/bin/sh
out=app-results.txt
psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qc "CREATE TABLE IF NOT EXISTS notes (w text); INSERT INTO notes VALUES ('$RAILYARD_ENVIRONMENT')" > "$out" 2>&1 && echo "ok wrote" >> "$out" || echo "FAIL write" >> "$out"
if PGPASSWORD="$PGPASSWORD" psql "host=$PGHOST port=$PGPORT user=$PGUSER dbname=postgres" -qc "select 1" >/dev/null 2>&1; then echo "FAIL maintenance-db" >> "$out"; else echo "ok maintenance-db" >> "$out"; fi
if cat "{data}/app-postgres/credentials" >/dev/null 2>&1; then echo "FAIL cluster-credentials" >> "$out"; else echo "ok cluster-credentials" >> "$out"; fi
if cat "{data}/postgres/credentials" >/dev/null 2>&1; then echo "FAIL control-plane-credentials" >> "$out"; else echo "ok control-plane-credentials" >> "$out"; fi
echo done >> "$out"
exec node server.js
"#,
        data = data.display()
    );
    let (repo, _) = git_repo(&[
        ("railyard.toml", "start = \"sh run.sh\"\n"),
        ("run.sh", &script),
        ("server.js", SERVER),
    ]);
    let web = fx.git_service("web", repo.path()).await;
    for environment in [production, staging] {
        let res = fx
            .client
            .post(
                &format!("/api/v1/services/{web}/variables?environment={environment}"),
                json!({"name": "DATABASE_URL", "value": "${{ postgres.DATABASE_URL }}"}),
            )
            .await;
        assert!(res.status < 300, "{}", res.text());
        for name in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD"] {
            let res = fx
                .client
                .post(
                    &format!("/api/v1/services/{web}/variables?environment={environment}"),
                    json!({"name": name, "value": format!("${{{{ postgres.{name} }}}}")}),
                )
                .await;
            assert!(res.status < 300, "{name}: {}", res.text());
        }
    }
    let layout = Layout::new(&data);
    for environment in [production, staging] {
        let deployment = fx.deploy_live(web, environment).await.deployment.id.uuid();
        let results = wait_file(&layout.release(deployment).join("app-results.txt")).await;
        let failed: Vec<&str> = results.lines().filter(|l| l.starts_with("FAIL")).collect();
        assert!(failed.is_empty(), "the app in {environment}: {results}");
    }

    // Each wrote into its own database and sees only its own rows.
    let production_url = credentials(&mut fx, postgres, production).await;
    let staging_url = credentials(&mut fx, postgres, staging).await;
    assert_ne!(production_url, staging_url);
    assert_eq!(words(&production_url).await, ["production"]);
    assert_eq!(words(&staging_url).await, ["staging"]);
    // Production's role cannot open staging's database, nor the control plane's.
    let staging_db = staging_url.rsplit('/').next().unwrap();
    let (prefix, _) = production_url.rsplit_once('/').unwrap();
    let crossed = AsyncPgConnection::establish(&format!("{prefix}/{staging_db}")).await;
    assert!(crossed.is_err(), "production's role opened staging's database");
    let control = app.state.config.database.url.clone().unwrap();
    let control_db = control.rsplit('/').next().unwrap();
    let crossed = AsyncPgConnection::establish(&format!("{prefix}/{control_db}")).await;
    assert!(
        crossed.is_err(),
        "the app's role opened a database named as the control plane's"
    );

    // A clone of production branches its database: production's rows, then its own.
    let res = fx
        .client
        .post(
            &format!("/api/v1/projects/{}/environments", fx.project),
            json!({"name": "qa", "clone_from": production}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let qa: railyard_shared::projects::EnvironmentResponse = typed(&res);
    let qa = qa.environment.id.uuid();
    let branch = ready(&mut fx, postgres, qa).await.database;
    assert_eq!(branch.branched_from.map(|e| e.uuid()), Some(production));
    let qa_url = credentials(&mut fx, postgres, qa).await;
    assert_ne!(qa_url, production_url);
    assert_eq!(words(&qa_url).await, ["production"]);
    let mut conn = AsyncPgConnection::establish(&qa_url).await.unwrap();
    conn.batch_execute("INSERT INTO notes VALUES ('qa only')")
        .await
        .unwrap();
    drop(conn);
    assert_eq!(words(&qa_url).await, ["production", "qa only"]);
    assert_eq!(words(&production_url).await, ["production"]);

    // Deleting the environment drops its database.
    let admin = app.state.databases.admin_url("postgres").await.unwrap();
    let exists = async |name: &str| {
        let mut conn = AsyncPgConnection::establish(&admin).await.unwrap();
        let rows: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .load(&mut conn)
            .await
            .unwrap();
        rows[0].n == 1
    };
    assert!(exists(&branch.database).await);
    let res = fx
        .client
        .call("DELETE", &format!("/api/v1/environments/{qa}"), None)
        .await;
    assert!(res.status < 300, "{}", res.text());
    let mut gone = false;
    for _ in 0..100 {
        if !exists(&branch.database).await {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the environment's database was dropped");
    assert!(exists(&db.database).await, "staging's stays");
}

async fn backup_of(
    fx: &mut Fixture<'_>,
    service: Uuid,
    environment: Uuid,
) -> railyard_shared::databases::Backup {
    let res = fx
        .client
        .post(
            &format!("/api/v1/services/{service}/backups?environment={environment}"),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let queued: BackupResponse = typed(&res);
    assert_eq!(queued.backup.state, "queued");
    for _ in 0..300 {
        let res = fx
            .client
            .get(&format!("/api/v1/backups/{}", queued.backup.id))
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
        let backup: BackupResponse = typed(&res);
        if matches!(backup.backup.state.as_str(), "verified" | "failed") {
            return backup.backup;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the backup did not finish");
}

async fn restore(
    fx: &mut Fixture<'_>,
    backup: Uuid,
    body: serde_json::Value,
) -> railyard_shared::databases::Restore {
    let res = fx
        .client
        .post(&format!("/api/v1/backups/{backup}/restore"), body)
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let queued: RestoreResponse = typed(&res);
    for _ in 0..300 {
        let res = fx
            .client
            .get(&format!("/api/v1/restores/{}", queued.restore.id))
            .await;
        let restore: RestoreResponse = typed(&res);
        if matches!(restore.restore.state.as_str(), "done" | "failed") {
            return restore.restore;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the restore did not finish");
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_are_verified_and_a_tampered_one_restores_nothing() {
    let app = TestApp::with(&[("RAILYARD_OPEN_SIGNUP", "true")], axum::Router::new()).await;
    let data = app.state.config.data_dir.clone();
    let _cluster = Cluster(data.clone());
    let _pool = app.start_workers();
    let mut fx = Fixture::new(&app).await;
    let staging = fx.environment("staging").await;
    let postgres = fx.service("postgres", Source::Postgres {}).await;
    let db = ready(&mut fx, postgres, staging).await.database;
    let url = credentials(&mut fx, postgres, staging).await;
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    conn.batch_execute(
        "CREATE TABLE notes (w text); INSERT INTO notes SELECT 'row ' || g FROM generate_series(1, 5000) g; \
         CREATE TABLE orders (id serial PRIMARY KEY, total numeric); INSERT INTO orders (total) SELECT g * 1.5 FROM generate_series(1, 300) g",
    )
    .await
    .unwrap();

    // The page lists the tables with their rows.
    let page = ready(&mut fx, postgres, staging).await.database;
    let notes = page.tables.iter().find(|t| t.name == "public.notes").unwrap();
    assert_eq!(notes.rows, 5000);

    let backup = backup_of(&mut fx, postgres, staging).await;
    assert_eq!(backup.state, "verified", "{:?}", backup.reason);
    assert!(backup.verified_at.is_some());
    assert!(backup.size_bytes.unwrap() > 0);
    let checked: Vec<(&str, i64)> = backup.tables.iter().map(|t| (t.name.as_str(), t.rows)).collect();
    assert_eq!(checked, [("public.notes", 5000), ("public.orders", 300)]);
    let listed: BackupsResponse = typed(
        &fx.client
            .get(&format!(
                "/api/v1/services/{postgres}/backups?environment={staging}"
            ))
            .await,
    );
    assert_eq!(listed.backups.len(), 1);

    // The stored file is sealed: no table name or row in it.
    let file = data.join("backups").join(db_key(&app, backup.id).await);
    let sealed = std::fs::read(&file).unwrap();
    assert!(
        !sealed.windows(7).any(|w| w == b"row 100"),
        "rows are not stored in the clear"
    );

    // Restored into a new database: equal rows and checksums.
    let done = restore(&mut fx, backup.id, json!({"target": "new"})).await;
    assert_eq!(done.state, "done", "{:?}", done.reason);
    assert_eq!(done.tables, backup.tables);

    // A restore in place needs the database's name typed.
    let res = fx
        .client
        .post(
            &format!("/api/v1/backups/{}/restore", backup.id),
            json!({"target": "in_place"}),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text());
    let res = fx
        .client
        .post(
            &format!("/api/v1/backups/{}/restore", backup.id),
            json!({"target": "elsewhere"}),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text());

    // In place, after rows were lost, brings them back.
    conn.batch_execute("DELETE FROM notes WHERE w LIKE 'row 1%'")
        .await
        .unwrap();
    drop(conn);
    let done = restore(
        &mut fx,
        backup.id,
        json!({"target": "in_place", "confirm": db.database}),
    )
    .await;
    assert_eq!(done.state, "done", "{:?}", done.reason);
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    let rows: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM notes")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows[0].n, 5000);

    // A flipped byte: the restore fails authentication and changes nothing.
    conn.batch_execute("INSERT INTO notes VALUES ('after the backup')")
        .await
        .unwrap();
    drop(conn);
    let mut bad = sealed.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x40;
    std::fs::write(&file, &bad).unwrap();
    let failed = restore(
        &mut fx,
        backup.id,
        json!({"target": "in_place", "confirm": db.database}),
    )
    .await;
    assert_eq!(failed.state, "failed");
    assert!(
        failed
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("authentication"),
        "{:?}",
        failed.reason
    );
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    let rows: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM notes")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows[0].n, 5001, "nothing was restored");

    // Bad settings are refused with the reason; good ones are kept.
    let settings = format!("/api/v1/services/{postgres}/backup-settings?environment={staging}");
    let res = fx
        .client
        .call(
            "PUT",
            &settings,
            Some(json!({"schedule": "every day", "keep_daily": 7, "keep_weekly": 4})),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text());
    assert!(res.text().contains("cron"), "{}", res.text());
    let res = fx
        .client
        .call(
            "PUT",
            &settings,
            Some(json!({"schedule": "0 4 * * *", "keep_daily": 0, "keep_weekly": 4})),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.text());
    let res = fx
        .client
        .call(
            "PUT",
            &settings,
            Some(json!({"schedule": "30  4 * * 1", "keep_daily": 3, "keep_weekly": 2})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let page = ready(&mut fx, postgres, staging).await.database;
    assert_eq!(page.backup_settings.schedule, "30 4 * * 1");

    // Another workspace's member cannot see or restore the backup.
    let mut stranger = Client::new(&app);
    let res = stranger
        .post(
            "/api/v1/auth/signup",
            json!({"email": "stranger@example.com", "password": "correct horse battery", "name": "Stranger"}),
        )
        .await;
    assert!(res.status < 300, "{}", res.text());
    let res = stranger.get(&format!("/api/v1/backups/{}", backup.id)).await;
    assert_eq!(res.status, 404, "{}", res.text());
    let res = stranger
        .post(
            &format!("/api/v1/backups/{}/restore", backup.id),
            json!({"target": "new"}),
        )
        .await;
    assert_eq!(res.status, 404, "{}", res.text());
}

/// The object key of a backup, as stored.
async fn db_key(app: &TestApp, backup: Uuid) -> String {
    let mut conn = app.state.db.get().await.unwrap();
    let row = railyard_server::models::database::Backups::find(&mut conn, backup)
        .await
        .unwrap()
        .unwrap();
    row.object_key
}
