//! Static sites: a release's files served by the router. Only files beneath the site's
//! directory (links resolved) and no dot-path; a single-page app's unknown paths (without
//! an extension) get its `index.html`; the `.br`/`.gz` sibling a build wrote when the
//! client takes it, else compressed on the fly; an `ETag` (answered with 304 when it
//! matches) and `Cache-Control`: a year and `immutable` for hashed assets
//! (`index-BvX3k2a1.js`, `main.3f2a1b4c.css`), `no-cache` for HTML, an hour otherwise.

use std::path::{Path, PathBuf};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse as _, Response},
};
use tower::ServiceExt as _;

use super::page;

pub(super) async fn serve(root: PathBuf, spa: bool, mut req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let (check_root, check_path) = (root.clone(), path.clone());
    let resolved = tokio::task::spawn_blocking(move || resolve(&check_root, &check_path, spa))
        .await
        .unwrap_or(None);
    let Some(file) = resolved else {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no file at this address.",
        );
    };
    let relative = file
        .strip_prefix(&root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let served_path = format!("/{}", relative.to_string_lossy());
    if served_path != path
        && let Ok(uri) = Uri::builder().path_and_query(served_path.as_str()).build()
    {
        *req.uri_mut() = uri;
    }
    let etag = tokio::fs::metadata(&file).await.ok().and_then(|meta| {
        let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
        HeaderValue::from_str(&format!("W/\"{:x}-{:x}\"", meta.len(), modified.as_nanos())).ok()
    });
    let cache = HeaderValue::from_static(cache_control(&relative));
    if let Some(etag) = &etag
        && req
            .headers()
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| {
                tag.trim() == "*"
                    || tag.trim().trim_start_matches("W/")
                        == etag.to_str().unwrap_or_default().trim_start_matches("W/")
            })
    {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag.clone()), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    let files = tower_http::services::ServeDir::new(&root)
        .append_index_html_on_directories(true)
        .precompressed_br()
        .precompressed_gzip();
    let service = tower::ServiceBuilder::new()
        .layer(tower_http::compression::CompressionLayer::new())
        .service(files);
    let mut res = match service.oneshot(req).await {
        Ok(res) => res.map(Body::new).into_response(),
        Err(err) => match err {},
    };
    if res.status().is_success() {
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, cache);
        if let Some(etag) = etag {
            headers.insert(header::ETAG, etag);
        }
    }
    res
}

/// The file `path` names under `root` (a directory's `index.html`), or for a single-page
/// app a path without an extension that names nothing, its `index.html`; `None` when
/// it may not be served or does not exist.
fn resolve(root: &Path, path: &str, spa: bool) -> Option<PathBuf> {
    if !servable(root, path) {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned();
    let mut file = root.join(decoded.trim_start_matches('/'));
    if file.is_dir() {
        file.push("index.html");
    }
    if file.is_file() {
        return Some(file);
    }
    let last = decoded.rsplit('/').next().unwrap_or_default();
    (spa && !last.contains('.'))
        .then(|| root.join("index.html"))
        .filter(|index| index.is_file())
}

/// How long a file may be cached: hashed names never change, HTML must be asked again.
fn cache_control(relative: &Path) -> &'static str {
    let name = relative.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let extension = relative.extension().and_then(|e| e.to_str()).unwrap_or_default();
    if extension.eq_ignore_ascii_case("html") || name.is_empty() {
        "no-cache"
    } else if hashed(name) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=3600"
    }
}

/// `index-BvX3k2a1.js`, `index-D_Ke-x9q.js` (Vite, Rollup: base64url), `main.3f2a1b4c.css`
/// (webpack: hex): after the name's first `-` or `.`, 8 or more such characters, with a
/// digit or both cases (a word such as `component` is not a hash).
fn hashed(name: &str) -> bool {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let Some((_, part)) = stem.split_once(['-', '.']) else {
        return false;
    };
    part.len() >= 8
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && (part.chars().any(|c| c.is_ascii_digit())
            || (part.chars().any(|c| c.is_ascii_uppercase()) && part.chars().any(|c| c.is_ascii_lowercase())))
}

/// Whether a static site may answer `path` from `root`: no segment is a dot-path (`.git`,
/// `.env`, `..`), and the file it names, links resolved, lies beneath `root` (a release is
/// not changed once built, so what is checked here is what is served). A path that names
/// nothing passes: the file server answers 404.
fn servable(root: &Path, path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| s.starts_with('.') || s.contains('\\')) {
        return false;
    }
    let Ok(root) = std::fs::canonicalize(root) else {
        return false;
    };
    let mut target = root.join(segments.join("/"));
    if target.is_dir() {
        target.push("index.html");
    }
    // What does not exist is judged by its deepest existing ancestor (links resolved); a
    // link to nothing is refused.
    let mut probe = target.as_path();
    loop {
        match std::fs::canonicalize(probe) {
            Ok(resolved) => return resolved.starts_with(&root),
            Err(_) if probe.is_symlink() => return false,
            Err(_) => match probe.parent() {
                Some(parent) => probe = parent,
                None => return false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_files_stay_beneath_their_release() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        std::fs::write(dir.join("index.html"), "home").unwrap();
        std::fs::create_dir_all(dir.join("docs/.git")).unwrap();
        std::fs::write(dir.join("docs/index.html"), "docs").unwrap();
        std::fs::write(dir.join(".env"), "SECRET=1").unwrap();
        std::os::unix::fs::symlink("index.html", dir.join("home.html")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("host.txt")).unwrap();
        std::os::unix::fs::symlink("/", dir.join("root")).unwrap();
        std::os::unix::fs::symlink("/nowhere/at/all", dir.join("dangling")).unwrap();
        for ok in [
            "/",
            "/index.html",
            "/home.html",
            "/docs",
            "/docs/",
            "/missing.css",
        ] {
            assert!(servable(dir, ok), "{ok}");
        }
        for refused in [
            "/.env",
            "/%2eenv",
            "/docs/.git/config",
            "/docs/%2Egit/HEAD",
            "/../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/host.txt",
            "/root/etc/passwd",
            "/root",
            "/dangling",
            "/a%5cb",
        ] {
            assert!(!servable(dir, refused), "{refused}");
        }
    }

    #[test]
    fn hashed_assets_are_told_apart() {
        for name in [
            "index-BvX3k2a1.js",
            "index-CDtBjXhE.js",
            "index-D_Ke-x9q.css",
            "main.3f2a1b4c.css",
        ] {
            assert!(hashed(name), "{name}");
        }
        for name in [
            "index.js",
            "favicon.ico",
            "robots.txt",
            "my-component.js",
            "logo-dark.svg",
            "vendor-longword.js",
        ] {
            assert!(!hashed(name), "{name}");
        }
        assert_eq!(cache_control(Path::new("index.html")), "no-cache");
        assert_eq!(
            cache_control(Path::new("assets/index-BvX3k2a1.js")),
            "public, max-age=31536000, immutable"
        );
    }

    #[test]
    fn single_page_apps_get_their_index_for_routes_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        std::fs::write(dir.join("index.html"), "app").unwrap();
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("assets/app.js"), "js").unwrap();
        assert_eq!(
            resolve(dir, "/dashboard/settings", true),
            Some(dir.join("index.html"))
        );
        assert_eq!(resolve(dir, "/dashboard/settings", false), None);
        assert_eq!(resolve(dir, "/assets/missing.js", true), None);
        assert_eq!(
            resolve(dir, "/assets/app.js", true),
            Some(dir.join("assets/app.js"))
        );
        assert_eq!(resolve(dir, "/.env", true), None);
    }
}
