//! How Railyard runs code it did not write (builds and apps): as whom and with what in
//! reach ([`jail`]: the policy, [`enter`]: the `railyard-server sandbox` helper that builds
//! the jail), the environment they get (nothing of Railyard's own), their argv (never a
//! shell line of Railyard's making), handing them their directories, and finding and
//! killing what an earlier run left behind. Builds (`pipeline`) and apps (`runtime`) both
//! start their processes through here.

pub mod enter;
pub mod jail;

use std::{
    ffi::OsString,
    path::{Component, Path, PathBuf},
};

pub use jail::{Isolation, Jail, Refused, Sandbox, SandboxConfig};

use railyard_shared::deployments::Step;
use tokio::process::Command;

/// What a process is started for: a build step, or the app itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Build,
    Run,
}

/// Toolchain homes passed through from Railyard's own environment, so a toolchain installed
/// for the host (rustup's, pyenv's, Go's) is found by builds and apps. `CARGO_HOME` is not
/// among them: it holds the operator's registry credentials, and a build's downloads belong
/// in the service's own cache (`$HOME/.cargo`); cargo itself comes from its `bin` on `PATH`.
const TOOLCHAIN_HOMES: &[&str] = &["RUSTUP_HOME", "PYENV_ROOT", "GOROOT"];

/// Variables naming the certificate bundles the host trusts, passed through when set.
const CA_BUNDLES: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
];

/// The host's toolchain homes, from Railyard's environment (rustup's and cargo's derived
/// from its `HOME` when unset there): `(variable, directory)`.
fn host_homes() -> Vec<(&'static str, PathBuf)> {
    let railyard_home = std::env::var_os("HOME").map(PathBuf::from);
    ["RUSTUP_HOME", "CARGO_HOME", "PYENV_ROOT", "GOROOT"]
        .into_iter()
        .filter_map(|name| {
            let value = std::env::var_os(name).map(PathBuf::from).or_else(|| {
                let sub = match name {
                    "RUSTUP_HOME" => ".rustup",
                    "CARGO_HOME" => ".cargo",
                    _ => return None,
                };
                railyard_home.as_ref().map(|h| h.join(sub))
            })?;
            value.is_dir().then_some((name, value))
        })
        .collect()
}

/// The `bin` directories of a plan's toolchains (the Node.js it asked for, pyenv's Python),
/// put first on `PATH`; their parents are what a jail reads.
pub fn plan_toolchains(plan: &railyard_shared::deployments::Plan) -> Vec<PathBuf> {
    plan.toolchains
        .iter()
        .filter_map(|t| t.bin.as_deref())
        .map(PathBuf::from)
        .filter(|bin| bin.is_absolute() && bin.parent().is_some())
        .collect()
}

/// The host's toolchain directories a jail may read (and run programs from): rustup's
/// home, cargo's `bin`, pyenv's root, `GOROOT`.
pub fn host_toolchains() -> Vec<PathBuf> {
    host_homes()
        .into_iter()
        .map(|(name, dir)| {
            if name == "CARGO_HOME" {
                dir.join("bin")
            } else {
                dir
            }
        })
        .filter(|dir| dir.is_dir())
        .collect()
}

/// The environment builds and apps get: nothing of Railyard's own, only what a toolchain
/// needs, plus `extra` (the service's variables, which win over every default here).
///
/// - `PATH`: the app's own executables first (`<dir>/.venv/bin`, `<dir>/node_modules/.bin`,
///   `<dir>/bin`, `dir` being the plan's root), then the plan's toolchains (`toolchains`:
///   e.g. the Node.js its `package.json` asked for), then the host's, then cargo's `bin`.
/// - `HOME`: `home`, the build's cache or the app's own home (they differ).
/// - Builds get `CI=true` and `CARGO_HOME=$HOME/.cargo`; apps do not, and get
///   `NODE_ENV=production` unless set.
/// - Both get `PYTHONUNBUFFERED=1` (output reaches the log as it is written) and the
///   toolchain homes Railyard itself has (`RUSTUP_HOME`, `PYENV_ROOT`, `GOROOT`; rustup's
///   derived from Railyard's `HOME` when unset there).
pub fn scrubbed_env(
    home: &Path,
    dir: &Path,
    purpose: Purpose,
    toolchains: &[PathBuf],
    extra: &[(String, String)],
) -> Vec<(OsString, OsString)> {
    let host_path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    let homes = host_homes();
    let cargo_bin = homes
        .iter()
        .find(|(name, _)| *name == "CARGO_HOME")
        .map(|(_, dir)| dir.join("bin"));
    let host: Vec<PathBuf> = std::env::split_paths(&host_path).collect();
    let own = [
        dir.join(".venv/bin"),
        dir.join("node_modules/.bin"),
        dir.join("bin"),
    ];
    let cargo_bin = cargo_bin.filter(|bin| !host.contains(bin));
    let path = std::env::join_paths(
        own.into_iter()
            .chain(toolchains.iter().cloned())
            .chain(host)
            .chain(cargo_bin),
    )
    .unwrap_or(host_path);
    let mut env: Vec<(OsString, OsString)> = vec![
        ("PATH".into(), path),
        ("HOME".into(), home.into()),
        ("LANG".into(), "C.UTF-8".into()),
        // Tools that colour or page their output check these.
        ("TERM".into(), "dumb".into()),
        ("NO_UPDATE_NOTIFIER".into(), "1".into()),
        ("npm_config_update_notifier".into(), "false".into()),
        ("npm_config_fund".into(), "false".into()),
        ("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    match purpose {
        Purpose::Build => {
            env.push(("CI".into(), "true".into()));
            // corepack fetches the pnpm or yarn a project names without asking.
            env.push(("COREPACK_ENABLE_DOWNLOAD_PROMPT".into(), "0".into()));
            // Without a `packageManager` version, the one this corepack knows to be good
            // (asking the registry for the newest fails its signature check on older ones).
            env.push(("COREPACK_DEFAULT_TO_LATEST".into(), "0".into()));
            env.push(("CARGO_HOME".into(), home.join(".cargo").into()));
        }
        Purpose::Run => env.push(("NODE_ENV".into(), "production".into())),
    }
    for (name, value) in homes {
        if TOOLCHAIN_HOMES.contains(&name) {
            env.push((name.into(), value.into()));
        }
    }
    // The certificate authorities the host trusts (a proxy's own, say), for tools that do
    // not read the system's store: paths to public certificates under /etc or /usr only.
    for name in CA_BUNDLES {
        if let Some(value) = std::env::var_os(name)
            && (Path::new(&value).starts_with("/etc") || Path::new(&value).starts_with("/usr"))
        {
            env.push(((*name).into(), value));
        }
    }
    // The service's variables win: a default of the same name is dropped.
    env.retain(|(name, _)| !extra.iter().any(|(k, _)| OsString::from(k) == *name));
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

/// `argv` run in `jail` (through `railyard-server sandbox`), or as it is without one.
pub fn jailed(argv: Vec<OsString>, jail: Option<&Jail>) -> Result<Vec<OsString>, String> {
    let Some(jail) = jail else { return Ok(argv) };
    let program = helper_program().map_err(|err| format!("{err:#}"))?;
    let spec = serde_json::to_string(jail).map_err(|err| err.to_string())?;
    Ok([
        program.into(),
        "sandbox".into(),
        "--jail".into(),
        spec.into(),
        "--".into(),
    ]
    .into_iter()
    .chain(argv)
    .collect())
}

/// The command for `step` (see [`argv`]), in `jail` when there is one.
pub fn command(step: &Step, dir: &Path, jail: Option<&Jail>) -> Result<Command, String> {
    let argv = jailed(argv(step, dir)?, jail)?;
    let (program, rest) = argv.split_first().ok_or("empty command")?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    Ok(cmd)
}

/// The program of Railyard's own helpers (the app monitor, the sandbox): this server's
/// binary. Test and benchmark binaries find it beside themselves
/// (`target/<profile>/railyard-server`).
pub fn helper_program() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if exe
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("railyard-server"))
    {
        return Ok(exe);
    }
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join("railyard-server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the railyard-server binary (which runs apps' monitors and sandboxes) is not beside {}",
                exe.display()
            )
        })
}

impl Jail {
    /// Hands the jail its own directories (`writable`: its release, its home); see
    /// [`hand_over`].
    pub async fn take_its_directories(&self) -> std::io::Result<()> {
        let jail = self.clone();
        tokio::task::spawn_blocking(move || jail.writable.iter().try_for_each(|dir| hand_over(dir, &jail)))
            .await
            .map_err(std::io::Error::other)?
    }
}

/// Hands the tree at `root` to the jail's user (its files, without following links), and
/// closes it to everyone else (mode 0700 on `root`). Quick when `root` is its already.
pub fn hand_over(root: &Path, jail: &Jail) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = std::fs::symlink_metadata(root)?;
    if meta.uid() == jail.uid && meta.gid() == jail.gid {
        return Ok(());
    }
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        std::os::unix::fs::lchown(&path, Some(jail.uid), Some(jail.gid))?;
        if std::fs::symlink_metadata(&path)?.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
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

#[cfg(test)]
mod env_tests {
    use super::*;

    fn get<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsString> {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    #[test]
    fn apps_and_builds_get_their_own_executables_first_and_the_right_mode() {
        let (home, dir) = (Path::new("/data/homes/a"), Path::new("/data/releases/r/web"));
        let build = scrubbed_env(home, dir, Purpose::Build, &[], &[]);
        let path = get(&build, "PATH").unwrap().to_string_lossy().into_owned();
        assert!(
            path.starts_with("/data/releases/r/web/.venv/bin:/data/releases/r/web/node_modules/.bin:/data/releases/r/web/bin:"),
            "{path}"
        );
        assert_eq!(
            get(&build, "CI").map(|v| v.to_string_lossy().into_owned()),
            Some("true".into())
        );
        assert_eq!(get(&build, "NODE_ENV"), None);
        assert_eq!(get(&build, "HOME").unwrap(), home.as_os_str());

        let run = scrubbed_env(home, dir, Purpose::Run, &[], &[]);
        assert_eq!(get(&run, "CI"), None, "an app is not in CI mode");
        assert_eq!(get(&run, "NODE_ENV").unwrap(), "production");
        assert_eq!(get(&run, "PYTHONUNBUFFERED").unwrap(), "1");

        // The service's own variables win over the defaults, once.
        let mine = scrubbed_env(
            home,
            dir,
            Purpose::Run,
            &[],
            &[("NODE_ENV".into(), "staging".into())],
        );
        let values: Vec<_> = mine.iter().filter(|(k, _)| k == "NODE_ENV").collect();
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].1, "staging");
    }
}
