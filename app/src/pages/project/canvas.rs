//! The canvas: a project's services in one environment, live.

use leptos::prelude::*;
use railyard_shared::{EnvironmentId, ProjectId};
use railyard_shared::{
    deployments::ProjectOverview,
    live::{ServerMessage, Topic},
};

use super::node::ServiceNode;
use crate::{
    api::projects as api,
    components::loading::Loaded,
    format::now_s,
    live::{Connection, use_live},
};

/// The services of a project in one environment, live: the socket sends the whole overview
/// whenever a service, deployment or instance changes.
#[component]
pub fn Canvas(project: ProjectId, environment: EnvironmentId) -> impl IntoView {
    // The first read answers until the socket's first overview; from then on, the socket.
    let first = LocalResource::new(move || api::project_overview(project, environment));
    let fresh = RwSignal::new(None::<ProjectOverview>);
    let connection = RwSignal::new(Connection::Connecting);
    use_live().subscribe(
        Topic::Project { project, environment },
        || 0,
        connection,
        move |message| {
            if let ServerMessage::Status { overview, .. } = message {
                fresh.try_set(Some(overview));
            }
        },
    );
    let now = now_signal();
    view! {
        <div class="canvas" data-testid="canvas">
            <div class="canvas-bar">
                {move || {
                    let (class, label) = connection.get().badge();
                    view! { <span class=class data-testid="canvas-connection"><span class="dot"></span>{label}</span> }
                }}
            </div>
            {move || match fresh.get() {
                Some(overview) => view! { <Nodes overview environment now /> }.into_any(),
                None => view! {
                    <Loaded fallback=|| view! { <div class="card skeleton service-node"></div> }>
                        {move || Suspend::new(async move {
                            first.await.map(|overview| view! { <Nodes overview environment now /> })
                        })}
                    </Loaded>
                }.into_any(),
            }}
        </div>
    }
}

/// The services on the canvas, or how to add the first.
#[component]
fn Nodes(overview: ProjectOverview, environment: EnvironmentId, now: ReadSignal<i64>) -> impl IntoView {
    if overview.services.is_empty() {
        return view! {
            <div class="empty-canvas">
                <p class="muted">"No services yet."</p>
                <p class="muted">"Add one from a git repository, by git push, or by upload: “New service” above."</p>
            </div>
        }
        .into_any();
    }
    view! {
        <div class="canvas-nodes" data-testid="services">
            {overview.services.into_iter().map(|s| view! { <ServiceNode service=s environment now /> }).collect_view()}
        </div>
    }
    .into_any()
}

/// Seconds since the epoch, ticking every 10 s (for "3 min ago").
fn now_signal() -> ReadSignal<i64> {
    let (now, set_now) = signal(now_s());
    let timer =
        set_interval_with_handle(move || set_now.set(now_s()), std::time::Duration::from_secs(10)).ok();
    on_cleanup(move || {
        if let Some(timer) = timer {
            timer.clear();
        }
    });
    now
}
