//! Running releases: the [`Runtime`] trait (what a process driver must do), the native
//! driver ([`native`], OS processes supervised by this server), health checks
//! ([`health`]) and the health-gated switch from one release to the next ([`release`]).
//! A PM2 driver or a multi-host scheduler would be another `Runtime`.

pub mod cgroup;
pub mod health;
pub mod monitor;
pub mod native;
pub mod releaser;
mod supervise;

use std::{ffi::OsString, path::PathBuf, sync::Arc, time::Duration};

use railyard_shared::deployments::Step;
use tokio::sync::watch;
use uuid::Uuid;

use crate::{config::Config, layout::Layout, logbus::LogBus, logs, variables::source::VariableSource};
use releaser::Releaser;

/// What to do when a running app exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart after a non-zero exit (the default).
    OnFailure,
    Always,
    Never,
}

impl RestartPolicy {
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("always") => Self::Always,
            Some("never") => Self::Never,
            _ => Self::OnFailure,
        }
    }

    /// Whether a process that exited with `code` (`None`: unknown, as for an adopted one)
    /// is started again.
    pub fn restarts(self, code: Option<i32>) -> bool {
        match self {
            Self::Always => true,
            // An adopted process's status is unknown: it is gone, so bring it back.
            Self::OnFailure => code != Some(0),
            Self::Never => false,
        }
    }
}

/// One process to start.
#[derive(Debug, Clone)]
pub struct Launch {
    pub instance: Uuid,
    /// The working directory (absolute).
    pub dir: PathBuf,
    pub start: Step,
    /// The whole environment (scrubbed), without `PORT`.
    pub env: Vec<(OsString, OsString)>,
    pub port: u16,
    /// stdout and stderr are appended here (a file, so the app never depends on this
    /// server's pipes and survives its restart).
    pub log: PathBuf,
    pub restart: RestartPolicy,
    /// The deployment whose release this is (tagged on every log line).
    pub deployment: Option<Uuid>,
    /// Values masked in what the app prints (its sealed variables).
    pub secrets: Vec<String>,
    /// Checked after go-live too, when the driver watches health (`None`: TCP on `port`).
    pub health_check: Option<String>,
    /// The most memory the app (with all it forks) may use, in MiB.
    pub memory_limit_mb: Option<u32>,
    /// The jail it runs in (`None`: isolation is off).
    pub jail: Option<crate::sandbox::Jail>,
}

/// A started process.
#[derive(Debug)]
pub struct Started {
    pub pid: i32,
    /// Its start time in clock ticks since boot (with the pid, identifies the process).
    pub start_ticks: Option<i64>,
    /// The exit code of the first process, once it exits (signals as 128 + n).
    pub exited: watch::Receiver<Option<i32>>,
}

#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    async fn start(&self, launch: Launch) -> anyhow::Result<Started>;
    /// Takes over a process a previous server started (recorded pid and start time) and
    /// supervises it; false when that process is gone (nothing is started).
    async fn adopt(&self, launch: Launch, pid: i32, start_ticks: i64) -> bool;
    /// The release is live: from now on exits are handled by its restart policy.
    fn supervise(&self, instance: Uuid);
    /// SIGTERM to the process group, `grace`, then SIGKILL. Waits until it has exited.
    async fn stop(&self, instance: Uuid, grace: Duration) -> anyhow::Result<()>;
    /// Stops an instance whose row is gone (its service was deleted): as [`Runtime::stop`]
    /// when this runtime supervises it, else by the recorded pid, if that pid still has the
    /// recorded start time.
    async fn stop_recorded(
        &self,
        instance: Uuid,
        recorded: Option<(i32, i64)>,
        grace: Duration,
    ) -> anyhow::Result<()>;
}

/// The native runtime and its releaser, after re-adopting what a previous server left
/// running; with the app-log rotation and shipping running.
pub async fn start(
    db: &crate::db::DbPool,
    config: &Config,
    variables: VariableSource,
    bus: LogBus,
    sandbox: Arc<crate::sandbox::Sandbox>,
) -> anyhow::Result<(Arc<native::NativeRuntime>, Arc<Releaser>)> {
    let watch = config.runtime.health_every.map(|every| native::HealthWatch {
        every,
        failures: config.runtime.health_failures,
    });
    let cgroups = cgroup::Cgroups::detect(config.runtime.cgroup_root.as_deref());
    if let Err(why) = &cgroups {
        tracing::warn!("memory limits are not enforced: {why}");
    }
    let runtime = Arc::new(
        native::NativeRuntime::new(db.clone())
            .with_health_watch(watch)
            .with_cgroups(cgroups),
    );
    let layout = Layout::new(&config.data_dir);
    let releaser = Arc::new(Releaser::new(
        db.clone(),
        runtime.clone(),
        config.runtime.clone(),
        layout.clone(),
        variables,
        bus.clone(),
        sandbox,
    ));
    logs::rotate::spawn_rotation(layout.logs(), config.runtime.log_max_bytes);
    logs::ship::spawn(db.clone(), bus, layout.logs(), config.runtime.log_retention);
    let recovered = releaser.recover().await?;
    if recovered != releaser::Recovered::default() {
        tracing::info!(?recovered, "took over the apps a previous Railyard process left");
    }
    Ok((runtime, releaser))
}

/// Field `field` (numbered as in proc(5), 3 or later) of `/proc/<pid>/stat`.
fn stat_field<T: std::str::FromStr>(pid: i32, field: usize) -> Option<T> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(field.checked_sub(3)?)?.parse().ok()
}

/// The start time of `pid` in clock ticks since boot (`/proc/<pid>/stat`, field 22).
pub fn start_ticks(pid: i32) -> Option<i64> {
    stat_field(pid, 22)
}

/// Resident memory of the app that process group `leader` runs, in bytes: the sum of
/// `VmRSS` over the group's processes but Railyard's own (the leader, the app's monitor,
/// and the sandbox helpers below it: processes of the leader's program).
/// `None` unless `leader` is still the process that started at `start_ticks`, so a pid the
/// kernel gave to another process since (or one on another host) is never read as the app.
pub fn app_memory_bytes(leader: i32, start_ticks: i64) -> Option<i64> {
    if self::start_ticks(leader) != Some(start_ticks) {
        return None;
    }
    let ours = std::fs::read_link(format!("/proc/{leader}/exe")).ok();
    let mut kib = 0_i64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // The process group is field 5.
        if pid == leader || stat_field::<i32>(pid, 5) != Some(leader) {
            continue;
        }
        if ours.is_some() && std::fs::read_link(entry.path().join("exe")).ok() == ours {
            continue;
        }
        kib += std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
                line.split_whitespace().nth(1)?.parse::<i64>().ok()
            })
            .unwrap_or(0);
    }
    Some(kib * 1024)
}
