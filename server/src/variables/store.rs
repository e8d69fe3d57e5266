//! Variables in PostgreSQL: loading an environment's variables (decrypted), writing a batch
//! of changes after checking that the whole environment still resolves, and what a
//! deployment runs with.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, NullableExpressionMethods as _, QueryDsl as _, SelectableHelper as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::variables::{
    MAX_COUNT, Part, StagedChange, Variable, check_name, check_value, parse_references,
};
use uuid::Uuid;

use super::{
    PublicUrls, Snapshot, aad,
    resolve::{Entry, EnvVars, ResolveError, Scope},
};
use crate::{
    crypto::KeyRing,
    schema::{deployment_variables, deployments, environments, projects, services, variables},
};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = variables)]
pub struct Stored {
    pub id: Uuid,
    pub service_id: Option<Uuid>,
    pub name: String,
    pub ciphertext: Vec<u8>,
    pub sealed: bool,
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
}

/// An environment with its project and the project's services.
#[derive(Debug, Clone)]
pub struct EnvContext {
    pub workspace: Uuid,
    pub environment: Uuid,
    pub environment_name: String,
    pub project_name: String,
    /// Id → name.
    pub services: BTreeMap<Uuid, String>,
}

impl EnvContext {
    pub async fn load(conn: &mut AsyncPgConnection, environment: Uuid) -> diesel::QueryResult<Self> {
        let (environment_name, project, project_name, workspace): (String, Uuid, String, Uuid) =
            environments::table
                .inner_join(projects::table)
                .filter(environments::id.eq(environment))
                .select((
                    environments::name,
                    projects::id,
                    projects::name,
                    projects::workspace_id,
                ))
                .first(conn)
                .await?;
        let services: Vec<(Uuid, String)> = services::table
            .filter(services::project_id.eq(project))
            .select((services::id, services::name))
            .load(conn)
            .await?;
        Ok(Self {
            workspace,
            environment,
            environment_name,
            project_name,
            services: services.into_iter().collect(),
        })
    }

    fn scope(&self, service: Option<Uuid>) -> Scope {
        match service.and_then(|id| self.services.get(&id)) {
            Some(name) => Scope::Service(name.clone()),
            None => Scope::Shared,
        }
    }
}

/// Why variables could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum VarError {
    /// Bad input: names the offending variable.
    #[error("{0}")]
    Invalid(String),
    #[error("the variable `{0}` does not exist")]
    NotFound(String),
    #[error("the variable `{0}` exists already")]
    Exists(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    /// A stored value that does not decrypt (wrong key, tampering, a moved row).
    #[error("{0}")]
    Crypto(String),
}

impl From<ResolveError> for VarError {
    fn from(err: ResolveError) -> Self {
        VarError::Invalid(err.to_string())
    }
}

/// An environment's variables, decrypted, with the stored rows.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub context: EnvContext,
    pub vars: EnvVars,
    pub rows: Vec<Stored>,
}

impl Loaded {
    pub async fn load(
        conn: &mut AsyncPgConnection,
        keys: &KeyRing,
        urls: &PublicUrls,
        environment: Uuid,
    ) -> Result<Self, VarError> {
        let context = EnvContext::load(conn, environment).await?;
        let rows: Vec<Stored> = variables::table
            .filter(variables::environment_id.eq(environment))
            .order((variables::service_id, variables::name))
            .select(Stored::as_select())
            .load(conn)
            .await?;
        let mut vars = EnvVars::default();
        for name in context.services.values() {
            vars.services.insert(name.clone(), BTreeMap::new());
            vars.provided.insert(
                name.clone(),
                BTreeMap::from([
                    (
                        "RAILYARD_PUBLIC_URL".to_owned(),
                        urls.url(name, &context.environment_name, &context.project_name),
                    ),
                    (
                        "RAILYARD_ENVIRONMENT".to_owned(),
                        context.environment_name.clone(),
                    ),
                    ("RAILYARD_SERVICE_NAME".to_owned(), name.clone()),
                ]),
            );
        }
        for row in &rows {
            let plain = keys
                .decrypt(
                    &row.ciphertext,
                    &aad(context.workspace, environment, row.service_id, &row.name),
                )
                .map_err(|err| {
                    VarError::Crypto(format!(
                        "the stored value of `{}` (variable {}) cannot be decrypted: {err}",
                        row.name, row.id
                    ))
                })?;
            let value = String::from_utf8(plain)
                .map_err(|_| VarError::Crypto(format!("the stored value of `{}` is not text", row.name)))?;
            let entry = Entry {
                value,
                sealed: row.sealed,
                revision: row.revision,
            };
            match context.scope(row.service_id) {
                Scope::Shared => vars.shared.insert(row.name.clone(), entry),
                Scope::Service(name) => vars
                    .services
                    .entry(name)
                    .or_default()
                    .insert(row.name.clone(), entry),
            };
        }
        Ok(Self { context, vars, rows })
    }

    fn entries(&self, service: Option<Uuid>) -> Option<&BTreeMap<String, Entry>> {
        match self.context.scope(service) {
            Scope::Shared => Some(&self.vars.shared),
            Scope::Service(name) => self.vars.services.get(&name),
        }
    }

    fn entries_mut(&mut self, service: Option<Uuid>) -> &mut BTreeMap<String, Entry> {
        match self.context.scope(service) {
            Scope::Shared => &mut self.vars.shared,
            Scope::Service(name) => self.vars.services.entry(name).or_default(),
        }
    }

    /// The variables of a service (or the shared ones) as the API shows them: sealed
    /// values never; resolved values with every secret masked.
    pub fn list(&self, service: Option<Uuid>) -> Vec<Variable> {
        let scope = self.context.scope(service);
        let masker = self.masker_of(service);
        self.rows
            .iter()
            .filter(|row| row.service_id == service)
            .filter_map(|row| {
                let entry = self.entries(service)?.get(&row.name)?;
                let references: Vec<String> = parse_references(&entry.value)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|part| match part {
                        Part::Ref(r) => Some(r.to_string()),
                        Part::Text(_) => None,
                    })
                    .collect();
                let resolved = (!references.is_empty() && !entry.sealed)
                    .then(|| self.vars.resolved_value(&scope, &row.name))
                    .flatten()
                    .map(|(value, _)| masker.mask(&value));
                Some(Variable {
                    name: row.name.clone(),
                    value: (!entry.sealed).then(|| entry.value.clone()),
                    sealed: entry.sealed,
                    resolved,
                    references,
                    updated_at: row.updated_at,
                })
            })
            .collect()
    }

    /// Every secret a service's (or the shared) values touch, for masking what is shown.
    fn masker_of(&self, service: Option<Uuid>) -> super::Masker {
        let mut secrets = BTreeSet::new();
        let scope = self.context.scope(service);
        for name in self.entries(service).into_iter().flat_map(BTreeMap::keys) {
            if let Some((_, found)) = self.vars.resolved_value(&scope, name) {
                secrets.extend(found);
            }
        }
        super::Masker::new(secrets.iter().map(String::as_str))
    }
}

/// One change in a batch.
#[derive(Debug, Clone)]
pub enum Op {
    /// Create (`create_only`: fail if it exists) or update; `sealed: None` keeps the flag.
    Set {
        name: String,
        value: Option<String>,
        sealed: Option<bool>,
        create_only: bool,
    },
    Delete {
        name: String,
    },
}

/// What a batch did, for the audit log (names and flags, never values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub name: String,
    /// `created`, `updated` or `deleted`.
    pub what: &'static str,
    pub sealed: bool,
}

/// Applies `ops` to a service's (or the shared) variables: validates every name and value,
/// checks that every variable of the environment still resolves (no missing reference, no
/// cycle), then writes. Call inside a transaction; nothing is written on an error.
pub async fn write(
    conn: &mut AsyncPgConnection,
    keys: &KeyRing,
    urls: &PublicUrls,
    environment: Uuid,
    service: Option<Uuid>,
    ops: Vec<Op>,
    actor: Uuid,
) -> Result<Vec<Done>, VarError> {
    // One writer per environment at a time: the check below sees every other write.
    let _: Uuid = environments::table
        .find(environment)
        .select(environments::id)
        .for_update()
        .first(conn)
        .await?;
    let mut loaded = Loaded::load(conn, keys, urls, environment).await?;
    let mut done = Vec::new();
    for op in &ops {
        match op {
            Op::Set {
                name,
                value,
                sealed,
                create_only,
            } => {
                check_name(name).map_err(VarError::Invalid)?;
                let entries = loaded.entries_mut(service);
                let existing = entries.get(name).cloned();
                if *create_only && existing.is_some() {
                    return Err(VarError::Exists(name.clone()));
                }
                let value = match (value, &existing) {
                    (Some(value), _) => value.clone(),
                    (None, Some(entry)) => entry.value.clone(),
                    (None, None) => return Err(VarError::NotFound(name.clone())),
                };
                check_value(name, &value).map_err(VarError::Invalid)?;
                let was_sealed = existing.as_ref().is_some_and(|e| e.sealed);
                if was_sealed && *sealed == Some(false) {
                    return Err(VarError::Invalid(format!(
                        "`{name}` is sealed and cannot be unsealed: delete it and add it again"
                    )));
                }
                let sealed = sealed.unwrap_or(was_sealed);
                if existing
                    .as_ref()
                    .is_some_and(|e| e.value == value && e.sealed == sealed)
                {
                    continue;
                }
                entries.insert(
                    name.clone(),
                    Entry {
                        value,
                        sealed,
                        revision: 0,
                    },
                );
                done.push(Done {
                    name: name.clone(),
                    what: if existing.is_some() { "updated" } else { "created" },
                    sealed,
                });
            }
            Op::Delete { name } => {
                let removed = loaded
                    .entries_mut(service)
                    .remove(name)
                    .ok_or_else(|| VarError::NotFound(name.clone()))?;
                done.push(Done {
                    name: name.clone(),
                    what: "deleted",
                    sealed: removed.sealed,
                });
            }
        }
    }
    let count = loaded.entries(service).map_or(0, BTreeMap::len);
    if count > MAX_COUNT {
        return Err(VarError::Invalid(format!(
            "at most {MAX_COUNT} variables per service and environment ({count} asked for)"
        )));
    }
    loaded.vars.check()?;

    let workspace = loaded.context.workspace;
    for change in &done {
        let scoped = variables::table
            .filter(variables::environment_id.eq(environment))
            .filter(variables::name.eq(&change.name));
        let scoped = match service {
            Some(id) => scoped.filter(variables::service_id.eq(id)).into_boxed(),
            None => scoped.filter(variables::service_id.is_null()).into_boxed(),
        };
        if change.what == "deleted" {
            diesel::delete(variables::table.filter(variables::id.eq_any(scoped.select(variables::id))))
                .execute(conn)
                .await?;
            continue;
        }
        let entry = &loaded.entries(service).and_then(|e| e.get(&change.name)).cloned();
        let Some(entry) = entry else { continue };
        let sealed_value = keys
            .encrypt(
                entry.value.as_bytes(),
                &aad(workspace, environment, service, &change.name),
            )
            .map_err(|err| VarError::Crypto(err.to_string()))?;
        if change.what == "created" {
            diesel::insert_into(variables::table)
                .values((
                    variables::id.eq(Uuid::new_v4()),
                    variables::workspace_id.eq(workspace),
                    variables::environment_id.eq(environment),
                    variables::service_id.eq(service),
                    variables::name.eq(&change.name),
                    variables::ciphertext.eq(sealed_value),
                    variables::sealed.eq(entry.sealed),
                    variables::updated_by.eq(actor),
                ))
                .execute(conn)
                .await?;
        } else {
            diesel::update(variables::table.filter(variables::id.eq_any(scoped.select(variables::id))))
                .set((
                    variables::ciphertext.eq(sealed_value),
                    variables::sealed.eq(entry.sealed),
                    variables::revision.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                        "nextval('variable_revisions')",
                    )),
                    variables::updated_at.eq(Utc::now()),
                    variables::updated_by.eq(actor),
                ))
                .execute(conn)
                .await?;
        }
    }
    Ok(done)
}

/// Copies every variable of environment `from` (shared and per service) into the new
/// environment `to` of the same project: each value re-encrypted for its new row (the AAD
/// names the environment), sealed ones still sealed. Call inside the transaction that
/// creates `to`. Returns how many were copied.
pub async fn copy_environment(
    conn: &mut AsyncPgConnection,
    keys: &KeyRing,
    from: Uuid,
    to: Uuid,
    actor: Uuid,
    with_sealed: bool,
) -> Result<usize, VarError> {
    let context = EnvContext::load(conn, from).await?;
    let rows: Vec<Stored> = variables::table
        .filter(variables::environment_id.eq(from))
        .select(Stored::as_select())
        .load(conn)
        .await?;
    let rows: Vec<Stored> = rows.into_iter().filter(|r| with_sealed || !r.sealed).collect();
    let workspace = context.workspace;
    for row in &rows {
        let plain = keys
            .decrypt(&row.ciphertext, &aad(workspace, from, row.service_id, &row.name))
            .map_err(|err| {
                VarError::Crypto(format!(
                    "the stored value of `{}` (variable {}) cannot be decrypted: {err}",
                    row.name, row.id
                ))
            })?;
        let sealed_value = keys
            .encrypt(&plain, &aad(workspace, to, row.service_id, &row.name))
            .map_err(|err| VarError::Crypto(err.to_string()))?;
        diesel::insert_into(variables::table)
            .values((
                variables::id.eq(Uuid::new_v4()),
                variables::workspace_id.eq(workspace),
                variables::environment_id.eq(to),
                variables::service_id.eq(row.service_id),
                variables::name.eq(&row.name),
                variables::ciphertext.eq(sealed_value),
                variables::sealed.eq(row.sealed),
                variables::updated_by.eq(actor),
            ))
            .execute(conn)
            .await?;
    }
    Ok(rows.len())
}

/// A service's own variables (and the shared ones, as `shared.NAME`) in an environment,
/// name → value, for comparing two environments. Never shown.
pub fn comparable(loaded: &Loaded, service: Uuid) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, entry) in &loaded.vars.shared {
        out.insert(format!("shared.{name}"), entry.value.clone());
    }
    if let Some(own) = loaded.entries(Some(service)) {
        for (name, entry) in own {
            out.insert(name.clone(), entry.value.clone());
        }
    }
    out
}

/// Revision of every variable a service's deployments would read in an environment
/// (its own and the shared ones): a change to any of them changes this.
pub fn revisions(loaded: &Loaded, service: Uuid) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (name, entry) in &loaded.vars.shared {
        out.insert(format!("shared.{name}"), entry.revision);
    }
    if let Some(own) = loaded.entries(Some(service)) {
        for (name, entry) in own {
            out.insert(name.clone(), entry.revision);
        }
    }
    out
}

/// What a deployment of `service` runs with, resolved from the current variables, and the
/// revisions it came from; `Ok(Err)` says why the variables do not resolve.
pub async fn resolve_for(
    conn: &mut AsyncPgConnection,
    keys: &KeyRing,
    urls: &PublicUrls,
    deployment: (Uuid, Uuid, Uuid),
    commit: Option<&str>,
) -> Result<Result<(Snapshot, BTreeMap<String, i64>), String>, VarError> {
    let (id, service, environment) = deployment;
    let mut loaded = Loaded::load(conn, keys, urls, environment).await?;
    let Some(name) = loaded.context.services.get(&service).cloned() else {
        return Ok(Err("the service no longer exists".into()));
    };
    if let Some(provided) = loaded.vars.provided.get_mut(&name) {
        provided.insert("RAILYARD_DEPLOYMENT_ID".into(), id.to_string());
        provided.insert(
            "RAILYARD_GIT_COMMIT".into(),
            commit.unwrap_or_default().to_owned(),
        );
    }
    match loaded.vars.resolve(&name) {
        Ok(resolved) => Ok(Ok((
            Snapshot {
                values: resolved.values,
                secrets: resolved.secrets,
            },
            resolved.revisions,
        ))),
        Err(err) => Ok(Err(format!("the variables do not resolve: {err}"))),
    }
}

/// Stores what deployment `id` runs with.
pub async fn save_snapshot(
    conn: &mut AsyncPgConnection,
    keys: &KeyRing,
    id: Uuid,
    snapshot: &Snapshot,
    revisions: &BTreeMap<String, i64>,
) -> anyhow::Result<()> {
    let sealed = snapshot.seal(keys, id)?;
    let revisions = serde_json::to_value(revisions)?;
    diesel::insert_into(deployment_variables::table)
        .values((
            deployment_variables::deployment_id.eq(id),
            deployment_variables::ciphertext.eq(&sealed),
            deployment_variables::revisions.eq(&revisions),
        ))
        .on_conflict(deployment_variables::deployment_id)
        .do_update()
        .set((
            deployment_variables::ciphertext.eq(&sealed),
            deployment_variables::revisions.eq(&revisions),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// What deployment `id` runs with (empty for one deployed before variables existed).
pub async fn snapshot_of(conn: &mut AsyncPgConnection, keys: &KeyRing, id: Uuid) -> anyhow::Result<Snapshot> {
    use diesel::OptionalExtension as _;
    let sealed: Option<Vec<u8>> = deployment_variables::table
        .find(id)
        .select(deployment_variables::ciphertext)
        .first(conn)
        .await
        .optional()?;
    match sealed {
        Some(sealed) => Snapshot::open(keys, id, &sealed),
        None => Ok(Snapshot::default()),
    }
}

/// What changed in a service's variables since its active deployment in `environment`.
pub async fn staged(
    conn: &mut AsyncPgConnection,
    loaded: &Loaded,
    service: Uuid,
) -> diesel::QueryResult<Vec<StagedChange>> {
    use diesel::OptionalExtension as _;
    let deployed: Option<Option<serde_json::Value>> = deployments::table
        .left_join(deployment_variables::table)
        .filter(deployments::service_id.eq(service))
        .filter(deployments::environment_id.eq(loaded.context.environment))
        .filter(deployments::state.eq(railyard_shared::DeploymentState::Active.as_str()))
        .select(deployment_variables::revisions.nullable())
        .first(conn)
        .await
        .optional()?;
    // Nothing deployed yet: nothing is "not deployed" in the sense of a diff.
    let Some(deployed) = deployed else {
        return Ok(Vec::new());
    };
    let deployed: BTreeMap<String, i64> = deployed
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let Some(name) = loaded.context.services.get(&service) else {
        return Ok(Vec::new());
    };
    let current = loaded.vars.resolve(name).map(|r| r.revisions).unwrap_or_default();
    Ok(diff(&deployed, &current))
}

fn diff(deployed: &BTreeMap<String, i64>, current: &BTreeMap<String, i64>) -> Vec<StagedChange> {
    let mut changes = Vec::new();
    for (name, revision) in current {
        match deployed.get(name) {
            None => changes.push(StagedChange {
                name: name.clone(),
                change: "added".into(),
            }),
            Some(old) if old != revision => changes.push(StagedChange {
                name: name.clone(),
                change: "changed".into(),
            }),
            Some(_) => {}
        }
    }
    for name in deployed.keys().filter(|n| !current.contains_key(*n)) {
        changes.push(StagedChange {
            name: name.clone(),
            change: "removed".into(),
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_names_added_changed_and_removed() {
        let deployed = BTreeMap::from([
            ("A".to_owned(), 1),
            ("B".to_owned(), 2),
            ("shared.C".to_owned(), 3),
        ]);
        let current = BTreeMap::from([("A".to_owned(), 1), ("B".to_owned(), 5), ("D".to_owned(), 6)]);
        let names: Vec<(String, String)> = diff(&deployed, &current)
            .into_iter()
            .map(|c| (c.name, c.change))
            .collect();
        assert_eq!(
            names,
            vec![
                ("B".into(), "changed".into()),
                ("D".into(), "added".into()),
                ("shared.C".into(), "removed".into())
            ]
        );
        assert!(diff(&deployed, &deployed).is_empty());
    }
}
