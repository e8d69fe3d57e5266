//! Build detection: how to build and start the code in a directory, shown to the user as a
//! plan (like a Nixpacks plan). First match wins: `railyard.toml` > `Procfile` (`web:`) >
//! `package.json` > `requirements.txt`/`pyproject.toml` > `Cargo.toml` > `go.mod` > a static
//! site (`index.html`). Explicit service settings override what is detected.
//!
//! Commands the user wrote (railyard.toml, Procfile, service settings) are the user's code and
//! run with `sh -c` as such. Commands Railyard chooses are argv lists: none of Railyard's own
//! values is ever interpolated into a shell.

use std::{fs, path::Path};

use railyard_shared::deployments::{Plan, ServiceSettings, Step};
use serde::Deserialize;

fn argv(parts: &[&str]) -> Step {
    Step::Argv(parts.iter().map(|p| (*p).to_owned()).collect())
}

/// Why no plan could be made; the message is shown on the failed deployment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error("railyard.toml is invalid: {0}")]
    Config(String),
    #[error("{0}")]
    Unsupported(String),
}

/// `railyard.toml`: everything optional; unknown keys are an error (a typo must not be
/// silently ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RailyardToml {
    build: Option<String>,
    start: Option<String>,
    health_check: Option<String>,
    root: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct PackageJson {
    main: Option<String>,
    #[serde(default)]
    scripts: std::collections::HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct CargoToml {
    package: Option<CargoPackage>,
    #[serde(default)]
    bin: Vec<CargoBin>,
}

#[derive(Debug, Default, Deserialize)]
struct CargoPackage {
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct CargoBin {
    name: String,
}

/// A relative path inside the source: no absolute paths, no `..`.
fn safe_relative(path: &str) -> Result<String, DetectError> {
    let trimmed = path.trim().trim_start_matches("./").trim_end_matches('/');
    let ok = !trimmed.starts_with('/')
        && Path::new(trimmed)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        && !trimmed.chars().any(char::is_control);
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(DetectError::Config(format!(
            "`root` must be a path inside the repository, got {path:?}"
        )))
    }
}

/// The `web:` command of a Procfile.
fn procfile_web(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("web:").map(|cmd| cmd.trim().to_owned()))
        .filter(|c| !c.is_empty())
}

/// Detects the plan for the source checked out at `dir`; the service's explicit `settings`
/// override what is found (root directory, build and start commands, health check).
pub fn detect(dir: &Path, settings: &ServiceSettings) -> Result<Plan, DetectError> {
    let config: RailyardToml = match fs::read_to_string(dir.join("railyard.toml")) {
        Ok(text) => toml::from_str(&text).map_err(|err| DetectError::Config(err.message().to_owned()))?,
        Err(_) => RailyardToml::default(),
    };
    let root = match settings.root_dir.as_ref().or(config.root.as_ref()) {
        Some(root) => safe_relative(root)?,
        None => String::new(),
    };
    let base = if root.is_empty() {
        dir.to_owned()
    } else {
        dir.join(&root)
    };
    if !base.is_dir() {
        return Err(DetectError::Config(format!(
            "`root` {root:?} is not a directory in the repository"
        )));
    }
    let mut plan = match detect_language(&base) {
        // Explicit commands need nothing to be detected.
        Err(DetectError::Unsupported(_)) if settings.start_command.is_some() || config.start.is_some() => {
            Plan {
                provider: "settings".into(),
                build: Vec::new(),
                start: None,
                health_check: None,
                root: String::new(),
            }
        }
        other => other?,
    };
    plan.root = root;
    if dir.join("railyard.toml").is_file() {
        plan.provider = if plan.provider == "settings" {
            "railyard.toml".to_owned()
        } else {
            format!("railyard.toml ({})", plan.provider)
        };
        if let Some(build) = config.build {
            plan.build = vec![Step::Shell(build)];
        }
        if let Some(start) = config.start {
            plan.start = Some(Step::Shell(start));
        }
        if let Some(path) = &config.health_check
            && !railyard_shared::deployments::valid_health_path(path)
        {
            return Err(DetectError::Config(format!(
                "health_check {path:?} must be a path such as /health (printable ASCII, no spaces, naming no host)"
            )));
        }
        plan.health_check = config.health_check;
    }
    if let Some(build) = &settings.build_command {
        plan.build = vec![Step::Shell(build.clone())];
    }
    if let Some(start) = &settings.start_command {
        plan.start = Some(Step::Shell(start.clone()));
    }
    if let Some(path) = &settings.health_check_path {
        plan.health_check = Some(path.clone());
    }
    if plan.start.is_none() && plan.provider != "static" && !plan.provider.ends_with("(static)") {
        return Err(DetectError::Unsupported(format!(
            "found a {} project but no way to start it: add a Procfile with `web: <command>` or `start` in railyard.toml",
            plan.provider
        )));
    }
    Ok(plan)
}

fn detect_language(dir: &Path) -> Result<Plan, DetectError> {
    let has = |name: &str| dir.join(name).is_file();
    let procfile = fs::read_to_string(dir.join("Procfile"))
        .ok()
        .and_then(|text| procfile_web(&text));
    let plan = |provider: &str, build: Vec<Step>, start: Option<Step>| Plan {
        provider: provider.to_owned(),
        build,
        start: procfile.clone().map(Step::Shell).or(start),
        health_check: None,
        root: String::new(),
    };
    if has("package.json") {
        let text = fs::read_to_string(dir.join("package.json")).unwrap_or_default();
        let package: PackageJson = serde_json::from_str(&text)
            .map_err(|err| DetectError::Config(format!("package.json is not valid JSON: {err}")))?;
        let mut build = vec![if has("package-lock.json") {
            argv(&["npm", "ci"])
        } else {
            argv(&["npm", "install"])
        }];
        if package.scripts.contains_key("build") {
            build.push(argv(&["npm", "run", "build"]));
        }
        let start = if package.scripts.contains_key("start") {
            Some(argv(&["npm", "start"]))
        } else {
            let main = package.main.unwrap_or_else(|| "index.js".to_owned());
            has(&main).then(|| Step::Argv(vec!["node".to_owned(), "--".to_owned(), main]))
        };
        return Ok(plan("node", build, start));
    }
    if has("requirements.txt") || has("pyproject.toml") {
        let mut build = vec![argv(&["python3", "-m", "venv", ".venv"])];
        build.push(if has("requirements.txt") {
            argv(&[".venv/bin/pip", "install", "--no-input", "-r", "requirements.txt"])
        } else {
            argv(&[".venv/bin/pip", "install", "--no-input", "."])
        });
        let start = ["main.py", "app.py", "server.py"]
            .into_iter()
            .find(|f| has(f))
            .map(|f| Step::Argv(vec![".venv/bin/python".to_owned(), f.to_owned()]));
        return Ok(plan("python", build, start));
    }
    if has("Cargo.toml") {
        let text = fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let cargo: CargoToml = toml::from_str(&text)
            .map_err(|err| DetectError::Config(format!("Cargo.toml is invalid: {}", err.message())))?;
        let binary = cargo
            .bin
            .first()
            .map(|b| b.name.clone())
            .or(cargo.package.map(|p| p.name));
        let start = binary
            .filter(|name| {
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
            .map(|name| Step::Argv(vec![format!("target/release/{name}")]));
        return Ok(plan(
            "rust",
            vec![argv(&["cargo", "build", "--release", "--locked"])],
            start,
        ));
    }
    if has("go.mod") {
        let build = vec![argv(&["go", "build", "-o", ".railyard-app", "."])];
        return Ok(plan("go", build, Some(argv(&["./.railyard-app"]))));
    }
    if let Some(web) = procfile {
        return Ok(Plan {
            provider: "procfile".into(),
            build: Vec::new(),
            start: Some(Step::Shell(web)),
            health_check: None,
            root: String::new(),
        });
    }
    if has("index.html") {
        return Ok(Plan {
            provider: "static".into(),
            build: Vec::new(),
            start: None,
            health_check: None,
            root: String::new(),
        });
    }
    Err(DetectError::Unsupported(
        "could not tell how to build this code: add railyard.toml, a Procfile, package.json, requirements.txt, \
         pyproject.toml, Cargo.toml, go.mod or index.html"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    fn detect_default(dir: &Path) -> Result<Plan, DetectError> {
        detect(dir, &ServiceSettings::default())
    }

    #[test]
    fn a_health_check_naming_another_host_is_refused() {
        for bad in ["@127.0.0.1:31999/steal", "//evil.example/x", "health", "/a b"] {
            let dir = repo(&[(
                "railyard.toml",
                &format!("start = \"./web\"\nhealth_check = {bad:?}\n"),
            )]);
            let err = detect_default(dir.path()).unwrap_err();
            assert!(err.to_string().contains("health_check"), "{bad}: {err}");
        }
        let dir = repo(&[(
            "railyard.toml",
            "start = \"./web\"\nhealth_check = \"/ready?deep=1\"\n",
        )]);
        assert_eq!(
            detect_default(dir.path()).unwrap().health_check.as_deref(),
            Some("/ready?deep=1")
        );
    }

    fn shell(cmd: &str) -> Option<Step> {
        Some(Step::Shell(cmd.into()))
    }

    #[test]
    fn node() {
        let dir = repo(&[
            (
                "package.json",
                r#"{"scripts":{"build":"vite build","start":"node server.js"}}"#,
            ),
            ("package-lock.json", "{}"),
        ]);
        let plan = detect(dir.path(), &ServiceSettings::default()).unwrap();
        assert_eq!(plan.provider, "node");
        assert_eq!(plan.build, [argv(&["npm", "ci"]), argv(&["npm", "run", "build"])]);
        assert_eq!(plan.start, Some(argv(&["npm", "start"])));

        let dir = repo(&[("package.json", r#"{"main":"app.js"}"#), ("app.js", "")]);
        let plan = detect(dir.path(), &ServiceSettings::default()).unwrap();
        assert_eq!(plan.build, [argv(&["npm", "install"])]);
        assert_eq!(plan.start, Some(argv(&["node", "--", "app.js"])));
    }

    #[test]
    fn python_rust_go_static() {
        let plan = detect_default(repo(&[("requirements.txt", "flask"), ("app.py", "")]).path()).unwrap();
        assert_eq!((plan.provider.as_str(), plan.build.len()), ("python", 2));
        assert_eq!(plan.start, Some(argv(&[".venv/bin/python", "app.py"])));

        let plan = detect_default(
            repo(&[(
                "Cargo.toml",
                "[package]\nname = \"shop-api\"\nversion = \"0.1.0\"\n",
            )])
            .path(),
        )
        .unwrap();
        assert_eq!(plan.start, Some(argv(&["target/release/shop-api"])));

        let plan = detect_default(repo(&[("go.mod", "module x")]).path()).unwrap();
        assert_eq!(plan.provider, "go");

        let plan = detect_default(repo(&[("index.html", "<h1>hi</h1>")]).path()).unwrap();
        assert_eq!((plan.provider.as_str(), plan.start), ("static", None));
    }

    #[test]
    fn procfile_and_railyard_toml_take_precedence() {
        let plan = detect_default(
            repo(&[
                (
                    "Procfile",
                    "release: migrate\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n",
                ),
                ("requirements.txt", ""),
            ])
            .path(),
        )
        .unwrap();
        assert_eq!(plan.provider, "python");
        assert_eq!(plan.start, shell("gunicorn app:app --bind 0.0.0.0:$PORT"));

        let dir = repo(&[
            (
                "railyard.toml",
                "build = \"make\"\nstart = \"./bin/web\"\nhealth_check = \"/healthz\"\nroot = \"web\"\n",
            ),
            ("web/package.json", "{}"),
            ("Procfile", "web: ignored\n"),
        ]);
        let plan = detect(dir.path(), &ServiceSettings::default()).unwrap();
        assert_eq!(plan.provider, "railyard.toml (node)");
        assert_eq!(plan.build, [Step::Shell("make".into())]);
        assert_eq!(plan.start, shell("./bin/web"));
        assert_eq!(plan.health_check.as_deref(), Some("/healthz"));
        assert_eq!(plan.root, "web");
    }

    #[test]
    fn service_settings_override_detection() {
        let dir = repo(&[
            ("railyard.toml", "build = \"make\"\nroot = \"web\"\n"),
            ("web/package.json", "{}"),
            ("api/Procfile", "web: ./api\n"),
        ]);
        let settings = ServiceSettings {
            root_dir: Some("api".into()),
            build_command: Some("make api".into()),
            health_check_path: Some("/up".into()),
            ..ServiceSettings::default()
        };
        let plan = detect(dir.path(), &settings).unwrap();
        assert_eq!(plan.root, "api");
        assert_eq!(plan.build, [Step::Shell("make api".into())]);
        assert_eq!(plan.start, shell("./api"));
        assert_eq!(plan.health_check.as_deref(), Some("/up"));

        let bare = repo(&[("README.md", "no markers")]);
        let settings = ServiceSettings {
            start_command: Some("./run".into()),
            ..ServiceSettings::default()
        };
        let plan = detect(bare.path(), &settings).unwrap();
        assert_eq!((plan.provider.as_str(), plan.start), ("settings", shell("./run")));
        let escape = ServiceSettings {
            root_dir: Some("../..".into()),
            ..ServiceSettings::default()
        };
        assert!(matches!(
            detect(bare.path(), &escape),
            Err(DetectError::Config(_))
        ));
    }

    #[test]
    fn clear_errors() {
        let err = detect_default(repo(&[("railyard.toml", "biuld = \"make\"\n")]).path()).unwrap_err();
        assert!(
            matches!(err, DetectError::Config(ref m) if m.contains("biuld")),
            "{err}"
        );
        for root in ["../outside", "/etc", "a/../../b"] {
            let err =
                detect_default(repo(&[("railyard.toml", &format!("root = {root:?}\n"))]).path()).unwrap_err();
            assert!(matches!(err, DetectError::Config(_)), "{root}: {err}");
        }
        let err = detect_default(repo(&[("README.md", "hello")]).path()).unwrap_err();
        assert!(err.to_string().contains("could not tell how to build"), "{err}");
        let err = detect_default(repo(&[("requirements.txt", "flask")]).path()).unwrap_err();
        assert!(err.to_string().contains("no way to start it"), "{err}");
        let err = detect_default(repo(&[("package.json", "{not json")]).path()).unwrap_err();
        assert!(err.to_string().contains("package.json"), "{err}");
    }
}
