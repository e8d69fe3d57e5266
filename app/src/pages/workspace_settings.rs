//! The workspace card on the members page: rename (admins), delete (owners).

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use railyard_shared::auth::Role;
use uuid::Uuid;

use crate::{
    api,
    components::{auth_card::FormError, workspace::use_workspaces},
};

#[component]
pub fn WorkspaceSettings(workspace: Uuid, name: String, role: Role) -> impl IntoView {
    let workspaces = use_workspaces();
    let new_name = RwSignal::new(name.clone());
    let error = RwSignal::new(None::<String>);
    let saved = RwSignal::new(false);
    let rename = move |ev: SubmitEvent| {
        ev.prevent_default();
        spawn_local(async move {
            match api::rename_workspace(workspace, new_name.get_untracked()).await {
                Ok(_) => {
                    error.set(None);
                    saved.set(true);
                    workspaces.refetch();
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let name = StoredValue::new(name);
    // Copy (captures only ids and handles), so the view can use it in a re-rendered branch.
    let delete = move |_| {
        let question = format!(
            "Delete the workspace {} and everything in it? This cannot be undone.",
            name.get_value()
        );
        if !window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        spawn_local(async move {
            match api::delete_workspace(workspace).await {
                Ok(()) => {
                    let _ = window().location().set_href("/");
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    view! {
        <form class="card form inline-form" on:submit=rename data-testid="workspace-settings">
            <h2 class="card-title">"Workspace"</h2>
            <FormError error=error.into() />
            <Show when=move || saved.get()>
                <p class="form-ok" role="status">"Saved."</p>
            </Show>
            <div class="row">
                <input type="text" required maxlength="64" aria-label="Workspace name" bind:value=new_name />
                <button class="button-ghost" type="submit">"Rename"</button>
                <Show when=move || role == Role::Owner>
                    <button class="button-ghost danger" type="button" on:click=delete>"Delete workspace"</button>
                </Show>
            </div>
        </form>
    }
}
