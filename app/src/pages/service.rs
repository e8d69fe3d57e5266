//! `/services/:id`: a service in production — its status and public URL, and tabs for its
//! deployments (deploy, live state) and its variables (its own and the shared ones).

use std::time::Duration;

use leptos::{prelude::*, task::spawn_local};
use leptos_router::{components::A, hooks::use_params_map};
use uuid::Uuid;

use crate::{
    api::projects::{self as api, VariablesOf},
    components::{auth_card::FormError, live_log::LiveLog, variables::VariablesPanel},
};

/// How often live state is read again.
const POLL_EVERY: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Deployments,
    Logs,
    Variables,
}

fn state_class(state: &str) -> &'static str {
    match state {
        "active" | "running" => "badge badge-ok",
        "failed" | "crashed" => "badge badge-down",
        "queued" | "building" | "deploying" | "starting" => "badge badge-pending",
        _ => "badge",
    }
}

#[component]
pub fn ServicePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|id| id.parse::<Uuid>().ok());
    let tab = RwSignal::new(Tab::Deployments);
    let tick = RwSignal::new(0u32);
    let timer = set_interval_with_handle(move || tick.update(|t| *t += 1), POLL_EVERY).ok();
    on_cleanup(move || {
        if let Some(timer) = timer {
            timer.clear();
        }
    });
    let service = LocalResource::new(move || {
        let id = id();
        async move {
            match id {
                Some(id) => api::find_service(id).await.map(Some),
                None => Ok(None),
            }
        }
    });
    let project = LocalResource::new(move || {
        let project = service.get().and_then(Result::ok).flatten().map(|s| s.project_id);
        async move {
            match project {
                Some(id) => api::find_project(id).await.map(Some),
                None => Ok(None),
            }
        }
    });
    let status = LocalResource::new(move || {
        tick.track();
        let id = id();
        async move {
            match id {
                Some(id) => api::service_status(id).await.map(Some),
                None => Ok(None),
            }
        }
    });
    let deployments = LocalResource::new(move || {
        tick.track();
        let id = id();
        async move {
            match id {
                Some(id) => api::list_deployments(id).await,
                None => Ok(Vec::new()),
            }
        }
    });
    // The deployment whose log shows: the one clicked, else the newest.
    let selected = RwSignal::new(None::<Uuid>);
    let shown = Memo::new(move |_| {
        selected.get().or_else(|| {
            deployments
                .get()
                .and_then(Result::ok)
                .and_then(|list| list.first().map(|d| d.id))
        })
    });
    let error = RwSignal::new(None::<String>);
    let deploy = move |_| {
        let Some(id) = id() else { return };
        spawn_local(async move {
            match api::deploy(id).await {
                Ok(deployment) => {
                    error.set(None);
                    selected.set(Some(deployment.id));
                    tick.update(|t| *t += 1);
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let name = move || {
        service
            .get()
            .and_then(Result::ok)
            .flatten()
            .map(|s| s.name)
            .unwrap_or_default()
    };
    let production = move || {
        project
            .get()
            .and_then(Result::ok)
            .flatten()
            .and_then(|p| p.environments.into_iter().find(|e| e.name == "production"))
            .map(|e| e.id)
    };
    let project_link = move || {
        project.get().and_then(Result::ok).flatten().map(|p| {
            view! { <A href=format!("/projects/{}", p.id)>{p.name}</A> }
        })
    };

    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <p class="eyebrow">{project_link}" · production"</p>
                    <h1>{name}</h1>
                    {move || status.get().and_then(Result::ok).flatten().map(|s| {
                        let class = state_class(&s.state);
                        view! {
                            <p class="service-meta">
                                <span class=class data-testid="service-state"><span class="dot"></span>{s.state.replace('_', " ")}</span>
                                <a class="mono" href=s.url.clone() target="_blank" rel="noopener" data-testid="public-url">{s.url.clone()}</a>
                            </p>
                        }
                    })}
                </div>
                <button class="button" type="button" on:click=deploy>"Deploy"</button>
            </header>
            <FormError error=error.into() />
            <nav class="tabs" role="tablist">
                <button role="tab" type="button" aria-selected=move || (tab.get() == Tab::Deployments).to_string()
                    on:click=move |_| tab.set(Tab::Deployments)>"Deployments"</button>
                <button role="tab" type="button" aria-selected=move || (tab.get() == Tab::Logs).to_string()
                    on:click=move |_| tab.set(Tab::Logs)>"Logs"</button>
                <button role="tab" type="button" aria-selected=move || (tab.get() == Tab::Variables).to_string()
                    on:click=move |_| tab.set(Tab::Variables)>"Variables"</button>
            </nav>
            {move || match (tab.get(), id()) {
                (Tab::Deployments, _) => view! {
                    <div class="card table-card" data-testid="deployments">
                        {move || deployments.get().map(|result| match result {
                            Ok(list) if list.is_empty() => view! {
                                <p class="muted empty">"Nothing deployed yet: press Deploy."</p>
                            }.into_any(),
                            Ok(list) => view! {
                                <table class="table">
                                    <thead><tr><th>"State"</th><th>"Commit"</th><th>"Source"</th><th>"Started"</th><th>"Reason"</th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|d| view! {
                                            <tr class="clickable" on:click=move |_| selected.set(Some(d.id))
                                                aria-selected=move || (shown.get() == Some(d.id)).to_string()>
                                                <td><span class=state_class(&d.state) data-testid="deployment-state"><span class="dot"></span>{d.state.clone()}</span></td>
                                                <td class="mono">{d.commit.clone().map(|c| c.chars().take(8).collect::<String>()).unwrap_or_default()}</td>
                                                <td>{d.source.clone()}</td>
                                                <td class="muted nowrap">{d.created_at.format("%H:%M:%S").to_string()}</td>
                                                <td class="muted ellipsis">{d.reason.clone().unwrap_or_default()}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any(),
                            Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                        })}
                    </div>
                    {move || shown.get().map(|deployment| view! {
                        <LiveLog topic=format!("deployment:{deployment}") title="Build log" />
                    })}
                }.into_any(),
                (Tab::Variables, Some(service)) => view! {
                    <VariablesPanel of=VariablesOf::Service(service) title="Variables" service=service
                        on_deployed=Callback::new(move |()| { tick.update(|t| *t += 1); }) />
                    {move || production().map(|env| view! {
                        <VariablesPanel of=VariablesOf::Shared(env) title="Shared variables (production)" />
                    })}
                }.into_any(),
                (Tab::Logs, Some(service)) => view! {
                    {move || production().map(|env| view! {
                        <LiveLog topic=format!("service:{service}:{env}") title="Runtime log" />
                    })}
                }.into_any(),
                (Tab::Variables | Tab::Logs, None) => ().into_any(),
            }}
        </section>
    }
}
