//! Python code: installed into `.venv` by what its lockfile names (uv for `uv.lock`,
//! poetry for `poetry.lock`, both installed for the build from PyPI; pip for
//! `requirements.txt`, and for a `pyproject.toml` without a lock its dependencies, not
//! the project itself), then started as its framework expects: Django with `collectstatic`
//! at build, `gunicorn <project>.wsgi`, and `migrate` offered as the release step; Flask
//! with `gunicorn module:app`; FastAPI with `uvicorn module:app` on `$PORT`; else its
//! `main.py`/`app.py`/`server.py`.

use std::{collections::BTreeSet, fs, path::Path};

use railyard_shared::deployments::{Plan, Step};

use super::{DetectError, argv};

/// Where the build's own tools (uv, poetry) are installed, beside the app's `.venv`.
const TOOLS: &str = ".railyard-tools";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Uv,
    Poetry,
    Pip,
}

/// Dependency names (lower case, `_` as `-`) of requirements lines or PEP 508 strings.
fn names<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    lines
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('-'))
        .filter_map(|l| {
            let end = l
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
                .unwrap_or(l.len());
            let name = l[..end].to_ascii_lowercase().replace('_', "-");
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// `[project].dependencies` of a pyproject.toml (and poetry's own table's names).
fn pyproject_dependencies(text: &str) -> Result<(Vec<String>, BTreeSet<String>), DetectError> {
    let doc: toml::Table = toml::from_str(text)
        .map_err(|err| DetectError::Config(format!("pyproject.toml is invalid: {}", err.message())))?;
    let listed: Vec<String> = doc
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array())
        .map(|deps| {
            deps.iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut all = names(listed.iter().map(String::as_str));
    if let Some(poetry) = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_table())
    {
        all.extend(names(poetry.keys().map(String::as_str)));
    }
    Ok((listed, all))
}

/// The `module:variable` of a module-level `name = Flask(...)` (or `FastAPI(`), searched in
/// the usual files; a Flask factory `create_app` gives `module:create_app()`.
fn find_app(dir: &Path, constructor: &str) -> Option<String> {
    let candidates = [
        "app.py",
        "main.py",
        "wsgi.py",
        "asgi.py",
        "server.py",
        "application.py",
        "api.py",
        "app/__init__.py",
        "app/main.py",
        "src/main.py",
        "src/app.py",
    ];
    for file in candidates {
        let Ok(text) = fs::read_to_string(dir.join(file)) else {
            continue;
        };
        let module = file
            .trim_end_matches(".py")
            .trim_end_matches("/__init__")
            .replace('/', ".");
        for line in text.lines() {
            if line.starts_with(char::is_whitespace) {
                continue;
            }
            let Some((left, right)) = line.split_once('=') else {
                continue;
            };
            let name = left.split(':').next().unwrap_or_default().trim();
            let right = right.trim_start();
            let calls = right.starts_with(&format!("{constructor}("))
                || right.starts_with(&format!("{}.{constructor}(", constructor.to_ascii_lowercase()));
            if calls && identifier(name) && !right.starts_with('=') {
                return Some(format!("{module}:{name}"));
            }
        }
        if constructor == "Flask" && text.lines().any(|l| l.starts_with("def create_app(")) {
            return Some(format!("{module}:create_app()"));
        }
    }
    None
}

fn identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Django's project package: the directory beside `manage.py` with `wsgi.py` and settings.
fn django_project(dir: &Path) -> Option<String> {
    let mut found: Vec<String> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().join("wsgi.py").is_file())
        .filter(|e| e.path().join("settings.py").is_file() || e.path().join("settings").is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| identifier(n))
        .collect();
    found.sort();
    found.into_iter().next()
}

fn settings_text(dir: &Path, project: &str) -> String {
    let mut text = fs::read_to_string(dir.join(project).join("settings.py")).unwrap_or_default();
    if let Ok(entries) = fs::read_dir(dir.join(project).join("settings")) {
        for entry in entries.flatten() {
            text.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    text
}

pub fn plan(dir: &Path) -> Result<Plan, DetectError> {
    let has = |name: &str| dir.join(name).is_file();
    let requirements = fs::read_to_string(dir.join("requirements.txt")).ok();
    let (listed, mut deps) = match fs::read_to_string(dir.join("pyproject.toml")) {
        Ok(text) => pyproject_dependencies(&text)?,
        Err(_) => (Vec::new(), BTreeSet::new()),
    };
    if let Some(text) = &requirements {
        deps.extend(names(text.lines()));
    }
    let manager = if has("uv.lock") {
        Manager::Uv
    } else if has("poetry.lock") {
        Manager::Poetry
    } else {
        Manager::Pip
    };
    let mut build = Vec::new();
    let mut provider = String::from("python");
    match manager {
        Manager::Uv => {
            provider.push_str(" (uv)");
            build.push(argv(&["python3", "-m", "venv", TOOLS]));
            build.push(argv(&[
                &format!("{TOOLS}/bin/pip"),
                "install",
                "--no-input",
                "uv",
            ]));
            build.push(argv(&[
                &format!("{TOOLS}/bin/uv"),
                "sync",
                "--frozen",
                "--no-dev",
                "--no-install-project",
                "--python",
                "python3",
            ]));
        }
        Manager::Poetry => {
            provider.push_str(" (poetry)");
            build.push(argv(&["python3", "-m", "venv", TOOLS]));
            build.push(argv(&[
                &format!("{TOOLS}/bin/pip"),
                "install",
                "--no-input",
                "poetry",
            ]));
            build.push(argv(&[
                "env",
                "POETRY_VIRTUALENVS_IN_PROJECT=true",
                "POETRY_VIRTUALENVS_PREFER_ACTIVE_PYTHON=true",
                &format!("{TOOLS}/bin/poetry"),
                "install",
                "--only",
                "main",
                "--no-root",
                "--no-interaction",
            ]));
        }
        Manager::Pip => {
            build.push(argv(&["python3", "-m", "venv", ".venv"]));
            if requirements.is_some() {
                build.push(argv(&[
                    ".venv/bin/pip",
                    "install",
                    "--no-input",
                    "-r",
                    "requirements.txt",
                ]));
            } else {
                // The project's dependencies, not the project: it runs from its directory.
                let safe: Vec<&str> = listed
                    .iter()
                    .map(String::as_str)
                    .filter(|d| !d.starts_with('-') && !d.chars().any(char::is_control))
                    .collect();
                if !safe.is_empty() {
                    let mut parts = vec![".venv/bin/pip", "install", "--no-input", "--"];
                    parts.extend(safe);
                    build.push(argv(&parts));
                }
            }
        }
    }
    // Packages the start command needs that the app does not list.
    let add = |build: &mut Vec<Step>, package: &str| {
        build.push(match manager {
            Manager::Uv => argv(&[
                &format!("{TOOLS}/bin/uv"),
                "pip",
                "install",
                "--python",
                ".venv/bin/python",
                package,
            ]),
            Manager::Poetry | Manager::Pip => {
                argv(&[".venv/bin/python", "-m", "pip", "install", "--no-input", package])
            }
        });
    };

    let mut release = None;
    // Steps after the dependencies are installed (those before are skipped when the
    // build reuses the last `.venv`).
    let mut after_install = Vec::new();
    let start = if deps.contains("django") && has("manage.py") {
        let project = django_project(dir);
        provider.push_str(", Django");
        if settings_text(dir, project.as_deref().unwrap_or_default()).contains("STATIC_ROOT") {
            after_install.push(argv(&[
                ".venv/bin/python",
                "manage.py",
                "collectstatic",
                "--noinput",
            ]));
        }
        release = Some(argv(&[".venv/bin/python", "manage.py", "migrate", "--noinput"]));
        project.map(|project| {
            if !deps.contains("gunicorn") {
                add(&mut build, "gunicorn");
            }
            // gunicorn binds 0.0.0.0:$PORT when PORT is set.
            Step::Argv(vec![".venv/bin/gunicorn".to_owned(), format!("{project}.wsgi")])
        })
    } else if deps.contains("fastapi")
        && let Some(app) = find_app(dir, "FastAPI")
    {
        provider.push_str(", FastAPI");
        if !deps.contains("uvicorn") {
            add(&mut build, "uvicorn");
        }
        Some(uvicorn(&app))
    } else if deps.contains("flask")
        && let Some(app) = find_app(dir, "Flask")
    {
        provider.push_str(", Flask");
        if !deps.contains("gunicorn") {
            add(&mut build, "gunicorn");
        }
        Some(Step::Argv(vec![".venv/bin/gunicorn".to_owned(), app]))
    } else {
        ["main.py", "app.py", "server.py"]
            .into_iter()
            .find(|f| has(f))
            .map(|f| Step::Argv(vec![".venv/bin/python".to_owned(), f.to_owned()]))
    };
    let install_steps = build.len();
    build.extend(after_install);
    let mut plan = Plan::new(&provider, build, start);
    plan.release = release;
    plan.install_steps = install_steps;
    Ok(plan)
}

/// `uvicorn module:app` on `$PORT` on every interface. The module name is the app's (an
/// identifier path checked above), passed as an argument of the shell line, never part of it.
fn uvicorn(app: &str) -> Step {
    argv(&[
        "sh",
        "-c",
        "exec .venv/bin/uvicorn \"$1\" --host 0.0.0.0 --port \"$PORT\"",
        "uvicorn",
        app,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_names_are_normalised() {
        let got = names(
            [
                "Flask>=3",
                "gunicorn==22.0",
                "# c",
                "-r other.txt",
                "Django_Extensions",
            ]
            .into_iter(),
        );
        let want: BTreeSet<String> = ["flask", "gunicorn", "django-extensions"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(got, want);
    }
}
