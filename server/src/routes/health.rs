use std::time::Duration;

use axum::{extract::State, http::StatusCode};
use railyard_shared::{ComponentStatus, HealthResponse, HealthStatus};

use crate::{app::AppState, db};

/// How long one dependency check may take before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness and dependency health.
///
/// 200 when PostgreSQL (and Redis, when configured) answer; 503 with the same body otherwise.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    tag = "system",
    responses(
        (status = 200, description = "Every dependency answers", body = HealthResponse),
        (status = 503, description = "A dependency does not answer", body = HealthResponse),
    ),
)]
pub async fn find_health(State(state): State<AppState>) -> (StatusCode, axum::Json<HealthResponse>) {
    let database = async {
        if db::ping(&state.db, CHECK_TIMEOUT).await {
            ComponentStatus::Ok
        } else {
            ComponentStatus::Unavailable
        }
    };
    let redis = async {
        match &state.redis {
            None => ComponentStatus::Disabled,
            Some(bus) if bus.ping(CHECK_TIMEOUT).await => ComponentStatus::Ok,
            Some(_) => ComponentStatus::Unavailable,
        }
    };
    let (database, redis) = tokio::join!(database, redis);
    let healthy = database == ComponentStatus::Ok && redis != ComponentStatus::Unavailable;
    let body = HealthResponse {
        status: if healthy {
            HealthStatus::Ok
        } else {
            HealthStatus::Unavailable
        },
        database,
        redis,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    if !healthy {
        tracing::warn!(?database, ?redis, "health check failed");
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}
