//! `railyard-server sandbox`: the helper that puts one command in its [`Jail`]. It runs in
//! two processes, both Railyard's own and both root:
//!
//! 1. the outer one enters a new PID namespace (for its children) and starts the inner one,
//!    which becomes that namespace's process 1; it waits and exits with the command's code.
//!    It ignores the termination signals a stop sends to the process group: they are for
//!    the app, and the app must outlive them for as long as it takes to exit.
//! 2. the inner one (`--init`) makes a private mount namespace (the data directory, `/run`
//!    and the temporary directories covered, the jail's own directories put back at their
//!    paths, a `/proc` of the new PID namespace), empties its capability bounding set, sets
//!    `no_new_privs`, restricts itself with Landlock and starts the command as the jail's
//!    user (no groups; a uid other than 0 holds no capabilities). It then reaps orphans as
//!    an init does and exits with the command's code; when it exits the kernel kills
//!    whatever is left in the namespace, so nothing of a build or an app outlives it.
//!
//! The command stays in the caller's process group, so a stop's signals reach it directly.

use std::{
    ffi::OsString,
    os::{fd::AsRawFd as _, unix::process::CommandExt as _},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use landlock::{
    ABI, Access as _, AccessFs, CompatLevel, Compatible as _, Ruleset, RulesetAttr as _,
    RulesetCreatedAttr as _, RulesetStatus, Scope, path_beneath_rules,
};
use nix::{
    fcntl::{OFlag, open},
    mount::{MsFlags, mount},
    sched::{CloneFlags, unshare},
    sys::{
        prctl,
        signal::{SigSet, Signal},
        stat::Mode,
        wait::{WaitPidFlag, WaitStatus, waitpid},
    },
    unistd::Pid,
};

use super::Jail;

/// The exit code when the jail could not be made (as `env`, `timeout` and podman use it).
const CANNOT_JAIL: u8 = 125;

/// Directories of the system that tenant code may read and run programs from.
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/proc", "/sys",
];

/// Covered in the jail by an empty directory of its own (writable ones are private).
const PRIVATE_TMP: &[&str] = &["/tmp", "/var/tmp", "/dev/shm"];

/// The signals a stop sends to the process group (and a terminal would).
const TERMINATION: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The helper's main: `railyard-server sandbox [--init] [--report] --jail <json> -- <program> <args>...`.
pub fn main(spec: &str, init: bool, report: bool, command: &[OsString]) -> ExitCode {
    let result = serde_json::from_str::<Jail>(spec)
        .context("the jail is not valid JSON")
        .and_then(|jail| {
            if init {
                inner(&jail, report, command)
            } else {
                outer(spec, report, command)
            }
        });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("railyard-server sandbox: {err:#}");
            ExitCode::from(CANNOT_JAIL)
        }
    }
}

fn outer(spec: &str, report: bool, command: &[OsString]) -> anyhow::Result<u8> {
    let mut ignored = SigSet::empty();
    TERMINATION.iter().for_each(|s| ignored.add(*s));
    ignored.thread_block().context("cannot block signals")?;
    unshare(CloneFlags::CLONE_NEWPID).context("cannot make a PID namespace")?;
    let mut inner = std::process::Command::new(std::env::current_exe()?);
    inner.arg("sandbox").arg("--init");
    if report {
        inner.arg("--report");
    }
    let status = inner
        .arg("--jail")
        .arg(spec)
        .arg("--")
        .args(command)
        // With a uid set the child is forked, not vforked: a child sharing its parent's
        // memory may not be born into another PID namespace.
        .uid(0)
        .gid(0)
        .status()
        .context("cannot start the jail's init")?;
    Ok(code(status))
}

fn inner(jail: &Jail, report: bool, command: &[OsString]) -> anyhow::Result<u8> {
    anyhow::ensure!(jail.uid != 0 && jail.gid != 0, "a jail never runs as root");
    let (program, args) = command.split_first().context("no command to run")?;
    // If the outer helper is killed, so is this init, and with it the whole namespace.
    prctl::set_pdeathsig(Signal::SIGKILL).context("cannot tie the init to its parent")?;
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGCHLD);
    TERMINATION.iter().for_each(|s| signals.add(*s));
    signals.thread_block().context("cannot block signals")?;

    let cwd = std::env::current_dir().context("no working directory")?;
    unshare(CloneFlags::CLONE_NEWNS).context("cannot make a mount namespace")?;
    mounts(jail).context("cannot set up the jail's file system")?;
    std::env::set_current_dir(&cwd).with_context(|| format!("cannot enter {} in the jail", cwd.display()))?;
    drop_bounding_set()?;
    let landlock = restrict(jail)?;
    prctl::set_no_new_privs().context("cannot set no_new_privs")?;
    if report {
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), "{landlock}");
    }

    let child = std::process::Command::new(program)
        .args(args)
        .uid(jail.uid)
        .gid(jail.gid)
        .spawn()
        .with_context(|| format!("cannot start {}", Path::new(program).display()))?;
    let child = Pid::from_raw(i32::try_from(child.id()).context("pid out of range")?);
    loop {
        let signal = signals.wait().context("cannot wait for signals")?;
        if signal != Signal::SIGCHLD {
            // It went to the whole process group: the command has it already.
            continue;
        }
        // Reap every child that exited (orphans of the command come to process 1).
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, status)) if pid == child => {
                    return Ok(u8::try_from(status).unwrap_or(1));
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                    return Ok(128u8.saturating_add(signal as u8));
                }
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(err) => return Err(err).context("cannot wait for the command"),
            }
        }
    }
}

/// The jail's view of the file system (see the module's documentation).
fn mounts(jail: &Jail) -> anyhow::Result<()> {
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, private, None::<&str>).context("cannot make / private")?;
    // Held open: they may lie under a directory that is about to be covered.
    let mut kept = Vec::new();
    for dir in &jail.writable {
        let fd = open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("cannot open {}", dir.display()))?;
        kept.push((dir.clone(), fd));
    }
    // The host's resolver configuration may live under /run (systemd-resolved).
    let mut readable = Vec::new();
    if let Ok(resolv) = std::fs::canonicalize("/etc/resolv.conf")
        && resolv.starts_with("/run")
        && let Some(dir) = resolv.parent()
        && let Ok(fd) = open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    {
        readable.push((dir.to_owned(), fd));
    }
    // Toolchains beyond the system's directories, opened before anything is covered: put
    // back (read-only) where they would be out of reach, e.g. under the hidden data
    // directory or in a home only its owner may enter (`/root/.rustup`).
    let mut shared = Vec::new();
    for dir in &jail.readable {
        if let Ok(fd) = open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            shared.push((dir.clone(), fd));
        }
    }
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    // The temporary directories first: the data directory may lie in one (a test's).
    for dir in PRIVATE_TMP.iter().map(Path::new) {
        if is_real_dir(dir) {
            mount(Some("tmpfs"), dir, Some("tmpfs"), nodev, Some("mode=1777"))
                .with_context(|| format!("cannot make a private {}", dir.display()))?;
        }
    }
    let mut covered = Vec::new();
    let closed = closed_ancestors(jail);
    for dir in jail
        .hide
        .iter()
        .map(PathBuf::as_path)
        .chain([Path::new("/run")])
        .chain(closed.iter().map(PathBuf::as_path))
    {
        if is_real_dir(dir) {
            mount(
                Some("tmpfs"),
                dir,
                Some("tmpfs"),
                nodev | MsFlags::MS_NOEXEC,
                Some("mode=0755,size=1m"),
            )
            .with_context(|| format!("cannot cover {}", dir.display()))?;
            covered.push(dir);
        }
    }
    // Beneath what was covered (the private temporary directories, the data directory, a
    // closed home), a readable directory must be put back to be seen.
    let out_of_reach = |dir: &Path| {
        PRIVATE_TMP
            .iter()
            .map(Path::new)
            .chain(jail.hide.iter().map(PathBuf::as_path))
            .chain(closed.iter().map(PathBuf::as_path))
            .any(|c| dir.starts_with(c))
    };
    shared.retain(|(dir, _)| out_of_reach(dir));
    for ((dir, fd), read_only) in kept
        .iter()
        .map(|kept| (kept, false))
        .chain(readable.iter().map(|kept| (kept, true)))
        .chain(shared.iter().map(|kept| (kept, true)))
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
        let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
        mount(
            Some(source.as_str()),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("cannot put {} back", dir.display()))?;
        let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | nodev;
        if read_only {
            flags |= MsFlags::MS_RDONLY;
        }
        mount(None::<&str>, dir, None::<&str>, flags, None::<&str>)
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    for dir in covered {
        // Covered and read-only: nothing can be written where the data directory was.
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | nodev | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
        mount(None::<&str>, dir, None::<&str>, flags, None::<&str>)
            .with_context(|| format!("cannot make {} read-only", dir.display()))?;
    }
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        nodev | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .context("cannot mount the PID namespace's /proc")?;
    Ok(())
}

/// The outermost directories above the jail's readable ones that others may not enter
/// (e.g. `/root`, mode 0700): each is covered by an empty directory of its own in the jail,
/// where only the readable ones are put back. Never one that holds a writable or hidden
/// directory, or lies in a hidden one.
fn closed_ancestors(jail: &Jail) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut closed: Vec<PathBuf> = Vec::new();
    for dir in &jail.readable {
        if jail.hide.iter().any(|h| dir.starts_with(h)) {
            continue;
        }
        let found = dir
            .ancestors()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .find(|a| std::fs::metadata(a).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 == 0));
        let Some(found) = found else { continue };
        let holds_own = jail
            .writable
            .iter()
            .chain(&jail.hide)
            .any(|own| own.starts_with(found));
        if !holds_own && found != Path::new("/") && !closed.iter().any(|c| found.starts_with(c)) {
            closed.retain(|c| !c.starts_with(found));
            closed.push(found.to_owned());
        }
    }
    closed
}

fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir())
}

/// Drops every capability from the bounding set: nothing the command runs can gain one.
fn drop_bounding_set() -> anyhow::Result<()> {
    use rustix::thread::{CapabilitySet, capability_is_in_bounding_set, remove_capability_from_bounding_set};
    for cap in 0..64 {
        let cap = CapabilitySet::from_bits_retain(1 << cap);
        match capability_is_in_bounding_set(cap) {
            Ok(true) => remove_capability_from_bounding_set(cap)
                .context("cannot drop a capability from the bounding set")?,
            Ok(false) => {}
            // Past the kernel's last capability.
            Err(_) => break,
        }
    }
    Ok(())
}

/// The Landlock ruleset: read and run the system's directories and the operator's
/// `readable` ones; read and write the jail's own and the private temporary directories;
/// use devices; nothing else. Abstract UNIX sockets and signals outside the jail are out of
/// reach too. Best effort: a kernel without Landlock enforces what it can (the returned
/// status says how much).
fn restrict(jail: &Jail) -> anyhow::Result<&'static str> {
    let abi = ABI::V6;
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    let devices = read | AccessFs::WriteFile | AccessFs::IoctlDev;
    let own = jail
        .writable
        .iter()
        .cloned()
        .chain(PRIVATE_TMP.iter().map(PathBuf::from));
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(
            SYSTEM
                .iter()
                .map(PathBuf::from)
                .chain(jail.readable.iter().cloned()),
            read,
        ))?
        .add_rules(path_beneath_rules(["/dev"], devices))?
        .add_rules(path_beneath_rules(own, all))?
        .restrict_self()
        .context("cannot apply the Landlock ruleset")?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "fully enforced",
        RulesetStatus::PartiallyEnforced => "partly enforced (an older kernel)",
        RulesetStatus::NotEnforced => "not enforced (the kernel has no Landlock)",
    })
}

fn code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .or_else(|| status.signal().map(|s| 128u8.saturating_add(s as u8)))
        .unwrap_or(1)
}
