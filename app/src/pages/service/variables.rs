//! The Variables tab: the service's own variables in this environment, and the
//! environment's shared ones (which `${{ shared.NAME }}` references read).

use leptos::prelude::*;
use railyard_shared::{EnvironmentId, ServiceId};

use crate::{api::projects::VariablesOf, components::variables::VariablesPanel};

#[component]
pub fn VariablesTab(
    service: ServiceId,
    environment: EnvironmentId,
    env_name: String,
    can_write: Signal<bool>,
    /// A deploy of the staged changes was requested.
    on_deployed: Callback<()>,
) -> impl IntoView {
    view! {
        <VariablesPanel of=VariablesOf::Service { service, environment } title="Variables" can_write on_deployed />
        <VariablesPanel of=VariablesOf::Shared(environment) title=format!("Shared variables ({env_name})") can_write />
    }
}
