//! One supervised instance of the native driver: the loop that waits for its process to
//! exit and applies the restart policy, and the health watch that keeps checking it after
//! go-live. A process is either this server's child (its exit status comes from `wait`) or
//! adopted from a previous server (a pidfd becomes readable when it exits; the status is
//! not ours to read).

use std::{
    os::fd::OwnedFd,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI32, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use railyard_shared::InstanceState;
use tokio::{io::unix::AsyncFd, process::Child, sync::watch};

use super::{Launch, cgroup::Cgroups, health, start_ticks};
use crate::{db::DbPool, sandbox, schema::instances};

/// Uptime after which an exit no longer counts as a fast failure (and backoff resets).
const STABLE: Duration = Duration::from_secs(30);
/// Consecutive fast failures before an instance is `crashed`.
pub const CRASH_LIMIT: u32 = 10;

/// The delay before restart number `failures` (1-based) of a run of fast failures:
/// `first`, doubling, at most `max`.
pub fn scaled_backoff(failures: u32, first: Duration, max: Duration) -> Duration {
    first
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)))
        .min(max)
}

/// What the driver and the supervision loop share about one instance.
pub(super) struct Control {
    pub stop: watch::Sender<bool>,
    pub supervised: AtomicBool,
    /// The current process group (the process's pid).
    pub group: AtomicI32,
    /// True once the supervision loop has ended (the last process exited).
    pub done: watch::Sender<bool>,
    /// Restart after the next exit whatever the policy (the health watch killed it).
    pub force_restart: AtomicBool,
}

impl Control {
    pub fn new(pid: i32, supervised: bool) -> Arc<Self> {
        Arc::new(Self {
            stop: watch::channel(false).0,
            supervised: AtomicBool::new(supervised),
            group: AtomicI32::new(pid),
            done: watch::channel(false).0,
            force_restart: AtomicBool::new(false),
        })
    }

    pub fn group(&self) -> Pid {
        Pid::from_raw(AtomicI32::load(&self.group, Ordering::Acquire))
    }
}

/// A running process of an instance.
pub(super) enum Proc {
    Child(Child),
    Adopted(AsyncFd<OwnedFd>),
}

impl Proc {
    /// Watches a process a previous server started, if `pid` is still that process.
    pub fn adopt(pid: i32, ticks: i64) -> Option<Self> {
        let target = rustix::process::Pid::from_raw(pid)?;
        let fd = rustix::process::pidfd_open(target, rustix::process::PidfdFlags::NONBLOCK).ok()?;
        // Checked after the pidfd is open: the fd now pins this very process, so a pid
        // reused in between cannot be mistaken for it.
        if start_ticks(pid) != Some(ticks) || zombie(pid) {
            return None;
        }
        // `register` is the unsafe form; `new` is sound here: the AsyncFd owns the OwnedFd, so
        // nothing else can close or reuse the descriptor while it is registered.
        #[allow(deprecated)]
        AsyncFd::new(fd).ok().map(Self::Adopted)
    }

    /// Waits for the exit; the exit code when it is known (signals as 128 + n).
    async fn wait(&mut self) -> Option<i32> {
        match self {
            Self::Child(child) => child.wait().await.ok().map(exit_code),
            Self::Adopted(fd) => {
                let _ = fd.readable().await;
                None
            }
        }
    }
}

fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rfind(')')
                .map(|i| stat[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Starts the launch's command under a monitor (`railyard-server monitor`, see
/// [`super::monitor`]): its own process group, output masked and appended to the log file
/// by the monitor, so the app never depends on this server's pipes and outlives its
/// restart.
pub(super) fn spawn(launch: &Launch, cgroups: Option<&Cgroups>) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log)?;
    let argv = sandbox::argv(&launch.start, &launch.dir)
        .and_then(|argv| sandbox::jailed(argv, launch.jail.as_ref()))
        .map_err(anyhow::Error::msg)?;
    let mut cmd = tokio::process::Command::new(sandbox::helper_program()?);
    cmd.arg("monitor").arg("--dir").arg(&launch.dir);
    if let Some(deployment) = launch.deployment {
        cmd.arg("--deployment").arg(deployment.to_string());
    }
    if let Some(cgroups) = cgroups {
        cmd.arg("--cgroup").arg(cgroups.path(launch.instance));
    }
    cmd.arg(&launch.log)
        .arg("--")
        .args(&argv)
        // The monitor itself holds no directory of the release.
        .current_dir("/")
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .env("PORT", launch.port.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn()?;
    // The secrets go through a pipe: never in argv, and read once.
    let input = serde_json::to_vec(&super::monitor::MonitorInput {
        secrets: launch.secrets.clone(),
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            if let Err(err) = stdin.write_all(&input).await {
                tracing::warn!(error = %err, "could not hand the secrets to an app's monitor");
            }
        });
    }
    Ok(child)
}

pub(super) fn child_pid(child: &Child) -> Option<i32> {
    child.id().and_then(|id| i32::try_from(id).ok())
}

pub(super) struct Supervisor {
    pub db: DbPool,
    pub launch: Launch,
    pub control: Arc<Control>,
    /// The backoff's first and largest delay.
    pub delays: (Duration, Duration),
    /// The instance runs in its memory cgroup (made) here.
    pub cgroups: Option<Cgroups>,
}

impl Supervisor {
    /// Waits for exits and restarts by policy until stopped, given up, or crashed.
    /// `first_exit` hears the first process's exit code (-1 when unknown).
    pub async fn run(self, mut proc: Proc, first_exit: Option<watch::Sender<Option<i32>>>) {
        let Self {
            db,
            launch,
            control,
            delays,
            cgroups,
        } = self;
        let oom_kills = || cgroups.as_ref().map_or(0, |c| c.oom_kills(launch.instance));
        let mut oom_before = oom_kills();
        let mut first_exit = first_exit;
        let mut started = Instant::now();
        let mut failures = 0u32;
        loop {
            let code = proc.wait().await;
            // What the process left behind in its group goes with it (a shell's children,
            // a forked worker): otherwise it could keep the port and outlive a restart.
            let _ = killpg(control.group(), Signal::SIGKILL);
            if let Some(cgroups) = &cgroups {
                cgroups.kill_all(launch.instance);
            }
            let out_of_memory = oom_kills() > oom_before;
            if let Some(tx) = first_exit.take() {
                let _ = tx.send_replace(Some(code.unwrap_or(-1)));
            }
            let stopping = *control.stop.borrow();
            let forced = control.force_restart.swap(false, Ordering::AcqRel);
            let restart = AtomicBool::load(&control.supervised, Ordering::Acquire)
                && !stopping
                && (forced || launch.restart.restarts(code));
            if started.elapsed() >= STABLE {
                failures = 0;
            }
            failures += 1;
            let crashed = restart && failures >= CRASH_LIMIT;
            let state = if crashed {
                InstanceState::Crashed
            } else if restart {
                InstanceState::Running
            } else {
                InstanceState::Stopped
            };
            record_exit(&db, launch.instance, code, state).await;
            let exit = exit_message(code, out_of_memory.then_some(launch.memory_limit_mb));
            if !restart || crashed {
                if crashed {
                    tracing::warn!(instance = %launch.instance, "crashed: {CRASH_LIMIT} fast failures in a row; not restarting");
                    event(
                        &launch,
                        &format!(
                            "{exit}. Crashed: {CRASH_LIMIT} fast failures in a row, so it is not restarted; deploy or restart to try again."
                        ),
                    );
                } else if !stopping {
                    event(
                        &launch,
                        &format!("{exit}. The restart policy does not restart it."),
                    );
                }
                break;
            }
            let delay = scaled_backoff(failures, delays.0, delays.1);
            let why = if forced {
                " (killed after failing health checks)"
            } else {
                ""
            };
            event(
                &launch,
                &format!("{exit}{why}. Restarting in {} ms.", delay.as_millis()),
            );
            let mut stop = control.stop.subscribe();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            // Made again if it went meanwhile (an empty cgroup may be swept).
            if let (Some(cgroups), Some(mb)) = (&cgroups, launch.memory_limit_mb)
                && let Err(err) = cgroups.create(launch.instance, mb)
            {
                tracing::warn!(instance = %launch.instance, error = %err, "cannot remake its memory cgroup");
            }
            oom_before = oom_kills();
            let child = match spawn(&launch, cgroups.as_ref()) {
                Ok(child) => child,
                Err(err) => {
                    tracing::error!(instance = %launch.instance, error = %err, "restart failed");
                    break;
                }
            };
            started = Instant::now();
            let pid = child_pid(&child).unwrap_or(0);
            proc = Proc::Child(child);
            control.group.store(pid, Ordering::Release);
            record_restart(&db, launch.instance, pid).await;
        }
        let _ = control.done.send_replace(true);
        if let Some(cgroups) = &cgroups {
            cgroups.remove(launch.instance).await;
        }
    }
}

/// "The process exited with code 1", and why when the kernel killed it for memory
/// (`out_of_memory`: its limit, if it had one).
fn exit_message(code: Option<i32>, out_of_memory: Option<Option<u32>>) -> String {
    let mut exit = code.map_or_else(
        || "The process exited".to_owned(),
        |c| format!("The process exited with code {c}"),
    );
    if let Some(limit) = out_of_memory {
        let limit = limit.map_or_else(String::new, |mb| format!(" of {mb} MB"));
        exit.push_str(&format!(
            ": out of memory (it reached its memory limit{limit}, and the kernel killed it)"
        ));
    }
    exit
}

/// Stores how the instance's process ended and what it is now.
async fn record_exit(db: &DbPool, instance: uuid::Uuid, code: Option<i32>, state: InstanceState) {
    if let Ok(mut conn) = db.get().await {
        let _ = diesel::update(instances::table.find(instance))
            .set((
                instances::last_exit_code.eq(code),
                instances::state.eq(state.as_str()),
                instances::updated_at.eq(Utc::now()),
            ))
            .execute(&mut conn)
            .await;
    }
}

/// Stores the restarted process (`pid`) of the instance.
async fn record_restart(db: &DbPool, instance: uuid::Uuid, pid: i32) {
    if let Ok(mut conn) = db.get().await {
        let _ = diesel::update(instances::table.find(instance))
            .set((
                instances::pid.eq(pid),
                instances::start_ticks.eq(start_ticks(pid)),
                instances::restarts.eq(instances::restarts + 1),
                instances::state.eq(InstanceState::Running.as_str()),
                instances::started_at.eq(Utc::now()),
                instances::updated_at.eq(Utc::now()),
            ))
            .execute(&mut conn)
            .await;
    }
}

/// A line of Railyard's own in the service's log (stream `event`).
fn event(launch: &Launch, text: &str) {
    crate::logs::ship::append_event(&launch.log, launch.deployment, text);
}

/// How live instances keep being checked (`RAILYARD_HEALTH_INTERVAL_SECS`,
/// `RAILYARD_HEALTH_FAILURES`).
#[derive(Debug, Clone, Copy)]
pub struct HealthWatch {
    pub every: Duration,
    /// Consecutive failed checks of one process before it is restarted.
    pub failures: u32,
}

/// Checks a live instance every `watch.every`; after `watch.failures` failed checks in a
/// row of the same process, kills its group so the supervisor starts it again.
pub(super) async fn watch_health(control: Arc<Control>, launch: Launch, watch: HealthWatch) {
    let Ok(client) = health::client() else { return };
    let mut stop = control.stop.subscribe();
    let mut done = control.done.subscribe();
    let mut failures = 0u32;
    let mut checked = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(watch.every) => {}
            _ = stop.wait_for(|s| *s) => return,
            _ = done.wait_for(|d| *d) => return,
        }
        let group = control.group();
        // Failures count against one process: a restarted one starts afresh, and one that
        // already exited is the supervisor's business.
        if checked != Some(group) {
            failures = 0;
            checked = Some(group);
        }
        if start_ticks(group.as_raw()).is_none() {
            continue;
        }
        match health::probe(&client, launch.port, launch.health_check.as_deref(), false).await {
            Ok(()) => failures = 0,
            Err(why) => {
                failures += 1;
                tracing::info!(instance = %launch.instance, failures, "health check failed: {why}");
                if failures >= watch.failures {
                    tracing::warn!(instance = %launch.instance, "{failures} failed health checks in a row; restarting");
                    event(
                        &launch,
                        &format!(
                            "Health check failed {failures} times in a row ({why}); restarting the process."
                        ),
                    );
                    control.force_restart.store(true, Ordering::Release);
                    let _ = killpg(group, Signal::SIGKILL);
                    failures = 0;
                }
            }
        }
    }
}
