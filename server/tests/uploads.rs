//! Source uploads (`railyard up`): a tarball becomes a deployment; anything that could
//! escape the tree or is not a plain file, directory or inside link refuses the upload.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{io::Write as _, time::Duration};

use axum::{body::Body, http::Request};
use railyard_server::testing::{Client, TestApp, TestResponse, new_project, new_service, new_workspace};
use railyard_shared::projects::Source;
use serde_json::json;

/// A tar entry written byte by byte, so tests can build archives no honest tool would.
fn entry(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut header = tar::Header::new_old();
    let raw = header.as_old_mut();
    raw.name[..name.len()].copy_from_slice(name.as_bytes());
    raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn tarball(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, kind, link, data) in entries {
        entry(&mut tar, name, *kind, link, data);
    }
    tar.extend_from_slice(&[0; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

async fn upload(client: &Client<'_>, service: &str, content_type: &str, body: Vec<u8>) -> TestResponse {
    let request = Request::post(format!("/api/v1/services/{service}/uploads"))
        .header("cookie", client.cookie_header())
        .header("x-csrf-token", client.cookies.get("railyard_csrf").unwrap())
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    client.app.send(request).await
}

async fn upload_service(owner: &mut Client<'_>) -> String {
    let workspace = new_workspace(owner, "acme").await;
    let project = new_project(owner, workspace, "shop").await;
    new_service(owner, project.id, "web", Source::Upload {})
        .await
        .to_string()
}

const FILE: tar::EntryType = tar::EntryType::Regular;
const DIR: tar::EntryType = tar::EntryType::Directory;
const SYMLINK: tar::EntryType = tar::EntryType::Symlink;

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_is_built_and_can_be_deployed_again() {
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::with(
        &[("RAILYARD_DATA_DIR", data.path().to_str().unwrap())],
        axum::Router::new(),
    )
    .await;
    let workers = app.start_workers();
    let mut owner = app.admin().await;
    let service = upload_service(&mut owner).await;

    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
        .await;
    assert_eq!(res.status, 422, "nothing uploaded yet: {}", res.text());

    let body = tarball(&[
        ("./", DIR, "", b""),
        ("./index.html", FILE, "", b"<h1>uploaded</h1>"),
        ("./assets/", DIR, "", b""),
        ("./assets/app.js", FILE, "", b"console.log(1)"),
        ("./assets/home.html", SYMLINK, "../index.html", b""),
    ]);
    let res = upload(&owner, &service, "application/gzip", body).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(res.json()["deployment"]["source"], "upload");
    let mut done = json!(null);
    for _ in 0..300 {
        done = owner.get(&format!("/api/v1/deployments/{id}")).await.json()["deployment"].clone();
        if done["state"] != "queued" && done["state"] != "building" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["state"], "deploying", "{done}");
    assert_eq!(done["plan"]["provider"], "static");
    let release = data.path().join("releases").join(&id);
    assert_eq!(
        std::fs::read_to_string(release.join("assets/home.html")).unwrap(),
        "<h1>uploaded</h1>"
    );

    // Deploying an upload service again rebuilds its latest upload.
    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let again = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    wait_built(&mut owner, &again).await;

    // A newer upload is built: the unpacked older one is removed (finding 12 of the tenant
    // boundary: unpacked uploads were never deleted), the newest is kept for redeploys.
    let body = tarball(&[("./index.html", FILE, "", b"<h1>second</h1>")]);
    let res = upload(&owner, &service, "application/gzip", body).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let newest = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    wait_built(&mut owner, &newest).await;
    let kept: Vec<String> = std::fs::read_dir(data.path().join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert_eq!(kept.len(), 1, "unpacked uploads kept: {kept:?}");
    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let redeploy = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_built(&mut owner, &redeploy).await["state"], "deploying");
    assert_eq!(
        std::fs::read_to_string(data.path().join("releases").join(&redeploy).join("index.html")).unwrap(),
        "<h1>second</h1>"
    );
    workers.shutdown().await;
}

/// Waits (up to 15 s) until deployment `id` is no longer queued or building; its detail.
async fn wait_built(owner: &mut Client<'_>, id: &str) -> serde_json::Value {
    for _ in 0..300 {
        let done = owner.get(&format!("/api/v1/deployments/{id}")).await.json()["deployment"].clone();
        if done["state"] != "queued" && done["state"] != "building" {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deployment {id} was not built in 15 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_that_could_escape_or_smuggle_are_refused_and_leave_nothing() {
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::with(
        &[
            ("RAILYARD_DATA_DIR", data.path().to_str().unwrap()),
            ("RAILYARD_UPLOAD_LIMIT_BYTES", "65536"),
        ],
        axum::Router::new(),
    )
    .await;
    let mut owner = app.admin().await;
    let service = upload_service(&mut owner).await;
    let marker = format!("railyard-escape-{}", uuid::Uuid::new_v4().simple());
    let absolute = format!("/tmp/{marker}");
    let escape = format!("../../../../../../tmp/{marker}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("absolute path", tarball(&[(absolute.as_str(), FILE, "", b"x")])),
        ("parent directory", tarball(&[(escape.as_str(), FILE, "", b"x")])),
        (
            "symlink to an absolute path",
            tarball(&[("etc", SYMLINK, "/etc", b"")]),
        ),
        (
            "symlink out of the tree",
            tarball(&[("a/", DIR, "", b""), ("a/up", SYMLINK, "../../..", b"")]),
        ),
        (
            "write through a symlink",
            tarball(&[
                ("out", SYMLINK, "/tmp", b""),
                (&format!("out/{marker}"), FILE, "", b"x"),
            ]),
        ),
        (
            "hard link out of the tree",
            tarball(&[("h", tar::EntryType::Link, "../../etc/passwd", b"")]),
        ),
        ("device file", tarball(&[("dev", tar::EntryType::Char, "", b"")])),
        ("fifo", tarball(&[("pipe", tar::EntryType::Fifo, "", b"")])),
        (
            "a chain of links that leaves",
            tarball(&[("x", SYMLINK, ".", b""), ("y", SYMLINK, "x/..", b"")]),
        ),
        (
            "not a tarball",
            b"this is not a tarball at all, just text".repeat(20),
        ),
    ];
    for (what, body) in cases {
        let res = upload(&owner, &service, "application/gzip", body).await;
        assert_eq!(res.status, 422, "{what}: {}", res.text());
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("upload refused"),
            "{what}"
        );
    }
    // Too large, and the wrong content type.
    let res = upload(&owner, &service, "application/gzip", vec![0; 70_000]).await;
    assert_eq!(res.status, 413, "{}", res.text());
    let res = upload(&owner, &service, "text/plain", b"hello".to_vec()).await;
    assert_eq!(res.status, 415, "{}", res.text());
    let res = upload(&owner, &service, "application/gzip", Vec::new()).await;
    assert_eq!(res.status, 422, "{}", res.text());

    assert!(
        !std::path::Path::new(&absolute).exists(),
        "nothing was written outside"
    );
    let kept: Vec<_> = std::fs::read_dir(data.path().join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".incoming")
        .collect();
    assert!(kept.is_empty(), "refused uploads left {kept:?}");
    assert_eq!(
        std::fs::read_dir(data.path().join("uploads/.incoming"))
            .unwrap()
            .count(),
        0
    );
    let res = owner
        .get(&format!("/api/v1/services/{service}/deployments"))
        .await;
    assert_eq!(res.json()["deployments"], json!([]));
}

/// Finding 12 of the tenant boundary: no storage quotas. A workspace's services are
/// measured after each build; at the limit, uploads and new deployments are refused (409),
/// while other workspaces go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_at_its_storage_quota_takes_nothing_more() {
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::with(
        &[
            ("RAILYARD_DATA_DIR", data.path().to_str().unwrap()),
            ("RAILYARD_WORKSPACE_STORAGE_LIMIT_BYTES", "524288"),
        ],
        axum::Router::new(),
    )
    .await;
    let workers = app.start_workers();
    let mut owner = app.admin().await;
    let service = upload_service(&mut owner).await;
    let workspace = owner.get(&format!("/api/v1/services/{service}")).await.json()["service"]["project_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap();
    let workspace =
        owner.get(&format!("/api/v1/projects/{workspace}")).await.json()["project"]["workspace_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let path = format!("/api/v1/workspaces/{workspace}/usage");
    let res = owner.get(&path).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["usage"]["storage_bytes"], 0);
    assert_eq!(res.json()["usage"]["storage_limit_bytes"], 524_288);

    // More than the workspace has room for does not even unpack (a 1 MiB file compresses
    // to almost nothing: what counts is what it unpacks to).
    let huge = vec![b'x'; 1024 * 1024];
    let body = tarball(&[("./huge.txt", FILE, "", &huge)]);
    let res = upload(&owner, &service, "application/gzip", body).await;
    assert_eq!(res.status, 422, "{}", res.text());
    assert!(res.text().contains("unpacks to more than"), "{}", res.text());

    // 300 KiB that stays 300 KiB on disk (the release, and the unpacked upload kept for
    // redeploys).
    let big = vec![b'x'; 300 * 1024];
    let body = tarball(&[
        ("./index.html", FILE, "", b"<h1>big</h1>"),
        ("./big.txt", FILE, "", &big),
    ]);
    let res = upload(&owner, &service, "application/gzip", body).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["deployment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_built(&mut owner, &id).await["state"], "deploying");
    let res = owner.get(&path).await;
    let used = res.json()["usage"]["storage_bytes"].as_u64().unwrap();
    assert!(used >= 2 * 300 * 1024, "measured {used} bytes: {}", res.text());
    assert_eq!(res.json()["usage"]["services"][0]["service_id"], service.as_str());

    // At the quota: no upload, no new build.
    let body = tarball(&[("./index.html", FILE, "", b"<h1>more</h1>")]);
    let res = upload(&owner, &service, "application/gzip", body).await;
    assert_eq!(res.status, 409, "{}", res.text());
    assert!(
        res.text().contains("RAILYARD_WORKSPACE_STORAGE_LIMIT_BYTES"),
        "{}",
        res.text()
    );
    let res = owner
        .post(&format!("/api/v1/services/{service}/deployments"), json!({}))
        .await;
    assert_eq!(res.status, 409, "{}", res.text());

    // Another workspace is not held back by this one.
    let other = {
        let ws = new_workspace(&mut owner, "other").await;
        let project = new_project(&mut owner, ws, "site").await;
        new_service(&mut owner, project.id, "web", Source::Upload {})
            .await
            .to_string()
    };
    let body = tarball(&[("./index.html", FILE, "", b"<h1>other</h1>")]);
    let res = upload(&owner, &other, "application/gzip", body).await;
    assert_eq!(res.status, 201, "{}", res.text());
    workers.shutdown().await;
}
