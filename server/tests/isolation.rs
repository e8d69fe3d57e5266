//! The tenant boundary (issue 18, finding 1): a build and an app of one tenant try to reach
//! the control plane and another tenant's app — the master key, the server's and the other
//! app's `/proc/<pid>/environ`, the database credentials, the other app's release and log
//! directories, writing into the data directory, signalling the server — and every attempt
//! fails, while each still reaches its own release, home and temporary directory.
#![allow(clippy::unwrap_used)]

use std::{os::unix::fs::MetadataExt as _, path::Path, time::Duration};

use railyard_server::{
    layout::Layout,
    sandbox::Isolation,
    testing::{Fixture, TestApp, git_repo},
};
use railyard_shared::DeploymentState;
use serde_json::json;

const VICTIM_CANARY: &str = "victim-canary-7d1e";

const SERVER: &str =
    "require('http').createServer((q, s) => s.end('up')).listen(process.env.PORT, '127.0.0.1');\n";

/// The attacker's probe: each attempt is written as `ok <what>` when it went as it must
/// (denied, or allowed for its own directories) and `FAIL <what>` otherwise.
fn probe(data: &Path, server_pid: u32, other_pid: i32, other_release: &Path, other_logs: &Path) -> String {
    let data = data.display();
    let (release, logs) = (other_release.display(), other_logs.display());
    format!(
        r#"#!/bin/sh
out="$1-results.txt"
: > "$out"
deny() {{ what="$1"; shift; if "$@" >/dev/null 2>&1; then echo "FAIL $what" >> "$out"; else echo "ok $what" >> "$out"; fi; }}
allow() {{ what="$1"; shift; if "$@" >/dev/null 2>&1; then echo "ok $what" >> "$out"; else echo "FAIL $what" >> "$out"; fi; }}
deny master-key cat "{data}/master.key"
deny data-dir-holds-more-than-its-own sh -c 'ls -A "{data}" | grep -qvx -e releases -e cache'
deny server-environ cat "/proc/{server_pid}/environ"
deny other-app-environ cat "/proc/{other_pid}/environ"
deny canary-in-any-environ sh -c 'cat /proc/[0-9]*/environ 2>/dev/null | grep -q {VICTIM_CANARY}'
deny database-credentials sh -c 'env | grep -q DATABASE_URL || cat /proc/[0-9]*/environ 2>/dev/null | grep -q DATABASE_URL'
deny other-app-release ls "{release}"
deny other-app-logs ls "{logs}"
deny write-data-dir sh -c 'echo planted > "{data}/planted"'
deny signal-server kill -0 {server_pid}
deny see-server test -e /proc/{server_pid}
allow own-release sh -c 'echo mine > own.txt'
allow own-home sh -c 'echo mine > "$HOME/own.txt"'
allow own-tmp sh -c 'echo mine > /tmp/own.txt'
"#
    )
}

fn results(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The host pid of the process whose environment holds `needle` and that runs `comm`.
fn pid_with(needle: &str, comm: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let environ = std::fs::read(entry.path().join("environ")).ok()?;
        let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        (name.trim() == comm && String::from_utf8_lossy(&environ).contains(needle)).then_some(pid)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_and_apps_reach_nothing_of_the_platform_or_of_other_tenants() {
    let app = TestApp::new().await;
    if !matches!(app.state.sandbox.isolation(), Isolation::On { .. }) {
        // The refusal on such hosts is checked in `sandbox::jail`'s tests; this host must
        // isolate (CI runs as root).
        panic!("this host cannot isolate: {:?}", app.state.sandbox.isolation());
    }
    let data = app.state.config.data_dir.clone();
    // A key file as `serve` keeps one (these tests take the key from configuration).
    std::fs::write(data.join("master.key"), "the-master-key").unwrap();
    let (_pool, _edge) = app.start_runtime().await;
    let mut fx = Fixture::new(&app).await;

    // The victim: another service, live in production, with a sealed variable.
    let (victim_repo, _) = git_repo(&[
        ("railyard.toml", "start = \"node server.js\"\n"),
        ("server.js", SERVER),
    ]);
    let victim = fx.git_service("victim", victim_repo.path()).await;
    let res = fx
        .client
        .post(
            &format!("/api/v1/services/{victim}/variables"),
            json!({"name": "CANARY", "value": VICTIM_CANARY, "sealed": true}),
        )
        .await;
    assert!(res.status < 300, "{}", res.text());
    let production = fx.production;
    let victim_deployment = fx.deploy_live(victim, production).await.deployment.id.uuid();
    let layout = Layout::new(&data);
    let victim_release = layout.release(victim_deployment);
    let victim_logs = layout.service_logs(victim);
    let mut victim_pid = None;
    for _ in 0..100 {
        victim_pid = pid_with(VICTIM_CANARY, "node");
        if victim_pid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let victim_pid = victim_pid.expect("the victim's app runs with its variable");

    // The attacker, in a staging environment: its build and its app run the probe.
    let staging = fx.environment("staging").await;
    let script = probe(
        &data,
        std::process::id(),
        victim_pid,
        &victim_release,
        &victim_logs,
    );
    let (attacker_repo, _) = git_repo(&[
        (
            "railyard.toml",
            "build = \"sh probe.sh build\"\nstart = \"sh probe.sh app && exec node server.js\"\n",
        ),
        ("probe.sh", &script),
        ("server.js", SERVER),
    ]);
    let attacker = fx.git_service("attacker", attacker_repo.path()).await;
    let attack = fx.deploy_live(attacker, staging).await.deployment.id.uuid();
    let release = layout.release(attack);
    let expected = script
        .lines()
        .filter(|l| l.starts_with("deny ") || l.starts_with("allow "))
        .count();
    for stage in ["build", "app"] {
        let path = release.join(format!("{stage}-results.txt"));
        let mut lines = results(&path);
        for _ in 0..100 {
            if lines.len() == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            lines = results(&path);
        }
        let failed: Vec<_> = lines.iter().filter(|l| !l.starts_with("ok ")).collect();
        assert!(failed.is_empty(), "the {stage} reached: {failed:?}");
        assert_eq!(
            lines.len(),
            expected,
            "every attempt of the {stage} ran: {lines:?}"
        );
    }
    assert!(
        !data.join("planted").exists(),
        "nothing was written into the data directory"
    );

    // Each service and environment is a user of its own, owning its own directories.
    let owner = |path: &Path| std::fs::metadata(path).unwrap().uid();
    let (victim_uid, attacker_uid) = (owner(&victim_release), owner(&release));
    assert!(
        victim_uid >= 400_000 && attacker_uid >= 400_000,
        "{victim_uid} {attacker_uid}"
    );
    assert_ne!(victim_uid, attacker_uid);
    assert_eq!(owner(&layout.home(attacker, staging)), attacker_uid);
    let mode = std::fs::metadata(&release).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700, "a release is closed to other users");

    // The same service in another environment is another user.
    let again = fx.deploy(attacker, production).await.deployment.id.uuid();
    let done = fx
        .wait_for(again, &[DeploymentState::Active, DeploymentState::Failed])
        .await;
    assert_eq!(done.deployment.state, DeploymentState::Active);
    assert_ne!(owner(&layout.release(again)), attacker_uid);
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_admins_see_whether_tenant_code_is_isolated() {
    let app = TestApp::new().await;
    let mut admin = app.admin().await;
    let on = admin.get("/api/v1/instance").await.json();
    assert_eq!(on["isolation"]["mode"], "on", "{on}");
    assert!(
        on["isolation"]["detail"]
            .as_str()
            .unwrap()
            .contains("users of their own"),
        "{on}"
    );

    let off = TestApp::with(&[("RAILYARD_ISOLATION", "off")], axum::Router::new()).await;
    let mut admin = off.admin().await;
    let shown = admin.get("/api/v1/instance").await.json();
    assert_eq!(shown["isolation"]["mode"], "off", "{shown}");
    assert!(
        shown["isolation"]["detail"]
            .as_str()
            .unwrap()
            .contains("RAILYARD_ISOLATION=off"),
        "{shown}"
    );
}
