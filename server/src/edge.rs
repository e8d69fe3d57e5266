//! The app router's listener (`RAILYARD_ROUTER_LISTEN`).
//!
//! It maps `Host` to the active release of a service once the runtime exists; until a
//! service is deployed, the route table is empty and every host gets the "no app here"
//! page with 404.

use axum::{
    Router,
    http::{StatusCode, header},
    response::{Html, IntoResponse},
};

pub fn router() -> Router {
    Router::new().fallback(|| async {
        (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-store")],
            Html(
                "<!doctype html><meta charset=utf-8><title>No app here · Railyard</title>\
                 <body style=\"background:#020617;color:#e2e8f0;font-family:system-ui;padding:3rem\">\
                 <h1>No app is deployed at this address</h1>\
                 <p>Railyard's router is running, but no service answers for this host name yet.</p></body>",
            ),
        )
            .into_response()
    })
}
