//! Validation of where code comes from. Untrusted strings never reach a shell or an option
//! position; this refuses, on write, what could: other transports (`ext::`), option-looking
//! values, hosts and users starting with `-`, relative or `..` paths, and paths into
//! Railyard's own data directory.

use std::path::{Component, Path, PathBuf};

/// Checks a git repository URL: `https://`, `ssh://` or `file://` of a local repository.
pub fn check_git_url(url: &str, data_dir: &Path) -> Result<(), String> {
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
        return check_local_repository(Path::new(path), data_dir);
    }
    Err("the repository URL must start with https://, ssh:// or file://".into())
}

fn check_local_repository(path: &Path, data_dir: &Path) -> Result<(), String> {
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
    Ok(())
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
        for url in [
            "https://github.com/acme/shop.git",
            "ssh://git@github.com/acme/shop.git",
            "ssh://git@example.com:2222/acme/shop.git",
            "file:///srv/git/shop",
        ] {
            assert_eq!(check_git_url(url, data), Ok(()), "{url}");
        }
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
            assert!(check_git_url(url, &data).is_err(), "{url:?} accepted");
        }
    }
}
