//! Environments as a pipeline: the matrix of every service in every environment
//! ([`matrix`]) and build-once promotion ([`plan`], [`apply`]): the build a service runs in
//! one environment goes live in another through the usual health-gated switch, with the
//! target's own settings and variables. A plan's id is a digest of everything it was made
//! from (both environments' active deployments, settings and variable revisions), so
//! applying it after any of that changed is refused.

pub mod compare;
pub mod create;
pub mod matrix;

use std::collections::BTreeMap;

use diesel::QueryDsl as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::{
    deployments::ServiceSettings,
    pipeline::{CommitRange, ProjectPromotion, Promotion},
    projects::{Environment, Service},
    variables::Reference,
};
use uuid::Uuid;

use crate::{
    audit,
    auth::RequestMeta,
    config::Config,
    crypto::KeyRing,
    error::AppError,
    models::{
        deployment::{DeploymentRow, Deployments, NewDeployment, RequestedBy},
        project::Projects,
    },
    schema::environments,
    variables::{
        PublicUrls,
        store::{self, Loaded},
    },
};

/// An environment's state as plans read it: the environment and its variables.
pub struct Side {
    pub environment: Environment,
    pub loaded: Loaded,
}

impl Side {
    pub async fn load(
        conn: &mut AsyncPgConnection,
        keys: &KeyRing,
        config: &Config,
        environment: Environment,
    ) -> Result<Self, AppError> {
        let urls = PublicUrls::of(config);
        let loaded = Loaded::load(conn, keys, &urls, environment.id.uuid())
            .await
            .map_err(AppError::internal)?;
        Ok(Self { environment, loaded })
    }
}

/// Who promotes, for the deployments and the audit log.
pub struct By<'a> {
    pub meta: &'a RequestMeta,
    pub user: Uuid,
    pub workspace: Uuid,
}

/// The two environments of a promotion in `project`: both its own (404 otherwise), not the
/// same (422).
pub async fn environments_of(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    from: Uuid,
    to: Uuid,
) -> Result<(Environment, Environment), AppError> {
    let all = Projects::environments(conn, project).await?;
    let find = |id: Uuid, what: &str| {
        all.iter()
            .find(|e| e.id.uuid() == id)
            .cloned()
            .ok_or_else(|| AppError::not_found(format!("{what} environment not found in this project")))
    };
    let (from, to) = (find(from, "the source")?, find(to, "the target")?);
    if from.id == to.id {
        return Err(AppError::unprocessable(
            "`from_environment_id` and `to_environment_id` are the same environment",
        ));
    }
    Ok((from, to))
}

/// Why a service has nothing to promote, or its plan.
pub enum Planned {
    Plan(Box<Promotion>),
    Nothing(String),
}

/// The plan to promote `service` from `from` to `to`.
pub async fn plan(
    conn: &mut AsyncPgConnection,
    config: &Config,
    service: &Service,
    from: &Side,
    to: &Side,
) -> Result<Planned, AppError> {
    let id = service.id.uuid();
    let (from_env, to_env) = (from.environment.id.uuid(), to.environment.id.uuid());
    let Some(source) = Deployments::active(conn, id, from_env).await? else {
        return Ok(Planned::Nothing(format!(
            "{} has nothing active in {} to promote",
            service.name, from.environment.name
        )));
    };
    let target = Deployments::active(conn, id, to_env).await?;
    let build = compare::build_of(conn, &source).await?;
    let target_build = match &target {
        Some(row) => Some(compare::build_of(conn, row).await?),
        None => None,
    };
    if target_build == Some(build) {
        return Ok(Planned::Nothing(format!(
            "{} in {} runs this build already",
            service.name, to.environment.name
        )));
    }
    let (from_settings, to_settings) = (
        Deployments::settings(conn, id, from_env).await?,
        Deployments::settings(conn, id, to_env).await?,
    );
    let repo = compare::history(config, service);
    let source_sha = source.commit_sha.as_deref();
    let target_sha = target.as_ref().and_then(|t| t.commit_sha.as_deref());
    let commit = match source_sha {
        Some(sha) => Some(compare::commit(conn, id, sha).await?),
        None => None,
    };
    let commits = compare::commits_between(conn, id, repo.as_deref(), target_sha, source_sha).await?;
    let fingerprint = serde_json::json!({
        "service": id,
        "from": from_env,
        "to": to_env,
        "source": source.id,
        "target": target.as_ref().map(|t| t.id),
        "from_settings": settings_key(&from_settings),
        "to_settings": settings_key(&to_settings),
        "from_variables": store::revisions(&from.loaded, id),
        "to_variables": store::revisions(&to.loaded, id),
    });
    Ok(Planned::Plan(Box::new(Promotion {
        plan_id: digest(&fingerprint.to_string()),
        service_id: service.id,
        from_environment_id: from.environment.id,
        to_environment_id: to.environment.id,
        release_id: source.id.into(),
        commit,
        commit_range: CommitRange {
            from: target_sha.map(str::to_owned),
            to: source_sha.map(str::to_owned),
            commits,
        },
        settings: compare::settings(&from_settings, &to_settings),
        variables: compare::variables(
            &store::comparable(&from.loaded, id),
            &store::comparable(&to.loaded, id),
        ),
        deployment_id: None,
    })))
}

fn settings_key(settings: &ServiceSettings) -> serde_json::Value {
    serde_json::to_value(settings).unwrap_or_default()
}

fn digest(text: &str) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let hex: String = hash.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("plan_{hex}")
}

/// Every service of the project that differs, in the order their variable references need.
pub async fn plan_project(
    conn: &mut AsyncPgConnection,
    config: &Config,
    project: Uuid,
    from: &Side,
    to: &Side,
) -> Result<ProjectPromotion, AppError> {
    let services = Projects::services(conn, project).await?;
    let mut plans = Vec::new();
    for service in &services {
        if let Planned::Plan(plan) = plan(conn, config, service, from, to).await? {
            plans.push((service.name.clone(), *plan));
        }
    }
    let plans = in_reference_order(plans, to);
    let ids: Vec<&str> = plans.iter().map(|p| p.plan_id.as_str()).collect();
    Ok(ProjectPromotion {
        plan_id: digest(&ids.join(",")),
        from_environment_id: from.environment.id,
        to_environment_id: to.environment.id,
        services: plans,
    })
}

/// Services after the ones their variables (in the target) refer to.
fn in_reference_order(plans: Vec<(String, Promotion)>, to: &Side) -> Vec<Promotion> {
    let names: Vec<String> = plans.iter().map(|(n, _)| n.clone()).collect();
    let needs: BTreeMap<String, Vec<String>> = names
        .iter()
        .map(|name| {
            let refs = to
                .loaded
                .vars
                .services
                .get(name)
                .into_iter()
                .flat_map(|vars| vars.values())
                .flat_map(|entry| {
                    railyard_shared::variables::parse_references(&entry.value).unwrap_or_default()
                })
                .filter_map(|part| match part {
                    railyard_shared::variables::Part::Ref(Reference::Service(other, _)) => Some(other),
                    _ => None,
                })
                .filter(|other| other != name && names.contains(other))
                .collect();
            (name.clone(), refs)
        })
        .collect();
    let mut placed: Vec<String> = Vec::new();
    let mut ordered = Vec::with_capacity(plans.len());
    let mut waiting = plans;
    while !waiting.is_empty() {
        let ready = waiting
            .iter()
            .position(|(name, _)| needs[name].iter().all(|n| placed.contains(n)))
            // A cycle cannot resolve (the variables would not); take them as they come.
            .unwrap_or(0);
        let (name, plan) = waiting.remove(ready);
        placed.push(name);
        ordered.push(plan);
    }
    ordered
}

/// What a promotion moves: one service, or every service of a project that differs.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    Service(&'a Service),
    Project(Uuid),
}

/// Plans `scope` from `from` to `to` as it stands: the plan id and the services' plans.
/// 409 when there is nothing to promote.
pub async fn plan_scope(
    conn: &mut AsyncPgConnection,
    keys: &KeyRing,
    config: &Config,
    scope: Scope<'_>,
    (from, to): (&Environment, &Environment),
) -> Result<(String, Vec<Promotion>), AppError> {
    let from = Side::load(conn, keys, config, from.clone()).await?;
    let to = Side::load(conn, keys, config, to.clone()).await?;
    match scope {
        Scope::Service(service) => match plan(conn, config, service, &from, &to).await? {
            Planned::Plan(plan) => Ok((plan.plan_id.clone(), vec![*plan])),
            Planned::Nothing(reason) => Err(AppError::conflict(format!("nothing to promote: {reason}"))),
        },
        Scope::Project(project) => {
            let planned = plan_project(conn, config, project, &from, &to).await?;
            if planned.services.is_empty() {
                return Err(AppError::conflict(format!(
                    "nothing to promote: no service runs a build in {} that {} does not run",
                    from.environment.name, to.environment.name
                )));
            }
            Ok((planned.plan_id, planned.services))
        }
    }
}

/// Applies the plan `asked` if it is still the plan: locks both environments (variable
/// writes wait), plans again, compares, and requests one promoted deployment per service,
/// all in one transaction. 409 when anything changed since the plan was made.
pub async fn apply(
    conn: &mut AsyncPgConnection,
    keys: &KeyRing,
    config: &Config,
    scope: Scope<'_>,
    (from, to): (&Environment, &Environment),
    asked: &str,
    by: By<'_>,
) -> Result<Vec<Promotion>, AppError> {
    conn.transaction::<_, AppError, _>(async |conn| {
        let mut both = [from.id.uuid(), to.id.uuid()];
        both.sort();
        for env in both {
            environments::table
                .find(env)
                .select(environments::id)
                .for_update()
                .first::<Uuid>(conn)
                .await?;
        }
        let (current, mut plans) = plan_scope(conn, keys, config, scope, (from, to)).await?;
        if current != asked {
            return Err(AppError::conflict(
                "the plan is stale: something in either environment changed since it was made \
                 (a deployment, a setting or a variable); make a new plan",
            ));
        }
        for plan in &mut plans {
            let source = Deployments::find(conn, plan.release_id.uuid())
                .await?
                .ok_or_else(|| AppError::conflict("the promoted deployment no longer exists"))?;
            let new = NewDeployment {
                service: plan.service_id.uuid(),
                environment: to.id.uuid(),
                source_kind: "promotion",
                branch: source.branch.clone(),
                commit: source.commit_sha.clone(),
                upload: None,
                release_of: None,
                promoted_from: Some(source.id),
            };
            let requested = RequestedBy {
                meta: by.meta,
                user: by.user,
                workspace: by.workspace,
                action: "deployment.promotion",
            };
            let id = Deployments::request(conn, new, requested).await?;
            plan.deployment_id = Some(id.into());
            let entry = audit::Entry::new("promotion.apply")
                .workspace(by.workspace)
                .actor(by.user)
                .target("service", plan.service_id)
                .detail(serde_json::json!({
                    "plan_id": asked,
                    "from_environment": from.name,
                    "to_environment": to.name,
                    "release_id": plan.release_id,
                    "deployment_id": id,
                    "commit": source.commit_sha,
                    "variables": plan.variables,
                    "settings": plan.settings.iter().map(|s| &s.name).collect::<Vec<_>>(),
                }));
            audit::record(conn, by.meta, entry).await?;
        }
        Ok(plans)
    })
    .await
}

/// The active row of `service` in `environment` with its build, for the matrix.
pub async fn active_with_build(
    conn: &mut AsyncPgConnection,
    service: Uuid,
    environment: Uuid,
) -> diesel::QueryResult<Option<(DeploymentRow, Uuid)>> {
    let Some(row) = Deployments::active(conn, service, environment).await? else {
        return Ok(None);
    };
    let build = compare::build_of(conn, &row).await?;
    Ok(Some((row, build)))
}
