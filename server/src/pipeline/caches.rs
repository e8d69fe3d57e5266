//! What a service's builds keep between them, in its build cache (`$HOME` of its builds):
//! besides the package managers' own caches (npm's, pip's, cargo's registry, corepack's),
//! a Rust build's `target/` directory (it lives in the cache, `CARGO_TARGET_DIR`, so the
//! next build compiles only what changed; the release gets the built programs, not the
//! gigabytes around them), `node_modules` (reused, as hard links, while its lockfile does
//! not change), a Python `.venv` (reused the same way, its scripts' `#!` lines made to
//! name the new release) and Next.js's `.next/cache`.

use std::{
    ffi::OsString,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use railyard_shared::deployments::{Plan, Step};

/// For Rust code in `workdir`: points cargo at `<home>/target` (unless the service sets
/// `CARGO_TARGET_DIR` itself) and says where.
pub fn rust_target(workdir: &Path, home: &Path, env: &mut Vec<(OsString, OsString)>) -> Option<PathBuf> {
    if !workdir.join("Cargo.toml").is_file() || env.iter().any(|(k, _)| k == "CARGO_TARGET_DIR") {
        return None;
    }
    let target = home.join("target");
    env.push(("CARGO_TARGET_DIR".into(), target.clone().into()));
    Some(target)
}

/// Copies the programs cargo built (the executable files directly in
/// `<target>/release`) to `<workdir>/target/release`, where the plan starts them.
pub fn take_binaries(target: &Path, workdir: &Path) -> std::io::Result<usize> {
    let built = target.join("release");
    let into = workdir.join("target/release");
    let Ok(entries) = std::fs::read_dir(&built) else {
        return Ok(0);
    };
    std::fs::create_dir_all(&into)?;
    let mut copied = 0;
    for entry in entries.flatten() {
        let meta = std::fs::symlink_metadata(entry.path())?;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            std::fs::copy(entry.path(), into.join(entry.file_name()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// A static site's directory after the build: it must exist and, links resolved, lie in
/// the release (`release`).
pub fn check_static_dir(release: &Path, workdir: &Path, static_dir: &str) -> Result<(), String> {
    let dir = workdir.join(static_dir);
    let inside = std::fs::canonicalize(release)
        .ok()
        .zip(std::fs::canonicalize(&dir).ok())
        .is_some_and(|(release, dir)| dir.starts_with(release));
    if !dir.is_dir() {
        Err(format!(
            "the build wrote no `{static_dir}` directory to serve (static_dir): check the build's output"
        ))
    } else if !inside {
        Err(format!("`{static_dir}` (static_dir) links out of the repository"))
    } else if !dir.join("index.html").is_file() {
        Err(format!("`{static_dir}` (static_dir) has no index.html"))
    } else {
        Ok(())
    }
}

/// The locked install a Node.js plan starts with, and the lockfile it installs from.
fn locked_install(workdir: &Path, plan: &Plan) -> Option<&'static str> {
    let Some(Step::Argv(first)) = plan.build.first() else {
        return None;
    };
    let words: Vec<&str> = first.iter().map(String::as_str).collect();
    let locked = matches!(
        words.as_slice(),
        ["npm", "ci"]
            | [
                "corepack",
                "pnpm" | "yarn",
                "install",
                "--frozen-lockfile" | "--immutable"
            ]
            | ["bun", "install", "--frozen-lockfile"]
    );
    if !locked {
        return None;
    }
    [
        "package-lock.json",
        "npm-shrinkwrap.json",
        "pnpm-lock.yaml",
        "yarn.lock",
        "bun.lock",
        "bun.lockb",
    ]
    .into_iter()
    .find(|lock| workdir.join(lock).is_file())
}

/// What `node_modules` was installed from: the lockfile, `package.json`, the install
/// command and the Node.js version (native modules are built for one).
fn install_key(workdir: &Path, lock: &str, plan: &Plan) -> std::io::Result<String> {
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    for file in [lock, "package.json"] {
        hash.update(&std::fs::read(workdir.join(file))?);
        hash.update(b"\0");
    }
    hash.update(
        plan.build
            .first()
            .map(ToString::to_string)
            .unwrap_or_default()
            .as_bytes(),
    );
    for t in &plan.toolchains {
        hash.update(format!("\0{}={:?}", t.name, t.version).as_bytes());
    }
    Ok(hash
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `node_modules` kept from the last build of the service in its environment.
pub struct NodeModules {
    saved: PathBuf,
    key_file: PathBuf,
    key: String,
    /// The lockfile it was installed from.
    pub lock: &'static str,
    /// Whether this build starts from the saved copy (its install step is skipped).
    pub reused: bool,
}

/// Reuses the saved `node_modules` when the plan installs from a lockfile that has not
/// changed (nor `package.json`, the command or the Node.js version): hard links into the
/// release, so kept releases share the files.
pub async fn restore_node_modules(workdir: &Path, home: &Path, plan: &Plan) -> Option<NodeModules> {
    let lock = locked_install(workdir, plan)?;
    let key = install_key(workdir, lock, plan).ok()?;
    let cache = home.join(".railyard-cache");
    let saved = cache.join("node_modules");
    let key_file = cache.join("node_modules.key");
    let matches = tokio::fs::read_to_string(&key_file).await.is_ok_and(|k| k == key) && saved.is_dir();
    let target = workdir.join("node_modules");
    let reused = matches && !target.exists() && hard_link_copy(&saved, &target).await.is_ok();
    Some(NodeModules {
        saved,
        key_file,
        key,
        lock,
        reused,
    })
}

impl NodeModules {
    /// After a successful build: the release's `node_modules` becomes the saved copy.
    pub async fn save(&self, workdir: &Path) -> std::io::Result<()> {
        let built = workdir.join("node_modules");
        if self.reused || !built.is_dir() {
            return Ok(());
        }
        keep(&built, &self.saved, &self.key_file, &self.key).await
    }
}

/// Replaces the saved copy `saved` with hard links to `built` and writes `key` (what it
/// was installed from) to `key_file`, which is absent while the copy is incomplete.
async fn keep(built: &Path, saved: &Path, key_file: &Path, key: &str) -> std::io::Result<()> {
    let _ = tokio::fs::remove_file(key_file).await;
    match tokio::fs::remove_dir_all(saved).await {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    if let Some(parent) = saved.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    hard_link_copy(built, saved).await?;
    tokio::fs::write(key_file, key).await
}

/// `cp -al from to`: the tree at `to` with its files hard links to those at `from` (paths
/// Railyard's own; argv only).
async fn hard_link_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    let status = tokio::process::Command::new("cp")
        .arg("-al")
        .arg("--")
        .arg(from)
        .arg(to)
        .status()
        .await?;
    if status.success() {
        Ok(())
    } else {
        let _ = tokio::fs::remove_dir_all(to).await;
        Err(std::io::Error::other(format!("cp -al exited with {status}")))
    }
}

/// Next.js's build cache (`.next/cache`), kept between builds: copied into the release
/// before the build, and back after it.
pub async fn next_cache(workdir: &Path, home: &Path, restore: bool) -> std::io::Result<()> {
    let saved = home.join(".railyard-cache/next-cache");
    let here = workdir.join(".next/cache");
    let (from, to) = if restore { (&saved, &here) } else { (&here, &saved) };
    if !from.is_dir() || !workdir.join("package.json").is_file() {
        return Ok(());
    }
    if !restore {
        match tokio::fs::remove_dir_all(to).await {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    if let Some(parent) = to.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let status = tokio::process::Command::new("cp")
        .arg("-a")
        .arg("--")
        .arg(from)
        .arg(to)
        .status()
        .await?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("cp -a exited with {status}")))
    }
}

/// The files a Python plan's installed dependencies come from.
const PYTHON_INPUTS: &[&str] = &["requirements.txt", "uv.lock", "poetry.lock", "pyproject.toml"];

/// A `.venv` kept from the last build of the service in its environment.
pub struct Venv {
    saved: PathBuf,
    key_file: PathBuf,
    key: String,
    /// Whether this build starts from the saved copy (its install steps are skipped).
    pub reused: bool,
}

/// Reuses the saved `.venv` when the plan's install steps, the files they install from and
/// the interpreter are unchanged: hard links into the release, with the scripts that name
/// the old release's path (their `#!` line, `activate`) written anew for this one.
pub async fn restore_venv(workdir: &Path, home: &Path, plan: &Plan) -> Option<Venv> {
    if plan.install_steps == 0 || !plan.provider.starts_with("python") {
        return None;
    }
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    for file in PYTHON_INPUTS {
        if let Ok(bytes) = tokio::fs::read(workdir.join(file)).await {
            hash.update(file.as_bytes());
            hash.update(&bytes);
        }
    }
    for step in &plan.build[..plan.install_steps.min(plan.build.len())] {
        hash.update(step.to_string().as_bytes());
        hash.update(b"\0");
    }
    for t in &plan.toolchains {
        hash.update(format!("\0{}={:?}", t.name, t.version).as_bytes());
    }
    let key: String = hash
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cache = home.join(".railyard-cache");
    let saved = cache.join("venv");
    let key_file = cache.join("venv.key");
    // The key file holds the key, then the path the saved copy was built at.
    let stored = tokio::fs::read_to_string(&key_file).await.unwrap_or_default();
    let (stored_key, origin) = stored.split_once('\n').unwrap_or_default();
    let target = workdir.join(".venv");
    let usable = stored_key == key && saved.is_dir() && interpreter_exists(&saved) && !target.exists();
    let reused = usable && hard_link_copy(&saved, &target).await.is_ok() && {
        let (target, origin) = (target.clone(), PathBuf::from(origin));
        tokio::task::spawn_blocking(move || relocate(&target, &origin))
            .await
            .is_ok_and(|r| r.is_ok())
    };
    if usable && !reused {
        let _ = tokio::fs::remove_dir_all(&target).await;
    }
    Some(Venv {
        saved,
        key_file,
        key,
        reused,
    })
}

impl Venv {
    /// After a successful build: the release's `.venv` becomes the saved copy.
    pub async fn save(&self, workdir: &Path) -> std::io::Result<()> {
        let built = workdir.join(".venv");
        if self.reused || !built.is_dir() {
            return Ok(());
        }
        let key = format!("{}\n{}", self.key, built.display());
        keep(&built, &self.saved, &self.key_file, &key).await
    }
}

/// Whether the interpreter a saved `.venv` runs (`home` in its `pyvenv.cfg`) is still here.
fn interpreter_exists(venv: &Path) -> bool {
    std::fs::read_to_string(venv.join("pyvenv.cfg")).is_ok_and(|cfg| {
        cfg.lines()
            .find_map(|l| {
                l.strip_prefix("home")
                    .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            })
            .is_some_and(|home| Path::new(&home).join("python3").exists())
    })
}

/// Rewrites the files in `<venv>/bin` that name `origin` (the path the venv was built at)
/// to name `venv` instead: each a new file (the hard link to the saved copy is broken),
/// with the old one's mode and owner.
fn relocate(venv: &Path, origin: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let (from, to) = (
        origin.to_string_lossy().into_owned(),
        venv.to_string_lossy().into_owned(),
    );
    if from.is_empty() || from == to {
        return Ok(());
    }
    for entry in std::fs::read_dir(venv.join("bin"))?.flatten() {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if !meta.is_file() || meta.len() > 1024 * 1024 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // a binary
        };
        if !text.contains(&from) {
            continue;
        }
        let fresh = path.with_extension("railyard-relocating");
        std::fs::write(&fresh, text.replace(&from, &to))?;
        std::fs::set_permissions(&fresh, meta.permissions())?;
        std::os::unix::fs::lchown(&fresh, Some(meta.uid()), Some(meta.gid()))?;
        std::fs::rename(&fresh, &path)?;
    }
    Ok(())
}
