//! `/services/:id[?environment=]`: a service in one environment — its live status and public
//! URL, and tabs for its deployments (deploy, redeploy, cancel, roll back; the selected
//! one's build log), its runtime log, its variables and its settings. Status arrives on the
//! live socket (the project topic); nothing polls.

mod danger;
mod database;
mod deployments;
mod plan;
mod restore;
mod settings;
mod variables;

use leptos::prelude::*;
use leptos_router::{
    components::A,
    hooks::{use_params_map, use_query_map},
};
use railyard_shared::{DeploymentId, EnvironmentId, ServiceId};
use railyard_shared::{
    DeploymentState, ServiceState,
    auth::Role,
    deployments::{ServiceOverview, ServiceStatus},
    live::{ServerMessage, Topic},
    projects::{Project, Service},
};

use crate::{
    api::{
        ApiError,
        environments::{self as controls, Control},
        projects as api,
    },
    components::{
        crumbs::{Crumb, set_crumbs},
        live_log::LiveLog,
        loading::Loaded,
        toast::use_toasts,
        workspace::use_workspaces,
    },
    format,
    live::{Connection, use_live},
    pages::project::{EnvironmentSwitcher, chosen_environment, dot_class},
};
use danger::DangerZone;
use database::DatabaseTab;
use deployments::DeploymentsTab;
use settings::{DiskUsage, SettingsForm};
use variables::VariablesTab;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Database,
    Deployments,
    Logs,
    Variables,
    Settings,
}

pub(crate) fn deployment_badge(state: DeploymentState) -> &'static str {
    match state {
        DeploymentState::Active => "badge badge-ok",
        DeploymentState::Failed => "badge badge-down",
        s if s.is_pending() => "badge badge-pending",
        _ => "badge",
    }
}

fn service_badge(state: ServiceState) -> &'static str {
    match state {
        ServiceState::Running => "badge badge-ok",
        ServiceState::Crashed => "badge badge-down",
        ServiceState::Starting => "badge badge-pending",
        _ => "badge",
    }
}

/// The running process in a line: memory, uptime, restarts.
fn usage_text(status: &ServiceStatus) -> Option<String> {
    if status.state != ServiceState::Running {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(bytes) = status.memory_bytes {
        parts.push(format::memory(bytes));
    }
    if let Some(up) = status.uptime_s {
        parts.push(format!("up {}", format::uptime(up)));
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
    let loaded = LocalResource::new(move || {
        let id = params
            .read()
            .get("id")
            .and_then(|id| id.parse::<ServiceId>().ok());
        let asked = query.read().get("environment");
        async move {
            let id = id.ok_or_else(|| ApiError::not_found("No such service."))?;
            let service = api::find_service(id).await?;
            let project = api::find_project(service.project_id).await?;
            let environment = chosen_environment(&project, asked.as_deref())
                .ok_or_else(|| ApiError::not_found("The project has no environment."))?;
            Ok::<_, ApiError>((service, project, environment))
        }
    });
    view! {
        <Loaded fallback=|| view! {
            <section class="page"><div class="card skeleton"></div><div class="card skeleton"></div></section>
        }>
            {move || Suspend::new(async move {
                loaded.await.map(|(service, project, environment)| view! { <ServiceView service project environment /> })
            })}
        </Loaded>
    }
}

#[component]
fn ServiceView(service: Service, project: Project, environment: EnvironmentId) -> impl IntoView {
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
    let can_delete = Signal::derive(move || {
        workspaces
            .find(workspace)
            .is_some_and(|w| w.role.at_least(Role::Admin))
    });
    let env_name = project
        .environments
        .iter()
        .find(|e| e.id == environment)
        .map(|e| e.name.clone())
        .unwrap_or_default();
    set_crumbs(vec![
        Crumb::link(
            project.name.clone(),
            format!("/projects/{}?environment={environment}", project.id),
        ),
        Crumb::here(env_name.clone()),
        Crumb::here(service.name.clone()),
    ]);
    let is_database = !service.source.deploys();
    let tab = RwSignal::new(if is_database {
        Tab::Database
    } else {
        Tab::Deployments
    });
    // Bumped by every status change: the deployment list reads itself again.
    let version = RwSignal::new(0u32);
    let overview = RwSignal::new(None::<ServiceOverview>);
    let connection = RwSignal::new(Connection::Connecting);
    let topic = Topic::Project {
        project: service.project_id,
        environment,
    };
    use_live().subscribe(
        topic,
        || 0,
        connection,
        move |message| {
            if let ServerMessage::Status { overview: all, .. } = message {
                overview.try_set(all.services.into_iter().find(|s| s.service.id == id));
                version.try_update(|v| *v += 1);
            }
        },
    );
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
    // The deployment whose build log shows: the one clicked or just requested, else the newest.
    let selected = RwSignal::new(None::<DeploymentId>);
    let deploy = Action::new_local(move |&(): &()| async move {
        match api::deploy(id, environment).await {
            Ok(deployment) => {
                toasts.ok("Deployment queued.");
                selected.try_set(Some(deployment.id));
                version.try_update(|v| *v += 1);
            }
            Err(err) => toasts.error(err.message),
        }
    });
    let deploying = deploy.pending();
    let control = Action::new_local(move |&what: &Control| async move {
        match controls::control(id, environment, what).await {
            Ok(()) => {
                toasts.ok(match what {
                    Control::Restart => "Restarting: a new process takes over once healthy.",
                    Control::Stop => "Stopping the service.",
                    Control::Start => "Starting the service.",
                });
                version.try_update(|v| *v += 1);
            }
            Err(err) => toasts.error(err.message),
        }
    });
    let controlling = control.pending();
    let control_button = move |what: Control| {
        view! {
            <button class="button-ghost button-small" type="button" data-testid=format!("control-{}", what.label().to_lowercase())
                disabled=move || controlling.get() || !can_write.get()
                title=move || (!can_write.get()).then_some("Viewers cannot change a running service")
                on:click=move |_| {
                    if what != Control::Stop
                        || window().confirm_with_message("Stop the service? The router answers 503 until it is started again.").unwrap_or(false)
                    {
                        control.dispatch(what);
                    }
                }>{what.label()}</button>
        }
    };
    let running = move || {
        overview
            .get()
            .is_some_and(|o| matches!(o.status.state, ServiceState::Running | ServiceState::Starting))
    };
    let deployed = move || overview.get().is_some_and(|o| o.active.is_some());
    let tracks = match &service.source {
        railyard_shared::projects::Source::Git { branch, .. }
        | railyard_shared::projects::Source::Github { branch, .. }
        | railyard_shared::projects::Source::Push { branch } => {
            let production = project.environments.iter().any(|e| {
                e.id == environment && e.kind == railyard_shared::projects::EnvironmentKind::Production
            });
            if production {
                format!("{branch} (the service's branch)")
            } else {
                "none".to_owned()
            }
        }
        railyard_shared::projects::Source::Upload {} => "uploads: no branch".to_owned(),
        railyard_shared::projects::Source::Postgres {} => "a database: nothing deploys".to_owned(),
    };
    let switcher = project.clone();
    let danger_project = project.clone();
    let service_name = service.name.clone();
    let on_deploy = move |_| {
        if !deploying.get_untracked() {
            deploy.dispatch(());
        }
    };
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
                        let class = service_badge(o.status.state);
                        let url = o.status.url.clone();
                        let href = url.clone();
                        view! {
                            <p class="service-meta">
                                <span class=class data-testid="service-state"><span class=dot></span>{o.status.state.label()}</span>
                                {(label != o.status.state.label()).then(|| view! {
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
                    {move || deployed().then(|| view! {
                        <div class="row controls" data-testid="service-controls">
                            {control_button(Control::Restart)}
                            {if running() { control_button(Control::Stop).into_any() } else { control_button(Control::Start).into_any() }}
                        </div>
                    })}
                </div>
                <div class="row wrap">
                    {move || {
                        let (class, label) = connection.get().badge();
                        view! { <span class=class title="Live status"><span class="dot"></span>{label}</span> }
                    }}
                    <EnvironmentSwitcher project=switcher current=Signal::derive(move || Some(environment)) path=format!("/services/{id}") />
                    {(!is_database).then(|| view! {
                        <button class="button" type="button" on:click=on_deploy data-testid="deploy"
                            disabled=move || deploying.get() || !can_write.get()
                            title=move || (!can_write.get()).then_some("Viewers cannot deploy")>"Deploy"</button>
                    })}
                </div>
            </header>
            <nav class="tabs" role="tablist">
                {if is_database {
                    tab_button(Tab::Database, "Database").into_any()
                } else {
                    view! { {tab_button(Tab::Deployments, "Deployments")} {tab_button(Tab::Logs, "Logs")} }.into_any()
                }}
                {tab_button(Tab::Variables, "Variables")}
                {tab_button(Tab::Settings, "Settings")}
            </nav>
            {move || match tab.get() {
                Tab::Database => view! {
                    <DatabaseTab service=id name=service_name.clone() environment can_write can_admin=can_delete />
                }.into_any(),
                Tab::Deployments => view! {
                    <DeploymentsTab service=id environment workspace version selected can_write deploying=deploying.into() />
                }.into_any(),
                Tab::Logs => view! {
                    <LiveLog topic=Topic::Service { service: id, environment } title="Runtime log"
                        download=format!("/api/v1/services/{id}/logs?environment={environment}&format=text&limit=5000") />
                }.into_any(),
                Tab::Variables => view! {
                    <VariablesTab service=id environment env_name=env_name.clone() can_write
                        on_deployed=Callback::new(move |()| version.update(|v| *v += 1)) />
                }.into_any(),
                Tab::Settings => view! {
                    <SettingsForm service=id environment can_write tracks=tracks.clone() />
                    <DiskUsage service=id workspace />
                    <DangerZone service=id service_name=service_name.clone() environment project=danger_project.clone() can_delete />
                }.into_any(),
            }}
        </section>
    }
}
