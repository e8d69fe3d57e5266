//! Resolving `${{ ... }}` references over one environment's variables: a missing reference
//! or a cycle is an error that names the variable, and the result says which variables
//! (with which revisions) a service's values came from and which values are secret.

use std::collections::{BTreeMap, BTreeSet};

use railyard_shared::variables::{Part, Reference, parse_references};

/// Stands for the instance's port until it is known (a NUL never occurs in a stored value).
pub const PORT_PLACEHOLDER: &str = "\0PORT\0";

/// One stored variable, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub sealed: bool,
    pub revision: i64,
}

/// Where a variable lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Shared,
    Service(String),
}

/// Every variable of an environment, by scope and name.
#[derive(Debug, Clone, Default)]
pub struct EnvVars {
    pub shared: BTreeMap<String, Entry>,
    /// By service name; every service of the project appears (maybe with no variables).
    pub services: BTreeMap<String, BTreeMap<String, Entry>>,
    /// Values Railyard provides, by service name (`RAILYARD_PUBLIC_URL`, ...).
    pub provided: BTreeMap<String, BTreeMap<String, String>>,
}

/// A service's variables, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The service's own variables, then the provided ones (without `PORT`).
    pub values: BTreeMap<String, String>,
    /// Every secret value that went into them (sealed variables, resolved).
    pub secrets: BTreeSet<String>,
    /// Which stored variables the values came from: `NAME`, `shared.NAME`,
    /// `service.NAME` → revision.
    pub revisions: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("`{from}` refers to `{to}`, which does not exist")]
    Missing { from: String, to: String },
    #[error("`{from}` refers to `{to}`: {why}")]
    Invalid { from: String, to: String, why: String },
    #[error("the references form a cycle: {0}")]
    Cycle(String),
}

struct Resolver<'a> {
    vars: &'a EnvVars,
    done: BTreeMap<(Scope, String), (String, bool)>,
    visiting: Vec<(Scope, String)>,
    secrets: BTreeSet<String>,
    revisions: BTreeMap<String, i64>,
    /// The scope whose own names are written without a prefix in `revisions`.
    home: Scope,
}

fn label(scope: &Scope, name: &str) -> String {
    match scope {
        Scope::Shared => format!("shared.{name}"),
        Scope::Service(service) => format!("{service}.{name}"),
    }
}

impl<'a> Resolver<'a> {
    fn new(vars: &'a EnvVars, home: Scope) -> Self {
        Self {
            vars,
            done: BTreeMap::new(),
            visiting: Vec::new(),
            secrets: BTreeSet::new(),
            revisions: BTreeMap::new(),
            home,
        }
    }

    fn entry(&self, scope: &Scope, name: &str) -> Option<&Entry> {
        match scope {
            Scope::Shared => self.vars.shared.get(name),
            Scope::Service(service) => self.vars.services.get(service)?.get(name),
        }
    }

    fn revision_key(&self, scope: &Scope, name: &str) -> String {
        if *scope == self.home {
            name.to_owned()
        } else {
            label(scope, name)
        }
    }

    /// The resolved value of `name` in `scope`.
    fn value(&mut self, scope: &Scope, name: &str, from: &str) -> Result<String, ResolveError> {
        let key = (scope.clone(), name.to_owned());
        if let Some((value, _)) = self.done.get(&key) {
            return Ok(value.clone());
        }
        if let Some(at) = self.visiting.iter().position(|k| *k == key) {
            let mut path: Vec<String> = self.visiting[at..].iter().map(|(s, n)| label(s, n)).collect();
            path.push(label(scope, name));
            return Err(ResolveError::Cycle(path.join(" → ")));
        }
        let Some(entry) = self.entry(scope, name).cloned() else {
            return self.provided(scope, name, from);
        };
        self.visiting.push(key.clone());
        let parts = parse_references(&entry.value).map_err(|why| ResolveError::Invalid {
            from: label(scope, name),
            to: name.to_owned(),
            why,
        })?;
        let mut value = String::with_capacity(entry.value.len());
        let me = label(scope, name);
        for part in parts {
            match part {
                Part::Text(text) => value.push_str(text),
                Part::Ref(reference) => {
                    let (target, target_name) = match (&reference, scope) {
                        (Reference::Shared(n), _) | (Reference::Own(n), Scope::Shared) => (Scope::Shared, n),
                        (Reference::Own(n), Scope::Service(s)) => (Scope::Service(s.clone()), n),
                        (Reference::Service(s, n), _) => {
                            if !self.vars.services.contains_key(s) {
                                return Err(ResolveError::Missing {
                                    from: me,
                                    to: reference.to_string(),
                                });
                            }
                            (Scope::Service(s.clone()), n)
                        }
                    };
                    value.push_str(&self.value(&target, target_name, &me)?);
                }
            }
        }
        self.visiting.pop();
        self.revisions
            .insert(self.revision_key(scope, name), entry.revision);
        if entry.sealed {
            self.secrets.insert(value.clone());
        }
        self.done.insert(key, (value.clone(), entry.sealed));
        Ok(value)
    }

    /// A value Railyard provides (not stored).
    fn provided(&self, scope: &Scope, name: &str, from: &str) -> Result<String, ResolveError> {
        let missing = || ResolveError::Missing {
            from: from.to_owned(),
            to: label(scope, name),
        };
        let Scope::Service(service) = scope else {
            return Err(missing());
        };
        if name == "PORT" {
            return if *scope == self.home {
                Ok(PORT_PLACEHOLDER.to_owned())
            } else {
                Err(ResolveError::Invalid {
                    from: from.to_owned(),
                    to: label(scope, name),
                    why: "another service's port is not fixed; use its RAILYARD_PUBLIC_URL".into(),
                })
            };
        }
        self.vars
            .provided
            .get(service)
            .and_then(|p| p.get(name))
            .cloned()
            .ok_or_else(missing)
    }
}

impl EnvVars {
    /// Resolves every variable of `service` (its own and what they refer to).
    pub fn resolve(&self, service: &str) -> Result<Resolved, ResolveError> {
        let home = Scope::Service(service.to_owned());
        let mut resolver = Resolver::new(self, home.clone());
        let mut values = BTreeMap::new();
        for name in self.services.get(service).into_iter().flat_map(BTreeMap::keys) {
            let value = resolver.value(&home, name, name)?;
            values.insert(name.clone(), value);
        }
        for (name, value) in self.provided.get(service).into_iter().flatten() {
            values.insert(name.clone(), value.clone());
        }
        Ok(Resolved {
            values,
            secrets: resolver.secrets,
            revisions: resolver.revisions,
        })
    }

    /// Checks that every variable of the environment resolves (on each write).
    pub fn check(&self) -> Result<(), ResolveError> {
        let mut resolver = Resolver::new(self, Scope::Shared);
        for name in self.shared.keys() {
            resolver.value(&Scope::Shared, name, &format!("shared.{name}"))?;
        }
        for service in self.services.keys() {
            self.resolve(service)?;
        }
        Ok(())
    }

    /// The resolved value of one variable, for display (`None` when it does not resolve).
    pub fn resolved_value(&self, scope: &Scope, name: &str) -> Option<(String, BTreeSet<String>)> {
        let mut resolver = Resolver::new(self, scope.clone());
        let value = resolver.value(scope, name, name).ok()?;
        Some((value.replace(PORT_PLACEHOLDER, "${{ PORT }}"), resolver.secrets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: &str, sealed: bool, revision: i64) -> Entry {
        Entry {
            value: value.into(),
            sealed,
            revision,
        }
    }

    fn env() -> EnvVars {
        let mut vars = EnvVars::default();
        vars.shared
            .insert("DB_HOST".into(), entry("db.internal", false, 1));
        vars.shared
            .insert("DB_PASS".into(), entry("hunter2-secret", true, 2));
        vars.shared.insert(
            "DB_URL".into(),
            entry("postgres://app:${{ shared.DB_PASS }}@${{DB_HOST}}/app", false, 3),
        );
        vars.services.insert(
            "api".into(),
            BTreeMap::from([
                ("DATABASE_URL".into(), entry("${{ shared.DB_URL }}", false, 4)),
                (
                    "SELF".into(),
                    entry("${{ RAILYARD_PUBLIC_URL }}:${{PORT}}", false, 5),
                ),
                ("WEB".into(), entry("${{ web.RAILYARD_PUBLIC_URL }}", false, 6)),
            ]),
        );
        vars.services.insert(
            "web".into(),
            BTreeMap::from([("API_KEY".into(), entry("k-${{ api.DATABASE_URL }}", true, 7))]),
        );
        for service in ["api", "web"] {
            vars.provided.insert(
                service.into(),
                BTreeMap::from([(
                    "RAILYARD_PUBLIC_URL".into(),
                    format!("http://{service}.localhost"),
                )]),
            );
        }
        vars
    }

    #[test]
    fn resolves_shared_own_other_and_provided_references() {
        let resolved = env().resolve("api").unwrap();
        assert_eq!(
            resolved.values["DATABASE_URL"],
            "postgres://app:hunter2-secret@db.internal/app"
        );
        assert_eq!(
            resolved.values["SELF"],
            format!("http://api.localhost:{PORT_PLACEHOLDER}")
        );
        assert_eq!(resolved.values["WEB"], "http://web.localhost");
        assert_eq!(resolved.values["RAILYARD_PUBLIC_URL"], "http://api.localhost");
        assert_eq!(
            resolved.secrets,
            BTreeSet::from(["hunter2-secret".to_owned()]),
            "the sealed shared value it used"
        );
        assert_eq!(
            resolved.revisions,
            BTreeMap::from([
                ("DATABASE_URL".to_owned(), 4),
                ("SELF".to_owned(), 5),
                ("WEB".to_owned(), 6),
                ("shared.DB_URL".to_owned(), 3),
                ("shared.DB_PASS".to_owned(), 2),
                ("shared.DB_HOST".to_owned(), 1),
            ])
        );
        let web = env().resolve("web").unwrap();
        assert!(
            web.secrets
                .contains("k-postgres://app:hunter2-secret@db.internal/app")
        );
        env().check().unwrap();
    }

    #[test]
    fn a_missing_reference_names_both_ends() {
        let mut vars = env();
        vars.shared.remove("DB_HOST");
        assert_eq!(
            vars.resolve("api").unwrap_err(),
            ResolveError::Missing {
                from: "shared.DB_URL".into(),
                to: "shared.DB_HOST".into()
            }
        );
        let mut vars = env();
        vars.services
            .get_mut("api")
            .unwrap()
            .insert("X".into(), entry("${{ nope.A }}", false, 9));
        assert!(matches!(vars.check(), Err(ResolveError::Missing { .. })));
        let mut vars = env();
        vars.services
            .get_mut("web")
            .unwrap()
            .insert("P".into(), entry("${{ api.PORT }}", false, 9));
        assert!(matches!(vars.check(), Err(ResolveError::Invalid { .. })));
    }

    #[test]
    fn a_cycle_is_an_error_with_its_path() {
        let mut vars = env();
        vars.shared
            .insert("A".into(), entry("${{ shared.B }}", false, 10));
        vars.shared
            .insert("B".into(), entry("x${{ shared.A }}", false, 11));
        let err = vars.check().unwrap_err();
        assert_eq!(err, ResolveError::Cycle("shared.A → shared.B → shared.A".into()));
        let mut vars = env();
        vars.services
            .get_mut("api")
            .unwrap()
            .insert("LOOP".into(), entry("${{ LOOP }}", false, 12));
        assert!(matches!(vars.resolve("api"), Err(ResolveError::Cycle(_))));
    }
}
