//! The import rules of the server's layers (docs/ARCHITECTURE.md, "Layers"), checked on
//! the source: a module may use what is below it, never what is above it, and route
//! modules share only `routes::scope` and `routes` itself. A forbidden `crate::…` (or
//! `super::…`) path anywhere in a file, in a `use` or inline, fails this test.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// Top-level modules a layer must not reach, by the layer's directory or file.
const RULES: &[(&str, &[&str])] = &[
    // Foundation: configuration, storage, crypto and the queue know no domain.
    (
        "config",
        &[
            "webhooks", "edge", "routes", "router", "serve", "pipeline", "runtime", "worker", "models",
        ],
    ),
    (
        "jobs",
        &[
            "webhooks", "routes", "router", "serve", "pipeline", "runtime", "worker", "models", "edge",
        ],
    ),
    (
        "layout.rs",
        &[
            "webhooks", "routes", "router", "serve", "pipeline", "runtime", "worker", "models", "edge",
        ],
    ),
    (
        "listener.rs",
        &[
            "webhooks", "routes", "router", "serve", "pipeline", "runtime", "worker", "models", "edge",
            "auth",
        ],
    ),
    (
        "sandbox",
        &[
            "webhooks", "routes", "router", "serve", "pipeline", "runtime", "worker", "models", "edge",
        ],
    ),
    // Models: rows, queries, the deployment state machine.
    (
        "models",
        &[
            "webhooks",
            "routes",
            "router",
            "serve",
            "pipeline",
            "runtime",
            "worker",
            "edge",
            "git_http",
            "variables",
            "logs",
            "databases",
        ],
    ),
    // Variables and log writers sit on the models.
    (
        "variables",
        &[
            "webhooks", "routes", "router", "serve", "pipeline", "runtime", "worker", "edge", "git_http",
        ],
    ),
    (
        "logs",
        &[
            "webhooks", "routes", "router", "serve", "pipeline", "runtime", "worker", "edge", "git_http",
        ],
    ),
    // Apps' databases: provisioning and backups sit on the models and variables, beside the
    // pipeline and the runtime.
    (
        "databases",
        &[
            "webhooks", "routes", "router", "serve", "pipeline", "runtime", "worker", "edge", "git_http",
            "promote", "status",
        ],
    ),
    // The pipeline builds; it knows nothing of running apps.
    (
        "pipeline",
        &[
            "webhooks", "routes", "router", "serve", "runtime", "worker", "edge", "git_http", "status",
        ],
    ),
    // The runtime runs releases; it knows nothing of building them.
    (
        "runtime",
        &[
            "webhooks", "routes", "router", "serve", "pipeline", "worker", "edge", "git_http", "status",
        ],
    ),
    // Jobs wiring strings pipeline and runtime together, below the HTTP side.
    (
        "worker",
        &["webhooks", "routes", "router", "serve", "edge", "git_http"],
    ),
    (
        "status.rs",
        &["webhooks", "routes", "router", "serve", "worker", "pipeline"],
    ),
    // The matrix and promotions read the pipeline's git history, never run anything.
    (
        "promote",
        &[
            "webhooks", "routes", "router", "serve", "worker", "runtime", "edge", "git_http",
        ],
    ),
    ("routes", &["router", "serve", "worker"]),
    // Webhooks write rows and enqueue jobs; they run nothing themselves.
    (
        "webhooks",
        &[
            "routes", "router", "serve", "worker", "runtime", "edge", "git_http",
        ],
    ),
    (
        "git_http.rs",
        &["webhooks", "routes", "router", "serve", "worker", "runtime"],
    ),
    (
        "edge",
        &[
            "webhooks", "routes", "router", "serve", "pipeline", "runtime", "worker", "models", "git_http",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable source dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/` (`routes/variables/shared.rs` → `routes::variables::shared`).
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// Strips `//` comments (doc comments mention modules freely) and string literals.
fn code_only(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every module path a file names, resolved to absolute paths from the crate root:
/// `crate::a::b`, `super::x` and the items of `use crate::{a, b::{c}}` groups.
fn paths_named(code: &str, module: &[String]) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", module[..module.len().saturating_sub(1)].to_vec()),
    ] {
        let mut start = 0;
        while let Some(i) = code[start..].find(prefix) {
            let at = start + i;
            start = at + prefix.len();
            // Not part of a longer identifier (e.g. `railyard_crate::`).
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let mut base = base.clone();
            let mut rest = &code[start..];
            // `super::super::x`
            while let Some(more) = rest.strip_prefix("super::") {
                base.pop();
                rest = more;
            }
            collect(rest, base, &mut found);
        }
    }
    found
}

/// Reads one path (or `{…}` group) at the start of `rest` below `base`.
fn collect(rest: &str, base: Vec<String>, found: &mut BTreeSet<Vec<String>>) {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    collect(&item, base.clone(), found);
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        collect(&item, base, found);
        return;
    }
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() || name == "self" {
        found.insert(base);
        return;
    }
    let mut path = base;
    path.push(name.clone());
    let after = &rest[name.len()..];
    match after.strip_prefix("::") {
        Some(more) => collect(more, path, found),
        None => {
            found.insert(path);
        }
    }
}

fn violations() -> Vec<String> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).expect("under src").to_owned();
        let module = module_of(&relative);
        let Some(top) = relative.iter().next().map(|p| p.to_string_lossy().into_owned()) else {
            continue;
        };
        let code = code_only(&std::fs::read_to_string(&file).expect("readable"));
        let named = paths_named(&code, &module);
        let forbidden = RULES
            .iter()
            .find(|(layer, _)| *layer == top)
            .map_or(&[][..], |(_, forbidden)| *forbidden);
        for path in &named {
            let Some(first) = path.first() else { continue };
            if forbidden.contains(&first.as_str()) {
                found.push(format!("{}: uses crate::{}", relative.display(), path.join("::")));
            }
            // Route modules share only `routes` itself and `routes::scope`; a domain's
            // own submodules may use their parent (`routes::variables::shared` → `variables`).
            if top == "routes" && first == "routes" && path.len() >= 2 && module.len() >= 2 {
                let target = &path[1];
                let own = &module[1];
                let shared_floor = target == "scope" || path.len() == 2 && !is_module(&root, target);
                if target != own && !shared_floor {
                    found.push(format!(
                        "{}: uses crate::{} (another route module's item: move it to routes/scope.rs or routes/mod.rs)",
                        relative.display(),
                        path.join("::")
                    ));
                }
            }
        }
    }
    found
}

/// Whether `routes/<name>` is a module (a file or a directory).
fn is_module(root: &Path, name: &str) -> bool {
    root.join("routes").join(format!("{name}.rs")).exists() || root.join("routes").join(name).is_dir()
}

#[test]
fn layers_import_only_downward() {
    let found = violations();
    assert!(found.is_empty(), "forbidden imports:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_every_form_of_path() {
    let module = vec!["routes".to_owned(), "logs".to_owned()];
    let named = paths_named(
        "use crate::{a::{b, c::D}, e};\nuse super::scope::x; let y = crate::f::g(); use super::super::z;",
        &module,
    );
    let named: BTreeSet<String> = named.into_iter().map(|p| p.join("::")).collect();
    for expected in ["a::b", "a::c::D", "e", "routes::scope::x", "f::g", "z"] {
        assert!(named.contains(expected), "{expected} not in {named:?}");
    }
}
