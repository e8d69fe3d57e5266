//! `/projects/:id/matrix`: every service (rows) in every environment (columns, in pipeline
//! order, previews last): what each runs, its health, and how it differs from the column
//! before it; a "Promote →" action moves a cell's build to the next column after showing
//! the plan. Live: any status change in any of the project's environments reads it again.

use leptos::prelude::*;
use leptos_router::components::A;
use railyard_shared::{
    EnvironmentId, ProjectId, ServiceId,
    auth::Role,
    live::{ServerMessage, Topic},
    pipeline::{Matrix, MatrixCell, Promotion},
    projects::{Environment, EnvironmentKind, Project},
};

use crate::{
    api::{environments as api, projects},
    components::{
        crumbs::{Crumb, set_crumbs},
        loading::Loaded,
        toast::use_toasts,
        workspace::use_workspaces,
    },
    format,
    live::{Connection, use_live},
};

#[component]
pub fn MatrixPage() -> impl IntoView {
    let project = super::project_of_path();
    view! {
        <Loaded fallback=|| view! { <section class="page"><div class="card skeleton"></div></section> }>
            {move || Suspend::new(async move { project.await.map(|project| view! { <MatrixView project /> }) })}
        </Loaded>
    }
}

#[component]
fn MatrixView(project: Project) -> impl IntoView {
    let id = project.id;
    set_crumbs(vec![
        Crumb::link("Projects", "/projects"),
        Crumb::link(project.name.clone(), format!("/projects/{id}")),
        Crumb::here("Matrix"),
    ]);
    let workspaces = use_workspaces();
    let workspace = project.workspace_id;
    let can_write = Signal::derive(move || {
        workspaces
            .find(workspace)
            .is_some_and(|w| w.role.at_least(Role::Member))
    });
    let version = RwSignal::new(0u32);
    let matrix = LocalResource::new(move || {
        version.track();
        api::matrix(id)
    });
    // One live topic per environment: any change there reads the matrix again.
    let connection = RwSignal::new(Connection::Connecting);
    for env in &project.environments {
        use_live().subscribe(
            Topic::Project {
                project: id,
                environment: env.id,
            },
            || 0,
            connection,
            move |message| {
                if matches!(message, ServerMessage::Status { .. }) {
                    version.try_update(|v| *v += 1);
                }
            },
        );
    }
    let promoting = RwSignal::new(None::<(ServiceId, Environment, Environment)>);
    let promoting_all = RwSignal::new(None::<(Environment, Environment)>);
    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <p class="eyebrow"><A href=format!("/projects/{id}")>{project.name.clone()}</A></p>
                    <h1>"Environment matrix"</h1>
                    <p class="muted">"Each column is compared with the one before it. Promote moves a build, not its settings or variables."</p>
                </div>
                <div class="row">
                    {move || {
                        let (class, label) = connection.get().badge();
                        view! { <span class=class title="Live status"><span class="dot"></span>{label}</span> }
                    }}
                </div>
            </header>
            <Loaded fallback=|| view! { <div class="card skeleton"></div> }>
                {move || Suspend::new(async move {
                    matrix.await.map(|m| view! { <MatrixTable matrix=m promoting promoting_all can_write /> })
                })}
            </Loaded>
            {move || promoting_all.get().map(|(from, to)| view! {
                <ProjectPromoteDialog project=id from to
                    on_close=Callback::new(move |done: bool| {
                        promoting_all.set(None);
                        if done {
                            version.update(|v| *v += 1);
                        }
                    }) />
            })}
            {move || promoting.get().map(|(service, from, to)| view! {
                <PromoteDialog service from to
                    on_close=Callback::new(move |done: bool| {
                        promoting.set(None);
                        if done {
                            version.update(|v| *v += 1);
                        }
                    }) />
            })}
        </section>
    }
}

/// The next column a cell's build can be promoted to (previews take none).
fn next_of(environments: &[Environment], env: EnvironmentId) -> Option<Environment> {
    let at = environments.iter().position(|e| e.id == env)?;
    let here = &environments[at];
    if here.kind == EnvironmentKind::Preview {
        return None;
    }
    environments
        .get(at + 1)
        .filter(|next| next.kind != EnvironmentKind::Preview)
        .cloned()
}

#[component]
fn MatrixTable(
    matrix: Matrix,
    promoting: RwSignal<Option<(ServiceId, Environment, Environment)>>,
    promoting_all: RwSignal<Option<(Environment, Environment)>>,
    can_write: Signal<bool>,
) -> impl IntoView {
    if matrix.services.is_empty() {
        return view! { <div class="card"><p class="muted empty">"No services yet: add one on the project's canvas."</p></div> }
            .into_any();
    }
    let environments = matrix.environments.clone();
    let head = environments
        .iter()
        .map(|e| {
            let next = next_of(&environments, e.id).filter(|_| matrix.services.len() > 1);
            let from = e.clone();
            view! {
                <th scope="col">
                    <span class="matrix-env">{e.name.clone()}</span>
                    <span class=format!("kind kind-{}", e.kind.as_str())>{e.kind.as_str()}</span>
                    {next.map(|to| {
                        let label = format!("Promote all → {}", to.name);
                        view! {
                            <button class="button-ghost button-small matrix-all" type="button" data-testid="promote-all"
                                disabled=move || !can_write.get()
                                on:click=move |_| promoting_all.set(Some((from.clone(), to.clone())))>{label}</button>
                        }
                    })}
                </th>
            }
        })
        .collect_view();
    let rows = matrix
        .services
        .iter()
        .map(|service| {
            let cells = environments
                .iter()
                .map(|env| {
                    let cell = matrix
                        .cells
                        .iter()
                        .find(|c| c.service_id == service.id && c.environment_id == env.id)
                        .cloned();
                    let next = next_of(&environments, env.id);
                    let from = env.clone();
                    let previous = environments
                        .iter()
                        .position(|e| e.id == env.id)
                        .and_then(|i| i.checked_sub(1))
                        .map(|i| environments[i].name.clone());
                    view! { <td><Cell cell service=service.id from next previous promoting can_write /></td> }
                })
                .collect_view();
            view! { <tr><th scope="row" class="matrix-service">{service.name.clone()}</th>{cells}</tr> }
        })
        .collect_view();
    view! {
        <div class="card matrix-card">
            <div class="matrix-scroll">
                <table class="matrix" data-testid="matrix">
                    <thead><tr><th scope="col">"Service"</th>{head}</tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </div>
    }
    .into_any()
}

#[component]
fn Cell(
    cell: Option<MatrixCell>,
    service: ServiceId,
    from: Environment,
    next: Option<Environment>,
    /// The column compared with (for the drift's wording).
    previous: Option<String>,
    promoting: RwSignal<Option<(ServiceId, Environment, Environment)>>,
    can_write: Signal<bool>,
) -> impl IntoView {
    let Some(cell) = cell else {
        return view! { <span class="muted">"—"</span> }.into_any();
    };
    let href = format!("/services/{service}?environment={}", from.id);
    let dot = match cell.health.as_str() {
        "healthy" => "dot dot-ok",
        "unhealthy" => "dot dot-down",
        _ => "dot dot-idle",
    };
    let commit = cell.commit.clone();
    let deployed = cell.deployed_at.map(|at| format::ago(at, format::now_s()));
    let drift = cell.drift.clone().map(|d| {
        let mut chips = Vec::new();
        if let Some(n) = d.commits_ahead.filter(|n| *n > 0) {
            chips.push((
                "chip chip-ahead",
                format!("↑{n}"),
                format!("{n} commit(s) ahead of {}", previous.clone().unwrap_or_default()),
            ));
        }
        if let Some(n) = d.commits_behind.filter(|n| *n > 0) {
            chips.push((
                "chip chip-behind",
                format!("↓{n}"),
                format!("{n} commit(s) behind {}", previous.clone().unwrap_or_default()),
            ));
        }
        if !d.variables.is_empty() {
            let names: Vec<String> = d
                .variables
                .iter()
                .map(|v| format!("{} {}", v.name, v.change))
                .collect();
            chips.push(("chip", format!("{} var", d.variables.len()), names.join(", ")));
        }
        if !d.settings.is_empty() {
            let names: Vec<String> = d.settings.iter().map(|s| s.name.clone()).collect();
            chips.push(("chip", format!("{} setting", d.settings.len()), names.join(", ")));
        }
        chips
    });
    let runs = cell.deployment_id.is_some();
    let target = next.clone();
    let promote = move |_| {
        if let Some(to) = target.clone() {
            promoting.set(Some((service, from.clone(), to)));
        }
    };
    view! {
        <div class="matrix-cell" data-testid="matrix-cell">
            <A href=href attr:class="matrix-link">
                <span class="matrix-state"><span class=dot></span>{cell.state.label()}</span>
                {match commit {
                    Some(c) => view! {
                        <span class="mono matrix-commit" title=c.message.clone().unwrap_or_default()>
                            {c.sha.chars().take(7).collect::<String>()}
                            <span class="muted">{c.message.clone().map(|m| format!(" {m}")).unwrap_or_default()}</span>
                        </span>
                    }.into_any(),
                    None => view! { <span class="muted">"nothing deployed"</span> }.into_any(),
                }}
                {deployed.map(|d| view! { <span class="muted small">{d}</span> })}
            </A>
            {drift.filter(|c| !c.is_empty()).map(|chips| view! {
                <div class="chips" data-testid="drift">
                    {chips.into_iter().map(|(class, text, title)| view! { <span class=class title=title>{text}</span> }).collect_view()}
                </div>
            })}
            {(runs && next.is_some()).then(|| {
                let to = next.clone().map(|n| n.name).unwrap_or_default();
                view! {
                    <button class="button-ghost button-small" type="button" on:click=promote
                        disabled=move || !can_write.get()
                        title=move || (!can_write.get()).then_some("Viewers cannot promote")
                        data-testid="promote">{format!("Promote → {to}")}</button>
                }
            })}
        </div>
    }
    .into_any()
}

/// The plan of a promotion, then "Promote" applies it (a stale plan says so; plan again).
#[component]
fn PromoteDialog(
    service: ServiceId,
    from: Environment,
    to: Environment,
    on_close: Callback<bool>,
) -> impl IntoView {
    let toasts = use_toasts();
    let (from_id, to_id) = (from.id, to.id);
    let plan = LocalResource::new(move || api::plan_promotion(service, from_id, to_id));
    let apply = Action::new_local(move |plan: &Promotion| {
        let plan = plan.clone();
        async move {
            match api::apply_promotion(&plan).await {
                Ok(_) => {
                    toasts.ok("Promotion started: the build goes live through the health-gated switch.");
                    on_close.run(true);
                }
                Err(err) => toasts.error(err.message),
            }
        }
    });
    let applying = apply.pending();
    let title = format!("Promote {} → {}", from.name, to.name);
    let to_name = StoredValue::new(to.name.clone());
    view! {
        <div class="dialog-backdrop" on:click=move |_| on_close.run(false)>
            <div class="card dialog" role="dialog" aria-modal="true" aria-label=title.clone()
                on:click=|ev| ev.stop_propagation() data-testid="promote-dialog">
                <div class="card-head">
                    <h2>{title.clone()}</h2>
                    <button class="button-ghost" type="button" aria-label="Close" on:click=move |_| on_close.run(false)>"✕"</button>
                </div>
                <Loaded fallback=|| view! { <div class="skeleton-rows"><div></div><div></div></div> }>
                    {move || {
                        let to_name = to_name.get_value();
                        Suspend::new(async move {
                            plan.await.map(|p| {
                                let commits = p.commit_range.commits.clone().unwrap_or_default();
                                let chosen = p.clone();
                                view! {
                                    <div class="plan" data-testid="plan">
                                        <p>"Build "<span class="mono">{p.release_id.to_string().chars().take(8).collect::<String>()}</span>
                                            {p.commit.clone().map(|c| view! { " · commit " <span class="mono">{c.sha.chars().take(7).collect::<String>()}</span>
                                                <span class="muted">{c.message.map(|m| format!(" {m}")).unwrap_or_default()}</span> })}</p>
                                        <h3>{format!("Commits it brings ({})", commits.len())}</h3>
                                        {if commits.is_empty() {
                                            view! { <p class="muted">"None that Railyard can list (the same commit, or history it does not hold)."</p> }.into_any()
                                        } else {
                                            view! { <ul class="plain-list">{commits.into_iter().map(|c| view! {
                                                <li><span class="mono">{c.sha.chars().take(7).collect::<String>()}</span>" "{c.message.unwrap_or_default()}
                                                    <span class="muted">{c.author.map(|a| format!(" · {a}")).unwrap_or_default()}</span></li>
                                            }).collect_view()}</ul> }.into_any()
                                        }}
                                        <h3>"What differs (the target keeps its own)"</h3>
                                        {if p.variables.is_empty() && p.settings.is_empty() {
                                            view! { <p class="muted">"Settings and variable names are the same."</p> }.into_any()
                                        } else {
                                            view! { <ul class="plain-list" data-testid="plan-diff">
                                                {p.variables.iter().map(|v| view! {
                                                    <li><span class="mono">{v.name.clone()}</span>" "<span class=format!("chip chip-{}", v.change)>{v.change.clone()}</span></li>
                                                }).collect_view()}
                                                {p.settings.iter().map(|s| view! {
                                                    <li>"setting "<span class="mono">{s.name.clone()}</span>
                                                        <span class="muted">{format!(": {} → {}", s.from.clone().unwrap_or_else(|| "default".into()), s.to.clone().unwrap_or_else(|| "default".into()))}</span></li>
                                                }).collect_view()}
                                            </ul> }.into_any()
                                        }}
                                        <div class="row">
                                            <button class="button" type="button" data-testid="apply-promotion"
                                                disabled=move || applying.get()
                                                on:click=move |_| { apply.dispatch(chosen.clone()); }>{format!("Promote to {to_name}")}</button>
                                        </div>
                                    </div>
                                }
                            })
                        })
                    }}
                </Loaded>
            </div>
        </div>
    }
}

/// Every service whose build differs, in the order their references need; "Promote all"
/// applies the plan.
#[component]
fn ProjectPromoteDialog(
    project: ProjectId,
    from: Environment,
    to: Environment,
    on_close: Callback<bool>,
) -> impl IntoView {
    let toasts = use_toasts();
    let (from_id, to_id) = (from.id, to.id);
    let plan = LocalResource::new(move || api::plan_project_promotion(project, from_id, to_id));
    let services = LocalResource::new(move || projects::list_services(project));
    let apply = Action::new_local(move |plan: &railyard_shared::pipeline::ProjectPromotion| {
        let plan = plan.clone();
        async move {
            match api::apply_project_promotion(project, &plan).await {
                Ok(done) => {
                    toasts.ok(format!("Promoting {} service(s).", done.services.len()));
                    on_close.run(true);
                }
                Err(err) => toasts.error(err.message),
            }
        }
    });
    let applying = apply.pending();
    let title = format!("Promote all {} → {}", from.name, to.name);
    view! {
        <div class="dialog-backdrop" on:click=move |_| on_close.run(false)>
            <div class="card dialog" role="dialog" aria-modal="true" aria-label=title.clone()
                on:click=|ev| ev.stop_propagation() data-testid="promote-all-dialog">
                <div class="card-head">
                    <h2>{title.clone()}</h2>
                    <button class="button-ghost" type="button" aria-label="Close" on:click=move |_| on_close.run(false)>"✕"</button>
                </div>
                <Loaded fallback=|| view! { <div class="skeleton-rows"><div></div><div></div></div> }>
                    {move || Suspend::new(async move {
                        let names = services.await.unwrap_or_default();
                        plan.await.map(|p| {
                            let chosen = p.clone();
                            let name = |id: ServiceId| names.iter().find(|s| s.id == id).map_or_else(|| id.to_string(), |s| s.name.clone());
                            view! {
                                <div class="plan" data-testid="plan">
                                    <p class="muted">"In this order (a service after those its variables refer to):"</p>
                                    <ul class="plain-list">
                                        {p.services.iter().map(|s| {
                                            let commits = s.commit_range.commits.as_ref().map_or(0, Vec::len);
                                            view! {
                                                <li><strong>{name(s.service_id)}</strong>
                                                    <span class="muted">{format!(" · {commits} commit(s) · {} variable name(s) and {} setting(s) differ", s.variables.len(), s.settings.len())}</span></li>
                                            }
                                        }).collect_view()}
                                    </ul>
                                    <div class="row">
                                        <button class="button" type="button" data-testid="apply-promotion"
                                            disabled=move || applying.get()
                                            on:click=move |_| { apply.dispatch(chosen.clone()); }>"Promote all"</button>
                                    </div>
                                </div>
                            }
                        })
                    })}
                </Loaded>
            </div>
        </div>
    }
}
