//! `/projects`: the current workspace's projects, and a form for a new one.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::components::A;

use crate::{
    api::projects as api,
    components::{auth_card::FormError, workspace::use_workspaces},
};

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let workspaces = use_workspaces();
    let workspace = move || workspaces.current().map(|w| w.id);
    let version = RwSignal::new(0u32);
    let projects = LocalResource::new(move || {
        version.track();
        let id = workspace();
        async move {
            match id {
                Some(id) => api::list_projects(id).await,
                None => Ok(Vec::new()),
            }
        }
    });
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let create = move |ev: SubmitEvent| {
        ev.prevent_default();
        let Some(id) = workspace() else { return };
        spawn_local(async move {
            match api::create_project(id, name.get_untracked()).await {
                Ok(project) => {
                    error.set(None);
                    name.set(String::new());
                    version.update(|v| *v += 1);
                    let _ = window().location().set_href(&format!("/projects/{}", project.id));
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <h1>"Projects"</h1>
                    <p class="muted">"Each project holds services and their environments."</p>
                </div>
            </header>
            <form class="card form inline-form" on:submit=create data-testid="new-project">
                <h2 class="card-title">"New project"</h2>
                <FormError error=error.into() />
                <div class="row">
                    <input type="text" required maxlength="39" placeholder="shop" aria-label="Project name"
                        pattern="[a-z0-9][a-z0-9\\-]*" bind:value=name />
                    <button class="button" type="submit">"Create project"</button>
                </div>
                <p class="hint">"Lowercase letters, digits and dashes: it becomes part of the apps' host names."</p>
            </form>
            <Transition fallback=|| view! { <div class="card skeleton"></div> }>
                {move || projects.get().map(|result| match result {
                    Ok(list) if list.is_empty() => view! {
                        <p class="muted empty">"No projects yet: create the first one above."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="grid" data-testid="projects">
                            {list.into_iter().map(|p| view! {
                                <A href=format!("/projects/{}", p.id) attr:class="card service-card">
                                    <h2>{p.name}</h2>
                                    <p class="muted">{format!("{} environment(s)", p.environments.len())}</p>
                                </A>
                            }).collect_view()}
                        </div>
                    }.into_any(),
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}
