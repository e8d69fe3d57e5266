//! `/services/:id[?environment=]`: a service in one environment — its live status and public
//! URL, and tabs for its deployments (deploy, redeploy, cancel, roll back; the selected
//! one's build log), its runtime log, its variables and its settings. Status arrives on the
//! live socket (the project topic); nothing polls.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::{
    components::A,
    hooks::{use_params_map, use_query_map},
};
use railyard_shared::{
    DeploymentState,
    auth::Role,
    deployments::{Deployment, ProjectOverview, ServiceOverview, ServiceSettings, ServiceStatus},
    projects::{Project, Service},
};
use uuid::Uuid;

use crate::{
    api::projects::{self as api, DeploymentAction, VariablesOf},
    components::{
        auth_card::FormError, live_log::LiveLog, toast::use_toasts, variables::VariablesPanel,
        workspace::use_workspaces,
    },
    live::{self, Connection},
    pages::projects::{chosen_environment, dot_class},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Deployments,
    Logs,
    Variables,
    Settings,
}

fn state_class(state: &str) -> &'static str {
    match state {
        "active" | "running" => "badge badge-ok",
        "failed" | "crashed" => "badge badge-down",
        "queued" | "building" | "deploying" | "starting" => "badge badge-pending",
        _ => "badge",
    }
}

/// `54 MB`, `1.25 GB` (binary units, as the memory limit is set).
fn memory_text(bytes: i64) -> String {
    let mb = bytes as f64 / f64::from(1u32 << 20);
    if mb < 1024.0 {
        format!("{mb:.0} MB")
    } else {
        format!("{:.2} GB", mb / 1024.0)
    }
}

/// `45s`, `12m`, `3h 5m`, `2d 4h`.
fn uptime_text(seconds: i64) -> String {
    let (m, h, d) = (seconds / 60, seconds / 3600, seconds / 86_400);
    match (d, h, m) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {}m", m % 60),
        (d, h, _) => format!("{d}d {}h", h % 24),
    }
}

/// The running process in a line: memory, uptime, restarts.
fn usage_text(status: &ServiceStatus) -> Option<String> {
    if status.state != "running" {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(bytes) = status.memory_bytes {
        parts.push(memory_text(bytes));
    }
    if let Some(up) = status.uptime_s {
        parts.push(format!("up {}", uptime_text(up)));
    }
    parts.push(match status.restarts {
        1 => "1 restart".to_owned(),
        n => format!("{n} restarts"),
    });
    Some(parts.join(" · "))
}

#[component]
pub fn ServicePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").and_then(|id| id.parse::<Uuid>().ok());
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
    let loaded = Memo::new(move |_| {
        let service = service.get().and_then(Result::ok).flatten()?;
        let project = project.get().and_then(Result::ok).flatten()?;
        let environment = chosen_environment(&project, query.read().get("environment").as_deref())?;
        Some((service, project, environment))
    });
    let failed = move || {
        service
            .get()
            .and_then(|r| r.err())
            .or_else(|| project.get().and_then(|r| r.err()))
            .map(|e| e.message)
    };
    view! {
        {move || match (loaded.get(), failed()) {
            (Some((service, project, environment)), _) => view! { <ServiceView service project environment /> }.into_any(),
            (None, Some(message)) => view! { <section class="page"><p class="form-error" role="alert">{message}</p></section> }.into_any(),
            (None, None) => view! {
                <section class="page"><div class="card skeleton"></div><div class="card skeleton"></div></section>
            }.into_any(),
        }}
    }
}

#[component]
fn ServiceView(service: Service, project: Project, environment: Uuid) -> impl IntoView {
    let id = service.id;
    let toasts = use_toasts();
    // Controls follow the role: viewers see them disabled, with why.
    let workspaces = use_workspaces();
    let workspace = project.workspace_id;
    let can_write = Signal::derive(move || {
        workspaces
            .find(workspace)
            .is_some_and(|w| w.role.at_least(Role::Member))
    });
    // A write in flight: its controls are disabled until it is answered (no double submit).
    let busy = RwSignal::new(false);
    let tab = RwSignal::new(Tab::Deployments);
    // Bumped by every status change: the deployment list reads itself again.
    let version = RwSignal::new(0u32);
    let overview = RwSignal::new(None::<ServiceOverview>);
    let connection = RwSignal::new(Connection::Connecting);
    let (handle, registration) = futures_util::future::AbortHandle::new_pair();
    spawn_local(async move {
        let on_message = move |message: serde_json::Value| {
            if message["type"] != "status" {
                return;
            }
            let Ok(all) = serde_json::from_value::<ProjectOverview>(message["overview"].clone()) else {
                return;
            };
            overview.try_set(all.services.into_iter().find(|s| s.service.id == id));
            version.try_update(|v| *v += 1);
        };
        let topic = format!("project:{}:{environment}", service.project_id);
        let _ = futures_util::future::Abortable::new(
            live::follow(topic, || 0, connection, on_message),
            registration,
        )
        .await;
    });
    on_cleanup(move || handle.abort());

    let deployments = LocalResource::new(move || {
        version.track();
        api::list_deployments(id, environment)
    });
    // Memory and uptime change without a status event: read them again every 10 s.
    let usage = LocalResource::new(move || {
        version.track();
        api::service_status(id, environment)
    });
    let timer = set_interval_with_handle(move || usage.refetch(), std::time::Duration::from_secs(10)).ok();
    on_cleanup(move || {
        if let Some(timer) = timer {
            timer.clear();
        }
    });
    // Who triggered what: the workspace's members by id.
    let members = LocalResource::new(move || crate::api::list_members(workspace));
    let names = Signal::derive(move || {
        members
            .get()
            .and_then(Result::ok)
            .map(|m| m.members.into_iter().map(|m| (m.user_id, m.name)).collect())
            .unwrap_or_default()
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
    let deploy = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            let result = api::deploy(id, environment).await;
            busy.try_set(false);
            match result {
                Ok(deployment) => {
                    toasts.ok("Deployment queued.");
                    selected.try_set(Some(deployment.id));
                    version.try_update(|v| *v += 1);
                }
                Err(err) => toasts.error(err.message),
            }
        });
    };
    let act = Callback::new(move |(deployment, action): (Uuid, DeploymentAction)| {
        let question = match action {
            DeploymentAction::Rollback => Some(
                "Roll back to this deployment? Its release goes live again with the variables it ran with.",
            ),
            DeploymentAction::Cancel => Some("Cancel this deployment?"),
            DeploymentAction::Redeploy => None,
        };
        if let Some(question) = question
            && !window().confirm_with_message(question).unwrap_or(false)
        {
            return;
        }
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            let result = api::act_on_deployment(deployment, action).await;
            busy.try_set(false);
            match result {
                Ok(d) => {
                    toasts.ok(match action {
                        DeploymentAction::Redeploy => "Redeploy queued.",
                        DeploymentAction::Rollback => "Rollback queued.",
                        DeploymentAction::Cancel => "Deployment cancelled.",
                    });
                    if action != DeploymentAction::Cancel {
                        selected.try_set(Some(d.id));
                    }
                    version.try_update(|v| *v += 1);
                }
                Err(err) => toasts.error(err.message),
            }
        });
    });
    let env_name = project
        .environments
        .iter()
        .find(|e| e.id == environment)
        .map(|e| e.name.clone())
        .unwrap_or_default();
    let shared_title = format!("Shared variables ({env_name})");
    let tab_button = move |t: Tab, label: &'static str| {
        view! {
            <button role="tab" type="button" aria-selected=move || (tab.get() == t).to_string()
                on:click=move |_| tab.set(t)>{label}</button>
        }
    };

    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <p class="eyebrow">
                        <A href=format!("/projects/{}?environment={environment}", project.id)>{project.name.clone()}</A>
                        {format!(" · {env_name}")}
                    </p>
                    <h1>{service.name.clone()}</h1>
                    {move || overview.get().map(|o| {
                        let (dot, label) = dot_class(&o);
                        let class = state_class(&o.status.state);
                        let url = o.status.url.clone();
                        let href = url.clone();
                        view! {
                            <p class="service-meta">
                                <span class=class data-testid="service-state"><span class=dot></span>{o.status.state.replace('_', " ")}</span>
                                {(label != o.status.state.replace('_', " ")).then(|| view! {
                                    <span class="muted" data-testid="service-activity">{label}</span>
                                })}
                                <a class="mono" href=href target="_blank" rel="noopener" data-testid="public-url">{url}</a>
                                {move || usage.get().and_then(Result::ok).as_ref().and_then(usage_text).map(|text| view! {
                                    <span class="muted mono" data-testid="service-usage"
                                        title="Resident memory of the app's processes · time since it started · restarts">{text}</span>
                                })}
                            </p>
                        }
                    })}
                </div>
                <div class="row">
                    {move || {
                        let (class, label) = connection.get().badge();
                        view! { <span class=class title="Live status"><span class="dot"></span>{label}</span> }
                    }}
                    <button class="button" type="button" on:click=deploy data-testid="deploy"
                        disabled=move || busy.get() || !can_write.get()
                        title=move || (!can_write.get()).then_some("Viewers cannot deploy")>"Deploy"</button>
                </div>
            </header>
            <nav class="tabs" role="tablist">
                {tab_button(Tab::Deployments, "Deployments")}
                {tab_button(Tab::Logs, "Logs")}
                {tab_button(Tab::Variables, "Variables")}
                {tab_button(Tab::Settings, "Settings")}
            </nav>
            {move || match tab.get() {
                Tab::Deployments => view! {
                    <div class="card table-card" data-testid="deployments">
                        {move || match deployments.get() {
                            None => view! { <div class="skeleton-rows"><div></div><div></div><div></div></div> }.into_any(),
                            Some(Ok(list)) if list.is_empty() => view! {
                                <p class="muted empty">"Nothing deployed yet: press Deploy."</p>
                            }.into_any(),
                            Some(Ok(list)) => view! { <DeploymentTable list selected shown act names can_write busy /> }.into_any(),
                            Some(Err(err)) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                        }}
                    </div>
                    {move || shown.get().map(|deployment| view! {
                        <LiveLog topic=format!("deployment:{deployment}") title="Build log"
                            download=format!("/api/v1/deployments/{deployment}/logs?format=text&limit=5000") />
                    })}
                }.into_any(),
                Tab::Logs => view! {
                    <LiveLog topic=format!("service:{id}:{environment}") title="Runtime log"
                        download=format!("/api/v1/services/{id}/logs?environment={environment}&format=text&limit=5000") />
                }.into_any(),
                Tab::Variables => view! {
                    <VariablesPanel of=VariablesOf::Service { service: id, environment } title="Variables" can_write
                        on_deployed=Callback::new(move |()| version.update(|v| *v += 1)) />
                    <VariablesPanel of=VariablesOf::Shared(environment) title=shared_title.clone() can_write />
                }.into_any(),
                Tab::Settings => view! { <SettingsForm service=id environment can_write /> }.into_any(),
            }}
        </section>
    }
}

/// How long a deployment took (or has taken so far), as "12 s" or "3 min 4 s".
fn duration(d: &Deployment) -> String {
    let end = d
        .finished_at
        .map_or_else(crate::pages::projects::now_s, |f| f.timestamp());
    let s = (end - d.created_at.timestamp()).max(0);
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

#[component]
fn DeploymentTable(
    list: Vec<Deployment>,
    selected: RwSignal<Option<Uuid>>,
    shown: Memo<Option<Uuid>>,
    act: Callback<(Uuid, DeploymentAction)>,
    /// Member names by user id.
    names: Signal<std::collections::HashMap<Uuid, String>>,
    /// Whether the caller may deploy (viewers may not).
    can_write: Signal<bool>,
    /// A deployment write is in flight.
    busy: RwSignal<bool>,
) -> impl IntoView {
    view! {
        <table class="table">
            <thead><tr>
                <th>"State"</th><th>"Commit"</th><th>"Source"</th><th>"By"</th><th>"Started"</th><th>"Took"</th><th>"Reason"</th><th></th>
            </tr></thead>
            <tbody>
                {list.into_iter().map(|d| {
                    let id = d.id;
                    let in_flight = d.state.is_pending();
                    let can_roll_back = matches!(d.state, DeploymentState::Superseded | DeploymentState::RolledBack);
                    let button = move |action: DeploymentAction| view! {
                        <button class="button-ghost button-small" type="button"
                            disabled=move || busy.get() || !can_write.get()
                            title=move || (!can_write.get()).then_some("Viewers cannot change deployments")
                            on:click=move |ev| { ev.stop_propagation(); act.run((id, action)); }>{action.label()}</button>
                    };
                    view! {
                        <tr class="clickable" on:click=move |_| selected.set(Some(id))
                            aria-selected=move || (shown.get() == Some(id)).to_string() data-testid="deployment-row">
                            <td><span class=state_class(d.state.as_str()) data-testid="deployment-state"><span class="dot"></span>{d.state.as_str().replace('_', " ")}</span></td>
                            <td class="mono">{d.commit.clone().map(|c| c.chars().take(8).collect::<String>()).unwrap_or_default()}</td>
                            <td>{d.source.clone()}</td>
                            <td class="muted nowrap">{move || match d.triggered_by {
                                Some(user) => names.with(|n| n.get(&user).cloned()).unwrap_or_else(|| "a member".to_owned()),
                                None => "Railyard".to_owned(),
                            }}</td>
                            <td class="muted nowrap">{d.created_at.format("%b %d %H:%M:%S").to_string()}</td>
                            <td class="muted nowrap">{duration(&d)}</td>
                            <td class="muted ellipsis">{d.reason.clone().unwrap_or_default()}</td>
                            <td class="actions nowrap">
                                {in_flight.then(|| button(DeploymentAction::Cancel))}
                                {(!in_flight).then(|| button(DeploymentAction::Redeploy))}
                                {can_roll_back.then(|| button(DeploymentAction::Rollback))}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The service's settings in this environment; they apply from the next deployment.
#[component]
fn SettingsForm(service: Uuid, environment: Uuid, can_write: Signal<bool>) -> impl IntoView {
    let toasts = use_toasts();
    let loaded = LocalResource::new(move || api::service_settings(service, environment));
    let (root, build, start, health, policy, memory, port) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let error = RwSignal::new(None::<String>);
    // The fields take the stored settings once they arrive, and only then can be edited:
    // filled earlier, what was typed would be overwritten (and saving before then would
    // clear the stored settings).
    let ready = RwSignal::new(false);
    Effect::new(move |_| match loaded.get() {
        None => {}
        Some(Err(err)) => error.set(Some(err.message)),
        Some(Ok(s)) => {
            let text = |v: Option<String>| v.unwrap_or_default();
            root.set(text(s.root_dir));
            build.set(text(s.build_command));
            start.set(text(s.start_command));
            health.set(text(s.health_check_path));
            policy.set(text(s.restart_policy));
            memory.set(text(s.memory_limit_mb.map(|mb| mb.to_string())));
            port.set(text(s.port.map(|p| p.to_string())));
            ready.set(true);
        }
    });
    let saving = RwSignal::new(false);
    let locked = move || !ready.get() || !can_write.get();
    let save = move |ev: SubmitEvent| {
        ev.prevent_default();
        if saving.get_untracked() || !can_write.get_untracked() {
            return;
        }
        let text = |s: RwSignal<String>| Some(s.get_untracked().trim().to_owned()).filter(|v| !v.is_empty());
        let Ok(memory_limit_mb) = text(memory).map(|mb| mb.parse::<i32>()).transpose() else {
            error.set(Some("The memory limit is a whole number of MB.".to_owned()));
            return;
        };
        let Ok(port) = text(port).map(|p| p.parse::<i32>()).transpose() else {
            error.set(Some("The port is a whole number.".to_owned()));
            return;
        };
        let settings = ServiceSettings {
            root_dir: text(root),
            build_command: text(build),
            start_command: text(start),
            health_check_path: text(health),
            restart_policy: text(policy),
            port,
            memory_limit_mb,
        };
        saving.set(true);
        spawn_local(async move {
            let result = api::save_service_settings(service, environment, settings).await;
            saving.try_set(false);
            match result {
                Ok(_) => {
                    error.try_set(None);
                    toasts.ok("Settings saved: they apply from the next deployment.");
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        });
    };
    view! {
        <form class="card form settings-form" on:submit=save data-testid="settings">
            <h2 class="card-title">"Settings"</h2>
            <p class="hint">"Left empty, Railyard detects it from the source. Changes apply from the next deployment."</p>
            <FormError error=error.into() />
            <label>"Root directory"<input type="text" placeholder="." bind:value=root disabled=locked /></label>
            <label>"Build command"
                <input type="text" class="mono" placeholder="npm run build" bind:value=build disabled=locked />
            </label>
            <label>"Start command"
                <input type="text" class="mono" placeholder="node server.js" bind:value=start disabled=locked />
            </label>
            <label>"Health check path"<input type="text" placeholder="/health" bind:value=health disabled=locked /></label>
            <label>"Restart policy"
                <select bind:value=policy disabled=locked>
                    <option value="">"On failure (default)"</option>
                    <option value="on_failure">"On failure"</option>
                    <option value="always">"Always"</option>
                    <option value="never">"Never"</option>
                </select>
            </label>
            <label>"Memory limit (MB)"
                <input type="number" min="16" max="1048576" step="1" placeholder="No limit" bind:value=memory
                    disabled=locked />
            </label>
            <label>"Port"
                <input type="number" min="1" max="65535" step="1" placeholder="Any (passed as PORT)" bind:value=port
                    disabled=locked />
            </label>
            <p class="hint">"Past its memory limit the app is stopped by the kernel and restarted by its policy. \
                Leave the port empty: each release then gets its own as PORT and the next starts beside it, with no downtime. \
                A fixed port (for an app that ignores PORT) means the running release stops before the next one starts."</p>
            <div class="row"><button class="button" type="submit" disabled=move || locked() || saving.get()>"Save settings"</button></div>
        </form>
    }
}
