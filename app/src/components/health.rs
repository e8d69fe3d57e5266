//! The server's health, fetched once for the whole shell and polled so every view of it
//! (the top-bar badge, the overview cards) follows the server without a reload.

use std::time::Duration;

use leptos::prelude::*;
use railyard_shared::{ComponentStatus, HealthResponse};

use crate::api::{self, ApiError};

const POLL_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
pub struct Health(pub LocalResource<Result<HealthResponse, ApiError>>);

/// Creates the shared health resource and its polling timer; call once, in the shell.
pub fn provide_health() {
    let resource = LocalResource::new(api::fetch_health);
    let timer = set_interval_with_handle(move || resource.refetch(), POLL_EVERY).ok();
    on_cleanup(move || {
        if let Some(timer) = timer {
            timer.clear();
        }
    });
    provide_context(Health(resource));
}

pub fn use_health() -> Health {
    expect_context::<Health>()
}

/// What one status looks like: a word and the CSS tone.
pub fn component_label(status: ComponentStatus) -> (&'static str, &'static str) {
    match status {
        ComponentStatus::Ok => ("Operational", "ok"),
        ComponentStatus::Unavailable => ("Unavailable", "down"),
        ComponentStatus::Disabled => ("Not configured", "idle"),
    }
}

/// The badge in the top bar: a status dot and a word.
#[component]
pub fn HealthBadge() -> impl IntoView {
    let Health(health) = use_health();
    let badge = move || {
        let (label, tone, title) = match health.get() {
            None => ("Checking…", "pending", String::from("Asking the server")),
            Some(Ok(report)) if report.is_ok() => (
                "All systems operational",
                "ok",
                format!("Railyard {}", report.version),
            ),
            Some(Ok(report)) => (
                "Degraded",
                "down",
                format!("Railyard {}: a dependency is down", report.version),
            ),
            Some(Err(err)) => ("Server unreachable", "down", err.to_string()),
        };
        view! {
            <span class=format!("badge badge-{tone}") title=title data-testid="health-badge">
                <span class="dot"></span>
                <span class="badge-label">{label}</span>
            </span>
        }
    };
    view! { {badge} }
}
