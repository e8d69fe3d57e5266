//! The danger zone of a service's Settings: delete the service, its environment (not
//! production) or the whole project, each after typing its name.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use railyard_shared::{
    EnvironmentId, ProjectId, ServiceId,
    projects::{EnvironmentKind, Project},
};

use crate::{api::environments as api, components::toast::use_toasts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Service(ServiceId),
    Environment(EnvironmentId),
    Project(ProjectId),
}

#[component]
pub fn DangerZone(
    service: ServiceId,
    service_name: String,
    environment: EnvironmentId,
    project: Project,
    /// Deleting needs the admin role.
    can_delete: Signal<bool>,
) -> impl IntoView {
    let env = project.environments.iter().find(|e| e.id == environment).cloned();
    let env_name = env.as_ref().map(|e| e.name.clone()).unwrap_or_default();
    let production = env
        .as_ref()
        .is_some_and(|e| e.kind == EnvironmentKind::Production);
    view! {
        <RenameEnvironment environment project=project.id current=env_name.clone() can_write=can_delete />
        <section class="card danger-zone" data-testid="danger-zone">
            <h2 class="card-title">"Danger zone"</h2>
            <Confirmed target=Target::Service(service) name=service_name.clone() project=project.id
                what=format!("Delete the service {service_name}") can_delete
                detail="Stops it in every environment and removes its deployments, releases, variables and logs." />
            {(!production).then(|| view! {
                <Confirmed target=Target::Environment(environment) name=env_name.clone() project=project.id
                    what=format!("Delete the environment {env_name}") can_delete
                    detail="Stops every service in it and removes its deployments, settings and variables. Production cannot be deleted." />
            })}
            <Confirmed target=Target::Project(project.id) name=project.name.clone() project=project.id
                what=format!("Delete the project {}", project.name) can_delete
                detail="Stops every service in every environment and removes them all." />
        </section>
    }
}

#[component]
fn Confirmed(
    target: Target,
    name: String,
    project: ProjectId,
    what: String,
    detail: &'static str,
    can_delete: Signal<bool>,
) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let typed = RwSignal::new(String::new());
    let delete = Action::new_local(move |(): &()| {
        let navigate = navigate.clone();
        async move {
            let result = match target {
                Target::Service(id) => api::delete_service(id).await,
                Target::Environment(id) => api::delete_environment(id).await,
                Target::Project(id) => api::delete_project(id).await,
            };
            match result {
                Ok(()) => {
                    toasts.ok("Deleted.");
                    let next = match target {
                        Target::Project(_) => "/projects".to_owned(),
                        _ => format!("/projects/{project}"),
                    };
                    navigate(&next, Default::default());
                }
                Err(err) => toasts.error(err.message),
            }
        }
    });
    let pending = delete.pending();
    let matches = {
        let name = name.clone();
        move || typed.get().trim() == name
    };
    let label = what.clone();
    view! {
        <div class="danger-row">
            <div>
                <strong>{what.clone()}</strong>
                <p class="hint">{detail}</p>
                <label class="hint">{format!("Type {name} to confirm")}
                    <input type="text" class="mono" bind:value=typed aria-label=format!("Type {name} to confirm")
                        disabled=move || !can_delete.get() />
                </label>
            </div>
            <button class="button button-danger" type="button"
                disabled=move || pending.get() || !can_delete.get() || !matches()
                title=move || (!can_delete.get()).then_some("Deleting needs the admin role")
                on:click=move |_| { delete.dispatch(()); }>{label.clone()}</button>
        </div>
    }
}

/// Renames the environment (its services' addresses change with it).
#[component]
fn RenameEnvironment(
    environment: EnvironmentId,
    project: ProjectId,
    current: String,
    can_write: Signal<bool>,
) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let name = RwSignal::new(current.clone());
    let rename = Action::new_local(move |text: &String| {
        let (text, navigate) = (text.clone(), navigate.clone());
        async move {
            match api::rename_environment(environment, text).await {
                Ok(env) => {
                    toasts.ok(format!("Environment renamed to {}.", env.name));
                    navigate(
                        &format!("/projects/{project}?environment={}", env.id),
                        Default::default(),
                    );
                }
                Err(err) => toasts.error(err.message),
            }
        }
    });
    let pending = rename.pending();
    view! {
        <section class="card form environment-card" data-testid="environment-settings">
            <h2 class="card-title">"Environment"</h2>
            <label>"Name"
                <div class="row">
                    <input type="text" maxlength="39" bind:value=name disabled=move || !can_write.get() />
                    <button class="button-ghost" type="button"
                        disabled=move || pending.get() || !can_write.get() || name.get().trim() == current
                        on:click=move |_| { rename.dispatch(name.get_untracked().trim().to_owned()); }>"Rename"</button>
                </div>
                <span class="hint">"Every service's address in it changes: <service>-<environment>-<project>."</span>
            </label>
        </section>
    }
}
