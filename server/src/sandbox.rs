//! How Railyard runs code it did not write (builds and apps): the environment they get
//! (nothing of Railyard's own), their argv (never a shell line of Railyard's making), and
//! finding and killing what an earlier run left behind. Builds (`pipeline`) and apps
//! (`runtime`) both start their processes through here.

use std::{
    ffi::OsString,
    path::{Component, Path, PathBuf},
};

use railyard_shared::deployments::Step;
use tokio::process::Command;

/// The environment builds (and later apps) get: nothing of Railyard's own, only what a
/// toolchain needs to run, plus `extra` (the service's variables).
pub fn scrubbed_env(home: &Path, extra: &[(String, String)]) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vec![
        (
            "PATH".into(),
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        ),
        ("HOME".into(), home.into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("CI".into(), "true".into()),
        // Tools that colour or page their output check these.
        ("TERM".into(), "dumb".into()),
        ("NO_UPDATE_NOTIFIER".into(), "1".into()),
        ("npm_config_update_notifier".into(), "false".into()),
        ("npm_config_fund".into(), "false".into()),
        ("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.into(), v.into())));
    env
}

/// The argv of `step`: the user's line through `sh -c`, or Railyard's argv directly (a
/// relative program such as `.venv/bin/pip` is found in `dir`).
pub fn argv(step: &Step, dir: &Path) -> Result<Vec<OsString>, String> {
    match step {
        Step::Shell(line) => Ok(vec!["sh".into(), "-c".into(), line.into()]),
        Step::Argv(args) => {
            let (program, rest) = args.split_first().ok_or("empty command")?;
            let program: OsString = if program.contains('/') {
                dir.join(program).into()
            } else {
                program.into()
            };
            Ok(std::iter::once(program)
                .chain(rest.iter().map(OsString::from))
                .collect())
        }
    }
}

/// The command for `step` (see [`argv`]).
pub fn command(step: &Step, dir: &Path) -> Result<Command, String> {
    let argv = argv(step, dir)?;
    let (program, rest) = argv.split_first().ok_or("empty command")?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    Ok(cmd)
}

/// The processes whose working directory is inside `dir`.
pub fn processes_in(dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            std::fs::read_link(entry.path().join("cwd"))
                .is_ok_and(|cwd| cwd.starts_with(dir))
                .then_some(pid)
        })
        .collect()
}

/// Kills what an earlier build of `dir` left running (its worker died without stopping its
/// steps): every process whose working directory is inside `dir`, with its process group.
pub fn kill_leftovers(dir: &Path) -> usize {
    let mut killed = 0;
    for pid in processes_in(dir) {
        if pid != std::process::id() as i32 {
            let pid = nix::unistd::Pid::from_raw(pid);
            if let Ok(group) = nix::unistd::getpgid(Some(pid))
                && group != nix::unistd::getpgrp()
            {
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::SIGKILL);
            }
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
            killed += 1;
        }
    }
    killed
}

/// Whether `target`, a link at `link` (both relative to the root), stays in the tree.
pub fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: Vec<&std::ffi::OsStr> = link
        .parent()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(part) => Some(part),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for component in target.components() {
        match component {
            Component::Normal(part) => depth.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// The first symbolic link in the tree at `root` (its `.git` aside) that points out of the
/// tree, as (the link, relative to `root`; its target). A checked-out repository may hold
/// links, but one that leaves would let a build, or the router serving a static site, read
/// what is outside (`key.txt -> /srv/railyard/master.key`, `root -> /`).
pub fn link_leaving(root: &Path) -> std::io::Result<Option<(PathBuf, PathBuf)>> {
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(root.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                let target = std::fs::read_link(entry.path())?;
                if !link_stays_inside(&path, &target) {
                    return Ok(Some((path, target)));
                }
            } else if kind.is_dir() && !(relative.as_os_str().is_empty() && entry.file_name() == ".git") {
                pending.push(path);
            }
        }
    }
    Ok(None)
}
