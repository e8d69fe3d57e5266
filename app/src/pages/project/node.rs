//! One service on the canvas: its state, source, active and latest deployment, and URL.

use leptos::prelude::*;
use leptos_router::components::A;
use railyard_shared::EnvironmentId;
use railyard_shared::{ServiceState, deployments::ServiceOverview, projects::Source};

use super::dot_class;
use crate::format::ago;

#[component]
pub fn ServiceNode(
    service: ServiceOverview,
    environment: EnvironmentId,
    now: ReadSignal<i64>,
) -> impl IntoView {
    let (dot, label) = dot_class(&service);
    let id = service.service.id;
    let source = match &service.service.source {
        Source::Git { url, branch } => format!("{url} · {branch}"),
        Source::Push { branch } => format!("git push · {branch}"),
        Source::Upload {} => "uploads".to_owned(),
        Source::Github { repository, branch } => format!("GitHub {repository} · {branch}"),
        Source::Postgres {} => "PostgreSQL".to_owned(),
    };
    let active = service.active.clone();
    let latest = service
        .latest
        .clone()
        .filter(|l| Some(l.id) != active.as_ref().map(|a| a.id));
    let url = service.status.url.clone();
    let running = service.status.state == ServiceState::Running;
    let testid = format!("service-{}", service.service.name);
    view! {
        <A href=format!("/services/{id}?environment={environment}") attr:class="card service-node" attr:data-testid=testid>
            <div class="status-card-head">
                <span class=dot title=label.clone()></span>
                <h2>{service.service.name.clone()}</h2>
                <span class="muted node-state" data-testid="node-state">{label}</span>
            </div>
            <p class="muted ellipsis mono small">{source}</p>
            {match active {
                Some(d) => view! {
                    <p class="node-line" data-testid="node-active">
                        <span class="muted">"Active "</span>
                        <span class="mono">{d.commit.map(|c| c.chars().take(8).collect::<String>()).unwrap_or_else(|| d.source.clone())}</span>
                        <span class="muted">{move || format!(" · {}", ago(d.created_at, now.get()))}</span>
                    </p>
                }.into_any(),
                None => view! { <p class="node-line muted">"Not deployed yet"</p> }.into_any(),
            }}
            {latest.map(|d| (d.reason.clone().unwrap_or_default(), d)).map(|(title, d)| view! {
                <p class="node-line small" data-testid="node-latest" title=title>
                    <span class="muted">"Latest "</span>{d.state.label()}
                    {d.reason.map(|r| view! { <span class="muted">{format!(" · {r}")}</span> })}
                </p>
            })}
            {running.then(|| view! { <p class="node-line mono small ellipsis link-like">{url}</p> })}
        </A>
    }
}
