//! `/projects/:id[?environment=]`: one project, its environment switcher and its canvas.

use leptos::prelude::*;
use leptos_router::{
    components::A,
    hooks::{use_navigate, use_params_map, use_query_map},
};
use railyard_shared::projects::Project;
use railyard_shared::{EnvironmentId, ProjectId};

use super::{canvas::Canvas, chosen_environment, new_service::NewService};
use crate::{
    api::{ApiError, projects as api},
    components::{
        crumbs::{Crumb, follow_crumbs},
        loading::Loaded,
    },
};

#[component]
pub fn ProjectPage() -> impl IntoView {
    let params = use_params_map();
    let project = LocalResource::new(move || {
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
    let navigate = use_navigate();
    let choose = move |ev: leptos::ev::Event| {
        if let Ok(env) = event_target_value(&ev).parse::<EnvironmentId>() {
            navigate(&format!("/projects/{id}?environment={env}"), Default::default());
        }
    };
    let adding = RwSignal::new(false);
    let name = project.name.clone();
    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <p class="eyebrow"><A href="/projects">"Projects"</A></p>
                    <h1>{project.name.clone()}</h1>
                </div>
                <div class="row">
                    <label class="env-select">"Environment"
                        <select aria-label="Environment" on:change=choose data-testid="environment-select">
                            {environments.into_iter().map(|e| view! {
                                <option value=e.id.to_string() selected=move || environment.get() == Some(e.id)>{e.name}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <button class="button" type="button" on:click=move |_| adding.set(true)>"New service"</button>
                </div>
            </header>
            {move || environment.get().map(|env| view! { <Canvas project=id environment=env /> })}
            {move || adding.get().then(|| view! {
                <NewService project=id project_name=name.clone() on_close=Callback::new(move |()| adding.set(false)) />
            })}
        </section>
    }
}
