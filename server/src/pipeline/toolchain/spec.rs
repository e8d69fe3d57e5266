//! Version requests as code writes them, parsed when a plan is made (so a request that
//! cannot be parsed fails the deployment at detection) and matched against the versions
//! that can be had: npm's ranges for Node.js (`>=18 <21`, `^20.1`, `20.x`, `lts/iron`),
//! Python's (`3.12` in `.python-version`, `python-3.12.1` in `runtime.txt`, PEP 440
//! specifiers such as `>=3.10,<3.13` in `requires-python`), Go's minimum (`go 1.22`) and
//! rustup's channels.
//!
//! npm ranges are translated to the `semver` crate's requirements (which cargo uses): its
//! comparators are npm's, only spelled with commas, and a bare version means `^` there.

use semver::{Version, VersionReq};

/// Long-term-support names of Node.js release lines, as `.nvmrc` may name them.
const NODE_LTS: &[(&str, u64)] = &[
    ("argon", 4),
    ("boron", 6),
    ("carbon", 8),
    ("dubnium", 10),
    ("erbium", 12),
    ("fermium", 14),
    ("gallium", 16),
    ("hydrogen", 18),
    ("iron", 20),
    ("jod", 22),
    ("krypton", 24),
];

/// An npm version range: any one of its sets matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRange {
    Any,
    /// `lts/*`: any even (long-term-support) release line.
    AnyLts,
    Sets(Vec<VersionReq>),
}

impl NodeRange {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || format!("{text:?} is not a Node.js version or range");
        if text.is_empty() || text.len() > 200 || text.chars().any(char::is_control) {
            return Err(bad());
        }
        match text {
            "*" | "x" | "latest" | "node" | "current" => return Ok(Self::Any),
            "lts/*" | "lts" => return Ok(Self::AnyLts),
            _ => {}
        }
        if let Some(name) = text.strip_prefix("lts/") {
            let major = NODE_LTS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, m)| *m)
                .ok_or_else(bad)?;
            return VersionReq::parse(&format!("~{major}"))
                .map(|req| Self::Sets(vec![req]))
                .map_err(|_| bad());
        }
        let mut sets = Vec::new();
        for part in text.split("||") {
            let part = part.trim();
            let comparators = if let Some((low, high)) = part.split_once(" - ") {
                vec![
                    format!(">={}", bare(low.trim())),
                    format!("<={}", bare(high.trim())),
                ]
            } else {
                let mut tokens: Vec<String> = Vec::new();
                let mut pending_op = String::new();
                for token in part.split_whitespace() {
                    if token.chars().all(|c| "<>=~^".contains(c)) {
                        pending_op.push_str(token);
                        continue;
                    }
                    let op_len = token.find(|c: char| !"<>=~^".contains(c)).unwrap_or(token.len());
                    let (op, version) = token.split_at(op_len);
                    let op = format!("{pending_op}{op}");
                    pending_op.clear();
                    let version = bare(version);
                    tokens.push(if op.is_empty() {
                        exact_or_line(&version)
                    } else {
                        format!("{op}{version}")
                    });
                }
                if !pending_op.is_empty() {
                    return Err(bad());
                }
                tokens
            };
            if comparators.is_empty() {
                return Ok(Self::Any);
            }
            sets.push(VersionReq::parse(&comparators.join(", ")).map_err(|_| bad())?);
        }
        Ok(Self::Sets(sets))
    }

    pub fn matches(&self, version: &Version) -> bool {
        match self {
            Self::Any => true,
            Self::AnyLts => version.major.is_multiple_of(2) && version.major >= 4,
            Self::Sets(sets) => sets.iter().any(|req| req.matches(version)),
        }
    }
}

/// A version without npm's `v` (`v20.1.0`) or `=` prefix.
fn bare(version: &str) -> String {
    version.trim().trim_start_matches(['v', 'V', '=']).to_owned()
}

/// npm reads a bare `20.11.1` as exactly that version and a bare `20` or `20.11` as that
/// line (`~`); the `semver` crate would read both as `^`.
fn exact_or_line(version: &str) -> String {
    let parts = version.split('.').count();
    if parts >= 3 && !version.contains(['x', 'X', '*']) {
        format!("={version}")
    } else if version.contains(['x', 'X', '*']) {
        version.to_owned()
    } else {
        format!("~{version}")
    }
}

/// A version as a list of numbers: `3.12.1` → `[3, 12, 1]`.
pub fn numbers(text: &str) -> Option<Vec<u64>> {
    let parts: Option<Vec<u64>> = text.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| !p.is_empty() && p.len() <= 4)
}

/// A Python version request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonSpec {
    /// `3.12` or `3.12.1`: a version starting with these numbers.
    Prefix(Vec<u64>),
    /// PEP 440 specifiers, all of which must hold.
    Specifiers(Vec<(String, Vec<u64>, bool)>),
}

impl PythonSpec {
    /// `.python-version` (`3.12`, `3.12.1`), or `runtime.txt` (`python-3.12.1`).
    pub fn parse_version(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let version = text.strip_prefix("python-").unwrap_or(text);
        numbers(version)
            .filter(|n| n[0] == 3 || n[0] == 2)
            .map(Self::Prefix)
            .ok_or_else(|| format!("{text:?} is not a CPython version such as 3.12"))
    }

    /// `requires-python`: `>=3.10`, `>=3.10,<3.13`, `~=3.11`, `==3.12.*`.
    pub fn parse_specifiers(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a version specifier such as >=3.10");
        let mut all = Vec::new();
        for clause in text.split(',') {
            let clause = clause.trim();
            let op_len = clause.find(|c: char| c.is_ascii_digit()).ok_or_else(bad)?;
            let (op, version) = clause.split_at(op_len);
            let op = op.trim();
            if !["==", "!=", ">=", "<=", ">", "<", "~=", "==="].contains(&op) {
                return Err(bad());
            }
            let (version, wildcard) = match version.trim().strip_suffix(".*") {
                Some(v) => (v, true),
                None => (version.trim(), false),
            };
            let version = numbers(version).ok_or_else(bad)?;
            if wildcard && !matches!(op, "==" | "!=") || op == "~=" && version.len() < 2 {
                return Err(bad());
            }
            all.push((op.to_owned(), version, wildcard));
        }
        Ok(Self::Specifiers(all))
    }

    pub fn matches(&self, version: &[u64]) -> bool {
        match self {
            Self::Prefix(prefix) => version.len() >= prefix.len() && version[..prefix.len()] == prefix[..],
            Self::Specifiers(all) => all.iter().all(|(op, wanted, wildcard)| {
                let cmp = compare(version, wanted);
                let prefix = version.len() >= wanted.len() && version[..wanted.len()] == wanted[..];
                match op.as_str() {
                    "==" | "===" if *wildcard => prefix,
                    "==" | "===" => cmp.is_eq(),
                    "!=" if *wildcard => !prefix,
                    "!=" => !cmp.is_eq(),
                    ">=" => cmp.is_ge(),
                    "<=" => cmp.is_le(),
                    ">" => cmp.is_gt(),
                    "<" => cmp.is_lt(),
                    // ~=3.11 means >=3.11, ==3.*; ~=3.11.2 means >=3.11.2, ==3.11.*
                    "~=" => {
                        let head = &wanted[..wanted.len() - 1];
                        cmp.is_ge() && version.len() >= head.len() && version[..head.len()] == head[..]
                    }
                    _ => false,
                }
            }),
        }
    }
}

/// Compares versions number by number, missing ones as 0.
pub fn compare(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn npm_ranges_mean_what_npm_means() {
        let cases = [
            (">=18 <21", "20.11.1", true),
            (">=18 <21", "21.0.0", false),
            (">= 18", "22.1.0", true),
            ("^20.1", "20.9.0", true),
            ("^20.1", "21.0.0", false),
            ("20.x", "20.3.0", true),
            ("20", "20.19.0", true),
            ("20", "21.0.0", false),
            ("v20.11.1", "20.11.1", true),
            ("20.11.1", "20.11.2", false),
            ("20.11", "20.11.9", true),
            ("20.11", "20.12.0", false),
            ("16 || 18", "18.2.0", true),
            ("16 || 18", "20.0.0", false),
            ("18.0.0 - 20.5.0", "20.5.0", true),
            ("18.0.0 - 20.5.0", "20.6.0", false),
            ("lts/iron", "20.4.0", true),
            ("lts/iron", "22.4.0", false),
            ("lts/*", "22.4.0", true),
            ("lts/*", "23.4.0", false),
            ("*", "25.0.0", true),
        ];
        for (range, version, expected) in cases {
            let parsed = NodeRange::parse(range).unwrap_or_else(|e| panic!("{range}: {e}"));
            assert_eq!(parsed.matches(&v(version)), expected, "{range} vs {version}");
        }
        for bad in ["banana", ">=", "lts/unknown", "20..1", ""] {
            assert!(NodeRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn python_requests_mean_what_pep_440_means() {
        let p = |t| PythonSpec::parse_version(t).unwrap();
        assert!(p("3.12").matches(&[3, 12, 1]));
        assert!(!p("3.12").matches(&[3, 13, 0]));
        assert!(p("python-3.11.7").matches(&[3, 11, 7]));
        assert!(!p("3.11.6").matches(&[3, 11, 7]));
        let s = |t| PythonSpec::parse_specifiers(t).unwrap();
        assert!(s(">=3.10,<3.13").matches(&[3, 12, 1]));
        assert!(!s(">=3.10,<3.13").matches(&[3, 13, 0]));
        assert!(s("~=3.11").matches(&[3, 13, 0]));
        assert!(!s("~=3.11.2").matches(&[3, 12, 0]));
        assert!(s("==3.12.*").matches(&[3, 12, 9]));
        assert!(!s("!=3.12.*").matches(&[3, 12, 9]));
        assert!(s(">3.9").matches(&[3, 10, 0]));
        for bad in ["banana", "pypy3.10", ""] {
            assert!(PythonSpec::parse_version(bad).is_err(), "{bad}");
        }
        for bad in ["banana", ">=three", "~=3", ">=3.*"] {
            assert!(PythonSpec::parse_specifiers(bad).is_err(), "{bad}");
        }
    }
}
