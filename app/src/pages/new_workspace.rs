use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;

use crate::{
    api,
    components::{auth_card::FormError, workspace::use_workspaces},
};

#[component]
pub fn NewWorkspacePage() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let workspaces = use_workspaces();
    let navigate = use_navigate();
    let create = Action::new_local(|name: &String| api::create_workspace(name.clone()));
    Effect::new(move || {
        if let Some(Ok(workspace)) = create.value().get() {
            workspaces.select(workspace.id);
            workspaces.refetch();
            navigate(
                &format!("/workspaces/{}/members", workspace.id),
                Default::default(),
            );
        }
    });
    let error = Signal::derive(move || create.value().get().and_then(Result::err).map(|e| e.message));
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        create.dispatch(name.get_untracked());
    };
    view! {
        <section class="page narrow">
            <header class="page-header">
                <div>
                    <h1>"New workspace"</h1>
                    <p class="muted">"A workspace holds your team's projects. You will be its owner."</p>
                </div>
            </header>
            <form class="card form" on:submit=on_submit>
                <FormError error />
                <label>"Name" <input type="text" required maxlength="64" placeholder="Acme" bind:value=name /></label>
                <button class="button" type="submit" disabled=move || create.pending().get()>"Create workspace"</button>
            </form>
        </section>
    }
}
