//! The instance itself, for its admins: how tenant code is isolated here.

use axum::extract::State;
use railyard_shared::{
    ErrorCode,
    instance::{InstanceResponse, Isolation, IsolationMode},
};

use crate::{
    app::AppState,
    auth::caller::Caller,
    error::{AppError, AppResult},
    models::user::User,
    sandbox,
};

/// The instance as its admins see it (instance admins only).
#[utoipa::path(
    get,
    path = "/api/v1/instance",
    tag = "system",
    responses(
        (status = 200, description = "The instance", body = InstanceResponse),
        (status = 401, description = "Not signed in", body = railyard_shared::ErrorBody),
        (status = 403, description = "Not an instance admin", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_instance(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<axum::Json<InstanceResponse>> {
    let mut conn = state.db.get().await?;
    if !User::find(&mut conn, caller.user_id).await?.is_instance_admin {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only instance admins see the instance's settings",
        ));
    }
    let isolation = state.sandbox.isolation();
    let mode = match isolation {
        sandbox::Isolation::On { .. } => IsolationMode::On,
        sandbox::Isolation::Off => IsolationMode::Off,
        sandbox::Isolation::Unavailable(_) => IsolationMode::Unavailable,
    };
    Ok(axum::Json(InstanceResponse {
        isolation: Isolation {
            mode,
            detail: isolation.describe(),
        },
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }))
}
