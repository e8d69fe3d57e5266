//! The workspace card on the members page: rename and who reads logs (admins), delete
//! (owners).

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;
use railyard_shared::WorkspaceId;
use railyard_shared::auth::Role;

use crate::{
    api,
    components::{auth_card::FormError, workspace::use_workspaces},
    format::memory,
};

#[component]
pub fn WorkspaceSettings(
    workspace: WorkspaceId,
    name: String,
    role: Role,
    log_read_role: Role,
) -> impl IntoView {
    let workspaces = use_workspaces();
    let new_name = RwSignal::new(name.clone());
    let error = RwSignal::new(None::<String>);
    let saved = RwSignal::new(false);
    let navigate = use_navigate();
    let rename = Action::new_local(move |name: &String| {
        let name = name.clone();
        async move {
            match api::rename_workspace(workspace, name).await {
                Ok(_) => {
                    error.try_set(None);
                    saved.try_set(true);
                    workspaces.refetch();
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let delete = Action::new_local(move |&(): &()| {
        let navigate = navigate.clone();
        async move {
            match api::delete_workspace(workspace).await {
                Ok(()) => {
                    workspaces.refetch();
                    navigate("/", Default::default());
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let usage = LocalResource::new(move || api::fetch_usage(workspace));
    let readers = RwSignal::new(log_read_role);
    let set_readers = Action::new_local(move |role: &Role| {
        let role = *role;
        async move {
            match api::set_log_readers(workspace, role).await {
                Ok(updated) => {
                    error.try_set(None);
                    saved.try_set(true);
                    readers.try_set(updated.log_read_role);
                    workspaces.refetch();
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let busy = Signal::derive(move || {
        rename.pending().get() || delete.pending().get() || set_readers.pending().get()
    });
    let on_rename = move |ev: SubmitEvent| {
        ev.prevent_default();
        if !busy.get_untracked() {
            rename.dispatch(new_name.get_untracked());
        }
    };
    let name = StoredValue::new(name);
    let on_delete = move |_| {
        let question = format!(
            "Delete the workspace {} and everything in it? This cannot be undone.",
            name.get_value()
        );
        if !busy.get_untracked() && window().confirm_with_message(&question).unwrap_or(false) {
            delete.dispatch(());
        }
    };
    view! {
        <form class="card form inline-form" on:submit=on_rename data-testid="workspace-settings">
            <h2 class="card-title">"Workspace"</h2>
            <FormError error=error.into() />
            <Show when=move || saved.get()>
                <p class="form-ok" role="status">"Saved."</p>
            </Show>
            <div class="row">
                <input type="text" required maxlength="64" aria-label="Workspace name" bind:value=new_name />
                <button class="button-ghost" type="submit" disabled=move || busy.get()>"Rename"</button>
                <Show when=move || role == Role::Owner>
                    <button class="button-ghost danger" type="button" disabled=move || busy.get() on:click=on_delete>"Delete workspace"</button>
                </Show>
            </div>
            <div class="row">
                <span>"Who can read logs"</span>
                <select aria-label="Who can read logs" data-testid="log-readers" disabled=move || busy.get()
                    on:change=move |ev| {
                        if let Some(role) = Role::parse(&event_target_value(&ev)) {
                            set_readers.dispatch(role);
                        }
                    }>
                    {[Role::Viewer, Role::Member, Role::Admin, Role::Owner].map(|option| view! {
                        <option value=option.as_str() selected=move || readers.get() == option>
                            {match option {
                                Role::Viewer => "Everyone, viewers too",
                                Role::Member => "Members and above",
                                Role::Admin => "Admins and owners",
                                Role::Owner => "Owners only",
                            }}
                        </option>
                    })}
                </select>
            </div>
            <p class="muted" data-testid="storage">
                {move || usage.get().and_then(Result::ok).map(|u| {
                    format!(
                        "Storage: {} of {} (releases, uploads, pushed code, build caches and logs).",
                        memory(i64::try_from(u.storage_bytes).unwrap_or(i64::MAX)),
                        memory(i64::try_from(u.storage_limit_bytes).unwrap_or(i64::MAX))
                    )
                })}
            </p>
            <p class="muted">
                "Masking hides a secret printed as is, not one a program prints changed (reversed, spaced, encoded): keep logs to people you would show the secrets."
            </p>
        </form>
    }
}
