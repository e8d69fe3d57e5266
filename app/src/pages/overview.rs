use leptos::prelude::*;
use railyard_shared::{ComponentStatus, HealthResponse};

use crate::components::health::{Health, component_label, use_health};

#[component]
pub fn Overview() -> impl IntoView {
    let Health(health) = use_health();
    let origin = window().location().origin().unwrap_or_default();
    let cli = format!("railyard status --url {origin}");

    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <h1>"Overview"</h1>
                    <p class="muted">"The state of this Railyard instance."</p>
                </div>
            </header>

            <Transition fallback=|| view! { <StatusSkeleton /> }>
                {move || health.get().map(|result| match result {
                    Ok(report) => view! { <StatusCards report /> }.into_any(),
                    Err(err) => view! {
                        <div class="card card-error" role="alert" data-testid="health-error">
                            <h2>"The server does not answer"</h2>
                            <p class="muted">{err.to_string()}</p>
                            <p class="muted">"Retrying every 10 seconds."</p>
                        </div>
                    }.into_any(),
                })}
            </Transition>

            <div class="card">
                <h2>"From your terminal"</h2>
                <p class="muted">"Check this instance with the Railyard CLI:"</p>
                <pre class="code">{cli}</pre>
                <p class="muted">
                    "Every endpoint is described in the "
                    <a href="/api/docs" target="_blank" rel="noopener">"API reference"</a>
                    " (OpenAPI 3.1 at " <code>"/api/openapi.json"</code> ")."
                </p>
            </div>
        </section>
    }
}

#[component]
fn StatusCards(report: HealthResponse) -> impl IntoView {
    let api = if report.is_ok() {
        ComponentStatus::Ok
    } else {
        ComponentStatus::Unavailable
    };
    view! {
        <div class="grid" data-testid="status-cards">
            <StatusCard name="Control plane" status=api detail=format!("version {}", report.version) />
            <StatusCard name="PostgreSQL" status=report.database detail="state and job queue".to_owned() />
            <StatusCard name="Redis" status=report.redis detail="shared log bus".to_owned() />
        </div>
    }
}

#[component]
fn StatusCard(name: &'static str, status: ComponentStatus, detail: String) -> impl IntoView {
    let (label, tone) = component_label(status);
    view! {
        <div class="card status-card" data-testid=format!("status-{}", name.to_lowercase().replace(' ', "-"))>
            <div class="status-card-head">
                <span class=format!("dot dot-{tone}")></span>
                <h2>{name}</h2>
            </div>
            <p class=format!("status-word tone-{tone}")>{label}</p>
            <p class="muted mono">{detail}</p>
        </div>
    }
}

#[component]
fn StatusSkeleton() -> impl IntoView {
    view! {
        <div class="grid" aria-busy="true">
            <div class="card skeleton"></div>
            <div class="card skeleton"></div>
            <div class="card skeleton"></div>
        </div>
    }
}
