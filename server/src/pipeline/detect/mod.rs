//! Build detection: how to build and start the code in a directory, shown to the user as a
//! plan (like a Nixpacks plan). The language decides the steps ([`node`], [`python`], Rust,
//! Go, a static site with `index.html`); the files the code has for this or other platforms
//! decide its commands, first match wins: the service's settings > `railyard.toml` >
//! `railway.json`/`railway.toml` > `nixpacks.toml` > the `Procfile` ([`platforms`]). The
//! versions it asks for are read by [`versions`] and provided by the pipeline's toolchains.
//!
//! Commands the user wrote (railyard.toml, Procfile, service settings) are the user's code and
//! run with `sh -c` as such. Commands Railyard chooses are argv lists: none of Railyard's own
//! values is ever interpolated into a shell.

pub mod node;
pub mod platforms;
pub mod python;
pub mod versions;

use std::{fs, path::Path};

use railyard_shared::deployments::{Plan, ServiceSettings, Step};
use serde::Deserialize;

fn argv(parts: &[&str]) -> Step {
    Step::Argv(parts.iter().map(|p| (*p).to_owned()).collect())
}

/// Why no plan could be made; the message is shown on the failed deployment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Unsupported(String),
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
fn safe_relative(key: &str, path: &str) -> Result<String, DetectError> {
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
            "`{key}` must be a path inside the repository, got {path:?}"
        )))
    }
}

/// The language of the plan's provider (`node (pnpm), Next.js` → `node`).
fn language(provider: &str) -> &str {
    provider.split([' ', ',']).next().unwrap_or(provider)
}

/// Detects the plan for the source checked out at `dir`; the service's explicit `settings`
/// override what is found (root directory, build and start commands, health check).
pub fn detect(dir: &Path, settings: &ServiceSettings) -> Result<Plan, DetectError> {
    let config = platforms::RailyardToml::read(dir)?;
    let has_config = config.is_some();
    let config = config.unwrap_or_default();
    let root = match settings.root_dir.as_ref().or(config.root.as_ref()) {
        Some(root) => safe_relative("root", root)?,
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
    let declared = platforms::read(&base)?;
    let commanded = settings.start_command.is_some() || config.start.is_some() || declared.start.is_some();
    let mut plan = match detect_language(&base) {
        // Explicit commands need nothing to be detected.
        Err(DetectError::Unsupported(_)) if commanded => {
            let provider = match &declared.start {
                Some(found) if settings.start_command.is_none() && config.start.is_none() => found
                    .from
                    .split(' ')
                    .next()
                    .unwrap_or("settings")
                    .to_ascii_lowercase(),
                _ => "settings".to_owned(),
            };
            Plan::new(&provider, Vec::new(), None)
        }
        other => other?,
    };
    plan.root = root;
    plan.toolchains = versions::requested(&base, language(&plan.provider))?;
    plan.notes.extend(declared.notes);
    let detected_build = plan.build.clone();

    // The other platforms' files, then railyard.toml, then the service's settings.
    let from = |what: &str, found: &platforms::Found| format!("{what}: from {}", found.from);
    let mut notes = Vec::new();
    if let Some(found) = declared.build {
        notes.push(from("build", &found));
        plan.build = vec![Step::Shell(found.value)];
    }
    if let Some(found) = declared.start {
        notes.push(from("start", &found));
        plan.start = Some(Step::Shell(found.value));
    }
    if let Some(found) = declared.health_check {
        notes.push(from("health check", &found));
        plan.health_check = Some(found.value);
    }
    if let Some(found) = declared.release {
        notes.push(format!(
            "release: from {} (shown, not run: release steps are not supported yet)",
            found.from
        ));
        plan.release = Some(Step::Shell(found.value));
    }
    plan.notes.extend(notes);
    if has_config {
        let starts = config.start.is_some();
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
        if let Some(path) = config.health_check {
            plan.health_check = Some(path);
        }
        if let Some(release) = config.release {
            plan.release = Some(Step::Shell(release));
        }
        if let Some(static_dir) = &config.static_dir {
            plan.static_dir = Some(safe_relative("static_dir", static_dir)?).filter(|d| !d.is_empty());
            if !starts {
                plan.start = None;
            }
        }
        if let Some(spa) = config.spa {
            plan.spa = spa;
        }
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
    if let Some(path) = &plan.health_check
        && !railyard_shared::deployments::valid_health_path(path)
    {
        return Err(DetectError::Config(format!(
            "health_check {path:?} must be a path such as /health (printable ASCII, no spaces, naming no host)"
        )));
    }
    if plan.build != detected_build {
        // Commands of the user's own: none of them is known to install dependencies.
        plan.install_steps = 0;
    }
    let is_static = plan.provider == "static" || plan.static_dir.is_some();
    if plan.start.is_some() {
        // An app serves itself.
        plan.static_dir = None;
        plan.spa = false;
    } else if !is_static {
        return Err(DetectError::Unsupported(format!(
            "found a {} project but no way to start it: add a Procfile with `web: <command>` or `start` in railyard.toml",
            plan.provider
        )));
    }
    Ok(plan)
}

fn detect_language(dir: &Path) -> Result<Plan, DetectError> {
    let has = |name: &str| dir.join(name).is_file();
    if has("package.json") {
        return node::plan(dir);
    }
    if has("requirements.txt") || has("pyproject.toml") {
        return python::plan(dir);
    }
    let procfile_program = fs::read_to_string(dir.join("Procfile")).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix("web:"))
            .and_then(|cmd| cmd.split_whitespace().next().map(str::to_owned))
    });
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
            .filter(|name| plain_name(name))
            .map(|name| Step::Argv(vec![format!("target/release/{name}")]));
        // No `--locked`: a lockfile a little behind its manifest still builds, as on Heroku.
        return Ok(Plan::new(
            "rust",
            vec![argv(&["cargo", "build", "--release"])],
            start,
        ));
    }
    if has("go.mod") {
        // The binary goes where the Procfile runs it (`bin/web`), else `bin/<module name>`.
        let text = fs::read_to_string(dir.join("go.mod")).unwrap_or_default();
        let module = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("module "))
            .and_then(|m| m.trim().rsplit('/').next().map(str::to_owned))
            .filter(|n| plain_name(n))
            .unwrap_or_else(|| "app".to_owned());
        let output = procfile_program
            .map(|p| p.trim_start_matches("./").to_owned())
            .filter(|p| p.split('/').all(plain_name))
            .unwrap_or_else(|| format!("bin/{module}"));
        let build = vec![argv(&["go", "build", "-o", &output, "."])];
        return Ok(Plan::new(
            "go",
            build,
            Some(Step::Argv(vec![format!("./{output}")])),
        ));
    }
    if has("index.html") {
        return Ok(Plan::new("static", Vec::new(), None));
    }
    Err(DetectError::Unsupported(
        "could not tell how to build this code: add railyard.toml, a Procfile, package.json, requirements.txt, \
         pyproject.toml, Cargo.toml, go.mod or index.html"
            .into(),
    ))
}

/// A program name that is only letters, digits, `-` and `_`.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
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

    #[test]
    fn go_builds_the_binary_its_procfile_runs() {
        let plan = detect_default(
            repo(&[
                ("go.mod", "module github.com/acme/hello\n\ngo 1.22\n"),
                ("Procfile", "web: bin/hello-web --port $PORT\n"),
            ])
            .path(),
        )
        .unwrap();
        assert_eq!(plan.build, [argv(&["go", "build", "-o", "bin/hello-web", "."])]);
        assert_eq!(plan.start, shell("bin/hello-web --port $PORT"));
        assert_eq!(plan.toolchains[0].requested, "1.22");
        let plan = detect_default(repo(&[("go.mod", "module github.com/acme/hello\n")]).path()).unwrap();
        assert_eq!(plan.build, [argv(&["go", "build", "-o", "bin/hello", "."])]);
        assert_eq!(plan.start, Some(argv(&["./bin/hello"])));
    }

    #[test]
    fn python_frameworks_and_managers_are_found_from_the_code() {
        let plan = detect_default(
            repo(&[
                ("pyproject.toml", "[project]\nname = \"api\"\nrequires-python = \">=3.10\"\ndependencies = [\"fastapi>=0.110\", \"uvicorn\"]\n"),
                ("uv.lock", "version = 1\n"),
                ("app/main.py", "from fastapi import FastAPI\napp: FastAPI = FastAPI()\n"),
            ])
            .path(),
        )
        .unwrap();
        assert_eq!(plan.provider, "python (uv), FastAPI");
        assert!(plan.build.iter().any(|s| {
            s.to_string()
                .contains("uv sync --frozen --no-dev --no-install-project")
        }));
        assert!(
            plan.start
                .as_ref()
                .unwrap()
                .to_string()
                .ends_with("uvicorn app.main:app")
        );
        assert_eq!(plan.toolchains[0].source, "pyproject.toml requires-python");

        let plan = detect_default(
            repo(&[
                ("requirements.txt", "Flask==3.0\n"),
                ("wsgi.py", "from app import create_app\n"),
                ("app/__init__.py", "def create_app():\n    pass\n"),
            ])
            .path(),
        )
        .unwrap();
        assert_eq!(
            plan.start,
            Some(argv(&[".venv/bin/gunicorn", "app:create_app()"]))
        );
        assert!(
            plan.build
                .iter()
                .any(|s| s.to_string().ends_with("pip install --no-input gunicorn"))
        );

        // A pyproject without a lock installs its dependencies, not itself.
        let plan = detect_default(
            repo(&[
                (
                    "pyproject.toml",
                    "[project]\nname = \"x\"\ndependencies = [\"requests\"]\n",
                ),
                ("main.py", ""),
            ])
            .path(),
        )
        .unwrap();
        assert_eq!(
            plan.build[1],
            argv(&[".venv/bin/pip", "install", "--no-input", "--", "requests"])
        );
    }

    #[test]
    fn node_package_managers_and_static_builders() {
        let plan = detect_default(
            repo(&[
                (
                    "package.json",
                    r#"{"scripts":{"build":"vite build"},"devDependencies":{"vite":"^7"}}"#,
                ),
                ("pnpm-lock.yaml", ""),
            ])
            .path(),
        )
        .unwrap();
        assert_eq!(plan.provider, "node (pnpm), Vite (static)");
        assert_eq!(
            plan.build[0],
            argv(&["corepack", "pnpm", "install", "--frozen-lockfile"])
        );
        assert_eq!(
            (plan.static_dir.as_deref(), plan.spa, plan.start),
            (Some("dist"), true, None)
        );

        let plan = detect_default(
            repo(&[
                (
                    "package.json",
                    r#"{"scripts":{"build":"next build"},"dependencies":{"next":"15"}}"#,
                ),
                ("yarn.lock", "__metadata:\n"),
            ])
            .path(),
        )
        .unwrap();
        assert_eq!(
            plan.build[0],
            argv(&["corepack", "yarn", "install", "--immutable"])
        );
        assert_eq!(plan.start, Some(argv(&["node_modules/.bin/next", "start"])));

        let plan = detect_default(
            repo(&[
                ("package.json", r#"{"engines":{"node":">=20 <23"}}"#),
                (".nvmrc", "lts/iron\n"),
                ("index.js", ""),
            ])
            .path(),
        )
        .unwrap();
        assert_eq!(
            (
                plan.toolchains[0].requested.as_str(),
                plan.toolchains[0].source.as_str()
            ),
            ("lts/iron", ".nvmrc")
        );
    }

    #[test]
    fn other_platforms_commands_are_used_and_named() {
        let plan = detect_default(
            repo(&[
                ("railway.toml", "[build]\nbuildCommand = \"make\"\n[deploy]\nstartCommand = \"./web\"\nhealthcheckPath = \"/up\"\n"),
                ("nixpacks.toml", "[start]\ncmd = \"./ignored\"\n[phases.setup]\nnixPkgs = [\"ffmpeg\"]\n"),
                ("app.json", r#"{"scripts":{"postdeploy":"rake db:seed"}}"#),
            ])
            .path(),
        )
        .unwrap();
        assert_eq!(plan.provider, "railway.toml");
        assert_eq!(plan.build, [Step::Shell("make".into())]);
        assert_eq!(plan.start, shell("./web"));
        assert_eq!(plan.health_check.as_deref(), Some("/up"));
        let notes = plan.notes.join("\n");
        assert!(notes.contains("nixpacks.toml: not used: phases"), "{notes}");
        assert!(notes.contains("app.json: not run: scripts postdeploy"), "{notes}");
        assert!(
            notes.contains("start: from railway.toml deploy.startCommand"),
            "{notes}"
        );

        let plan = detect_default(repo(&[("nixpacks.toml", "[start]\ncmd = \"./serve\"\n")]).path()).unwrap();
        assert_eq!(plan.start, shell("./serve"));
        for (file, bad) in [
            ("railway.toml", "[deploy"),
            ("nixpacks.toml", "start = ["),
            ("app.json", "{"),
        ] {
            let err = detect_default(repo(&[(file, bad), ("index.html", "")]).path()).unwrap_err();
            assert!(err.to_string().starts_with(file), "{file}: {err}");
        }
    }

    #[test]
    fn version_requests_that_cannot_be_parsed_fail_naming_the_file() {
        for (files, expected) in [
            (
                vec![
                    ("package.json", r#"{"engines":{"node":"soon"}}"#),
                    ("index.js", ""),
                ],
                "package.json engines.node",
            ),
            (
                vec![
                    (".python-version", "pypy3.10\n"),
                    ("requirements.txt", ""),
                    ("main.py", ""),
                ],
                ".python-version",
            ),
            (
                vec![
                    ("pyproject.toml", "[project]\nrequires-python = \"~=3\"\n"),
                    ("main.py", ""),
                ],
                "pyproject.toml requires-python",
            ),
            (vec![("go.mod", "module x\ngo banana\n")], "go.mod"),
            (
                vec![
                    ("Cargo.toml", "[package]\nname = \"x\"\n"),
                    ("rust-toolchain", "stable; rm -rf /\n"),
                ],
                "rust-toolchain",
            ),
        ] {
            let err = detect_default(repo(&files).path()).unwrap_err();
            assert!(err.to_string().starts_with(expected), "{expected}: {err}");
        }
    }
}
