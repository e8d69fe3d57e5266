//! Where things live under the data directory. Every path of a release, a pushed
//! repository, an upload, a build cache or an app's log file is made here, so the pipeline,
//! the runtime and the routes agree on them and deleting a service can find them all.

use std::path::PathBuf;

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

    /// `$HOME` of a service's builds: tool caches (npm, pip) survive between its builds
    /// and are shared with no other service.
    pub fn cache(&self, service: Uuid) -> PathBuf {
        self.data_dir.join("cache").join(service.to_string())
    }

    /// Where the monitors write app output (one directory per service).
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
