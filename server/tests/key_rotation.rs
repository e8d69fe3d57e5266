//! `railyard-server keys rotate` under load: the rotation is SIGKILLed mid-way, every value
//! still decrypts (some under the old key, some under the new), a running server picks up
//! the new key without a restart and never fails a request, and `keys rotate --resume`
//! finishes the job.
#![allow(clippy::unwrap_used)]

use std::{
    os::unix::fs::OpenOptionsExt as _,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use diesel::{QueryDsl as _, dsl::sql, sql_types::Integer};
use diesel_async::RunQueryDsl as _;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use railyard_server::{
    crypto::{KeyRing, KeySource},
    schema::{deployment_variables, variables},
    testing::{Fixture, TestApp, git_repo, random_master_key},
    variables::{PublicUrls, Snapshot, store},
};
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::Command,
};

/// Rows of `variables` by the key version of their ciphertext.
async fn versions(app: &TestApp) -> Vec<(i32, i64)> {
    let mut conn = app.state.db.get().await.unwrap();
    variables::table
        .group_by(sql::<Integer>("get_byte(ciphertext, 3)"))
        .select((
            sql::<Integer>("get_byte(ciphertext, 3)"),
            diesel::dsl::count_star(),
        ))
        .order(sql::<Integer>("get_byte(ciphertext, 3)"))
        .load(&mut conn)
        .await
        .unwrap()
}

/// Every stored variable decrypts with the key file as it is now; the count.
async fn all_decrypt(app: &TestApp, key_file: &std::path::Path, environment: uuid::Uuid) -> usize {
    let keys = KeyRing::load(&KeySource::File(key_file.to_owned()), app.data.path()).unwrap();
    let mut conn = app.state.db.get().await.unwrap();
    let loaded = store::Loaded::load(&mut conn, &keys, &PublicUrls::of(&app.state.config), environment)
        .await
        .unwrap();
    loaded.rows.len()
}

fn rotate(app: &TestApp, key_file: &std::path::Path, resume: bool) -> tokio::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_railyard-server"));
    cmd.args(["keys", "rotate"]);
    if resume {
        cmd.arg("--resume");
    }
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("DATABASE_URL", &app.db.url)
        .env("RAILYARD_DATA_DIR", app.data.path())
        .env("RAILYARD_MASTER_KEY_FILE", key_file)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_survives_a_sigkill_and_resumes_under_load() {
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = keys_dir.path().join("master.key");
    {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_file)
            .unwrap();
        writeln!(file, "1:{}", random_master_key()).unwrap();
    }
    let app = TestApp::with(
        &[("RAILYARD_MASTER_KEY_FILE", key_file.to_str().unwrap())],
        axum::Router::new(),
    )
    .await;
    let mut fixture = Fixture::new(&app).await;
    let (repo, _) = git_repo(&[("index.html", "hi")]);
    let mut services = Vec::new();
    for name in ["web", "api", "worker", "cron"] {
        services.push(fixture.git_service(name, repo.path()).await.to_string());
    }
    let web = services[0].clone();
    let environment = fixture.production;
    let mut owner = fixture.client;
    for (i, service) in services.iter().enumerate() {
        let text: String = (0..1000).map(|n| format!("VAR_{n}=value-{i}-{n}\n")).collect();
        let res = owner
            .put_text(&format!("/api/v1/services/{service}/variables"), &text)
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let res = owner
        .post(
            &format!("/api/v1/environments/{environment}/shared-variables"),
            json!({"name": "SECRET", "value": "a-sealed-value", "sealed": true}),
        )
        .await;
    assert_eq!(res.status, 201);
    // A deployment's kept variables are re-encrypted too.
    let deployment = owner
        .post(&format!("/api/v1/services/{web}/deployments"), json!({}))
        .await
        .json()["deployment"]["id"]
        .as_str()
        .unwrap()
        .parse::<uuid::Uuid>()
        .unwrap();
    let snapshot = Snapshot {
        values: [("SECRET".to_owned(), "a-sealed-value".to_owned())].into(),
        secrets: ["a-sealed-value".to_owned()].into(),
    };
    {
        let mut conn = app.state.db.get().await.unwrap();
        store::save_snapshot(
            &mut conn,
            &app.state.keys,
            deployment,
            &snapshot,
            &Default::default(),
        )
        .await
        .unwrap();
    }
    assert_eq!(versions(&app).await, vec![(1, 4001)]);

    // Load: the running server reads every value and writes one, over and over.
    let loading = Arc::new(AtomicBool::new(true));
    let load = {
        let loading = loading.clone();
        let web = web.clone();
        async move {
            let mut client = owner;
            let (mut ok, mut failed) = (0u32, Vec::new());
            let mut n = 0;
            while AtomicBool::load(&loading, Ordering::Relaxed) {
                n += 1;
                let list = client.get(&format!("/api/v1/services/{web}/variables")).await;
                let write = client
                    .call(
                        "PATCH",
                        &format!("/api/v1/services/{web}/variables/VAR_0"),
                        Some(json!({"value": format!("written-{n}")})),
                    )
                    .await;
                match (list.status, write.status) {
                    (200, 200) => ok += 1,
                    other => failed.push(format!("{other:?}: {} {}", list.text(), write.text())),
                }
            }
            (ok, failed, client)
        }
    };
    let rotation = async {
        // Killed once it has reported its first batch: mid-way.
        let mut first = rotate(&app, &key_file, false);
        // Its own task: the load keeps this one's thread busy.
        let said = tokio::spawn(async move {
            let mut out = BufReader::new(first.stdout.take().unwrap());
            let mut said = String::new();
            loop {
                let mut line = String::new();
                assert!(out.read_line(&mut line).await.unwrap() > 0, "no progress: {said}");
                said.push_str(&line);
                if line.contains("re-encrypted") {
                    break;
                }
            }
            kill(Pid::from_raw(first.id().unwrap() as i32), Signal::SIGKILL).unwrap();
            first.wait().await.unwrap();
            said
        })
        .await
        .unwrap();
        assert!(said.contains("Added key version 2"), "{said}");
        let mid_way = versions(&app).await;
        assert_eq!(mid_way.len(), 2, "some rows on each key: {mid_way:?}\n{said}");
        assert_eq!(all_decrypt(&app, &key_file, environment).await, 4001);
        // Resumed: no new key, the rest re-encrypted.
        let resumed = rotate(&app, &key_file, true).wait_with_output().await.unwrap();
        let said = String::from_utf8_lossy(&resumed.stdout).into_owned();
        assert!(resumed.status.success(), "{said}");
        assert!(!said.contains("Added key"), "{said}");
        assert!(said.contains("under key version 2"), "{said}");
        mid_way
    };
    let stop = async {
        let mid_way = rotation.await;
        // Let the load run a little after the rotation too.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        loading.store(false, Ordering::Relaxed);
        mid_way
    };
    let ((ok, failed, _owner), mid_way) = tokio::join!(load, stop);
    assert!(failed.is_empty(), "requests failed during rotation: {failed:?}");
    assert!(ok > 5, "the load ran: {ok}");
    assert!(mid_way[0].1 > 0 && mid_way[1].1 > 0, "{mid_way:?}");

    assert_eq!(versions(&app).await, vec![(2, 4001)], "every row on the new key");
    assert_eq!(all_decrypt(&app, &key_file, environment).await, 4001);
    let mut conn = app.state.db.get().await.unwrap();
    let sealed: Vec<u8> = deployment_variables::table
        .find(deployment)
        .select(deployment_variables::ciphertext)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(KeyRing::version_of(&sealed), Some(2));
    let keys = KeyRing::load(&KeySource::File(key_file.clone()), app.data.path()).unwrap();
    assert_eq!(Snapshot::open(&keys, deployment, &sealed).unwrap(), snapshot);
    assert_eq!(
        app.state.keys.current_version(),
        2,
        "the running server picked up the new key"
    );
}
