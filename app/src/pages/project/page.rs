//! `/projects/:id[?environment=]`: one project, its environment switcher and its canvas.

use leptos::prelude::*;
use leptos_router::{
    components::A,
    hooks::{use_params_map, use_query_map},
};
use railyard_shared::ProjectId;
use railyard_shared::projects::Project;

use super::{
    EnvironmentSwitcher, canvas::Canvas, chosen_environment, new_environment::NewEnvironment,
    new_service::NewService,
};
use crate::{
    api::{ApiError, projects as api},
    components::{
        crumbs::{Crumb, follow_crumbs},
        loading::Loaded,
        workspace::use_workspaces,
    },
};

#[component]
pub fn ProjectPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let project = LocalResource::new(move || {
        // Read again on a change of environment: a new one appears in the switcher.
        let _ = query.read().get("environment");
        let id = params
            .read()
            .get("id")
            .and_then(|id| id.parse::<ProjectId>().ok());
        async move {
            let id = id.ok_or_else(|| ApiError::not_found("No such project."))?;
            api::find_project(id).await
        }
    });
    view! {
        <Loaded fallback=|| view! {
            <section class="page"><div class="card skeleton"></div><div class="canvas"><div class="card skeleton service-node"></div></div></section>
        }>
            {move || Suspend::new(async move { project.await.map(|project| view! { <ProjectView project /> }) })}
        </Loaded>
    }
}

#[component]
fn ProjectView(project: Project) -> impl IntoView {
    let query = use_query_map();
    let id = project.id;
    let environment = Memo::new({
        let project = project.clone();
        move |_| chosen_environment(&project, query.read().get("environment").as_deref())
    });
    let environments = project.environments.clone();
    follow_crumbs({
        let project = project.clone();
        move || {
            let env = environment.get()?;
            let env_name = project.environments.iter().find(|e| e.id == env)?.name.clone();
            Some(vec![
                Crumb::link("Projects", "/projects"),
                Crumb::here(project.name.clone()),
                Crumb::here(env_name),
            ])
        }
    });
    // Back from connecting GitHub in "New service": open it again.
    let adding = RwSignal::new(query.read_untracked().get("new").as_deref() == Some("service"));
    let adding_env = RwSignal::new(false);
    // Viewers cannot add environments: the button says so.
    let workspaces = use_workspaces();
    let workspace = project.workspace_id;
    let can_write = Signal::derive(move || {
        workspaces
            .find(workspace)
            .is_some_and(|w| w.role.at_least(railyard_shared::auth::Role::Member))
    });
    let name = project.name.clone();
    let switcher = project.clone();
    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <p class="eyebrow"><A href="/projects">"Projects"</A></p>
                    <h1>{project.name.clone()}</h1>
                </div>
                <div class="row wrap">
                    <EnvironmentSwitcher project=switcher current=environment.into() path=format!("/projects/{id}") />
                    <button class="button-ghost" type="button" on:click=move |_| adding_env.set(true)
                        disabled=move || !can_write.get()
                        title=move || (!can_write.get()).then_some("Viewers cannot add environments")
                        data-testid="new-environment-button">"New environment"</button>
                    <A href=format!("/projects/{id}/matrix") attr:class="button-ghost" attr:data-testid="matrix-link">"Matrix"</A>
                    <A href=format!("/projects/{id}/integrations") attr:class="button-ghost" attr:data-testid="integrations-link">"Integrations"</A>
                    <button class="button" type="button" on:click=move |_| adding.set(true)>"New service"</button>
                </div>
            </header>
            {move || environment.get().map(|env| view! { <Canvas project=id environment=env /> })}
            {move || adding.get().then(|| view! {
                <NewService project=id project_name=name.clone() on_close=Callback::new(move |()| adding.set(false)) />
            })}
            {move || adding_env.get().then(|| view! {
                <NewEnvironment project=id environments=environments.clone() current=environment.get_untracked()
                    on_close=Callback::new(move |()| adding_env.set(false)) />
            })}
        </section>
    }
}
