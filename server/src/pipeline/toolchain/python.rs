//! Python: the interpreter a plan asks for, chosen among the host's (pyenv's versions under
//! `PYENV_ROOT`, and the system's `python3.X` in `/usr/bin` and `/usr/local/bin`). The
//! newest that matches wins; with none, the request fails naming what is here.

use std::path::{Path, PathBuf};

use railyard_shared::deployments::Toolchain;

use super::spec::{self, PythonSpec};

/// An interpreter on this host: its version and its `bin` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    pub version: Vec<u64>,
    pub bin: PathBuf,
}

impl Interpreter {
    pub fn shown(&self) -> String {
        self.version
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// `python3.12` in its `bin`: the program a build runs for `python3`.
    pub fn program(&self) -> PathBuf {
        let minor = self.version.get(1).copied().unwrap_or_default();
        self.bin.join(format!("python{}.{minor}", self.version[0]))
    }
}

/// The spec of a request as detection wrote it: `requires-python` takes PEP 440
/// specifiers; the version files name a version.
pub fn parse(wanted: &Toolchain) -> Result<PythonSpec, String> {
    if wanted.source.contains("requires-python") {
        PythonSpec::parse_specifiers(&wanted.requested)
    } else {
        PythonSpec::parse_version(&wanted.requested)
    }
}

/// CPython interpreters on this host, newest first.
pub fn interpreters() -> Vec<Interpreter> {
    let mut found = Vec::new();
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(versions) = pyenv.map(|root| root.join("versions"))
        && let Ok(entries) = std::fs::read_dir(&versions)
    {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(version) = spec::numbers(&name).filter(|v| v.len() >= 2) {
                let bin = entry.path().join("bin");
                let found_one = Interpreter { version, bin };
                if found_one.program().is_file() {
                    found.push(found_one);
                }
            }
        }
    }
    for dir in ["/usr/local/bin", "/usr/bin"] {
        found.extend(system_in(Path::new(dir)));
    }
    found.sort_by(|a, b| spec::compare(&b.version, &a.version));
    found
}

/// `python3.X` programs in `dir`; the full version read from the interpreter's own
/// `sys.version_info` would need running it, so the patch level is left out (the
/// minor version is what a request names).
fn system_in(dir: &Path) -> Vec<Interpreter> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = spec::numbers(name.strip_prefix("python")?).filter(|v| v.len() == 2)?;
            let path = entry.path();
            // A link to pyenv's shim (or any script) is not an interpreter.
            let real = std::fs::canonicalize(&path).ok()?;
            (real.starts_with("/usr") && real.is_file()).then(|| Interpreter {
                version,
                bin: dir.to_owned(),
            })
        })
        .collect()
}

/// Chooses the newest interpreter that matches `wanted` among `here`.
pub fn choose<'a>(
    wanted: &Toolchain,
    spec: &PythonSpec,
    here: &'a [Interpreter],
) -> Result<&'a Interpreter, String> {
    here.iter().find(|i| spec.matches(&i.version)).ok_or_else(|| {
        let mut lines: Vec<String> = here
            .iter()
            .map(|i| format!("{}.{}", i.version[0], i.version[1]))
            .collect();
        lines.sort_by(|a, b| {
            spec::compare(
                &spec::numbers(a).unwrap_or_default(),
                &spec::numbers(b).unwrap_or_default(),
            )
        });
        lines.dedup();
        format!(
            "Python {} requested by {}; this server has {}",
            wanted.requested,
            wanted.source,
            if lines.is_empty() {
                "no Python".to_owned()
            } else {
                lines.join(", ")
            }
        )
    })
}

pub fn provide(wanted: &mut Toolchain) -> Result<(), String> {
    let spec = parse(wanted)?;
    let here = interpreters();
    let chosen = choose(wanted, &spec, &here)?;
    wanted.version = Some(chosen.shown());
    // The system's interpreters are on PATH already.
    wanted.bin = (!chosen.bin.starts_with("/usr")).then(|| chosen.bin.to_string_lossy().into_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(requested: &str, source: &str) -> Toolchain {
        Toolchain {
            name: "python".into(),
            requested: requested.into(),
            source: source.into(),
            version: None,
            bin: None,
        }
    }

    #[test]
    fn the_newest_match_wins_and_a_miss_names_what_is_here() {
        let here: Vec<Interpreter> = [[3, 13, 0], [3, 12, 1], [3, 11, 7], [3, 11, 2]]
            .iter()
            .map(|v| Interpreter {
                version: v.to_vec(),
                bin: format!("/py/{}.{}.{}/bin", v[0], v[1], v[2]).into(),
            })
            .collect();
        let w = wanted(">=3.10,<3.13", "pyproject.toml requires-python");
        let chosen = choose(&w, &parse(&w).unwrap(), &here).unwrap();
        assert_eq!(chosen.shown(), "3.12.1");
        assert_eq!(chosen.program(), Path::new("/py/3.12.1/bin/python3.12"));
        let w = wanted("3.14", ".python-version");
        let err = choose(&w, &parse(&w).unwrap(), &here).unwrap_err();
        assert_eq!(
            err,
            "Python 3.14 requested by .python-version; this server has 3.11, 3.12, 3.13"
        );
    }
}
