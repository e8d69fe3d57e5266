use axum::{extract::State, http::header};
use serde_json::{Value, json};

use crate::app::AppState;

/// The public keys that verify Railyard's access tokens (RFC 7517).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "auth",
    responses((status = 200, description = "JSON Web Key Set")),
)]
pub async fn find_jwks(
    State(state): State<AppState>,
) -> ([(header::HeaderName, &'static str); 1], axum::Json<Value>) {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(json!({ "keys": state.signer.jwks() })),
    )
}
