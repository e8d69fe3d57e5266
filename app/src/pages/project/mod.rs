//! `/projects`: the workspace's projects; `/projects/:id`: the project canvas — its
//! services in one environment (selectable) as live cards, and a "New service" dialog.

mod canvas;
mod github_source;
mod integrations;
mod list;
mod matrix;
mod new_environment;
mod new_service;
mod node;
mod page;

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use railyard_shared::EnvironmentId;
use railyard_shared::{
    DeploymentState, ServiceState,
    deployments::ServiceOverview,
    projects::{EnvironmentKind, Project},
};

pub use integrations::IntegrationsPage;
pub use list::ProjectsPage;

/// The project the route's `:id` names (the matrix and integrations pages load it so).
fn project_of_path() -> LocalResource<Result<Project, crate::api::ApiError>> {
    let params = leptos_router::hooks::use_params_map();
    LocalResource::new(move || {
        let id = params
            .read()
            .get("id")
            .and_then(|id| id.parse::<railyard_shared::ProjectId>().ok());
        async move {
            let id = id.ok_or_else(|| crate::api::ApiError::not_found("No such project."))?;
            crate::api::projects::find_project(id).await
        }
    })
}
pub use matrix::MatrixPage;
pub use page::ProjectPage;

/// The environment switcher of a project's pages: choosing one opens `path` (the page
/// being looked at) in that environment (`?environment=` in the URL).
#[component]
pub fn EnvironmentSwitcher(
    project: Project,
    current: Signal<Option<EnvironmentId>>,
    path: String,
) -> impl IntoView {
    let navigate = use_navigate();
    let choose = move |ev: leptos::ev::Event| {
        if let Ok(env) = event_target_value(&ev).parse::<EnvironmentId>() {
            navigate(&format!("{path}?environment={env}"), Default::default());
        }
    };
    view! {
        <label class="env-select">"Environment"
            <select aria-label="Environment" on:change=choose data-testid="environment-select">
                {project.environments.into_iter().map(|e| {
                    let label = match e.kind {
                        EnvironmentKind::Production => format!("{} · production", e.name),
                        EnvironmentKind::Preview => format!("{} · preview", e.name),
                        _ => e.name.clone(),
                    };
                    let label = if e.name == e.kind.as_str() { e.name.clone() } else { label };
                    view! { <option value=e.id.to_string() selected=move || current.get() == Some(e.id)>{label}</option> }
                }).collect_view()}
            </select>
        </label>
    }
}

/// The environment a page shows: `asked` (from `?environment=`) when it is the project's,
/// else production, else the first.
pub fn chosen_environment(project: &Project, asked: Option<&str>) -> Option<EnvironmentId> {
    let ids = || project.environments.iter();
    asked
        .and_then(|a| a.parse::<EnvironmentId>().ok())
        .filter(|a| ids().any(|e| e.id == *a))
        .or_else(|| {
            ids()
                .find(|e| e.kind == EnvironmentKind::Production)
                .map(|e| e.id)
        })
        .or_else(|| ids().next().map(|e| e.id))
}

/// The dot's class for a service: running, in flight, crashed or failed, or idle.
pub fn dot_class(overview: &ServiceOverview) -> (&'static str, String) {
    let in_flight = overview.latest.as_ref().filter(|d| d.state.is_pending());
    if let Some(d) = in_flight {
        return ("dot dot-busy", d.state.label());
    }
    match overview.status.state {
        ServiceState::Running => ("dot dot-ok", "running".into()),
        ServiceState::Crashed => ("dot dot-down", "crashed".into()),
        _ if overview
            .latest
            .as_ref()
            .is_some_and(|d| d.state == DeploymentState::Failed) =>
        {
            ("dot dot-down", "failed".into())
        }
        state => ("dot dot-idle", state.label()),
    }
}
