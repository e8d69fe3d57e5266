//! The plan of the deployment whose build log shows: what decided it, the language versions
//! it asked for and got, its build steps, how it starts (or the directory served as a
//! static site), its release step, and what was read or found and not used.

use leptos::prelude::*;
use railyard_shared::{DeploymentId, deployments::Plan};

use crate::api::projects as deploys;

#[component]
pub fn PlanCard(deployment: DeploymentId, version: RwSignal<u32>) -> impl IntoView {
    let detail = LocalResource::new(move || {
        version.track();
        deploys::find_deployment(deployment)
    });
    move || {
        detail
            .get()
            .and_then(Result::ok)
            .and_then(|d| d.plan)
            .map(|plan| view! { <PlanView plan /> })
    }
}

#[component]
fn PlanView(plan: Plan) -> impl IntoView {
    let start = match (&plan.start, &plan.static_dir) {
        (Some(start), _) => start.to_string(),
        (None, Some(dir)) => format!(
            "{dir}/ served by Railyard{}",
            if plan.spa { " (single-page app)" } else { "" }
        ),
        (None, None) => "served by Railyard as a static site".to_owned(),
    };
    let root = if plan.root.is_empty() {
        ".".to_owned()
    } else {
        plan.root.clone()
    };
    view! {
        <div class="card plan-card" data-testid="plan">
            <div class="plan-head">
                <span class="muted">"Plan"</span>
                <strong>{plan.provider.clone()}</strong>
                <span class="muted">"root " <code>{root}</code></span>
            </div>
            {(!plan.toolchains.is_empty()).then(|| view! {
                <div class="chips">
                    {plan.toolchains.iter().map(|t| view! {
                        <span class="chip" title=format!("{} requested by {}", t.requested, t.source)>
                            {format!("{} {}", t.name, t.version.clone().unwrap_or_else(|| t.requested.clone()))}
                            <span class="muted">{format!(" · {}", t.source)}</span>
                        </span>
                    }).collect_view()}
                </div>
            })}
            <dl class="plan-steps">
                {plan.build.iter().map(|step| view! { <dt>"build"</dt><dd><code>{step.to_string()}</code></dd> }).collect_view()}
                <dt>"start"</dt><dd><code>{start}</code></dd>
                {plan.release.as_ref().map(|r| view! { <dt>"release"</dt><dd><code>{r.to_string()}</code>" (shown, not run)"</dd> })}
                {plan.health_check.as_ref().map(|h| view! { <dt>"health"</dt><dd><code>{h.clone()}</code></dd> })}
            </dl>
            {(!plan.notes.is_empty()).then(|| view! {
                <ul class="plan-notes muted">
                    {plan.notes.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}
                </ul>
            })}
        </div>
    }
}
