//! `/projects`: the workspace's projects; `/projects/:id`: the project canvas — its
//! services in one environment (selectable) as live cards, and a "New service" dialog.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::{
    components::A,
    hooks::{use_navigate, use_params_map, use_query_map},
};
use railyard_shared::{
    DeploymentState,
    deployments::{ProjectOverview, ServiceOverview},
    projects::{Project, Service, Source},
};
use uuid::Uuid;

use crate::{
    api::projects as api,
    components::{auth_card::FormError, toast::use_toasts, workspace::use_workspaces},
    live::{self, Connection},
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

#[component]
pub fn ProjectPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").and_then(|id| id.parse::<Uuid>().ok());
    let project = LocalResource::new(move || {
        let id = id();
        async move {
            match id {
                Some(id) => api::find_project(id).await.map(Some),
                None => Ok(None),
            }
        }
    });
    let environment = Memo::new(move |_| {
        let project = project.get().and_then(Result::ok).flatten()?;
        chosen_environment(&project, query.read().get("environment").as_deref())
    });
    let navigate = use_navigate();
    let choose = move |ev: leptos::ev::Event| {
        if let (Some(project), Ok(env)) = (id(), event_target_value(&ev).parse::<Uuid>()) {
            navigate(
                &format!("/projects/{project}?environment={env}"),
                Default::default(),
            );
        }
    };
    let title = move || {
        project
            .get()
            .and_then(Result::ok)
            .flatten()
            .map(|p| p.name)
            .unwrap_or_default()
    };
    let adding = RwSignal::new(false);
    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <p class="eyebrow"><A href="/projects">"Projects"</A></p>
                    <h1>{title}</h1>
                </div>
                <div class="row">
                    <label class="env-select">"Environment"
                        <select aria-label="Environment" on:change=choose data-testid="environment-select">
                            {move || project.get().and_then(Result::ok).flatten().map(|p| {
                                p.environments.into_iter().map(|e| view! {
                                    <option value=e.id.to_string() selected=move || environment.get() == Some(e.id)>{e.name}</option>
                                }).collect_view()
                            })}
                        </select>
                    </label>
                    <button class="button" type="button" on:click=move |_| adding.set(true)>"New service"</button>
                </div>
            </header>
            {move || match (id(), environment.get()) {
                (Some(project), Some(env)) => view! { <Canvas project environment=env /> }.into_any(),
                _ => view! { <div class="canvas"><div class="card skeleton service-node"></div></div> }.into_any(),
            }}
            {move || match (adding.get(), id(), project.get().and_then(Result::ok).flatten()) {
                (true, Some(id), Some(p)) => view! {
                    <NewService project=id project_name=p.name on_close=Callback::new(move |()| adding.set(false)) />
                }.into_any(),
                _ => ().into_any(),
            }}
        </section>
    }
}

/// The services of a project in one environment, live: the socket sends the whole overview
/// whenever a service, deployment or instance changes.
#[component]
fn Canvas(project: Uuid, environment: Uuid) -> impl IntoView {
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
    let (handle, registration) = futures_util::future::AbortHandle::new_pair();
    spawn_local(async move {
        let on_message = move |message: serde_json::Value| {
            if message["type"] == "status"
                && let Ok(fresh) = serde_json::from_value::<ProjectOverview>(message["overview"].clone())
            {
                overview.try_set(Some(Ok(fresh)));
            }
        };
        let topic = format!("project:{project}:{environment}");
        let _ = futures_util::future::Abortable::new(
            live::follow(topic, || 0, connection, on_message),
            registration,
        )
        .await;
    });
    on_cleanup(move || handle.abort());
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

/// The environment a page shows: `asked` (from `?environment=`) when it is the project's,
/// else production, else the first.
pub fn chosen_environment(project: &Project, asked: Option<&str>) -> Option<Uuid> {
    let ids = || project.environments.iter();
    asked
        .and_then(|a| a.parse::<Uuid>().ok())
        .filter(|a| ids().any(|e| e.id == *a))
        .or_else(|| ids().find(|e| e.name == "production").map(|e| e.id))
        .or_else(|| ids().next().map(|e| e.id))
}

/// Seconds since the epoch, from the browser's clock (chrono has no clock on wasm32).
pub fn now_s() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

/// "just now", "4 min ago", "2 h ago", "3 d ago".
pub fn ago(at: chrono::DateTime<chrono::Utc>, now: i64) -> String {
    let s = (now - at.timestamp()).max(0);
    match s {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

/// The dot's class for a service: running, in flight, crashed or failed, or idle.
pub fn dot_class(overview: &ServiceOverview) -> (&'static str, String) {
    let in_flight = overview.latest.as_ref().filter(|d| d.state.is_pending());
    if let Some(d) = in_flight {
        return ("dot dot-busy", d.state.as_str().to_owned());
    }
    match overview.status.state.as_str() {
        "running" => ("dot dot-ok", "running".into()),
        "crashed" => ("dot dot-down", "crashed".into()),
        _ if overview
            .latest
            .as_ref()
            .is_some_and(|d| d.state == DeploymentState::Failed) =>
        {
            ("dot dot-down", "failed".into())
        }
        state => ("dot dot-idle", state.replace('_', " ")),
    }
}

#[component]
fn ServiceNode(service: ServiceOverview, environment: Uuid, now: ReadSignal<i64>) -> impl IntoView {
    let (dot, label) = dot_class(&service);
    let id = service.service.id;
    let source = match &service.service.source {
        Source::Git { url, branch } => format!("{url} · {branch}"),
        Source::Push { branch } => format!("git push · {branch}"),
        Source::Upload {} => "uploads".to_owned(),
    };
    let active = service.active.clone();
    let latest = service
        .latest
        .clone()
        .filter(|l| Some(l.id) != active.as_ref().map(|a| a.id));
    let url = service.status.url.clone();
    let running = service.status.state == "running";
    let testid = format!("service-{}", service.service.name);
    view! {
        <A href=format!("/services/{id}?environment={environment}") attr:class="card service-node" attr:data-testid=testid>
            <div class="status-card-head">
                <span class=dot title=label.clone()></span>
                <h2>{service.service.name.clone()}</h2>
                <span class="muted node-state" data-testid="node-state">{label}</span>
            </div>
            <p class="muted ellipsis mono small">{source}</p>
            {match active {
                Some(d) => view! {
                    <p class="node-line" data-testid="node-active">
                        <span class="muted">"Active "</span>
                        <span class="mono">{d.commit.map(|c| c.chars().take(8).collect::<String>()).unwrap_or_else(|| d.source.clone())}</span>
                        <span class="muted">{move || format!(" · {}", ago(d.created_at, now.get()))}</span>
                    </p>
                }.into_any(),
                None => view! { <p class="node-line muted">"Not deployed yet"</p> }.into_any(),
            }}
            {latest.map(|d| view! {
                <p class="node-line small" data-testid="node-latest">
                    <span class="muted">"Latest "</span>{d.state.as_str().replace('_', " ")}
                    {d.reason.map(|r| view! { <span class="muted ellipsis">{format!(" · {r}")}</span> })}
                </p>
            })}
            {running.then(|| view! { <p class="node-line mono small ellipsis link-like">{url}</p> })}
        </A>
    }
}

/// Adds a service: from a git repository (with its branch), by `git push` (the remote URL
/// to push to), or by upload (`railyard up`).
#[component]
fn NewService(project: Uuid, project_name: String, on_close: Callback<()>) -> impl IntoView {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Git,
        Push,
        Upload,
    }
    let kind = RwSignal::new(Kind::Git);
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let branch = RwSignal::new("main".to_owned());
    let error = RwSignal::new(None::<String>);
    let created = RwSignal::new(None::<Service>);
    let toasts = use_toasts();
    let create = move |ev: SubmitEvent| {
        ev.prevent_default();
        let source = match kind.get_untracked() {
            Kind::Git => Source::Git {
                url: url.get_untracked(),
                branch: branch.get_untracked(),
            },
            Kind::Push => Source::Push {
                branch: branch.get_untracked(),
            },
            Kind::Upload => Source::Upload {},
        };
        spawn_local(async move {
            match api::create_service(project, name.get_untracked(), source).await {
                Ok(service) => {
                    error.set(None);
                    toasts.ok(format!("Service {} added.", service.name));
                    if kind.get_untracked() == Kind::Git {
                        on_close.run(());
                    } else {
                        created.set(Some(service));
                    }
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let origin = window().location().origin().unwrap_or_default();
    let tab = move |k: Kind, label: &'static str| {
        view! {
            <button role="tab" type="button" aria-selected=move || (kind.get() == k).to_string()
                on:click=move |_| kind.set(k)>{label}</button>
        }
    };
    view! {
        <div class="dialog-backdrop" on:click=move |_| on_close.run(())>
            <div class="card dialog" role="dialog" aria-modal="true" aria-label="New service"
                on:click=|ev| ev.stop_propagation() data-testid="new-service">
                <div class="card-head">
                    <h2>"New service"</h2>
                    <button class="button-ghost" type="button" aria-label="Close" on:click=move |_| on_close.run(())>"✕"</button>
                </div>
                {move || match created.get() {
                    Some(service) => {
                        let remote = format!("{origin}/git/{project_name}/{}.git", service.name);
                        view! {
                            <div class="instructions" data-testid="push-instructions">
                                {if kind.get_untracked() == Kind::Push { view! {
                                    <p>"Push to deploy: each push to "<code>{branch.get_untracked()}</code>" deploys to production. Use an API token (Account → API tokens) as the password."</p>
                                    <pre class="code">{format!("git remote add railyard {remote}\ngit push railyard {}", branch.get_untracked())}</pre>
                                }.into_any() } else { view! {
                                    <p>"Upload the code from its directory with the CLI; it follows the build:"</p>
                                    <pre class="code">{format!("railyard up --service {}", service.id)}</pre>
                                }.into_any() }}
                                <div class="row"><button class="button" type="button" on:click=move |_| on_close.run(())>"Done"</button></div>
                            </div>
                        }.into_any()
                    }
                    None => view! {
                        <form class="form" on:submit=create>
                            <nav class="tabs" role="tablist">
                                {tab(Kind::Git, "Git repository")}
                                {tab(Kind::Push, "git push")}
                                {tab(Kind::Upload, "Upload")}
                            </nav>
                            <FormError error=error.into() />
                            <label>"Service name"
                                <input type="text" required maxlength="39" placeholder="web" bind:value=name />
                            </label>
                            {move || (kind.get() == Kind::Git).then(|| view! {
                                <label>"Git repository"
                                    <input type="text" required placeholder="https://github.com/you/app.git" bind:value=url />
                                    <span class="hint">"https://, ssh:// or file:// of a repository this server can read."</span>
                                </label>
                            })}
                            {move || (kind.get() != Kind::Upload).then(|| view! {
                                <label>"Branch"
                                    <input type="text" required bind:value=branch />
                                </label>
                            })}
                            <div class="row"><button class="button" type="submit">"Add service"</button></div>
                        </form>
                    }.into_any(),
                }}
            </div>
        </div>
    }
}
