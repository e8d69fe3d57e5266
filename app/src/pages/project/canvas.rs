//! The canvas: a project's services in one environment, live.

use leptos::{prelude::*, task::spawn_local};
use railyard_shared::{EnvironmentId, ProjectId};
use railyard_shared::{
    deployments::ProjectOverview,
    live::{ServerMessage, Topic},
};

use super::node::ServiceNode;
use crate::{
    api::projects as api,
    format::now_s,
    live::{Connection, use_live},
};

/// The services of a project in one environment, live: the socket sends the whole overview
/// whenever a service, deployment or instance changes.
#[component]
pub fn Canvas(project: ProjectId, environment: EnvironmentId) -> impl IntoView {
    let overview = RwSignal::new(None::<Result<ProjectOverview, String>>);
    let connection = RwSignal::new(Connection::Connecting);
    spawn_local(async move {
        let first = api::project_overview(project, environment)
            .await
            .map_err(|e| e.message);
        // The socket may have answered first, or the canvas may be gone already.
        if overview.try_get_untracked() == Some(None) {
            overview.try_set(Some(first));
        }
    });
    use_live().subscribe(
        Topic::Project { project, environment },
        || 0,
        connection,
        move |message| {
            if let ServerMessage::Status { overview: fresh, .. } = message {
                overview.try_set(Some(Ok(fresh)));
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
            {move || match overview.get() {
                None => view! { <div class="card skeleton service-node"></div> }.into_any(),
                Some(Err(message)) => view! { <p class="form-error" role="alert">{message}</p> }.into_any(),
                Some(Ok(o)) if o.services.is_empty() => view! {
                    <div class="empty-canvas">
                        <p class="muted">"No services yet."</p>
                        <p class="muted">"Add one from a git repository, by git push, or by upload: “New service” above."</p>
                    </div>
                }.into_any(),
                Some(Ok(o)) => view! {
                    <div class="canvas-nodes" data-testid="services">
                        {o.services.into_iter().map(|s| view! { <ServiceNode service=s environment now /> }).collect_view()}
                    </div>
                }.into_any(),
            }}
        </div>
    }
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
