//! `/projects`: the workspace's projects; `/projects/:id`: a project's services as cards,
//! with a "New service" form.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::{components::A, hooks::use_params_map};
use railyard_shared::projects::{Service, Source};
use uuid::Uuid;

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
                        pattern="[a-z0-9][a-z0-9-]*" bind:value=name />
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

#[component]
pub fn ProjectPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|id| id.parse::<Uuid>().ok());
    let version = RwSignal::new(0u32);
    let project = LocalResource::new(move || {
        let id = id();
        async move {
            match id {
                Some(id) => api::find_project(id).await.map(Some),
                None => Ok(None),
            }
        }
    });
    let services = LocalResource::new(move || {
        version.track();
        let id = id();
        async move {
            match id {
                Some(id) => api::list_services(id).await,
                None => Ok(Vec::new()),
            }
        }
    });
    let title = move || {
        project
            .get()
            .and_then(Result::ok)
            .flatten()
            .map(|p| p.name)
            .unwrap_or_default()
    };
    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <p class="eyebrow"><A href="/projects">"Projects"</A></p>
                    <h1>{title}</h1>
                    <p class="muted">"Services of this project (production)."</p>
                </div>
            </header>
            <Transition fallback=|| view! { <div class="card skeleton"></div> }>
                {move || services.get().map(|result| match result {
                    Ok(list) if list.is_empty() => view! {
                        <p class="muted empty">"No services yet: add one from a git repository below."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="grid" data-testid="services">
                            {list.into_iter().map(|s| view! { <ServiceCard service=s /> }).collect_view()}
                        </div>
                    }.into_any(),
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                })}
            </Transition>
            {move || id().map(|project| view! {
                <NewService project on_created=move || version.update(|v| *v += 1) />
            })}
        </section>
    }
}

#[component]
fn ServiceCard(service: Service) -> impl IntoView {
    let id = service.id;
    let status = LocalResource::new(move || api::service_status(id));
    let source = match &service.source {
        Source::Git { url, branch } => format!("{url} · {branch}"),
        Source::Push { branch } => format!("git push · {branch}"),
        Source::Upload {} => "uploads".to_owned(),
    };
    view! {
        <A href=format!("/services/{id}") attr:class="card service-card">
            <div class="status-card-head">
                {move || {
                    let state = status.get().and_then(Result::ok).map(|s| s.state).unwrap_or_default();
                    let dot = match state.as_str() {
                        "running" => "dot dot-ok",
                        "crashed" => "dot dot-down",
                        _ => "dot dot-idle",
                    };
                    view! { <span class=dot title=state.clone()></span> }
                }}
                <h2>{service.name.clone()}</h2>
            </div>
            <p class="muted ellipsis mono">{source}</p>
            <p class="muted">
                {move || status.get().and_then(Result::ok).map(|s| s.state.replace('_', " ")).unwrap_or_default()}
            </p>
        </A>
    }
}

#[component]
fn NewService(project: Uuid, on_created: impl Fn() + Copy + 'static) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let branch = RwSignal::new("main".to_owned());
    let error = RwSignal::new(None::<String>);
    let create = move |ev: SubmitEvent| {
        ev.prevent_default();
        let source = Source::Git {
            url: url.get_untracked(),
            branch: branch.get_untracked(),
        };
        spawn_local(async move {
            match api::create_service(project, name.get_untracked(), source).await {
                Ok(_) => {
                    error.set(None);
                    name.set(String::new());
                    url.set(String::new());
                    on_created();
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    view! {
        <form class="card form narrow" on:submit=create data-testid="new-service">
            <h2 class="card-title">"New service"</h2>
            <FormError error=error.into() />
            <label>"Service name"
                <input type="text" required maxlength="39" placeholder="web" bind:value=name />
            </label>
            <label>"Git repository"
                <input type="text" required placeholder="https://github.com/you/app.git" bind:value=url />
                <span class="hint">"https://, ssh:// or file:// of a repository this server can read."</span>
            </label>
            <label>"Branch"
                <input type="text" required bind:value=branch />
            </label>
            <div class="row"><button class="button" type="submit">"Add service"</button></div>
        </form>
    }
}
