//! What the code says about itself beyond its language: `railyard.toml`, and the other
//! platforms' files it may have been written for (`railway.json`/`railway.toml`,
//! `nixpacks.toml`, a `Procfile`, `app.json`). Each command found says where it came from;
//! what is found and not used is named in the plan's notes (and so in the build log).
//! A file that cannot be read as what it claims to be fails detection, naming it.

use std::{fs, path::Path};

use serde::Deserialize;

use super::DetectError;

/// `railyard.toml`: everything optional; unknown keys are an error (a typo must not be
/// silently ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RailyardToml {
    pub build: Option<String>,
    pub start: Option<String>,
    pub health_check: Option<String>,
    pub root: Option<String>,
    /// A static site's directory after the build (`dist`), relative to `root`.
    pub static_dir: Option<String>,
    /// A single-page app: unknown paths get `index.html`.
    pub spa: Option<bool>,
    pub release: Option<String>,
}

impl RailyardToml {
    pub fn read(dir: &Path) -> Result<Option<Self>, DetectError> {
        match fs::read_to_string(dir.join("railyard.toml")) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|err| DetectError::Config(format!("railyard.toml is invalid: {}", err.message()))),
            Err(_) => Ok(None),
        }
    }
}

/// A command and the file (and key) it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub value: String,
    pub from: String,
}

fn found(value: Option<String>, from: &str) -> Option<Found> {
    value.filter(|v| !v.trim().is_empty()).map(|value| Found {
        value,
        from: from.to_owned(),
    })
}

/// What the other platforms' files declare, first one wins per field: railway, then
/// nixpacks, then the Procfile.
#[derive(Debug, Default)]
pub struct Declared {
    pub build: Option<Found>,
    pub start: Option<Found>,
    pub health_check: Option<Found>,
    pub release: Option<Found>,
    pub notes: Vec<String>,
}

impl Declared {
    fn take(&mut self, other: Declared) {
        self.build = self.build.take().or(other.build);
        self.start = self.start.take().or(other.start);
        self.health_check = self.health_check.take().or(other.health_check);
        self.release = self.release.take().or(other.release);
        self.notes.extend(other.notes);
    }
}

/// Reads the other platforms' files in `dir` (the plan's root).
pub fn read(dir: &Path) -> Result<Declared, DetectError> {
    let mut declared = Declared::default();
    declared.take(railway(dir)?);
    declared.take(nixpacks(dir)?);
    declared.take(procfile(dir));
    declared.take(app_json(dir)?);
    Ok(declared)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Railway {
    #[serde(default)]
    build: RailwayBuild,
    #[serde(default)]
    deploy: RailwayDeploy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RailwayBuild {
    build_command: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RailwayDeploy {
    start_command: Option<String>,
    healthcheck_path: Option<String>,
    pre_deploy_command: Option<serde_json::Value>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

fn railway(dir: &Path) -> Result<Declared, DetectError> {
    let (file, parsed): (&str, Railway) = if let Ok(text) = fs::read_to_string(dir.join("railway.json")) {
        let parsed = serde_json::from_str(&text)
            .map_err(|err| DetectError::Config(format!("railway.json is not valid JSON: {err}")))?;
        ("railway.json", parsed)
    } else if let Ok(text) = fs::read_to_string(dir.join("railway.toml")) {
        let parsed = toml::from_str(&text)
            .map_err(|err| DetectError::Config(format!("railway.toml is invalid: {}", err.message())))?;
        ("railway.toml", parsed)
    } else {
        return Ok(Declared::default());
    };
    let release = match parsed.deploy.pre_deploy_command {
        Some(serde_json::Value::String(cmd)) => Some(cmd),
        Some(serde_json::Value::Array(cmds)) => Some(
            cmds.iter()
                .filter_map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" && "),
        ),
        _ => None,
    };
    let mut notes = Vec::new();
    let mut unused: Vec<String> = parsed
        .build
        .other
        .keys()
        .filter(|k| k.as_str() != "builder")
        .map(|k| format!("build.{k}"))
        .chain(parsed.deploy.other.keys().map(|k| format!("deploy.{k}")))
        .collect();
    unused.retain(|k| k != "$schema");
    if !unused.is_empty() {
        notes.push(format!("{file}: not used: {}", unused.join(", ")));
    }
    Ok(Declared {
        build: found(parsed.build.build_command, &format!("{file} build.buildCommand")),
        start: found(
            parsed.deploy.start_command,
            &format!("{file} deploy.startCommand"),
        ),
        health_check: found(
            parsed.deploy.healthcheck_path,
            &format!("{file} deploy.healthcheckPath"),
        ),
        release: found(release, &format!("{file} deploy.preDeployCommand")),
        notes,
    })
}

#[derive(Debug, Default, Deserialize)]
struct Nixpacks {
    start: Option<NixpacksStart>,
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
struct NixpacksStart {
    cmd: Option<String>,
}

fn nixpacks(dir: &Path) -> Result<Declared, DetectError> {
    let Ok(text) = fs::read_to_string(dir.join("nixpacks.toml")) else {
        return Ok(Declared::default());
    };
    let parsed: Nixpacks = toml::from_str(&text)
        .map_err(|err| DetectError::Config(format!("nixpacks.toml is invalid: {}", err.message())))?;
    let mut notes = Vec::new();
    if !parsed.other.is_empty() {
        let keys: Vec<&str> = parsed.other.keys().map(String::as_str).collect();
        notes.push(format!("nixpacks.toml: not used: {}", keys.join(", ")));
    }
    Ok(Declared {
        start: found(parsed.start.and_then(|s| s.cmd), "nixpacks.toml start.cmd"),
        notes,
        ..Declared::default()
    })
}

/// A Procfile's processes: `web` starts the app, `release` is its release step; others
/// are named as not run.
fn procfile(dir: &Path) -> Declared {
    let Ok(text) = fs::read_to_string(dir.join("Procfile")) else {
        return Declared::default();
    };
    let mut declared = Declared::default();
    let mut others = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((name, command)) = line.split_once(':') else {
            continue;
        };
        let (name, command) = (name.trim(), command.trim().to_owned());
        match name {
            "web" if declared.start.is_none() => declared.start = found(Some(command), "Procfile web"),
            "release" => declared.release = found(Some(command), "Procfile release"),
            _ if !name.is_empty() && !name.contains(' ') => others.push(name.to_owned()),
            _ => {}
        }
    }
    if !others.is_empty() {
        declared.notes.push(format!(
            "Procfile: not run: {} (only `web` runs; other process types are not supported yet)",
            others.join(", ")
        ));
    }
    declared
}

/// Heroku's `app.json`: its `scripts` (`postdeploy`, …) are named, not run.
fn app_json(dir: &Path) -> Result<Declared, DetectError> {
    let Ok(text) = fs::read_to_string(dir.join("app.json")) else {
        return Ok(Declared::default());
    };
    let parsed: serde_json::Value = serde_json::from_str(&text)
        .map_err(|err| DetectError::Config(format!("app.json is not valid JSON: {err}")))?;
    let mut declared = Declared::default();
    if let Some(scripts) = parsed.get("scripts").and_then(|s| s.as_object())
        && !scripts.is_empty()
    {
        let names: Vec<&str> = scripts.keys().map(String::as_str).collect();
        declared
            .notes
            .push(format!("app.json: not run: scripts {}", names.join(", ")));
    }
    Ok(declared)
}
