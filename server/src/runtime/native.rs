//! The native driver: each release runs as an OS process in its own process group and
//! session-less group leader, stdout/stderr appended to a log file, exits noticed at once
//! through the child's wait. Restart policy: exponential backoff from 100 ms doubling to
//! 30 s, reset after 30 s of stable uptime; after 10 consecutive fast failures the instance
//! is `crashed` and stays down until the next deploy or a manual restart.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::{process::Child, sync::watch};
use uuid::Uuid;

use super::{Launch, RestartPolicy, Runtime, Started, start_ticks};
use crate::{db::DbPool, pipeline::build, schema::instances};

/// Uptime after which an exit no longer counts as a fast failure (and backoff resets).
const STABLE: Duration = Duration::from_secs(30);
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(30);
/// Consecutive fast failures before an instance is `crashed`.
pub const CRASH_LIMIT: u32 = 10;

/// The delay before restart number `failures` (1-based) of a run of fast failures.
pub fn backoff(failures: u32) -> Duration {
    scaled_backoff(failures, FIRST_DELAY, MAX_DELAY)
}

fn scaled_backoff(failures: u32, first: Duration, max: Duration) -> Duration {
    first
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)))
        .min(max)
}

struct Control {
    stop: watch::Sender<bool>,
    supervised: std::sync::atomic::AtomicBool,
    /// The current process group (the process's pid).
    group: std::sync::atomic::AtomicI32,
    /// True once the supervision loop has ended (the last process exited).
    done: watch::Sender<bool>,
}

pub struct NativeRuntime {
    db: DbPool,
    running: Mutex<HashMap<Uuid, Arc<Control>>>,
    /// The backoff's first and largest delay (100 ms and 30 s; tests shrink them).
    delays: (Duration, Duration),
}

impl NativeRuntime {
    pub fn new(db: DbPool) -> Self {
        Self {
            db,
            running: Mutex::new(HashMap::new()),
            delays: (FIRST_DELAY, MAX_DELAY),
        }
    }

    /// The same policy on a shorter clock (for tests of the crash limit).
    pub fn with_backoff(self, first: Duration, max: Duration) -> Self {
        Self {
            delays: (first, max),
            ..self
        }
    }

    fn control(&self, instance: Uuid) -> Option<Arc<Control>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&instance)
            .cloned()
    }
}

fn spawn(launch: &Launch) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log)?;
    let mut cmd = build::command(&launch.start, &launch.dir).map_err(anyhow::Error::msg)?;
    cmd.current_dir(&launch.dir)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .env("PORT", launch.port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own group, so stopping reaches what it started; not killed when this server
        // stops: apps outlive a control-plane restart.
        .process_group(0)
        .kill_on_drop(false);
    Ok(cmd.spawn()?)
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

#[async_trait::async_trait]
impl Runtime for NativeRuntime {
    async fn start(&self, launch: Launch) -> anyhow::Result<Started> {
        let mut child = spawn(&launch)?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| anyhow::anyhow!("the process exited at once"))?;
        let ticks = start_ticks(pid);
        let (exited_tx, exited) = watch::channel(None);
        let control = Arc::new(Control {
            stop: watch::channel(false).0,
            supervised: std::sync::atomic::AtomicBool::new(false),
            group: std::sync::atomic::AtomicI32::new(pid),
            done: watch::channel(false).0,
        });
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(launch.instance, control.clone());
        let db = self.db.clone();
        let (first_delay, max_delay) = self.delays;
        tokio::spawn(async move {
            let mut started = Instant::now();
            let mut failures = 0u32;
            let mut first = Some(exited_tx);
            loop {
                let code = match child.wait().await {
                    Ok(status) => exit_code(status),
                    Err(_) => -1,
                };
                if let Some(tx) = first.take() {
                    let _ = tx.send_replace(Some(code));
                }
                let stopping = *control.stop.borrow();
                let supervised = std::sync::atomic::AtomicBool::load(
                    &control.supervised,
                    std::sync::atomic::Ordering::Acquire,
                );
                let restart = supervised
                    && !stopping
                    && match launch.restart {
                        RestartPolicy::Always => true,
                        RestartPolicy::OnFailure => code != 0,
                        RestartPolicy::Never => false,
                    };
                if started.elapsed() >= STABLE {
                    failures = 0;
                }
                failures += 1;
                let crashed = restart && failures >= CRASH_LIMIT;
                let state = if crashed {
                    "crashed"
                } else if restart {
                    "running"
                } else {
                    "stopped"
                };
                if let Ok(mut conn) = db.get().await {
                    let _ = diesel::update(instances::table.find(launch.instance))
                        .set((
                            instances::last_exit_code.eq(code),
                            instances::state.eq(state),
                            instances::updated_at.eq(Utc::now()),
                        ))
                        .execute(&mut conn)
                        .await;
                }
                if !restart || crashed {
                    if crashed {
                        tracing::warn!(instance = %launch.instance, "crashed: {CRASH_LIMIT} fast failures in a row; not restarting");
                    }
                    break;
                }
                let delay = scaled_backoff(failures, first_delay, max_delay);
                let mut stop = control.stop.subscribe();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                match spawn(&launch) {
                    Ok(next) => {
                        child = next;
                        started = Instant::now();
                        let pid = child.id().and_then(|id| i32::try_from(id).ok()).unwrap_or(0);
                        control.group.store(pid, std::sync::atomic::Ordering::Release);
                        if let Ok(mut conn) = db.get().await {
                            let _ = diesel::update(instances::table.find(launch.instance))
                                .set((
                                    instances::pid.eq(pid),
                                    instances::start_ticks.eq(start_ticks(pid)),
                                    instances::restarts.eq(instances::restarts + 1),
                                    instances::state.eq("running"),
                                    instances::started_at.eq(Utc::now()),
                                    instances::updated_at.eq(Utc::now()),
                                ))
                                .execute(&mut conn)
                                .await;
                        }
                    }
                    Err(err) => {
                        tracing::error!(instance = %launch.instance, error = %err, "restart failed");
                        break;
                    }
                }
            }
            let _ = control.done.send_replace(true);
        });
        Ok(Started {
            pid,
            start_ticks: ticks,
            exited,
        })
    }

    fn supervise(&self, instance: Uuid) {
        if let Some(control) = self.control(instance) {
            control
                .supervised
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    async fn stop(&self, instance: Uuid, grace: Duration) -> anyhow::Result<()> {
        let Some(control) = self.control(instance) else {
            return self.stop_by_pid(instance, grace).await;
        };
        let _ = control.stop.send_replace(true);
        let mut done = control.done.subscribe();
        let group = || {
            Pid::from_raw(std::sync::atomic::AtomicI32::load(
                &control.group,
                std::sync::atomic::Ordering::Acquire,
            ))
        };
        let _ = killpg(group(), Signal::SIGTERM);
        let exited = tokio::time::timeout(grace, done.wait_for(|d| *d)).await.is_ok();
        if !exited {
            tracing::info!(%instance, "did not stop within the grace period; SIGKILL");
        }
        // Whatever is left of the group goes too (children that ignored SIGTERM).
        let _ = killpg(group(), Signal::SIGKILL);
        let _ = done.wait_for(|d| *d).await;
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&instance);
        Ok(())
    }
}

impl NativeRuntime {
    /// Stops a process this server did not start (a previous server's, before it was
    /// restarted): by its recorded pid, if that pid is still the same process.
    async fn stop_by_pid(&self, instance: Uuid, grace: Duration) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let (pid, ticks): (Option<i32>, Option<i64>) = instances::table
            .find(instance)
            .select((instances::pid, instances::start_ticks))
            .first(&mut conn)
            .await?;
        drop(conn);
        let Some(pid) = pid else { return Ok(()) };
        let same = |pid: i32| ticks.is_some() && start_ticks(pid) == ticks;
        if !same(pid) {
            return Ok(());
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while same(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_to_30s() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(9), Duration::from_millis(25_600));
        assert_eq!(backoff(10), Duration::from_secs(30));
        assert_eq!(backoff(50), Duration::from_secs(30));
    }
}
