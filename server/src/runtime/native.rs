//! The native driver: each release runs as an OS process in its own process group,
//! stdout/stderr appended to a log file, exits noticed at once (the child's wait, or a
//! pidfd for a process adopted from a previous server). Restart policy: exponential backoff
//! from 100 ms doubling to 30 s, reset after 30 s of stable uptime; after 10 consecutive
//! fast failures the instance is `crashed` and stays down until the next deploy or a manual
//! restart. The loop itself lives in [`super::supervise`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use diesel::QueryDsl as _;
use diesel_async::RunQueryDsl as _;
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::sync::watch;
use uuid::Uuid;

pub use super::supervise::{CRASH_LIMIT, HealthWatch};
use super::{
    Launch, Runtime, Started,
    cgroup::Cgroups,
    start_ticks,
    supervise::{Control, Proc, Supervisor, child_pid, scaled_backoff, spawn, watch_health},
};
use crate::{db::DbPool, schema::instances};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(30);

/// The delay before restart number `failures` (1-based) of a run of fast failures.
pub fn backoff(failures: u32) -> Duration {
    scaled_backoff(failures, FIRST_DELAY, MAX_DELAY)
}

struct Entry {
    control: Arc<Control>,
    launch: Launch,
}

pub struct NativeRuntime {
    db: DbPool,
    running: Mutex<HashMap<Uuid, Entry>>,
    /// The backoff's first and largest delay (100 ms and 30 s; tests shrink them).
    delays: (Duration, Duration),
    health: Option<HealthWatch>,
    /// Each instance's memory cgroup is made here (`Err`: why there are none).
    cgroups: Result<Cgroups, String>,
}

impl std::fmt::Debug for NativeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeRuntime")
            .field("instances", &self.entries().len())
            .finish_non_exhaustive()
    }
}

impl NativeRuntime {
    pub fn new(db: DbPool) -> Self {
        Self {
            db,
            running: Mutex::new(HashMap::new()),
            delays: (FIRST_DELAY, MAX_DELAY),
            health: None,
            cgroups: Cgroups::detect(None),
        }
    }

    /// Where memory cgroups are made (`RAILYARD_CGROUP_ROOT`).
    pub fn with_cgroups(self, cgroups: Result<Cgroups, String>) -> Self {
        Self { cgroups, ..self }
    }

    /// The memory cgroups of instances, when this host has them.
    pub fn cgroups(&self) -> Option<&Cgroups> {
        self.cgroups.as_ref().ok()
    }

    /// The memory cgroup of a `launch` with a memory limit, made with that limit. Without
    /// one, the limit is not enforced, and the service's log says why. An app without a
    /// limit gets none: moving a process into a cgroup waits for the kernel (an RCU grace
    /// period; 50–400 ms per restart measured on cgroup v1), which would slow every restart.
    fn cgroup_for(&self, launch: &Launch) -> Option<Cgroups> {
        let mb = launch.memory_limit_mb?;
        let why = match &self.cgroups {
            Ok(cgroups) => match cgroups.create(launch.instance, mb) {
                Ok(_) => return Some(cgroups.clone()),
                Err(err) => format!("cannot make its memory cgroup ({err})"),
            },
            Err(why) => why.clone(),
        };
        crate::logs::ship::append_event(
            &launch.log,
            launch.deployment,
            &format!("The memory limit of {mb} MB is not enforced: {why}."),
        );
        None
    }

    /// The same policy on a shorter clock (for tests of the crash limit).
    pub fn with_backoff(self, first: Duration, max: Duration) -> Self {
        Self {
            delays: (first, max),
            ..self
        }
    }

    /// Keeps checking live instances' health (`None`: only at go-live).
    pub fn with_health_watch(self, health: Option<HealthWatch>) -> Self {
        Self { health, ..self }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Entry>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn control(&self, instance: Uuid) -> Option<Arc<Control>> {
        self.entries().get(&instance).map(|e| e.control.clone())
    }

    /// Registers an instance and runs its supervision loop.
    fn supervise_proc(
        &self,
        launch: Launch,
        cgroups: Option<Cgroups>,
        proc: Proc,
        pid: i32,
        supervised: bool,
        first_exit: Option<watch::Sender<Option<i32>>>,
    ) {
        let control = Control::new(pid, supervised);
        self.entries().insert(
            launch.instance,
            Entry {
                control: control.clone(),
                launch: launch.clone(),
            },
        );
        if supervised {
            self.watch(&control, &launch);
        }
        let supervisor = Supervisor {
            db: self.db.clone(),
            launch,
            control,
            delays: self.delays,
            cgroups,
        };
        tokio::spawn(supervisor.run(proc, first_exit));
    }

    /// Stops supervising every instance, leaving the processes running (as a control plane
    /// that exits does): nothing is restarted any more.
    pub fn detach_all(&self) {
        for entry in self.entries().values() {
            let _ = entry.control.stop.send_replace(true);
        }
    }

    fn watch(&self, control: &Arc<Control>, launch: &Launch) {
        if let Some(health) = self.health {
            tokio::spawn(watch_health(control.clone(), launch.clone(), health));
        }
    }
}

#[async_trait::async_trait]
impl Runtime for NativeRuntime {
    async fn start(&self, launch: Launch) -> anyhow::Result<Started> {
        let cgroups = self.cgroup_for(&launch);
        let child = spawn(&launch, cgroups.as_ref())?;
        let pid = child_pid(&child).ok_or_else(|| anyhow::anyhow!("the process exited at once"))?;
        let ticks = start_ticks(pid);
        let (exited_tx, exited) = watch::channel(None);
        self.supervise_proc(launch, cgroups, Proc::Child(child), pid, false, Some(exited_tx));
        Ok(Started {
            pid,
            start_ticks: ticks,
            exited,
        })
    }

    async fn adopt(&self, launch: Launch, pid: i32, ticks: i64) -> bool {
        let Some(proc) = Proc::adopt(pid, ticks) else {
            return false;
        };
        // It runs in its cgroup already; a restart will too.
        let cgroups = self.cgroup_for(&launch);
        self.supervise_proc(launch, cgroups, proc, pid, true, None);
        true
    }

    fn supervise(&self, instance: Uuid) {
        let entry = self
            .entries()
            .get(&instance)
            .map(|e| (e.control.clone(), e.launch.clone()));
        if let Some((control, launch)) = entry
            && !control.supervised.swap(true, Ordering::AcqRel)
        {
            self.watch(&control, &launch);
        }
    }

    async fn stop(&self, instance: Uuid, grace: Duration) -> anyhow::Result<()> {
        let Some(control) = self.control(instance) else {
            return self.stop_by_pid(instance, grace).await;
        };
        let _ = control.stop.send_replace(true);
        let mut done = control.done.subscribe();
        let _ = killpg(control.group(), Signal::SIGTERM);
        let exited = tokio::time::timeout(grace, done.wait_for(|d| *d)).await.is_ok();
        if !exited {
            tracing::info!(%instance, "did not stop within the grace period; SIGKILL");
        }
        // Whatever is left of the group goes too (children that ignored SIGTERM).
        let _ = killpg(control.group(), Signal::SIGKILL);
        let _ = done.wait_for(|d| *d).await;
        self.entries().remove(&instance);
        Ok(())
    }

    async fn stop_recorded(
        &self,
        instance: Uuid,
        recorded: Option<(i32, i64)>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        if self.control(instance).is_some() {
            return self.stop(instance, grace).await;
        }
        match recorded {
            Some((pid, ticks)) => self.kill_recorded(instance, pid, ticks, grace).await,
            None => Ok(()),
        }
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
        match (pid, ticks) {
            (Some(pid), Some(ticks)) => self.kill_recorded(instance, pid, ticks, grace).await,
            _ => Ok(()),
        }
    }

    /// SIGTERM to the group of `pid`, the grace, SIGKILL; only while `pid` is the process
    /// that started at `ticks`.
    async fn kill_recorded(
        &self,
        instance: Uuid,
        pid: i32,
        ticks: i64,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let same = |pid: i32| start_ticks(pid) == Some(ticks);
        if !same(pid) {
            return Ok(());
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while same(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        if let Some(cgroups) = self.cgroups() {
            cgroups.remove(instance).await;
        }
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
