//! Services of a project: where their code comes from.

use axum::{extract::State, http::StatusCode};
use diesel_async::AsyncConnection as _;
use railyard_shared::{
    auth::Role,
    deployments::{RESTART_POLICIES, ServiceSettings, ServiceSettingsResponse, valid_health_path},
    projects::{
        CreateServiceRequest, ServiceResponse, ServicesResponse, Source, UpdateServiceRequest, valid_branch,
    },
};
use uuid::Uuid;

use super::{
    check_host, check_name,
    scope::{authorize_project, authorize_service, environment_of, require_storage},
};
use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta},
    databases::provision,
    error::{AppError, AppResult, conflict_on_unique},
    extract::{Json, Path, Query},
    models::{
        deployment::{Deployments, NewDeployment, RequestedBy},
        hosts,
        project::Projects,
        teardown::{self, Scope},
    },
    pagination::{self, PageParams},
    sources,
    variables::PublicUrls,
    webhooks,
};

/// Refuses a source that could reach a shell, an option position or Railyard's own files.
fn check_source(state: &AppState, source: &Source) -> Result<(), AppError> {
    let branch = match source {
        Source::Git { url, branch } => {
            sources::check_git_url(
                url,
                &state.config.data_dir,
                &state.config.pipeline.file_source_roots,
            )
            .map_err(AppError::unprocessable)?;
            Some(branch)
        }
        Source::Push { branch } => Some(branch),
        Source::Upload {} | Source::Postgres {} => None,
        Source::Github { repository, branch } => {
            if !railyard_shared::projects::valid_repository(repository) {
                return Err(AppError::unprocessable(
                    "`repository` must be a GitHub `owner/name`",
                ));
            }
            Some(branch)
        }
    };
    match branch {
        Some(branch) if !valid_branch(branch) => {
            Err(AppError::unprocessable("`branch` is not a valid git branch name"))
        }
        _ => Ok(()),
    }
}

/// Add a service to a project.
#[utoipa::path(
    post,
    path = "/api/v1/projects/{id}/services",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    request_body = CreateServiceRequest,
    responses(
        (status = 201, description = "Created", body = ServiceResponse),
        (status = 403, description = "Viewers cannot add services", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such project of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "The name is taken in this project", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name, repository URL or branch", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_service(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateServiceRequest>,
) -> AppResult<(StatusCode, axum::Json<ServiceResponse>)> {
    check_name(&req.name, "service")?;
    check_source(&state, &req.source)?;
    let mut conn = state.db.get().await?;
    let workspace = authorize_project(&mut conn, &caller, id, Role::Member, "project").await?;
    let base = &state.config.runtime.base_domain;
    // A database service: where the host puts its databases (its cluster starts on first use).
    let placed = match req.source {
        Source::Postgres {} => Some(state.databases.place().await.map_err(|err| {
            tracing::error!(error = %format!("{err:#}"), "the server of apps' databases is not available");
            AppError::new(
                railyard_shared::ErrorCode::ServiceUnavailable,
                "the PostgreSQL server of apps' databases is not available: an admin finds why in the server's log",
            )
        })?),
        _ => None,
    };
    let urls = PublicUrls::of(&state.config);
    let service = conn
        .transaction::<_, AppError, _>(async |conn| {
            let change = hosts::Change::Service {
                project: id,
                name: &req.name,
                renamed: None,
            };
            check_host(conn, base, change).await?;
            let service = Projects::create_service(conn, id, &req.name, &req.source)
                .await
                .map_err(|err| conflict_on_unique(err, "a service with this name exists in the project"))?;
            if let Some(placed) = &placed {
                let writer = provision::Writer {
                    keys: &state.keys,
                    urls: &urls,
                    driver: state.databases.driver(),
                    placed,
                    actor: caller.user_id,
                };
                provision::for_service(conn, &writer, id, service.id.uuid()).await?;
            }
            Ok(service)
        })
        .await?;
    let entry = audit::Entry::new("service.create")
        .workspace(workspace)
        .actor(caller.user_id);
    audit::record(
        &mut conn,
        &meta,
        entry
            .target("service", service.id)
            .detail(serde_json::json!({ "name": req.name })),
    )
    .await?;
    // A repository service deploys to production at once (not when the workspace is full:
    // the service is still made, and deploys once there is room).
    let warning = match &service.source {
        Source::Github { repository, .. } => webhooks::connect::connect(&state, caller.user_id, repository)
            .await
            .map_err(AppError::internal)?,
        _ => None,
    };
    let deployment_id = match &service.source {
        Source::Git { branch, .. } | Source::Github { branch, .. } if req.deploy.unwrap_or(true) => {
            let room = require_storage(&mut conn, &state.config, workspace).await.is_ok();
            match Projects::environment_of(&mut conn, id, None).await? {
                Some(production) if room => {
                    let new = NewDeployment {
                        service: service.id.uuid(),
                        environment: production,
                        source_kind: if matches!(service.source, Source::Github { .. }) {
                            "github"
                        } else {
                            "git"
                        },
                        branch: Some(branch.clone()),
                        commit: None,
                        upload: None,
                        release_of: None,
                        promoted_from: None,
                    };
                    let by = RequestedBy {
                        meta: &meta,
                        user: caller.user_id,
                        workspace,
                        action: "deployment.create",
                    };
                    Some(Deployments::request(&mut conn, new, by).await?.into())
                }
                _ => None,
            }
        }
        _ => None,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(ServiceResponse {
            service,
            deployment_id,
            warning,
        }),
    ))
}

/// The services of a project, by name.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}/services",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Project id"), PageParams),
    responses(
        (status = 200, description = "Services, by name", body = ServicesResponse),
        (status = 404, description = "No such project of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_services(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> AppResult<axum::Json<ServicesResponse>> {
    let (after, limit) = (params.after_name()?, params.limit()?);
    let mut conn = state.db.get().await?;
    authorize_project(&mut conn, &caller, id, Role::Viewer, "project").await?;
    let services = Projects::services_page(&mut conn, id, after, limit).await?;
    let next_cursor = (services.len() as i64 == limit)
        .then(|| {
            services
                .last()
                .map(|s| pagination::encode_name(&s.name, s.id.uuid()))
        })
        .flatten();
    Ok(axum::Json(ServicesResponse {
        services,
        next_cursor,
    }))
}

/// One service.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Service id")),
    responses(
        (status = 200, description = "The service", body = ServiceResponse),
        (status = 404, description = "No such service of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_service(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> AppResult<axum::Json<ServiceResponse>> {
    let mut conn = state.db.get().await?;
    let (service, _) = authorize_service(&mut conn, &caller, id, Role::Viewer).await?;
    Ok(axum::Json(ServiceResponse {
        service,
        deployment_id: None,
        warning: None,
    }))
}

/// Rename a service or change its source.
#[utoipa::path(
    patch,
    path = "/api/v1/services/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Service id")),
    request_body = UpdateServiceRequest,
    responses(
        (status = 200, description = "Updated", body = ServiceResponse),
        (status = 403, description = "Viewers cannot edit", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service of yours", body = railyard_shared::ErrorBody),
        (status = 409, description = "The name is taken", body = railyard_shared::ErrorBody),
        (status = 422, description = "Invalid name, repository URL or branch", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_service(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateServiceRequest>,
) -> AppResult<axum::Json<ServiceResponse>> {
    let mut conn = state.db.get().await?;
    let (current, workspace) = authorize_service(&mut conn, &caller, id, Role::Member).await?;
    let name = req.name.unwrap_or(current.name);
    let source_changed = req.source.is_some();
    if let Some(new) = &req.source
        && new.deploys() != current.source.deploys()
    {
        return Err(AppError::unprocessable(
            "a database service stays a database, and a service that deploys code cannot become one: add a new service",
        ));
    }
    let source = req.source.unwrap_or(current.source);
    check_name(&name, "service")?;
    check_source(&state, &source)?;
    let base = &state.config.runtime.base_domain;
    let project = current.project_id.uuid();
    let service = conn
        .transaction::<_, AppError, _>(async |conn| {
            let change = hosts::Change::Service {
                project,
                name: &name,
                renamed: Some(id),
            };
            check_host(conn, base, change).await?;
            Projects::update_service(conn, id, &name, &source)
                .await
                .map_err(|err| conflict_on_unique(err, "a service with this name exists in the project"))
        })
        .await?;
    let entry = audit::Entry::new("service.update")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("service", id);
    audit::record(
        &mut conn,
        &meta,
        entry.detail(serde_json::json!({ "name": name })),
    )
    .await?;
    let warning = match &service.source {
        Source::Github { repository, .. } if source_changed => {
            webhooks::connect::connect(&state, caller.user_id, repository)
                .await
                .map_err(AppError::internal)?
        }
        _ => None,
    };
    Ok(axum::Json(ServiceResponse {
        service,
        deployment_id: None,
        warning,
    }))
}

/// Delete a service (admins and owners).
#[utoipa::path(
    delete,
    path = "/api/v1/services/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Service id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs the admin role", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_service(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> AppResult<StatusCode> {
    let mut conn = state.db.get().await?;
    let (_, workspace) = authorize_service(&mut conn, &caller, id, Role::Admin).await?;
    let entry = audit::Entry::new("service.delete")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("service", id);
    teardown::delete(&mut conn, Scope::Service(id), &meta, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What settings a service may have; the message names the offending field.
fn check_settings(settings: &ServiceSettings) -> Result<(), AppError> {
    let bad = |msg: &str| Err(AppError::unprocessable(msg.to_owned()));
    if let Some(root) = &settings.root_dir
        && (root.len() > 512
            || root.starts_with('/')
            || !root
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/+@".contains(c))
            || root.split('/').any(|part| part == ".." || part.starts_with('-')))
    {
        return bad(
            "`root_dir` must be a relative path inside the source (letters, digits and `._-/+@`, no `..`)",
        );
    }
    for (name, command) in [
        ("build_command", &settings.build_command),
        ("start_command", &settings.start_command),
    ] {
        if let Some(command) = command
            && (command.trim().is_empty() || command.len() > 4096 || command.contains('\0'))
        {
            return Err(AppError::unprocessable(format!(
                "`{name}` must be a non-empty command line of at most 4096 characters"
            )));
        }
    }
    if let Some(path) = &settings.health_check_path
        && !valid_health_path(path)
    {
        return bad("`health_check_path` must be a path such as /health (printable ASCII, no spaces)");
    }
    if let Some(policy) = &settings.restart_policy
        && !RESTART_POLICIES.contains(&policy.as_str())
    {
        return bad("`restart_policy` must be on_failure, always or never");
    }
    if settings.branch.as_deref().is_some_and(|b| !valid_branch(b)) {
        return bad("`branch` is not a valid git branch name");
    }
    if settings.port.is_some_and(|p| !(1..=65535).contains(&p)) {
        return bad("`port` must be from 1 to 65535");
    }
    if settings
        .memory_limit_mb
        .is_some_and(|m| !(16..=1_048_576).contains(&m))
    {
        return bad("`memory_limit_mb` must be from 16 to 1048576");
    }
    Ok(())
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct SettingsParams {
    /// Environment id (default: `production`).
    pub environment: Option<Uuid>,
}

/// A service's settings in one environment (unset fields are detected from the source).
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/settings",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Service id"), SettingsParams),
    responses(
        (status = 200, description = "The settings", body = ServiceSettingsResponse),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_service_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<SettingsParams>,
) -> AppResult<axum::Json<ServiceSettingsResponse>> {
    let mut conn = state.db.get().await?;
    let (service, _) = authorize_service(&mut conn, &caller, id, Role::Viewer).await?;
    let environment = environment_of(&mut conn, service.project_id.uuid(), params.environment).await?;
    Ok(axum::Json(ServiceSettingsResponse {
        environment_id: environment.into(),
        settings: Deployments::settings(&mut conn, id, environment).await?,
    }))
}

/// Replace a service's settings in one environment; they apply from the next deployment.
#[utoipa::path(
    put,
    path = "/api/v1/services/{id}/settings",
    tag = "projects",
    params(("id" = Uuid, Path, description = "Service id"), SettingsParams),
    request_body = ServiceSettings,
    responses(
        (status = 200, description = "Saved", body = ServiceSettingsResponse),
        (status = 403, description = "Viewers cannot edit", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
        (status = 422, description = "An invalid setting (named)", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_service_settings(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<SettingsParams>,
    Json(settings): Json<ServiceSettings>,
) -> AppResult<axum::Json<ServiceSettingsResponse>> {
    check_settings(&settings)?;
    let mut conn = state.db.get().await?;
    let (service, workspace) = authorize_service(&mut conn, &caller, id, Role::Member).await?;
    let environment = environment_of(&mut conn, service.project_id.uuid(), params.environment).await?;
    Deployments::save_settings(&mut conn, id, environment, &settings).await?;
    let entry = audit::Entry::new("service.settings")
        .workspace(workspace)
        .actor(caller.user_id)
        .target("service", id);
    audit::record(
        &mut conn,
        &meta,
        entry.detail(serde_json::json!({ "environment_id": environment, "settings": settings })),
    )
    .await?;
    Ok(axum::Json(ServiceSettingsResponse {
        environment_id: environment.into(),
        settings: Deployments::settings(&mut conn, id, environment).await?,
    }))
}
