//! The Deployments tab: the service's deployments in this environment (redeploy, cancel,
//! roll back; each write disabled while one is in flight and for viewers), and the selected
//! one's plan and build log, live.

use std::collections::HashMap;

use leptos::prelude::*;
use railyard_shared::WorkspaceId;
use railyard_shared::{DeploymentId, EnvironmentId, ServiceId, UserId};
use railyard_shared::{DeploymentState, deployments::Deployment, live::Topic};

use super::{deployment_badge, plan::PlanCard};
use crate::{
    api::{
        self,
        projects::{self as deploys, DeploymentAction},
    },
    components::{live_log::LiveLog, loading::Loaded, toast::use_toasts},
    format,
};

/// What to confirm before `action`, if anything.
fn question(action: DeploymentAction) -> Option<&'static str> {
    match action {
        DeploymentAction::Rollback => {
            Some("Roll back to this deployment? Its release goes live again with the variables it ran with.")
        }
        DeploymentAction::Cancel => Some("Cancel this deployment?"),
        DeploymentAction::Redeploy => None,
    }
}

#[component]
pub fn DeploymentsTab(
    service: ServiceId,
    environment: EnvironmentId,
    workspace: WorkspaceId,
    /// Bumped on every status change: the list reads itself again.
    version: RwSignal<u32>,
    /// The deployment whose log shows (`None`: the newest).
    selected: RwSignal<Option<DeploymentId>>,
    can_write: Signal<bool>,
    /// A deploy requested from the page header is in flight.
    deploying: Signal<bool>,
) -> impl IntoView {
    let toasts = use_toasts();
    let deployments = LocalResource::new(move || {
        version.track();
        deploys::list_deployments(service, environment)
    });
    // Who triggered what: the workspace's members by id.
    let members = LocalResource::new(move || api::list_members(workspace));
    let names = Signal::derive(move || {
        members
            .get()
            .and_then(Result::ok)
            .map(|m| m.members.into_iter().map(|m| (m.user_id, m.name)).collect())
            .unwrap_or_default()
    });
    let shown = Memo::new(move |_| {
        selected.get().or_else(|| {
            deployments
                .get()
                .and_then(Result::ok)
                .and_then(|list| list.first().map(|d| d.id))
        })
    });
    let act = Action::new_local(
        move |&(deployment, action): &(DeploymentId, DeploymentAction)| async move {
            match deploys::act_on_deployment(deployment, action).await {
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
        },
    );
    let busy = Signal::derive(move || act.pending().get() || deploying.get());
    let run = Callback::new(move |request: (DeploymentId, DeploymentAction)| {
        if busy.get_untracked() {
            return;
        }
        if let Some(question) = question(request.1)
            && !window().confirm_with_message(question).unwrap_or(false)
        {
            return;
        }
        act.dispatch(request);
    });
    view! {
        <div class="card table-card" data-testid="deployments">
            <Loaded fallback=|| view! { <div class="skeleton-rows"><div></div><div></div><div></div></div> }>
                {move || Suspend::new(async move {
                    deployments.await.map(|list| if list.is_empty() {
                        view! { <p class="muted empty">"Nothing deployed yet: press Deploy."</p> }.into_any()
                    } else {
                        view! { <DeploymentTable list selected shown run names can_write busy /> }.into_any()
                    })
                })}
            </Loaded>
        </div>
        {move || shown.get().map(|deployment| view! {
            <PlanCard deployment version />
            <LiveLog topic=Topic::Deployment(deployment) title="Build log"
                download=format!("/api/v1/deployments/{deployment}/logs?format=text&limit=5000") />
        })}
    }
}

#[component]
fn DeploymentTable(
    list: Vec<Deployment>,
    selected: RwSignal<Option<DeploymentId>>,
    shown: Memo<Option<DeploymentId>>,
    run: Callback<(DeploymentId, DeploymentAction)>,
    /// Member names by user id.
    names: Signal<HashMap<UserId, String>>,
    /// Whether the caller may deploy (viewers may not).
    can_write: Signal<bool>,
    /// A deployment write is in flight.
    busy: Signal<bool>,
) -> impl IntoView {
    view! {
        <table class="table deployments-table">
            <thead><tr>
                <th>"State"</th><th>"Commit"</th><th class="wide-only">"Source"</th><th class="wide-only">"By"</th>
                <th class="wide-only">"Started"</th><th class="wide-only">"Took"</th><th>"Reason"</th><th></th>
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
                            on:click=move |ev| { ev.stop_propagation(); run.run((id, action)); }>{action.label()}</button>
                    };
                    let reason = d.reason.clone().unwrap_or_default();
                    view! {
                        <tr class="clickable" on:click=move |_| selected.set(Some(id))
                            aria-selected=move || (shown.get() == Some(id)).to_string() data-testid="deployment-row">
                            <td><span class=deployment_badge(d.state) data-testid="deployment-state"><span class="dot"></span>{d.state.label()}</span></td>
                            <td class="mono" title=d.commit_message.clone().unwrap_or_default()>{d.commit.clone().map(|c| c.chars().take(8).collect::<String>()).unwrap_or_default()}</td>
                            <td class="wide-only" data-testid="deployment-source">{match (d.source.as_str(), &d.promoted_from_environment) {
                                ("promotion", Some(env)) => format!("promoted from {env}"),
                                ("promotion", None) => "promoted".to_owned(),
                                (source, _) => source.to_owned(),
                            }}</td>
                            <td class="muted nowrap wide-only">{move || match d.triggered_by {
                                Some(user) => names.with(|n| n.get(&user).cloned()).unwrap_or_else(|| "a member".to_owned()),
                                None => "Railyard".to_owned(),
                            }}</td>
                            <td class="muted nowrap wide-only">{d.created_at.format("%b %d %H:%M:%S").to_string()}</td>
                            <td class="muted nowrap wide-only">{format::took(d.created_at.timestamp(), d.finished_at.map(|f| f.timestamp()))}</td>
                            <td class="muted reason-cell"><span class="reason" title=reason.clone()>{reason.clone()}</span></td>
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
