//! What runs: a service's status in an environment.

use axum::extract::State;
use chrono::Utc;
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use railyard_shared::{
    auth::Role,
    deployments::{ServiceStatus, ServiceStatusResponse},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{deployments::environment_of, services::authorize_service};
use crate::{
    app::AppState,
    auth::Caller,
    error::AppResult,
    extract::{Path, Query},
    schema::{environments, instances, projects},
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StatusParams {
    /// Environment id (default: `production`).
    pub environment: Option<Uuid>,
}

/// Whether the service runs, on which pid and port, since when, and how often it restarted.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/status",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id"), StatusParams),
    responses(
        (status = 200, description = "The status", body = ServiceStatusResponse),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_service_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<StatusParams>,
) -> AppResult<axum::Json<ServiceStatusResponse>> {
    let mut conn = state.db.get().await?;
    let (service, _) = authorize_service(&mut conn, &caller, id, Role::Viewer).await?;
    let environment = environment_of(&mut conn, service.project_id, params.environment).await?;
    let (env_name, project_name): (String, String) = environments::table
        .inner_join(projects::table)
        .filter(environments::id.eq(environment))
        .select((environments::name, projects::name))
        .first(&mut conn)
        .await?;
    type Row = (
        String,
        Option<i32>,
        Option<i32>,
        i32,
        Option<i32>,
        Uuid,
        chrono::DateTime<Utc>,
    );
    // The newest instance that is not a stopped leftover of an older release.
    let row: Option<Row> = instances::table
        .filter(instances::service_id.eq(id))
        .filter(instances::environment_id.eq(environment))
        .order((
            diesel::dsl::sql::<diesel::sql_types::Bool>("state IN ('running', 'crashed')").desc(),
            instances::started_at.desc(),
        ))
        .select((
            instances::state,
            instances::pid,
            instances::port,
            instances::restarts,
            instances::last_exit_code,
            instances::deployment_id,
            instances::started_at,
        ))
        .first(&mut conn)
        .await
        .optional()?;
    let router_port = state.config.http.router_listen.port();
    let url = format!(
        "http://{}-{env_name}-{project_name}.{}:{router_port}",
        service.name, state.config.runtime.base_domain
    );
    let status = match row {
        None => ServiceStatus {
            state: "not_deployed".into(),
            pid: None,
            port: None,
            url,
            restarts: 0,
            uptime_s: None,
            last_exit_code: None,
            deployment_id: None,
        },
        Some((state, pid, port, restarts, last_exit_code, deployment, started_at)) => ServiceStatus {
            uptime_s: (state == "running").then(|| (Utc::now() - started_at).num_seconds().max(0)),
            state,
            pid,
            port,
            url,
            restarts,
            last_exit_code,
            deployment_id: Some(deployment),
        },
    };
    Ok(axum::Json(ServiceStatusResponse { status }))
}
