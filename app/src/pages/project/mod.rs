//! `/projects`: the workspace's projects; `/projects/:id`: the project canvas — its
//! services in one environment (selectable) as live cards, and a "New service" dialog.

mod canvas;
mod list;
mod new_service;
mod node;
mod page;

use railyard_shared::EnvironmentId;
use railyard_shared::{DeploymentState, ServiceState, deployments::ServiceOverview, projects::Project};

pub use list::ProjectsPage;
pub use page::ProjectPage;

/// The environment a page shows: `asked` (from `?environment=`) when it is the project's,
/// else production, else the first.
pub fn chosen_environment(project: &Project, asked: Option<&str>) -> Option<EnvironmentId> {
    let ids = || project.environments.iter();
    asked
        .and_then(|a| a.parse::<EnvironmentId>().ok())
        .filter(|a| ids().any(|e| e.id == *a))
        .or_else(|| ids().find(|e| e.name == "production").map(|e| e.id))
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
