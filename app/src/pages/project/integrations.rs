//! `/projects/:id/integrations`: the project's GitHub side — the webhook deliveries it
//! received (what each did, Redeliver, Approve for pull requests waiting on a member) and
//! its preview settings (base environment, TTL, sealed variables).

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::components::A;
use railyard_shared::{
    EnvironmentId, ProjectId,
    auth::Role,
    github::{Delivery, PreviewSettings},
    projects::{EnvironmentKind, Project},
};

use crate::{
    api::github as api,
    components::{
        auth_card::FormError,
        crumbs::{Crumb, set_crumbs},
        loading::Loaded,
        toast::use_toasts,
        workspace::use_workspaces,
    },
    format,
};

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let project = super::project_of_path();
    view! {
        <Loaded fallback=|| view! { <section class="page"><div class="card skeleton"></div></section> }>
            {move || Suspend::new(async move { project.await.map(|project| view! { <IntegrationsView project /> }) })}
        </Loaded>
    }
}

#[component]
fn IntegrationsView(project: Project) -> impl IntoView {
    let id = project.id;
    set_crumbs(vec![
        Crumb::link("Projects", "/projects"),
        Crumb::link(project.name.clone(), format!("/projects/{id}")),
        Crumb::here("Integrations"),
    ]);
    let workspaces = use_workspaces();
    let workspace = project.workspace_id;
    let role = move || workspaces.find(workspace).map(|w| w.role);
    let can_write = Signal::derive(move || role().is_some_and(|r| r.at_least(Role::Member)));
    let is_admin = Signal::derive(move || role().is_some_and(|r| r.at_least(Role::Admin)));
    let bases: Vec<(EnvironmentId, String)> = project
        .environments
        .iter()
        .filter(|e| e.kind != EnvironmentKind::Preview)
        .map(|e| (e.id, e.name.clone()))
        .collect();
    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <p class="eyebrow"><A href=format!("/projects/{id}")>{project.name.clone()}</A></p>
                    <h1>"Integrations"</h1>
                </div>
            </header>
            <Deliveries project=id can_write />
            <Previews project=id bases is_admin />
        </section>
    }
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "processed" | "approved" => "badge outcome-ok",
        "failed" | "refused" => "badge outcome-error",
        "awaiting_approval" => "badge outcome-warn",
        _ => "badge",
    }
}

#[component]
fn Deliveries(project: ProjectId, can_write: Signal<bool>) -> impl IntoView {
    let version = RwSignal::new(0u32);
    let deliveries = LocalResource::new(move || {
        version.track();
        api::list_deliveries(project)
    });
    let toasts = use_toasts();
    let act = Action::new_local(move |(delivery, approve): &(uuid::Uuid, bool)| {
        let (delivery, approve) = (*delivery, *approve);
        async move {
            let done = if approve {
                api::approve(project, delivery).await
            } else {
                api::redeliver(project, delivery).await
            };
            match done {
                Ok(d) => toasts.ok(format!(
                    "Delivery {}: {}",
                    short(&d.delivery_id),
                    d.outcome.replace('_', " ")
                )),
                Err(err) => toasts.error(err.message),
            }
            version.try_update(|v| *v += 1);
        }
    });
    let busy = act.pending();
    view! {
        <div class="card table-card">
            <div class="card-head">
                <h2>"GitHub webhook deliveries"</h2>
                <button class="button-ghost" type="button" on:click=move |_| version.update(|v| *v += 1)>"Refresh"</button>
            </div>
            <Loaded fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    deliveries.await.map(|list| {
                        if list.is_empty() {
                            return view! {
                                <p class="muted empty" data-testid="deliveries-empty">"No delivery yet. Add a service from GitHub: Railyard adds a webhook, and each push and pull request shows here."</p>
                            }.into_any();
                        }
                        let now = format::now_s();
                        view! {
                            <table class="table" data-testid="deliveries">
                                <thead><tr><th class="wide-only">"Received"</th><th>"Event"</th><th class="wide-only">"Repository"</th><th>"Outcome"</th><th class="wide-only">"Detail"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|d| view! { <DeliveryRow delivery=d now can_write busy=busy.into() act /> }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    })
                })}
            </Loaded>
        </div>
    }
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

#[component]
fn DeliveryRow(
    delivery: Delivery,
    now: i64,
    can_write: Signal<bool>,
    busy: Signal<bool>,
    act: Action<(uuid::Uuid, bool), ()>,
) -> impl IntoView {
    let id = delivery.id;
    let waiting = delivery.outcome == "awaiting_approval";
    let event = match &delivery.action {
        Some(action) => format!("{} · {action}", delivery.event),
        None => delivery.event.clone(),
    };
    view! {
        <tr data-testid="delivery-row">
            <td class="wide-only" title=delivery.received_at.to_rfc3339()>{format::ago(delivery.received_at, now)}</td>
            <td>
                <span class="mono">{event}</span>
                <span class="phone-only muted small">{format::ago(delivery.received_at, now)}</span>
            </td>
            <td class="mono wide-only">{delivery.repository.clone().unwrap_or_default()}</td>
            <td>
                <span class=outcome_class(&delivery.outcome)>{delivery.outcome.replace('_', " ")}</span>
                <span class="phone-only muted small delivery-detail">{delivery.detail.clone()}</span>
            </td>
            <td class="wide-only small">
                {delivery.detail.clone()}
                {delivery.redelivery_of.map(|_| view! { <span class="tag">"redelivery"</span> })}
            </td>
            <td class="actions">
                {waiting.then(|| view! {
                    <button class="button" type="button" disabled=move || !can_write.get() || busy.get()
                        on:click=move |_| { act.dispatch((id, true)); }>"Approve"</button>
                })}
                <button class="button-ghost" type="button" disabled=move || !can_write.get() || busy.get()
                    title="Process this delivery again"
                    on:click=move |_| { act.dispatch((id, false)); }>"Redeliver"</button>
            </td>
        </tr>
    }
}

#[component]
fn Previews(
    project: ProjectId,
    bases: Vec<(EnvironmentId, String)>,
    is_admin: Signal<bool>,
) -> impl IntoView {
    let settings = LocalResource::new(move || api::find_previews(project));
    let bases = StoredValue::new(bases);
    view! {
        <div class="card">
            <div class="card-head"><h2>"Pull-request previews"</h2></div>
            <p class="muted small">"Each pull request of a connected repository gets its environment pr-<number>, cloned from the base, deployed on every push and removed when it closes. At most 15 live at once."</p>
            <Loaded fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let bases = bases.get_value();
                    settings.await.map(|current| view! { <PreviewForm project current bases is_admin /> })
                })}
            </Loaded>
        </div>
    }
}

#[component]
fn PreviewForm(
    project: ProjectId,
    current: PreviewSettings,
    bases: Vec<(EnvironmentId, String)>,
    is_admin: Signal<bool>,
) -> impl IntoView {
    let base = RwSignal::new(
        current
            .base_environment_id
            .map(|b| b.to_string())
            .unwrap_or_default(),
    );
    let ttl = RwSignal::new(current.ttl_days.to_string());
    let sealed = RwSignal::new(current.sealed_variables);
    let error = RwSignal::new(None::<String>);
    let toasts = use_toasts();
    let save = Action::new_local(move |settings: &PreviewSettings| {
        let settings = settings.clone();
        async move {
            match api::save_previews(project, settings).await {
                Ok(_) => {
                    error.try_set(None);
                    toasts.ok("Preview settings saved.");
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let saving = save.pending();
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let Ok(ttl_days) = ttl.get_untracked().trim().parse::<i32>() else {
            error.set(Some("The TTL is a number of days, 1 to 90.".to_owned()));
            return;
        };
        save.dispatch(PreviewSettings {
            base_environment_id: base.get_untracked().parse().ok(),
            ttl_days,
            sealed_variables: sealed.get_untracked(),
        });
    };
    view! {
        <form class="form" on:submit=submit data-testid="preview-settings">
            <FormError error=error.into() />
            <label>"Cloned from"
                <select bind:value=base>
                    <option value="">"Staging, else production"</option>
                    {bases.into_iter().map(|(id, name)| view! { <option value=id.to_string()>{name}</option> }).collect_view()}
                </select>
            </label>
            <label>"Removed after (days without a push)"
                <input type="number" min="1" max="90" bind:value=ttl />
            </label>
            <label class="toggle">
                <input type="checkbox" bind:checked=sealed />
                <span>"Previews get the base's sealed variables (off: pull requests never see secrets)"</span>
            </label>
            <div class="row">
                <button class="button" type="submit" disabled=move || !is_admin.get() || saving.get()
                    title=move || (!is_admin.get()).then_some("Admins change preview settings")>"Save"</button>
            </div>
        </form>
    }
}
