//! Serves the dashboard: Trunk's `dist/` with its precompressed siblings, the SPA
//! fallback to `index.html`, and cache headers (immutable for hashed assets, revalidated
//! for the shell).

use std::path::{Path, PathBuf};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, Method, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};

use crate::config::DashboardConfig;

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
const SHORT: HeaderValue = HeaderValue::from_static("public, max-age=3600");

#[derive(Debug, Clone)]
pub struct Dashboard {
    dist: PathBuf,
}

impl Dashboard {
    pub fn new(config: &DashboardConfig) -> Self {
        Self {
            dist: config.dist_dir.clone(),
        }
    }

    /// Answers a non-API request.
    pub async fn serve(&self, req: Request) -> Response {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
        }
        let index = self.dist.join("index.html");
        if !index.is_file() {
            return not_built(&self.dist);
        }
        let path = req.uri().path().to_owned();
        let (parts, _) = req.into_parts();
        let again = || {
            let mut req = Request::new(Body::empty());
            *req.method_mut() = parts.method.clone();
            *req.uri_mut() = parts.uri.clone();
            *req.headers_mut() = parts.headers.clone();
            req
        };

        let files = ServeDir::new(&self.dist).precompressed_br().precompressed_gzip();
        let response = match files.oneshot(again()).await {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        };
        if response.status() != StatusCode::NOT_FOUND {
            return with_cache_headers(response, &path);
        }
        if looks_like_file(&path) {
            return (StatusCode::NOT_FOUND, "not found").into_response();
        }
        // A client-side route: the shell decides what to show.
        let shell = ServeFile::new(&index).precompressed_br().precompressed_gzip();
        match shell.oneshot(again()).await {
            Ok(response) => with_cache_headers(response.map(Body::new), "/index.html"),
            Err(never) => match never {},
        }
    }
}

fn with_cache_headers(mut response: Response, path: &str) -> Response {
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let value = if path == "/" || path.ends_with(".html") {
            REVALIDATE
        } else if is_hashed_asset(path) {
            IMMUTABLE
        } else {
            SHORT
        };
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// Trunk names built assets `<name>-<hash>[_bg].<ext>`, the hash a 64-bit number in hex
/// (without leading zeros, so 12 to 16 digits in practice).
pub fn is_hashed_asset(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or_default();
    let Some((stem, _ext)) = file.split_once('.') else {
        return false;
    };
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(name, hash)| {
        !name.is_empty() && (12..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A path whose last segment has an extension is a missing file, not a client route.
fn looks_like_file(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|last| last.contains('.'))
}

fn not_built(dist: &Path) -> Response {
    tracing::warn!(dist = %dist.display(), "dashboard requested but not built");
    let page = "<!doctype html><meta charset=utf-8><title>Railyard</title>\
        <body style=\"background:#020617;color:#e2e8f0;font-family:system-ui;padding:3rem\">\
        <h1>The dashboard is not built</h1>\
        <p>The API is running. Build the dashboard with <code>scripts/start.sh</code> \
        (or <code>trunk build --release</code>), or point <code>RAILYARD_DASHBOARD_DIR</code> at it.</p>\
        <p><a style=\"color:#a5b4fc\" href=\"/api/docs\">API docs</a></p></body>";
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CACHE_CONTROL, REVALIDATE)],
        Html(page),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_trunk_hashes() {
        assert!(is_hashed_asset("/railyard-app-3f2a9c0d1e4b5a67.js"));
        assert!(is_hashed_asset("/railyard-app-3f2a9c0d1e4b5a67_bg.wasm"));
        assert!(is_hashed_asset("/main-0123456789abcdef.css"));
        assert!(!is_hashed_asset("/index.html"));
        assert!(!is_hashed_asset("/fonts/inter-latin.woff2"));
        assert!(is_hashed_asset("/favicon-d0a876c5949c6b1.svg"));
        assert!(!is_hashed_asset("/app-123.js"));
        assert!(!is_hashed_asset("/app-deadbeef.js"));
        assert!(!is_hashed_asset("/-0123456789abcdef.js"));
        assert!(!is_hashed_asset("/projects/abc"));
    }

    #[test]
    fn client_routes_are_not_files() {
        assert!(looks_like_file("/favicon.ico"));
        assert!(!looks_like_file("/projects/shop"));
        assert!(!looks_like_file("/"));
    }
}
