//! Memory limits, enforced by the kernel: each instance with a limit runs in its own memory
//! cgroup (`<root>/<instance id>`), which its monitor joins before it starts the app, so the
//! app and everything it forks are counted together and an app past its limit is killed by
//! the kernel's OOM killer (and restarted by its policy) instead of starving its
//! neighbours. `RLIMIT_AS` is no substitute: it caps address space, which runtimes such as
//! Node reserve far beyond what they use.
//!
//! Both hierarchies are handled: cgroup v2 (`memory.max`, `memory.events`) and the v1
//! memory controller (`memory.limit_in_bytes`, `memory.oom_control`). The root is
//! `RAILYARD_CGROUP_ROOT` when set (under systemd, a cgroup delegated to Railyard), else a
//! `railyard` cgroup inside the server's own memory cgroup. Where neither can be written,
//! a service with a limit still runs, and its log says the limit is not enforced.

use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where instance cgroups are made.
#[derive(Debug, Clone)]
pub struct Cgroups {
    root: PathBuf,
    version: Version,
}

impl Cgroups {
    /// Finds (and creates) the root, or says why memory limits cannot be enforced here.
    pub fn detect(configured: Option<&Path>) -> Result<Self, String> {
        let (root, version) = match configured {
            Some(root) => {
                let version = if root.join("memory.limit_in_bytes").exists() {
                    Version::V1
                } else if root.join("cgroup.controllers").exists() {
                    Version::V2
                } else {
                    return Err(format!(
                        "RAILYARD_CGROUP_ROOT ({}) is not a memory cgroup",
                        root.display()
                    ));
                };
                (root.to_owned(), version)
            }
            None => own_cgroup().ok_or_else(|| {
                "this host has no memory cgroup controller Railyard can find (set RAILYARD_CGROUP_ROOT)"
                    .to_owned()
            })?,
        };
        let cgroups = Self { root, version };
        cgroups.prepare_root().map_err(|err| {
            format!(
                "cannot make memory cgroups under {} ({err}); set RAILYARD_CGROUP_ROOT to a cgroup delegated to Railyard",
                cgroups.root.display()
            )
        })?;
        cgroups.sweep();
        Ok(cgroups)
    }

    /// Removes the empty cgroups of instances that ended while no Railyard process watched
    /// them (the kernel refuses to remove one that holds a process, so a live app's stays).
    /// Only those older than a minute: a new one is empty until its monitor joins it.
    fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        let settled = |meta: std::fs::Metadata| {
            meta.modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(60))
        };
        for entry in entries.flatten() {
            let instance = entry.file_name().to_str().and_then(|n| n.parse::<Uuid>().ok());
            if instance.is_some() && entry.metadata().is_ok_and(settled) {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }

    fn prepare_root(&self) -> io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        if self.version == Version::V2 {
            // Children get a `memory.max` only when the parent hands the controller down.
            let controllers = std::fs::read_to_string(self.root.join("cgroup.subtree_control"))?;
            if !controllers.split_whitespace().any(|c| c == "memory") {
                std::fs::write(self.root.join("cgroup.subtree_control"), "+memory")?;
            }
        }
        Ok(())
    }

    /// The cgroup of `instance`.
    pub fn path(&self, instance: Uuid) -> PathBuf {
        self.root.join(instance.to_string())
    }

    /// Creates the cgroup of `instance` (or keeps it, for a restart) with its limit; swap
    /// does not stretch the limit.
    pub fn create(&self, instance: Uuid, limit_mb: u32) -> io::Result<PathBuf> {
        let path = self.path(instance);
        match std::fs::create_dir(&path) {
            Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
            _ => {}
        }
        let bytes = (u64::from(limit_mb) << 20).to_string();
        match self.version {
            Version::V1 => {
                std::fs::write(path.join("memory.limit_in_bytes"), &bytes)?;
                // Present only with swap accounting; memory + swap may not exceed the limit.
                let _ = std::fs::write(path.join("memory.memsw.limit_in_bytes"), &bytes);
            }
            Version::V2 => {
                std::fs::write(path.join("memory.max"), &bytes)?;
                let _ = std::fs::write(path.join("memory.swap.max"), "0");
            }
        }
        Ok(path)
    }

    /// SIGKILL to every process left in the cgroup of `instance`: also those that left the
    /// app's process group (`setsid`).
    pub fn kill_all(&self, instance: Uuid) {
        use nix::{sys::signal::Signal, unistd::Pid};
        let Ok(procs) = std::fs::read_to_string(self.path(instance).join("cgroup.procs")) else {
            return;
        };
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// How many times the kernel killed a process of `instance` for its limit.
    pub fn oom_kills(&self, instance: Uuid) -> u64 {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        std::fs::read_to_string(self.path(instance).join(file))
            .ok()
            .and_then(|text| {
                text.lines()
                    .filter_map(|l| l.split_once(' '))
                    .find(|(key, _)| *key == "oom_kill")
                    .and_then(|(_, n)| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Kills what is left in the cgroup of `instance` and removes it (the kernel refuses
    /// while a process remains; killed processes take a moment to go).
    pub async fn remove(&self, instance: Uuid) {
        let path = self.path(instance);
        for _ in 0..40 {
            self.kill_all(instance);
            match std::fs::remove_dir(&path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => return,
            }
        }
        tracing::warn!(%instance, "its memory cgroup still holds processes; left in place");
    }
}

/// Puts the calling process into the cgroup at `path` (the monitor does, before it starts
/// the app, so the app is born inside).
pub fn join(path: &Path) -> io::Result<()> {
    std::fs::write(path.join("cgroup.procs"), std::process::id().to_string())
}

/// `railyard` inside the memory cgroup this process runs in.
fn own_cgroup() -> Option<(PathBuf, Version)> {
    memory_cgroup_of("self").map(|(dir, version)| (dir.join("railyard"), version))
}

/// The memory cgroup directory process `pid` (or `self`) runs in, from `/proc/<pid>/cgroup`.
pub fn memory_cgroup_of(pid: &str) -> Option<(PathBuf, Version)> {
    let table = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    // v1: `4:memory:/path` under `/sys/fs/cgroup/memory`.
    let v1 = table.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.to_owned())
    });
    let base = Path::new("/sys/fs/cgroup");
    if let Some(path) = v1 {
        let dir = base.join("memory").join(path.trim_start_matches('/'));
        return dir
            .join("memory.limit_in_bytes")
            .exists()
            .then_some((dir, Version::V1));
    }
    // v2: `0::/path` under the unified mount.
    let path = table.lines().find_map(|line| line.strip_prefix("0::"))?;
    let dir = base.join(path.trim_start_matches('/'));
    std::fs::read_to_string(base.join("cgroup.controllers"))
        .ok()?
        .split_whitespace()
        .any(|c| c == "memory")
        .then_some((dir, Version::V2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_oom_kill_counter_of_either_hierarchy() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let instance = Uuid::new_v4();
        std::fs::create_dir(dir.path().join(instance.to_string())).expect("its cgroup");
        for (version, file, text) in [
            (
                Version::V1,
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
            (
                Version::V2,
                "memory.events",
                "low 0\nhigh 0\nmax 7\noom 3\noom_kill 3\n",
            ),
        ] {
            let cgroups = Cgroups {
                root: dir.path().to_owned(),
                version,
            };
            assert_eq!(cgroups.oom_kills(instance), 0, "no file yet: none");
            std::fs::write(cgroups.path(instance).join(file), text).expect("the counter");
            assert_eq!(cgroups.oom_kills(instance), 3, "{version:?}");
            // `oom_kill_disable` and `oom` are other counters, not this one.
            std::fs::remove_file(cgroups.path(instance).join(file)).expect("removed");
        }
    }
}
