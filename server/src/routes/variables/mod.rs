//! Variables: a service's own per environment (the environment's shared ones, through the
//! same helpers, are in [`shared`]). Members read and write them; sealed values are write-only. Every write is checked against the
//! whole environment (names, sizes, references, cycles) before anything is stored, and
//! audited (names and flags, never values).

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use railyard_shared::{
    auth::Role,
    deployments::DeploymentResponse,
    variables::{
        NewVariable, Variable, VariableList, VariablePatch, VariableResponse, format_dotenv, parse_dotenv,
    },
};
use serde::Deserialize;
use uuid::Uuid;

pub mod shared;

use super::scope::{authorize_service, environment_of};
use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult},
    extract::{Json, Path, Query},
    models::deployment::{Deployments, NewDeployment},
    variables::{
        PublicUrls,
        store::{self, Done, Loaded, Op, VarError},
    },
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct VariableParams {
    /// Environment id (default: `production`).
    pub environment: Option<Uuid>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeployChangesParams {
    /// Environment id (default: `production`).
    pub environment: Option<Uuid>,
    /// Build the active deployment's commit again instead of reusing its build.
    #[serde(default)]
    pub rebuild: bool,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Environment id (default: `production`).
    pub environment: Option<Uuid>,
    /// `env` for raw `.env` text (sealed values left out); JSON otherwise.
    pub format: Option<String>,
}

/// Whose variables a request is about.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target {
    pub workspace: Uuid,
    pub environment: Uuid,
    /// `None`: the environment's shared variables.
    pub service: Option<Uuid>,
}

impl From<VarError> for AppError {
    fn from(err: VarError) -> Self {
        match err {
            VarError::Invalid(message) => AppError::unprocessable(message),
            VarError::NotFound(name) => AppError::not_found(format!("the variable `{name}` does not exist")),
            VarError::Exists(name) => AppError::conflict(format!(
                "the variable `{name}` exists already: change it with PATCH"
            )),
            VarError::Database(err) => err.into(),
            VarError::Crypto(message) => AppError::internal(anyhow::anyhow!(message)),
        }
    }
}

async fn service_target(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    environment: Option<Uuid>,
) -> AppResult<Target> {
    let (service, workspace) = authorize_service(conn, caller, id, Role::Member).await?;
    let environment = environment_of(conn, service.project_id.uuid(), environment).await?;
    Ok(Target {
        workspace,
        environment,
        service: Some(id),
    })
}

pub(super) async fn list(state: &AppState, target: Target, format: Option<&str>) -> AppResult<Response> {
    let mut conn = state.db.get().await?;
    let urls = PublicUrls::of(&state.config);
    let loaded = Loaded::load(&mut conn, &state.keys, &urls, target.environment).await?;
    let variables = loaded.list(target.service);
    match format {
        Some("env") => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format_dotenv(&variables),
        )
            .into_response()),
        Some(other) => Err(AppError::bad_request(format!(
            "unknown format `{}`: use `env` or leave it out",
            other.escape_debug()
        ))),
        None => {
            let staged = match target.service {
                Some(service) => store::staged(&mut conn, &loaded, service).await?,
                None => Vec::new(),
            };
            Ok(axum::Json(VariableList { variables, staged }).into_response())
        }
    }
}

/// Writes `ops` with their audit entries in one transaction; the variables afterwards.
pub(super) async fn apply(
    state: &AppState,
    caller: &Caller,
    meta: &RequestMeta,
    target: Target,
    ops: Vec<Op>,
) -> AppResult<Vec<Variable>> {
    let mut conn = state.db.get().await?;
    let urls = PublicUrls::of(&state.config);
    let keys = state.keys.clone();
    conn.transaction::<_, AppError, _>(async |conn| {
        let done = store::write(
            conn,
            &keys,
            &urls,
            target.environment,
            target.service,
            ops,
            caller.user_id,
        )
        .await?;
        for Done { name, what, sealed } in &done {
            let action = match *what {
                "created" => "variable.create",
                "deleted" => "variable.delete",
                _ => "variable.update",
            };
            let entry = audit::Entry::new(action)
                .workspace(target.workspace)
                .actor(caller.user_id)
                .target(
                    if target.service.is_some() {
                        "service"
                    } else {
                        "environment"
                    },
                    target.service.unwrap_or(target.environment),
                )
                .detail(serde_json::json!({
                    "environment_id": target.environment,
                    "name": name,
                    "sealed": sealed,
                }));
            audit::record(conn, meta, entry).await?;
        }
        Ok(())
    })
    .await?;
    let loaded = Loaded::load(&mut conn, &state.keys, &urls, target.environment).await?;
    Ok(loaded.list(target.service))
}

fn one(variables: Vec<Variable>, name: &str) -> AppResult<axum::Json<VariableResponse>> {
    variables
        .into_iter()
        .find(|v| v.name == name)
        .map(|variable| axum::Json(VariableResponse { variable }))
        .ok_or_else(|| AppError::not_found(format!("the variable `{name}` does not exist")))
}

/// The ops of a raw `.env` text: every variable in it is set (keeping its seal); unsealed
/// variables that it leaves out are deleted; sealed ones are kept unless named.
pub(super) async fn replace_ops(state: &AppState, target: Target, text: &str) -> AppResult<Vec<Op>> {
    let parsed = parse_dotenv(text).map_err(AppError::unprocessable)?;
    let mut conn = state.db.get().await?;
    let loaded = Loaded::load(
        &mut conn,
        &state.keys,
        &PublicUrls::of(&state.config),
        target.environment,
    )
    .await?;
    let mut ops: Vec<Op> = loaded
        .list(target.service)
        .into_iter()
        .filter(|v| !v.sealed && !parsed.iter().any(|(name, _)| *name == v.name))
        .map(|v| Op::Delete { name: v.name })
        .collect();
    ops.extend(parsed.into_iter().map(|(name, value)| Op::Set {
        name,
        value: Some(value),
        sealed: None,
        create_only: false,
    }));
    Ok(ops)
}

/// A service's variables in an environment (sealed ones without their values), and what
/// changed since its active deployment.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/variables",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Service id"), ListParams),
    responses(
        (status = 200, description = "The variables (or `.env` text with `format=env`)", body = VariableList),
        (status = 403, description = "Viewers cannot read variables", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_service_variables(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<ListParams>,
) -> AppResult<Response> {
    let target = service_target(&mut *state.db.get().await?, &caller, id, params.environment).await?;
    list(&state, target, params.format.as_deref()).await
}

/// Add a variable to a service (`sealed`: write-only from now on).
#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/variables",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Service id"), VariableParams),
    request_body = NewVariable,
    responses(
        (status = 201, description = "Created", body = VariableResponse),
        (status = 409, description = "A variable with this name exists", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name or value, a missing reference or a cycle", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_service_variable(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<VariableParams>,
    Json(req): Json<NewVariable>,
) -> AppResult<(StatusCode, axum::Json<VariableResponse>)> {
    let target = service_target(&mut *state.db.get().await?, &caller, id, params.environment).await?;
    create(&state, &caller, &meta, target, req).await
}

pub(super) async fn create(
    state: &AppState,
    caller: &Caller,
    meta: &RequestMeta,
    target: Target,
    req: NewVariable,
) -> AppResult<(StatusCode, axum::Json<VariableResponse>)> {
    let op = Op::Set {
        name: req.name.clone(),
        value: Some(req.value),
        sealed: Some(req.sealed),
        create_only: true,
    };
    let variables = apply(state, caller, meta, target, vec![op]).await?;
    Ok((StatusCode::CREATED, one(variables, &req.name)?))
}

pub(super) async fn update(
    state: &AppState,
    caller: &Caller,
    meta: &RequestMeta,
    target: Target,
    name: String,
    req: VariablePatch,
) -> AppResult<axum::Json<VariableResponse>> {
    let op = Op::Set {
        name: name.clone(),
        value: req.value,
        sealed: req.sealed,
        create_only: false,
    };
    // PATCH changes what exists; creating is POST's job.
    let mut conn = state.db.get().await?;
    let loaded = Loaded::load(
        &mut conn,
        &state.keys,
        &PublicUrls::of(&state.config),
        target.environment,
    )
    .await?;
    if !loaded.list(target.service).iter().any(|v| v.name == name) {
        return Err(AppError::not_found(format!(
            "the variable `{}` does not exist",
            name.escape_debug()
        )));
    }
    drop(conn);
    one(apply(state, caller, meta, target, vec![op]).await?, &name)
}

/// Replace a service's variables with raw `.env` text: each one in it is set, unsealed ones
/// it leaves out are deleted, sealed ones are kept unless it names them.
#[utoipa::path(
    put,
    path = "/api/v1/services/{id}/variables",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Service id"), VariableParams),
    request_body(content = String, content_type = "text/plain", description = "`.env` text"),
    responses(
        (status = 200, description = "The variables now", body = VariableList),
        (status = 422, description = "A line that does not parse, an invalid name or value, a missing reference or a cycle", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn replace_service_variables(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<VariableParams>,
    body: String,
) -> AppResult<axum::Json<VariableList>> {
    let target = service_target(&mut *state.db.get().await?, &caller, id, params.environment).await?;
    let ops = replace_ops(&state, target, &body).await?;
    let variables = apply(&state, &caller, &meta, target, ops).await?;
    Ok(axum::Json(VariableList {
        variables,
        staged: Vec::new(),
    }))
}

/// Change a service variable's value, or seal it.
#[utoipa::path(
    patch,
    path = "/api/v1/services/{id}/variables/{name}",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Service id"), ("name" = String, Path, description = "Variable name"), VariableParams),
    request_body = VariablePatch,
    responses(
        (status = 200, description = "Updated", body = VariableResponse),
        (status = 404, description = "No such variable", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid value, unsealing, a missing reference or a cycle", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_service_variable(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path((id, name)): Path<(Uuid, String)>,
    Query(params): Query<VariableParams>,
    Json(req): Json<VariablePatch>,
) -> AppResult<axum::Json<VariableResponse>> {
    let target = service_target(&mut *state.db.get().await?, &caller, id, params.environment).await?;
    update(&state, &caller, &meta, target, name, req).await
}

/// Delete a service variable (refused while another variable refers to it).
#[utoipa::path(
    delete,
    path = "/api/v1/services/{id}/variables/{name}",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Service id"), ("name" = String, Path, description = "Variable name"), VariableParams),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such variable", body = railyard_shared::ErrorBody),
        (status = 422, description = "Another variable refers to it", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_service_variable(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path((id, name)): Path<(Uuid, String)>,
    Query(params): Query<VariableParams>,
) -> AppResult<StatusCode> {
    let target = service_target(&mut *state.db.get().await?, &caller, id, params.environment).await?;
    apply(&state, &caller, &meta, target, vec![Op::Delete { name }]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deploy changes: the active release again with the current variables (no rebuild, unless
/// `rebuild=true`: then the active deployment's commit is built again).
#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/deploy-changes",
    tag = "variables",
    params(("id" = Uuid, Path, description = "Service id"), DeployChangesParams),
    responses(
        (status = 201, description = "Queued", body = DeploymentResponse),
        (status = 403, description = "Viewers cannot deploy", body = railyard_shared::ErrorBody),
        (status = 409, description = "Nothing is deployed, or its release is not kept", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn deploy_changes(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<DeployChangesParams>,
) -> AppResult<(StatusCode, axum::Json<DeploymentResponse>)> {
    let mut conn = state.db.get().await?;
    let target = service_target(&mut conn, &caller, id, params.environment).await?;
    let active = Deployments::active(&mut conn, id, target.environment)
        .await?
        .ok_or_else(|| AppError::conflict("the service has no active deployment here: deploy it first"))?;
    if params.rebuild {
        // The deployment that built what runs (a rollback or re-release reuses another's).
        let origin = match active.release_of {
            Some(of) => Deployments::find(&mut conn, of).await?.unwrap_or(active),
            None => active,
        };
        let new = NewDeployment {
            service: id,
            environment: target.environment,
            source_kind: match origin.source_kind.as_str() {
                "push" => "push",
                "upload" => "upload",
                _ => "git",
            },
            branch: origin.branch,
            commit: origin.commit_sha,
            upload: origin.upload_id,
            release_of: None,
            promoted_from: None,
        };
        return super::request_deployment(
            &mut conn,
            &meta,
            &caller,
            target.workspace,
            "deployment.variables",
            new,
        )
        .await;
    }
    let release = active.release_of.unwrap_or(active.id);
    if Deployments::release(&mut conn, release).await?.is_none() {
        return Err(AppError::conflict(
            "the active deployment's release is no longer kept: redeploy to rebuild",
        ));
    }
    let new = NewDeployment {
        service: id,
        environment: target.environment,
        source_kind: "variables",
        branch: active.branch,
        commit: active.commit_sha,
        upload: None,
        release_of: Some(release),
        promoted_from: None,
    };
    super::request_deployment(
        &mut conn,
        &meta,
        &caller,
        target.workspace,
        "deployment.variables",
        new,
    )
    .await
}
