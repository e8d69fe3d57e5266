//! Variables on the wire: a service's own (per environment) and an environment's shared
//! ones, their limits, the `${{ ... }}` reference syntax, and the raw `.env` text format.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest variable name.
pub const MAX_NAME: usize = 256;
/// Largest value, in bytes.
pub const MAX_VALUE: usize = 64 * 1024;
/// Most variables per service (or shared) per environment.
pub const MAX_COUNT: usize = 1000;

/// Variables Railyard sets itself; a user's variable may not take these names.
pub const PROVIDED: &[&str] = &[
    "PORT",
    "RAILYARD_PUBLIC_URL",
    "RAILYARD_ENVIRONMENT",
    "RAILYARD_SERVICE_NAME",
    "RAILYARD_DEPLOYMENT_ID",
    "RAILYARD_GIT_COMMIT",
];

/// One variable. `value` is absent for a sealed variable: after it is saved, nothing
/// returns it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Variable {
    pub name: String,
    pub value: Option<String>,
    pub sealed: bool,
    /// The value with its references resolved (sealed values in it shown as `*****`);
    /// only for a value that holds references.
    pub resolved: Option<String>,
    /// What the references point at, e.g. `shared.DATABASE_URL` or `api.PORT`.
    #[serde(default)]
    pub references: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// A variable that changed since the active deployment (`added`, `changed` or `removed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StagedChange {
    pub name: String,
    pub change: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariableList {
    pub variables: Vec<Variable>,
    /// For a service: what changed since its active deployment ("changes not deployed").
    #[serde(default)]
    pub staged: Vec<StagedChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariableResponse {
    pub variable: Variable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewVariable {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub sealed: bool,
}

/// A change to one variable: a new value, and/or sealing it (a sealed variable cannot be
/// unsealed: delete it and add it again).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariablePatch {
    pub value: Option<String>,
    pub sealed: Option<bool>,
}

/// Whether `name` is a valid variable name; the error says why not.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if name.is_empty() {
        Err("a variable name cannot be empty".into())
    } else if name.len() > MAX_NAME {
        let start: String = name.chars().take(32).collect();
        Err(format!(
            "the name of `{}…` is longer than {MAX_NAME} characters",
            start.escape_debug()
        ))
    } else if !valid {
        Err(format!(
            "`{}` is not a valid variable name: use letters, digits and _, not starting with a digit",
            name.escape_debug()
        ))
    } else if PROVIDED.contains(&name) {
        Err(format!("`{name}` is set by Railyard and cannot be overridden"))
    } else {
        Ok(())
    }
}

/// Whether `value` may be stored as the value of `name`.
pub fn check_value(name: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE {
        return Err(format!("the value of `{name}` is larger than 64 KiB"));
    }
    if value.contains('\0') {
        return Err(format!("the value of `{name}` contains a NUL byte"));
    }
    parse_references(value).map_err(|err| format!("the value of `{name}`: {err}"))?;
    Ok(())
}

/// What a `${{ ... }}` reference points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reference {
    /// `${{ shared.NAME }}`: a shared variable of the environment.
    Shared(String),
    /// `${{ service.NAME }}`: another service's variable (or one Railyard provides it).
    Service(String, String),
    /// `${{ NAME }}`: the same service's variable, or one Railyard provides.
    Own(String),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Shared(name) => write!(f, "shared.{name}"),
            Reference::Service(service, name) => write!(f, "{service}.{name}"),
            Reference::Own(name) => f.write_str(name),
        }
    }
}

/// A piece of a value: literal text or a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part<'a> {
    Text(&'a str),
    Ref(Reference),
}

/// Splits `value` into text and `${{ ... }}` references; an unclosed or malformed
/// reference is an error (a literal `${{` cannot be written).
pub fn parse_references(value: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            parts.push(Part::Text(&rest[..start]));
        }
        let after = &rest[start + 3..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a reference `${{` is not closed with `}}`".to_owned())?;
        let inner = after[..end].trim();
        let reference = match inner.split_once('.') {
            Some(("shared", name)) => Reference::Shared(name.to_owned()),
            Some((service, name)) => {
                if !is_service_name(service) {
                    return Err(format!("`{}` is not a service name", service.escape_debug()));
                }
                Reference::Service(service.to_owned(), name.to_owned())
            }
            None => Reference::Own(inner.to_owned()),
        };
        let name = match &reference {
            Reference::Shared(n) | Reference::Service(_, n) | Reference::Own(n) => n,
        };
        let mut chars = name.chars();
        let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || name.len() > MAX_NAME {
            return Err(format!(
                "`${{{{ {} }}}}` is not a valid reference",
                inner.escape_debug()
            ));
        }
        parts.push(Part::Ref(reference));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

fn is_service_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 39
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Parses raw `.env` text: `NAME=value` lines, optional `export `, `#` comments, values in
/// single quotes (literal), double quotes (`\n`, `\"`, `\\` escapes; may span lines) or
/// bare (trimmed; a ` #` starts a comment). The error names the line.
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (name, raw) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected NAME=value", n + 1))?;
        let name = name.trim().to_owned();
        check_name(&name).map_err(|err| format!("line {}: {err}", n + 1))?;
        let raw = raw.trim_start();
        let value = if let Some(body) = raw.strip_prefix('\'') {
            body.strip_suffix('\'')
                .ok_or_else(|| format!("line {}: the single quote is not closed", n + 1))?
                .to_owned()
        } else if let Some(body) = raw.strip_prefix('"') {
            let mut joined = body.to_owned();
            while !ends_quoted(&joined) {
                let (_, next) = lines
                    .next()
                    .ok_or_else(|| format!("line {}: the double quote is not closed", n + 1))?;
                joined.push('\n');
                joined.push_str(next);
            }
            unescape(&joined[..joined.trim_end().len() - 1])
        } else {
            let end = raw.find(" #").unwrap_or(raw.len());
            raw[..end].trim_end().to_owned()
        };
        out.retain(|(existing, _)| *existing != name);
        out.push((name, value));
    }
    Ok(out)
}

/// Whether a double-quoted body ends with an unescaped closing quote.
fn ends_quoted(body: &str) -> bool {
    let body = body.trim_end();
    let Some(inner) = body.strip_suffix('"') else {
        return false;
    };
    inner.chars().rev().take_while(|c| *c == '\\').count() % 2 == 0
}

fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes variables as `.env` text that [`parse_dotenv`] reads back; sealed ones become a
/// comment (their values are never exported).
pub fn format_dotenv(variables: &[Variable]) -> String {
    let mut out = String::new();
    for variable in variables {
        match &variable.value {
            Some(value) if !variable.sealed => {
                out.push_str(&variable.name);
                out.push('=');
                let plain = !value.is_empty()
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-./:@,+%${}".contains(c));
                if plain {
                    out.push_str(value);
                } else {
                    out.push('"');
                    for c in value.chars() {
                        match c {
                            '"' => out.push_str("\\\""),
                            '\\' => out.push_str("\\\\"),
                            '\n' => out.push_str("\\n"),
                            '\r' => out.push_str("\\r"),
                            '\t' => out.push_str("\\t"),
                            c => out.push(c),
                        }
                    }
                    out.push('"');
                }
                out.push('\n');
            }
            _ => {
                out.push_str(&format!(
                    "# {} is sealed (its value is not exported)\n",
                    variable.name
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for good in ["A", "_x", "DATABASE_URL", "a1", &"N".repeat(256)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "É", "A.B", &"N".repeat(257), "PORT"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn values_have_limits_and_valid_references() {
        assert!(check_value("A", &"x".repeat(MAX_VALUE)).is_ok());
        assert!(check_value("A", &"x".repeat(MAX_VALUE + 1)).is_err());
        assert!(check_value("A", "a\0b").is_err());
        assert!(check_value("A", "${{ shared.X").is_err());
        assert!(check_value("A", "${{ 1X }}").is_err());
        assert!(check_value("A", "${{ Bad_Service.X }}").is_err());
    }

    #[test]
    fn references_are_parsed_in_place() {
        let parts = parse_references("postgres://${{shared.USER}}:${{ db.PASSWORD }}@h/${{NAME}}").unwrap();
        assert_eq!(
            parts,
            vec![
                Part::Text("postgres://"),
                Part::Ref(Reference::Shared("USER".into())),
                Part::Text(":"),
                Part::Ref(Reference::Service("db".into(), "PASSWORD".into())),
                Part::Text("@h/"),
                Part::Ref(Reference::Own("NAME".into())),
            ]
        );
        assert_eq!(parse_references("plain").unwrap(), vec![Part::Text("plain")]);
        assert_eq!(parse_references("").unwrap(), vec![]);
    }

    #[test]
    fn dotenv_round_trips() {
        let text = "# comment\nexport A=1\nB = 'x y # not a comment'\nC=\"line1\\nline2 \\\"q\\\"\"\nD=bare # comment\nE=\"multi\nline\"\nA=2\n";
        let parsed = parse_dotenv(text).unwrap();
        assert_eq!(
            parsed,
            vec![
                ("B".to_owned(), "x y # not a comment".to_owned()),
                ("C".to_owned(), "line1\nline2 \"q\"".to_owned()),
                ("D".to_owned(), "bare".to_owned()),
                ("E".to_owned(), "multi\nline".to_owned()),
                ("A".to_owned(), "2".to_owned()),
            ]
        );
        let variables: Vec<Variable> = parsed
            .iter()
            .map(|(name, value)| Variable {
                name: name.clone(),
                value: Some(value.clone()),
                sealed: false,
                resolved: None,
                references: vec![],
                updated_at: Utc::now(),
            })
            .collect();
        assert_eq!(parse_dotenv(&format_dotenv(&variables)).unwrap(), parsed);
        assert!(parse_dotenv("NOVALUE").unwrap_err().contains("line 1"));
        assert!(parse_dotenv("A=1\n9X=2").unwrap_err().contains("line 2"));
        assert!(parse_dotenv("A=\"open").is_err());
    }

    #[test]
    fn sealed_values_are_not_exported() {
        let sealed = Variable {
            name: "TOKEN".into(),
            value: None,
            sealed: true,
            resolved: None,
            references: vec![],
            updated_at: Utc::now(),
        };
        let text = format_dotenv(&[sealed]);
        assert!(text.starts_with('#'));
        assert!(parse_dotenv(&text).unwrap().is_empty());
    }
}
