//! The "New environment" dialog: empty, or a clone of another environment's settings and
//! variables (sealed ones stay sealed; nothing is deployed until asked).

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;
use railyard_shared::{
    EnvironmentId, ProjectId,
    projects::{Environment, EnvironmentKind},
};

use crate::{
    api::environments as api,
    components::{auth_card::FormError, toast::use_toasts},
};

#[component]
pub fn NewEnvironment(
    project: ProjectId,
    environments: Vec<Environment>,
    /// The environment shown now: the default to clone from.
    current: Option<EnvironmentId>,
    on_close: Callback<()>,
) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let name = RwSignal::new("staging".to_owned());
    let kind = RwSignal::new(String::new());
    let clone_from = RwSignal::new(current.map(|c| c.to_string()).unwrap_or_default());
    let error = RwSignal::new(None::<String>);
    let add = Action::new_local(
        move |(text, kind, from): &(String, Option<EnvironmentKind>, Option<EnvironmentId>)| {
            let (text, kind, from) = (text.clone(), *kind, *from);
            let navigate = navigate.clone();
            async move {
                match api::create_environment(project, text, kind, from).await {
                    Ok(env) => {
                        toasts.ok(if from.is_some() {
                            format!(
                                "Environment {} created with a copy of the settings and variables.",
                                env.name
                            )
                        } else {
                            format!("Environment {} created.", env.name)
                        });
                        on_close.run(());
                        navigate(
                            &format!("/projects/{project}?environment={}", env.id),
                            Default::default(),
                        );
                    }
                    Err(err) => {
                        error.try_set(Some(err.message));
                    }
                }
            }
        },
    );
    let adding = add.pending();
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let kind = EnvironmentKind::parse(&kind.get_untracked());
        let from = clone_from.get_untracked().parse::<EnvironmentId>().ok();
        if !adding.get_untracked() {
            add.dispatch((name.get_untracked().trim().to_owned(), kind, from));
        }
    };
    view! {
        <div class="dialog-backdrop" on:click=move |_| on_close.run(())>
            <div class="card dialog" role="dialog" aria-modal="true" aria-label="New environment"
                on:click=|ev| ev.stop_propagation() data-testid="new-environment">
                <div class="card-head">
                    <h2>"New environment"</h2>
                    <button class="button-ghost" type="button" aria-label="Close" on:click=move |_| on_close.run(())>"✕"</button>
                </div>
                <form class="form" on:submit=submit>
                    <FormError error=error.into() />
                    <label>"Name"
                        <input type="text" required maxlength="39" bind:value=name data-testid="environment-name" />
                        <span class="hint">"Part of each service's address: web-"{move || name.get()}"-project."</span>
                    </label>
                    <label>"Kind"
                        <select bind:value=kind data-testid="environment-kind">
                            <option value="">"From the name"</option>
                            <option value="development">"Development"</option>
                            <option value="staging">"Staging"</option>
                            <option value="preview">"Preview"</option>
                        </select>
                        <span class="hint">"The pipeline runs development → staging → production; previews come last."</span>
                    </label>
                    <label>"Start from"
                        <select bind:value=clone_from data-testid="environment-clone">
                            <option value="">"Empty"</option>
                            {environments.into_iter().map(|e| view! {
                                <option value=e.id.to_string() selected=current == Some(e.id)>{format!("A copy of {}", e.name)}</option>
                            }).collect_view()}
                        </select>
                        <span class="hint">"A copy takes every service's settings and variables (sealed ones stay sealed), not its deployments."</span>
                    </label>
                    <div class="row"><button class="button" type="submit" disabled=move || adding.get()
                        data-testid="create-environment">"Create environment"</button></div>
                </form>
            </div>
        </div>
    }
}
