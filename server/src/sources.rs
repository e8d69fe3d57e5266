//! Validation of where code comes from. Untrusted strings never reach a shell or an option
//! position; this refuses, on write and again at fetch, what could: other transports
//! (`ext::`), option-looking values, hosts and users starting with `-`, credentials in the
//! URL (they would be stored, shown and logged), relative, `..` or percent-encoded paths,
//! and any `file://` repository outside the directories the operator allows
//! (`RAILYARD_FILE_SOURCE_ROOTS`; none by default) or inside Railyard's data directory.

use std::path::{Component, Path, PathBuf};

/// Checks a git repository URL: `https://`, `ssh://`, or `file://` of a local repository
/// under one of `file_roots`.
pub fn check_git_url(url: &str, data_dir: &Path, file_roots: &[PathBuf]) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("the repository URL is too long".into());
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the repository URL must not contain spaces or control characters".into());
    }
    if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("ssh://"))
    {
        let authority = rest.split('/').next().unwrap_or_default();
        let (user, host) = authority
            .rsplit_once('@')
            .map_or(("", authority), |(u, h)| (u, h));
        let https = url.starts_with("https://");
        if (https && authority.contains('@')) || user.contains(':') {
            return Err(
                "the repository URL must not carry credentials (`user:token@`): keep a token in a sealed variable, or connect GitHub"
                    .into(),
            );
        }
        if host.is_empty() || host.starts_with('-') || user.starts_with('-') {
            return Err(
                "the repository URL needs a host name (and no user or host starting with `-`)".into(),
            );
        }
        if !rest[authority.len()..].starts_with('/') || rest.len() <= authority.len() + 1 {
            return Err("the repository URL needs a path, e.g. https://github.com/acme/shop.git".into());
        }
        return Ok(());
    }
    if let Some(path) = url.strip_prefix("file://") {
        return check_local_repository(Path::new(path), data_dir, file_roots);
    }
    Err("the repository URL must start with https://, ssh:// or file://".into())
}

fn check_local_repository(path: &Path, data_dir: &Path, roots: &[PathBuf]) -> Result<(), String> {
    if roots.is_empty() {
        return Err(
            "file:// repositories are not enabled on this instance (an operator lists the directories they may come from in RAILYARD_FILE_SOURCE_ROOTS)"
                .into(),
        );
    }
    // git decodes `%xx` in file:// URLs; what is checked here must be what git opens.
    if path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .any(|b| matches!(b, b'%' | b'?' | b'#'))
    {
        return Err("a file:// repository path must be written as it is, without `%`, `?` or `#`".into());
    }
    if !path.is_absolute() {
        return Err("a file:// repository needs an absolute path".into());
    }
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err("a file:// repository path must not contain `.` or `..`".into());
    }
    let resolved = resolve(path);
    let data = resolve(data_dir);
    if resolved.starts_with(&data) {
        return Err("a file:// repository cannot be inside Railyard's data directory".into());
    }
    if !roots.iter().any(|root| resolved.starts_with(resolve(root))) {
        return Err(format!(
            "a file:// repository must be under {} (RAILYARD_FILE_SOURCE_ROOTS)",
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    Ok(())
}

/// `url` with any password or token in it replaced, for logs and for showing a URL stored
/// before credentials were refused.
pub fn redact_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if scheme == "https" || userinfo.contains(':') => {
            format!("{scheme}://***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// The canonical form of the longest existing prefix of `path` (symlinks resolved), with
/// the rest appended: what the path will point at once it exists.
fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut existing = absolute.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent().map(Path::to_owned),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved = existing.canonicalize().unwrap_or(existing);
    for part in rest.into_iter().rev() {
        resolved.push(part);
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_transports() {
        let data = Path::new("/var/lib/railyard");
        let roots = [PathBuf::from("/srv/git")];
        for url in [
            "https://github.com/acme/shop.git",
            "ssh://git@github.com/acme/shop.git",
            "ssh://git@example.com:2222/acme/shop.git",
            "file:///srv/git/shop",
        ] {
            assert_eq!(check_git_url(url, data, &roots), Ok(()), "{url}");
        }
    }

    #[test]
    fn file_sources_only_under_the_operators_roots() {
        let data = Path::new("/var/lib/railyard");
        let none: [PathBuf; 0] = [];
        let refused = check_git_url("file:///srv/git/shop", data, &none).unwrap_err();
        assert!(refused.contains("RAILYARD_FILE_SOURCE_ROOTS"), "{refused}");
        let roots = [PathBuf::from("/srv/git")];
        for url in [
            "file:///srv/other/shop",
            "file:///srv/gitx/shop",
            // Percent-encoding that git would decode (`%2d` is `-`, `%2e` is `.`).
            "file:///srv%2dgit/shop",
            "file:///srv/git/%2e%2e/secret",
            "file:///srv/git/shop?x",
        ] {
            assert!(check_git_url(url, data, &roots).is_err(), "{url:?} accepted");
        }
    }

    #[test]
    fn credentials_are_refused_and_redacted() {
        let data = Path::new("/var/lib/railyard");
        for url in [
            "https://user:ghp_token@github.com/acme/shop.git",
            "https://ghp_token@github.com/acme/shop.git",
            "ssh://git:password@github.com/acme/shop.git",
        ] {
            let refused = check_git_url(url, data, &[]).unwrap_err();
            assert!(refused.contains("credentials"), "{url}: {refused}");
            assert!(
                !redact_credentials(url).contains("token") && !redact_credentials(url).contains("password")
            );
        }
        assert_eq!(
            redact_credentials("https://user:ghp_token@github.com/acme/shop.git"),
            "https://***@github.com/acme/shop.git"
        );
        assert_eq!(
            redact_credentials("ssh://git@github.com/acme/shop.git"),
            "ssh://git@github.com/acme/shop.git"
        );
    }

    #[test]
    fn refuses_injection_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::os::unix::fs::symlink(&data, dir.path().join("link")).unwrap();
        let inside = format!("file://{}/postgres", data.display());
        let via_link = format!("file://{}/link/repos", dir.path().display());
        for url in [
            "ext::sh -c touch% /tmp/pwned",
            "--upload-pack=touch /tmp/x",
            "-c core.sshCommand=touch",
            "ssh://-oProxyCommand=touch%20/tmp/x/repo",
            "ssh://-user@host/repo",
            "https://",
            "https://host",
            "http://insecure.example/x.git",
            "git@github.com:acme/shop.git",
            "file://relative/path",
            "file:///srv/../etc",
            "https://host/a b",
            "https://host/a\nb",
            "fd::17",
            &inside,
            &via_link,
        ] {
            assert!(
                check_git_url(url, &data, &[dir.path().to_owned()]).is_err(),
                "{url:?} accepted"
            );
        }
    }
}
