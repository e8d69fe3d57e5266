//! Who tenant code runs as and what it may reach: the [`Jail`] one build step or app
//! process is started in, and the [`Sandbox`] policy that makes jails (or refuses to run
//! tenant code when this host cannot isolate it).
//!
//! A jail is an unprivileged user of the service's own in one environment (uid
//! `RAILYARD_SANDBOX_UID_BASE` + its number, no supplementary groups, no capabilities,
//! `no_new_privs`), in a mount namespace of its own where the data directory, `/run` and
//! the temporary directories are empty and only its own directories (release, home) are
//! put back, in a PID namespace of its own (a private `/proc`: no other process is
//! visible), under a Landlock ruleset that allows reading the system's directories and
//! writing its own, and nothing else. [`super::enter`] is the side that builds it.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// What one jail is: serialised onto the command line of `railyard-server sandbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jail {
    pub uid: u32,
    pub gid: u32,
    /// Directories the tenant must not see (each is covered by an empty, read-only tmpfs):
    /// the data directory.
    pub hide: Vec<PathBuf>,
    /// Its own directories, read-write, at the same paths as outside (a build and the app
    /// it becomes see the same absolute paths): the release, its home.
    pub writable: Vec<PathBuf>,
    /// Directories beyond the system's that it may read and run programs from
    /// (`RAILYARD_SANDBOX_READ_PATHS`, e.g. a toolchain under `/opt`).
    pub readable: Vec<PathBuf>,
}

/// Whether tenant code is isolated here, as the operator asked and the host allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// Every build and app runs in a jail. `landlock` says whether the kernel enforces the
    /// Landlock ruleset too (fully, partly, or not at all on a kernel without it).
    On { landlock: String },
    /// `RAILYARD_ISOLATION=off`: builds and apps run as Railyard's own user, unconfined.
    Off,
    /// Isolation was asked for (the default) but this host cannot give it: tenant code is
    /// refused, with this reason.
    Unavailable(String),
}

impl Isolation {
    /// `on`, `off` or `unavailable`: what the API shows.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::On { .. } => "on",
            Self::Off => "off",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// One sentence for people: what runs how.
    pub fn describe(&self) -> String {
        match self {
            Self::On { landlock } => format!(
                "Builds and apps run as users of their own, in private mount and PID namespaces, without capabilities; Landlock: {landlock}."
            ),
            Self::Off => "Isolation is off (RAILYARD_ISOLATION=off): builds and apps run as Railyard's own user and can read its secrets.".to_owned(),
            Self::Unavailable(why) => format!(
                "This host cannot isolate tenant code ({why}), so Railyard runs no builds or apps; an operator can set RAILYARD_ISOLATION=off to run them unisolated."
            ),
        }
    }
}

/// The operator's choice (`RAILYARD_ISOLATION`, `RAILYARD_SANDBOX_UID_BASE`,
/// `RAILYARD_SANDBOX_READ_PATHS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// False with `RAILYARD_ISOLATION=off`.
    pub isolate: bool,
    /// The first uid of tenants (each service and environment gets base + its number).
    pub uid_base: u32,
    pub readable: Vec<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            isolate: true,
            uid_base: 400_000,
            readable: Vec::new(),
        }
    }
}

/// Why tenant code was not started.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Refused(pub String);

/// The policy builds and apps are started under (one per process, probed at start).
#[derive(Debug, Clone)]
pub struct Sandbox {
    isolation: Isolation,
    config: SandboxConfig,
    data_dir: PathBuf,
}

impl Sandbox {
    /// Probes the host (when isolation is asked for; once per process, as the host does
    /// not change) and says what it found in the log.
    pub async fn detect(config: SandboxConfig, data_dir: &Path) -> Self {
        static PROBED: tokio::sync::OnceCell<Isolation> = tokio::sync::OnceCell::const_new();
        let isolation = if config.isolate {
            PROBED.get_or_init(|| probe(data_dir)).await.clone()
        } else {
            Isolation::Off
        };
        match &isolation {
            Isolation::On { .. } => tracing::info!("{}", isolation.describe()),
            Isolation::Off => tracing::warn!("{}", isolation.describe()),
            Isolation::Unavailable(_) => tracing::error!("{}", isolation.describe()),
        }
        Self {
            isolation,
            config,
            data_dir: data_dir.to_owned(),
        }
    }

    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// The uid (and gid) of sandbox user `number`.
    pub fn uid(&self, number: u32) -> u32 {
        self.config.uid_base.saturating_add(number)
    }

    /// The jail of sandbox user `number` with its own directories `writable` and the
    /// toolchains it reads (`toolchains`: its plan's, beside the host's and the operator's);
    /// `None` when isolation is off, refused when it is required and unavailable.
    pub fn jail(
        &self,
        number: u32,
        writable: Vec<PathBuf>,
        toolchains: Vec<PathBuf>,
    ) -> Result<Option<Jail>, Refused> {
        match &self.isolation {
            Isolation::Off => Ok(None),
            Isolation::Unavailable(_) => Err(Refused(self.isolation.describe())),
            Isolation::On { .. } => {
                let uid = self.uid(number);
                Ok(Some(Jail {
                    uid,
                    gid: uid,
                    hide: vec![self.data_dir.clone()],
                    writable,
                    readable: self
                        .config
                        .readable
                        .iter()
                        .cloned()
                        .chain(super::host_toolchains())
                        .chain(toolchains)
                        .collect(),
                }))
            }
        }
    }
}

/// Whether a jail can be made here: as root, a throwaway jail runs `sh -c 'exit 0'`
/// through the whole path (namespaces, mounts, Landlock, the switch of user).
async fn probe(data_dir: &Path) -> Isolation {
    if !nix::unistd::geteuid().is_root() {
        return Isolation::Unavailable(
            "Railyard does not run as root, so it cannot start processes as other users".into(),
        );
    }
    let program = match super::helper_program() {
        Ok(program) => program,
        Err(err) => return Isolation::Unavailable(format!("{err:#}")),
    };
    let home = data_dir.join("sandbox-probe");
    if let Err(err) = std::fs::create_dir_all(&home) {
        return Isolation::Unavailable(format!("cannot make {}: {err}", home.display()));
    }
    // `nobody`: the probe writes nothing.
    let jail = Jail {
        uid: 65_534,
        gid: 65_534,
        hide: vec![data_dir.to_owned()],
        writable: vec![home.clone()],
        readable: Vec::new(),
    };
    let Ok(spec) = serde_json::to_string(&jail) else {
        return Isolation::Unavailable("cannot describe the probe's jail".into());
    };
    let run = tokio::process::Command::new(program)
        .args(["sandbox", "--report", "--jail", &spec, "--", "sh", "-c", "exit 0"])
        .current_dir(&home)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(10), run).await;
    let _ = std::fs::remove_dir_all(&home);
    match output {
        Ok(Ok(output)) if output.status.success() => Isolation::On {
            landlock: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        },
        Ok(Ok(output)) => Isolation::Unavailable(
            String::from_utf8_lossy(&output.stderr)
                .trim()
                .trim_start_matches("railyard-server sandbox: ")
                .to_owned(),
        ),
        Ok(Err(err)) => Isolation::Unavailable(format!("cannot run the sandbox helper: {err}")),
        Err(_) => Isolation::Unavailable("the sandbox helper did not finish within 10 s".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(isolation: Isolation) -> Sandbox {
        Sandbox {
            isolation,
            config: SandboxConfig {
                readable: vec!["/opt/tools".into()],
                ..SandboxConfig::default()
            },
            data_dir: "/srv/railyard".into(),
        }
    }

    #[test]
    fn each_number_is_a_jail_of_its_own_that_hides_the_data_directory() {
        let on = sandbox(Isolation::On {
            landlock: "fully enforced".into(),
        });
        let jail = on
            .jail(
                7,
                vec!["/srv/railyard/releases/a".into()],
                vec!["/srv/railyard/toolchains/node/22.1.0".into()],
            )
            .unwrap()
            .unwrap();
        assert_eq!((jail.uid, jail.gid), (400_007, 400_007));
        assert_eq!(jail.hide, [PathBuf::from("/srv/railyard")]);
        assert_eq!(jail.writable, [PathBuf::from("/srv/railyard/releases/a")]);
        assert_eq!(jail.readable.first(), Some(&PathBuf::from("/opt/tools")));
        assert_eq!(
            jail.readable.last(),
            Some(&PathBuf::from("/srv/railyard/toolchains/node/22.1.0"))
        );
        assert_ne!(on.jail(8, Vec::new(), Vec::new()).unwrap().unwrap().uid, jail.uid);
    }

    #[test]
    fn without_isolation_tenant_code_is_refused_unless_the_operator_turned_it_off() {
        let unavailable = sandbox(Isolation::Unavailable("Railyard does not run as root".into()));
        let refused = unavailable
            .jail(1, Vec::new(), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(refused.contains("does not run as root"), "{refused}");
        assert!(refused.contains("RAILYARD_ISOLATION=off"), "{refused}");
        assert_eq!(sandbox(Isolation::Off).jail(1, Vec::new(), Vec::new()), Ok(None));
        assert_eq!(Isolation::Off.mode(), "off");
    }
}
