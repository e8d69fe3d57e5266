//! Providing the language versions a plan asks for ([`Toolchains`]): Node.js from the host
//! or installed on demand from an npm registry into a toolchain cache every build shares
//! ([`node`]), Python chosen among the host's interpreters, pyenv's and the system's
//! ([`python`]), Go and Rust checked against the host's. A version that cannot be had
//! fails the deployment before any build step, with one line that says what is here.
//!
//! The trait is the seam for operators who fetch toolchains elsewhere (a mirror of the
//! official downloads); [`HostToolchains`] is the one implementation.

pub mod node;
pub mod python;
pub mod spec;

use std::path::{Path, PathBuf};

use railyard_shared::deployments::{Plan, Step, Toolchain};

use crate::logs::BuildLog;

/// Provides a plan's toolchains: fills in `version` (and `bin`, when it is not the host's
/// own on `PATH`), or says in one line why the version cannot be had.
#[async_trait::async_trait]
pub trait Toolchains: Send + Sync {
    async fn provide(&self, wanted: &mut Toolchain, log: &BuildLog) -> Result<(), String>;
}

/// Toolchains from this host, and Node.js from an npm registry.
pub struct HostToolchains {
    /// `<data>/toolchains`: installed versions, shared by every build (read-only to them).
    pub dir: PathBuf,
    pub node: node::NodeRegistry,
}

impl HostToolchains {
    pub fn new(dir: PathBuf, registry: &str) -> Self {
        Self {
            node: node::NodeRegistry::new(registry, dir.join("node")),
            dir,
        }
    }
}

#[async_trait::async_trait]
impl Toolchains for HostToolchains {
    async fn provide(&self, wanted: &mut Toolchain, log: &BuildLog) -> Result<(), String> {
        match wanted.name.as_str() {
            "node" => self.node.provide(wanted, log).await,
            "python" => python::provide(wanted),
            "go" => go(wanted).await,
            "rust" => rust(wanted),
            other => Err(format!("Railyard does not provide {other}")),
        }
    }
}

/// Provides every toolchain `plan` asks for, then points its steps at them: a build step
/// run as `python3` runs the chosen interpreter. `Err` is the one line the deployment
/// fails with.
pub async fn provide_all(toolchains: &dyn Toolchains, plan: &mut Plan, log: &BuildLog) -> Result<(), String> {
    for wanted in &mut plan.toolchains {
        toolchains.provide(wanted, log).await?;
    }
    let python = plan
        .toolchains
        .iter()
        .find(|t| t.name == "python")
        .and_then(|t| Some((t.version.as_deref()?, t.bin.as_deref())));
    if let Some((version, bin)) = python {
        let minor: Vec<&str> = version.split('.').take(2).collect();
        let program = format!("python{}", minor.join("."));
        let program = match bin {
            Some(bin) => Path::new(bin).join(program).to_string_lossy().into_owned(),
            None => program,
        };
        for step in &mut plan.build {
            if let Step::Argv(args) = step
                && args.first().map(String::as_str) == Some("python3")
            {
                args[0].clone_from(&program);
            }
        }
    }
    Ok(())
}

/// The first line a host program prints for `args` (`go version`), run with argv only.
pub(crate) async fn version_line(program: &Path, args: &[&str]) -> Option<String> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(10), output)
        .await
        .ok()?
        .ok()?;
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

/// A program on Railyard's own `PATH`.
pub(crate) fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// `go.mod`'s `go 1.22` is the least version the module needs.
async fn go(wanted: &mut Toolchain) -> Result<(), String> {
    let want = spec::numbers(&wanted.requested)
        .ok_or_else(|| format!("{:?} in {} is not a Go version", wanted.requested, wanted.source))?;
    let goroot = std::env::var_os("GOROOT").map(|root| PathBuf::from(root).join("bin/go"));
    let program = goroot.filter(|p| p.is_file()).or_else(|| on_path("go"));
    let Some(program) = program else {
        return Err(format!(
            "Go {} requested by {}; this server has no Go",
            wanted.requested, wanted.source
        ));
    };
    let line = version_line(&program, &["version"]).await.unwrap_or_default();
    // "go version go1.22.3 linux/amd64"
    let have = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("go").and_then(spec::numbers))
        .ok_or_else(|| format!("cannot tell the version of {}", program.display()))?;
    let shown = have.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
    if spec::compare(&have, &want).is_lt() {
        return Err(format!(
            "Go {} requested by {}; this server has Go {shown}",
            wanted.requested, wanted.source
        ));
    }
    wanted.version = Some(shown);
    wanted.bin = program.parent().map(|p| p.to_string_lossy().into_owned());
    Ok(())
}

/// `rust-toolchain(.toml)` names a channel (`stable`, `1.80.0`, `nightly-2024-05-01`):
/// rustup uses it when it is installed here, and would try to download it otherwise.
fn rust(wanted: &mut Toolchain) -> Result<(), String> {
    let home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")));
    let installed: Vec<String> = home
        .and_then(|h| std::fs::read_dir(h.join("toolchains")).ok())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let channel = wanted.requested.as_str();
    // "1.95.0-x86_64-unknown-linux-gnu" is channel "1.95.0"; "1.95" matches any 1.95.x.
    let found = installed.iter().find(|name| {
        let base = name.split('-').next().unwrap_or_default();
        name.as_str() == channel
            || name.starts_with(&format!("{channel}-x86_64"))
            || name.starts_with(&format!("{channel}-aarch64"))
            || (channel.split('.').count() == 2 && base.starts_with(&format!("{channel}.")))
    });
    match found {
        Some(name) => {
            wanted.version = Some(name.clone());
            Ok(())
        }
        None => {
            let mut names: Vec<&str> = installed
                .iter()
                .map(|n| n.split("-x86_64").next().unwrap_or(n))
                .map(|n| n.split("-aarch64").next().unwrap_or(n))
                .collect();
            names.sort_unstable();
            Err(format!(
                "Rust {channel} requested by {}; this server has {}",
                wanted.source,
                if names.is_empty() {
                    "no rustup toolchains".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        }
    }
}
