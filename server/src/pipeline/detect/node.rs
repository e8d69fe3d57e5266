//! Node.js code: the package manager its lockfile (or `packageManager`) names (npm; pnpm
//! and yarn through corepack; bun where the host has it), its `build` script, and how it
//! starts: its `start` script, Next.js's server, its main file, or, for Vite, Create React
//! App and Astro sites without a server, the static files the build writes.

use std::{collections::HashMap, fs, path::Path};

use railyard_shared::deployments::{Plan, Step};
use serde::Deserialize;

use super::{DetectError, argv};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageJson {
    pub main: Option<String>,
    #[serde(default)]
    pub scripts: HashMap<String, String>,
    #[serde(default)]
    pub dependencies: HashMap<String, serde_json::Value>,
    #[serde(default)]
    pub dev_dependencies: HashMap<String, serde_json::Value>,
    pub package_manager: Option<String>,
    #[serde(default)]
    pub engines: HashMap<String, serde_json::Value>,
}

impl PackageJson {
    pub fn read(dir: &Path) -> Result<Self, DetectError> {
        let text = fs::read_to_string(dir.join("package.json")).unwrap_or_default();
        serde_json::from_str(&text)
            .map_err(|err| DetectError::Config(format!("package.json is not valid JSON: {err}")))
    }

    fn uses(&self, name: &str) -> bool {
        self.dependencies.contains_key(name) || self.dev_dependencies.contains_key(name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Npm,
    Pnpm,
    Yarn { berry: bool },
    Bun,
}

impl Manager {
    fn detect(dir: &Path, package: &PackageJson) -> Self {
        let has = |name: &str| dir.join(name).is_file();
        let berry = has(".yarnrc.yml")
            || fs::read_to_string(dir.join("yarn.lock")).is_ok_and(|t| t.contains("__metadata:"));
        let named = package
            .package_manager
            .as_deref()
            .and_then(|p| p.split('@').next())
            .unwrap_or_default();
        match named {
            "pnpm" => return Self::Pnpm,
            "yarn" => return Self::Yarn { berry },
            "bun" => return Self::Bun,
            "npm" => return Self::Npm,
            _ => {}
        }
        if has("pnpm-lock.yaml") {
            Self::Pnpm
        } else if has("yarn.lock") {
            Self::Yarn { berry }
        } else if has("bun.lockb") || has("bun.lock") {
            Self::Bun
        } else {
            Self::Npm
        }
    }

    /// The program and its first arguments: pnpm and yarn run through corepack, which
    /// installs the version `packageManager` names (into the build's cache).
    fn program(self) -> Vec<&'static str> {
        match self {
            Self::Npm => vec!["npm"],
            Self::Pnpm => vec!["corepack", "pnpm"],
            Self::Yarn { .. } => vec!["corepack", "yarn"],
            Self::Bun => vec!["bun"],
        }
    }

    fn install(self, dir: &Path) -> Step {
        let locked = |name: &str| dir.join(name).is_file();
        let mut parts = self.program();
        match self {
            Self::Npm if locked("package-lock.json") || locked("npm-shrinkwrap.json") => parts.push("ci"),
            Self::Npm => parts.push("install"),
            Self::Pnpm if locked("pnpm-lock.yaml") => parts.extend(["install", "--frozen-lockfile"]),
            Self::Yarn { berry: true } if locked("yarn.lock") => parts.extend(["install", "--immutable"]),
            Self::Yarn { berry: false } if locked("yarn.lock") => {
                parts.extend(["install", "--frozen-lockfile"]);
            }
            Self::Bun if locked("bun.lockb") || locked("bun.lock") => {
                parts.extend(["install", "--frozen-lockfile"]);
            }
            _ => parts.push("install"),
        }
        argv(&parts)
    }

    fn run(self, script: &str) -> Step {
        let mut parts = self.program();
        parts.extend(["run", script]);
        argv(&parts)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Npm => "npm",
            Self::Pnpm => "pnpm",
            Self::Yarn { .. } => "yarn",
            Self::Bun => "bun",
        }
    }
}

/// Static-site builders: the directory their build writes, and whether the site routes on
/// the client (so unknown paths get `index.html`).
const STATIC_BUILDERS: &[(&str, &str, &str, bool)] = &[
    ("vite", "Vite", "dist", true),
    ("react-scripts", "Create React App", "build", true),
    ("astro", "Astro", "dist", false),
];

pub fn plan(dir: &Path) -> Result<Plan, DetectError> {
    let has = |name: &str| dir.join(name).is_file();
    let package = PackageJson::read(dir)?;
    let manager = Manager::detect(dir, &package);
    if manager == Manager::Bun && super::super::toolchain::on_path("bun").is_none() {
        return Err(DetectError::Unsupported(
            "this app uses bun (bun.lockb or packageManager), and this server has no bun".into(),
        ));
    }
    let mut build = vec![manager.install(dir)];
    if package.scripts.contains_key("build") {
        build.push(manager.run("build"));
    }
    let mut provider = format!("node ({})", manager.name());
    if manager == Manager::Npm {
        provider = "node".into();
    }
    let start = if package.scripts.contains_key("start") {
        // npm runs any package manager's scripts, and needs no download at start.
        Some(argv(&["npm", "start"]))
    } else if package.uses("next") {
        Some(argv(&["node_modules/.bin/next", "start"]))
    } else {
        let main = package.main.clone().unwrap_or_else(|| "index.js".to_owned());
        let main = [main.as_str(), "server.js", "app.js"]
            .into_iter()
            .find(|m| has(m) && !m.starts_with('-'))
            .map(str::to_owned);
        main.map(|main| Step::Argv(vec!["node".to_owned(), "--".to_owned(), main]))
    };
    if package.uses("next") {
        provider = format!("{provider}, Next.js");
    }
    let mut plan = Plan::new(&provider, build, start);
    if plan.start.is_none()
        && package.scripts.contains_key("build")
        && let Some((_, name, out, spa)) = STATIC_BUILDERS.iter().find(|(dep, ..)| package.uses(dep))
        && !(package.uses("@astrojs/node"))
    {
        plan.provider = format!("{}, {name} (static)", plan.provider);
        plan.static_dir = Some((*out).to_owned());
        plan.spa = *spa;
    }
    Ok(plan)
}
