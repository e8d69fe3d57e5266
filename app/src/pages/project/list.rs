//! `/projects`: the current workspace's projects, and a form for a new one.

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::{components::A, hooks::use_navigate};
use railyard_shared::WorkspaceId;
use railyard_shared::auth::Role;

use crate::{
    api::{github, projects as api},
    components::{auth_card::FormError, loading::Loaded, workspace::use_workspaces},
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
    let navigate = use_navigate();
    let can_write = Signal::derive(move || {
        workspaces
            .current()
            .is_some_and(|w| w.role.at_least(Role::Member))
    });
    let template = RwSignal::new(String::new());
    let private = RwSignal::new(true);
    let create_project = Action::new_local(move |(workspace, text): &(WorkspaceId, String)| {
        let (workspace, name_text, navigate) = (*workspace, text.clone(), navigate.clone());
        let from = template.get_untracked().trim().to_owned();
        async move {
            let made = if from.is_empty() {
                api::create_project(workspace, name_text).await
            } else {
                github::create_from_template(workspace, from, name_text, private.get_untracked())
                    .await
                    .map(|made| made.project)
            };
            match made {
                Ok(project) => {
                    error.try_set(None);
                    name.try_set(String::new());
                    version.try_update(|v| *v += 1);
                    navigate(&format!("/projects/{}", project.id), Default::default());
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let creating = create_project.pending();
    let create = move |ev: SubmitEvent| {
        ev.prevent_default();
        if let Some(id) = workspace()
            && !creating.get_untracked()
        {
            create_project.dispatch((id, name.get_untracked()));
        }
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
                    <button class="button" type="submit" disabled=move || creating.get() || !can_write.get()
                        title=move || (!can_write.get()).then_some("Viewers cannot create projects")>"Create project"</button>
                </div>
                <p class="hint">"Lowercase letters, digits and dashes: it becomes part of the apps' host names."</p>
                <details class="template" data-testid="from-template">
                    <summary>"Start from a GitHub template"</summary>
                    <label>"Template repository"
                        <input type="text" placeholder="owner/template" bind:value=template />
                        <span class="hint">"Railyard creates a repository of this name in your GitHub account from the template, then deploys it (connect GitHub on Account first)."</span>
                    </label>
                    <label class="toggle">
                        <input type="checkbox" bind:checked=private />
                        <span>"Private repository"</span>
                    </label>
                </details>
            </form>
            <Loaded fallback=|| view! { <div class="card skeleton"></div> }>
                {move || Suspend::new(async move {
                    projects.await.map(|list| if list.is_empty() {
                        view! { <p class="muted empty">"No projects yet: create the first one above."</p> }.into_any()
                    } else {
                        view! {
                            <div class="grid" data-testid="projects">
                                {list.into_iter().map(|p| view! {
                                    <A href=format!("/projects/{}", p.id) attr:class="card service-card">
                                        <h2>{p.name}</h2>
                                        <p class="muted">{format!("{} environment(s)", p.environments.len())}</p>
                                    </A>
                                }).collect_view()}
                            </div>
                        }.into_any()
                    })
                })}
            </Loaded>
        </section>
    }
}
