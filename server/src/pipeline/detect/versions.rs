//! The language version code asks for, read where each ecosystem writes it. The first file
//! found wins; a request that cannot be parsed fails detection naming the file.

use std::{fs, path::Path};

use railyard_shared::deployments::Toolchain;

use super::{DetectError, node::PackageJson};
use crate::pipeline::toolchain::{
    python,
    spec::{NodeRange, numbers},
};

fn wanted(name: &str, requested: &str, source: &str) -> Toolchain {
    Toolchain {
        name: name.to_owned(),
        requested: requested.trim().to_owned(),
        source: source.to_owned(),
        version: None,
        bin: None,
    }
}

/// The first non-empty, non-comment line of a version file.
fn first_line(dir: &Path, file: &str) -> Option<String> {
    let text = fs::read_to_string(dir.join(file)).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
}

/// The toolchains a plan of `language` (`node`, `python`, `go`, `rust`) asks for in `dir`.
pub fn requested(dir: &Path, language: &str) -> Result<Vec<Toolchain>, DetectError> {
    let bad = |source: &str, why: String| DetectError::Config(format!("{source}: {why}"));
    let found = match language {
        "node" => {
            let engines = PackageJson::read(dir)?
                .engines
                .get("node")
                .and_then(|v| v.as_str().map(str::to_owned));
            let found = [".node-version", ".nvmrc"]
                .into_iter()
                .find_map(|f| first_line(dir, f).map(|v| wanted("node", &v, f)))
                .or_else(|| engines.map(|v| wanted("node", &v, "package.json engines.node")));
            if let Some(t) = &found {
                NodeRange::parse(&t.requested).map_err(|e| bad(&t.source, e))?;
            }
            found
        }
        "python" => {
            let pyproject = fs::read_to_string(dir.join("pyproject.toml"))
                .ok()
                .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
                .and_then(|doc| {
                    doc.get("project")?
                        .get("requires-python")?
                        .as_str()
                        .map(str::to_owned)
                });
            let found = first_line(dir, ".python-version")
                .map(|v| wanted("python", &v, ".python-version"))
                .or_else(|| first_line(dir, "runtime.txt").map(|v| wanted("python", &v, "runtime.txt")))
                .or_else(|| pyproject.map(|v| wanted("python", &v, "pyproject.toml requires-python")));
            if let Some(t) = &found {
                python::parse(t).map_err(|e| bad(&t.source, e))?;
            }
            found
        }
        "go" => {
            let text = fs::read_to_string(dir.join("go.mod")).unwrap_or_default();
            let line = |key: &str| {
                text.lines()
                    .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
            };
            let found = line("go ").map(|v| wanted("go", &v, "go.mod"));
            if let Some(t) = &found
                && numbers(&t.requested).is_none()
            {
                return Err(bad("go.mod", format!("{:?} is not a Go version", t.requested)));
            }
            found
        }
        "rust" => {
            let toml_file = fs::read_to_string(dir.join("rust-toolchain.toml"))
                .ok()
                .map(|t| ("rust-toolchain.toml", t));
            let plain = fs::read_to_string(dir.join("rust-toolchain"))
                .ok()
                .map(|t| ("rust-toolchain", t));
            match toml_file.or(plain) {
                None => None,
                Some((file, text)) => {
                    let channel = match toml::from_str::<toml::Table>(&text) {
                        Ok(doc) => doc
                            .get("toolchain")
                            .and_then(|t| t.get("channel"))
                            .and_then(|c| c.as_str())
                            .map(str::to_owned),
                        Err(_) if file == "rust-toolchain" => first_line(dir, file),
                        Err(err) => return Err(bad(file, err.message().to_owned())),
                    };
                    let Some(channel) = channel else {
                        return Ok(Vec::new());
                    };
                    let ok = !channel.is_empty()
                        && channel.len() <= 64
                        && channel
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
                    if !ok {
                        return Err(bad(file, format!("{channel:?} is not a toolchain channel")));
                    }
                    Some(wanted("rust", &channel, file))
                }
            }
        }
        _ => None,
    };
    Ok(found.into_iter().collect())
}
