//! Where things live under the data directory. Every path of a release, a pushed
//! repository, an upload, a build cache or an app's log file is made here, so the pipeline,
//! the runtime and the routes agree on them and deleting a service can find them all.

use std::path::{Path, PathBuf};

use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Layout {
    pub data_dir: PathBuf,
}

impl Layout {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }

    /// A deployment's release directory: the source, built in place.
    pub fn release(&self, deployment: Uuid) -> PathBuf {
        self.data_dir.join("releases").join(deployment.to_string())
    }

    /// The bare repository that `git push` writes to.
    pub fn push_repo(&self, service: Uuid) -> PathBuf {
        self.data_dir.join("git").join(format!("{service}.git"))
    }

    pub fn upload(&self, upload: Uuid) -> PathBuf {
        self.data_dir.join("uploads").join(upload.to_string())
    }

    /// The homes of a service (all its environments).
    pub fn cache(&self, service: Uuid) -> PathBuf {
        self.data_dir.join("cache").join(service.to_string())
    }

    /// `$HOME` of a service's builds in an environment, its build cache: tool caches (npm,
    /// pip, cargo's registry and `target/`) survive between its builds and are shared with
    /// nothing else (it belongs to that service and environment's sandbox user).
    pub fn home(&self, service: Uuid, environment: Uuid) -> PathBuf {
        self.cache(service).join(environment.to_string())
    }

    /// `$HOME` of a service's app in an environment: the app's own, not its build cache.
    pub fn app_home(&self, service: Uuid, environment: Uuid) -> PathBuf {
        self.cache(service).join("app").join(environment.to_string())
    }

    /// Language versions installed on demand (Node.js), shared read-only by every build.
    pub fn toolchains(&self) -> PathBuf {
        self.data_dir.join("toolchains")
    }

    /// Where the monitors write app output (one directory per service).
    /// Backups before they are stored and after they are fetched (never kept).
    pub fn backup_spool(&self) -> PathBuf {
        self.data_dir.join("backup-spool")
    }

    pub fn logs(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    /// The app log of a service in an environment.
    pub fn service_log(&self, service: Uuid, environment: Uuid) -> PathBuf {
        self.logs()
            .join(service.to_string())
            .join(format!("{environment}.log"))
    }

    /// The directory of a service's app logs (all its environments).
    pub fn service_logs(&self, service: Uuid) -> PathBuf {
        self.logs().join(service.to_string())
    }
}

/// Closes the data directory to everyone but Railyard: the directory 0700 (0710 with group
/// `passage` when another user must pass through it to its own part: the embedded
/// PostgreSQL's `postgres` user, which lists nothing), each directory in it that Railyard
/// owns 0700 and each file 0600. What tenants own inside (their releases, their homes) is
/// theirs and stays 0700. (The embedded cluster's own directory, `postgres`, keeps its
/// modes: its user passes through it.)
/// The directories of the embedded clusters: Railyard's own and the one of apps' databases.
pub const CLUSTERS: &[&str] = &["postgres", "app-postgres"];

pub fn close(data_dir: &Path, passage: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let me = nix::unistd::geteuid().as_raw();
    let mode = match passage {
        Some(gid) => {
            std::os::unix::fs::chown(data_dir, None, Some(gid))?;
            0o710
        }
        None => 0o700,
    };
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(mode))?;
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        // The embedded cluster's directory keeps the modes PostgreSQL gives it (its owner
        // must pass through it).
        if meta.uid() != me
            || meta.file_type().is_symlink()
            || (passage.is_some() && CLUSTERS.iter().any(|name| entry.file_name() == *name))
        {
            continue;
        }
        let mode = if meta.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn the_data_directory_is_closed_to_other_users() {
        let data = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        let root = data.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).ok();
        std::fs::create_dir(root.join("releases")).ok();
        std::fs::set_permissions(root.join("releases"), std::fs::Permissions::from_mode(0o755)).ok();
        std::fs::write(root.join("master.key"), "k").ok();
        std::fs::set_permissions(root.join("master.key"), std::fs::Permissions::from_mode(0o644)).ok();
        close(root, None).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(mode(root), 0o700);
        assert_eq!(mode(&root.join("releases")), 0o700);
        assert_eq!(mode(&root.join("master.key")), 0o600);
        // With a user that must pass through (the embedded cluster's): group traverse only.
        close(root, Some(nix::unistd::getegid().as_raw())).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(mode(root), 0o710);
    }
}
