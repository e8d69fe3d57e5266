//! Every route of the control plane's HTTP listener, in one list.

use axum::{
    Router,
    extract::Request,
    response::{IntoResponse, Response},
    routing::get,
};
use utoipa::OpenApi as _;
use utoipa_axum::{router::OpenApiRouter, routes};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    app::AppState,
    dashboard::Dashboard,
    error::AppError,
    middleware,
    openapi::ApiDoc,
    routes::{
        audit, auth, databases, deployments, environments, github, health, instance, invitations, jwks, live,
        logs, me, members, projects, promotions, runtime, services, tokens, uploads, variables, workspaces,
    },
};

/// The API routes with their OpenAPI description.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::find_health))
        .routes(routes!(instance::find_instance))
        .routes(routes!(jwks::find_jwks))
        .routes(routes!(auth::csrf::find_csrf))
        .routes(routes!(auth::signup::signup))
        .routes(routes!(auth::login::login))
        .routes(routes!(auth::refresh::refresh))
        .routes(routes!(auth::logout::logout))
        .routes(routes!(auth::github::find_providers))
        .routes(routes!(auth::github::start_github))
        .routes(routes!(auth::github::github_callback))
        .routes(routes!(auth::github::create_separate))
        .routes(routes!(auth::github::connect_github))
        .routes(routes!(github::receive_webhook))
        .routes(routes!(github::find_connection, github::delete_connection))
        .routes(routes!(github::list_repositories))
        .routes(routes!(github::list_branches))
        .routes(routes!(github::list_deliveries))
        .routes(routes!(github::redeliver))
        .routes(routes!(github::approve))
        .routes(routes!(github::find_previews, github::update_previews))
        .routes(routes!(github::create_from_template))
        .routes(routes!(databases::find_database))
        .routes(routes!(databases::reveal_credentials))
        .routes(routes!(databases::list_backups, databases::create_backup))
        .routes(routes!(databases::update_backup_settings))
        .routes(routes!(databases::find_backup))
        .routes(routes!(databases::restore_backup))
        .routes(routes!(databases::find_restore))
        .routes(routes!(databases::download_backup))
        .routes(routes!(me::find_me))
        .routes(routes!(me::list_sessions))
        .routes(routes!(me::delete_session))
        .routes(routes!(me::update_password))
        .routes(routes!(me::request_email_verification))
        .routes(routes!(workspaces::find_usage))
        .routes(routes!(auth::verify::verify_email))
        .routes(routes!(workspaces::create_workspace, workspaces::list_workspaces))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::delete_token))
        .routes(routes!(
            workspaces::find_workspace,
            workspaces::update_workspace,
            workspaces::delete_workspace
        ))
        .routes(routes!(members::list_members))
        .routes(routes!(members::update_member, members::delete_member))
        .routes(routes!(members::transfer_ownership))
        .routes(routes!(
            invitations::create_invitation,
            invitations::list_invitations
        ))
        .routes(routes!(invitations::delete_invitation))
        .routes(routes!(invitations::find_invitation_preview))
        .routes(routes!(invitations::accept_invitation))
        .routes(routes!(audit::list_audit))
        .routes(routes!(projects::create_project, projects::list_projects))
        .routes(routes!(
            projects::find_project,
            projects::update_project,
            projects::delete_project
        ))
        .routes(routes!(projects::find_project_overview))
        .routes(routes!(environments::create_environment))
        .routes(routes!(
            environments::update_environment,
            environments::delete_environment
        ))
        .routes(routes!(environments::find_matrix))
        .routes(routes!(promotions::promote_project))
        .routes(routes!(promotions::promote_service))
        .routes(routes!(services::create_service, services::list_services))
        .routes(routes!(
            services::find_service,
            services::update_service,
            services::delete_service
        ))
        .routes(routes!(
            services::find_service_settings,
            services::update_service_settings
        ))
        .routes(routes!(
            deployments::create_deployment,
            deployments::list_deployments
        ))
        .routes(routes!(deployments::find_deployment))
        .routes(routes!(deployments::cancel_deployment))
        .routes(routes!(deployments::redeploy_deployment))
        .routes(routes!(deployments::rollback_deployment))
        .routes(routes!(logs::list_deployment_logs))
        .routes(routes!(uploads::create_upload))
        .routes(routes!(runtime::find_service_status))
        .routes(routes!(logs::list_service_logs))
        .routes(routes!(runtime::restart_service))
        .routes(routes!(runtime::stop_service))
        .routes(routes!(runtime::start_service))
        .routes(routes!(
            variables::list_service_variables,
            variables::create_service_variable,
            variables::replace_service_variables
        ))
        .routes(routes!(
            variables::update_service_variable,
            variables::delete_service_variable
        ))
        .routes(routes!(
            variables::shared::list_shared_variables,
            variables::shared::create_shared_variable,
            variables::shared::replace_shared_variables
        ))
        .routes(routes!(
            variables::shared::update_shared_variable,
            variables::shared::delete_shared_variable
        ))
        .routes(routes!(variables::deploy_changes))
}

/// The full application: API, OpenAPI document and docs UI, the dashboard, and the
/// middleware stack. `extra` lets tests mount routes of their own under the same stack.
pub fn build(state: AppState, extra: Router<AppState>) -> Router {
    let (api, openapi) = api_routes().split_for_parts();
    let openapi_json = serde_json::to_value(&openapi).unwrap_or_default();
    let dashboard = Dashboard::new(&state.config.dashboard);
    let router = api
        .merge(extra)
        // The live WebSocket (not in the OpenAPI document, which cannot describe it).
        .route("/api/v1/live", get(live::live))
        .route(
            "/api/openapi.json",
            get(move || async move { axum::Json(openapi_json) }),
        )
        .merge(
            SwaggerUi::new("/api/docs")
                .config(utoipa_swagger_ui::Config::from("/api/openapi.json").try_it_out_enabled(true)),
        )
        .fallback(move |req: Request| async move { fallback(&dashboard, req).await });
    let http = &state.config.http;
    let (timeout, body_limit) = (http.request_timeout, http.body_limit);
    let origins = state.config.auth.cors_origins.clone();
    // `git push`/`fetch` speak git's protocol, may take longer than an API request and
    // stream large bodies: they sit outside the API's middleware.
    middleware::apply(router, timeout, body_limit, &origins)
        .merge(crate::git_http::router())
        .with_state(state)
}

/// Unknown `/api` paths get the 404 envelope; everything else is the dashboard.
async fn fallback(dashboard: &Dashboard, req: Request) -> Response {
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return AppError::not_found(format!("no API route for {} {path}", req.method())).into_response();
    }
    dashboard.serve(req).await
}
