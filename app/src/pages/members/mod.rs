//! `/workspaces/:id/members`: the workspace card (rename, delete), members and their roles,
//! invitations.

mod invitations;
mod settings;
mod table;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use railyard_shared::WorkspaceId;
use railyard_shared::auth::Role;

use crate::{api, components::workspace::use_workspaces};
use invitations::{InviteForm, PendingInvitations};
use settings::WorkspaceSettings;
use table::MemberTable;

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Owner => "Owner",
        Role::Admin => "Admin",
        Role::Member => "Member",
        Role::Viewer => "Viewer",
    }
}

fn confirm(message: &str) -> bool {
    window().confirm_with_message(message).unwrap_or(false)
}

#[component]
pub fn MembersPage() -> impl IntoView {
    let params = use_params_map();
    let workspace_id = move || {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<WorkspaceId>().ok())
    };
    let workspaces = use_workspaces();
    // The caller's role here decides which controls show (the server checks again).
    let my_role = Signal::derive(move || workspace_id().and_then(|id| workspaces.find(id)).map(|w| w.role));
    let admin = move || my_role.get().is_some_and(|r| r.at_least(Role::Admin));
    let settings_for = Memo::new(move |_| {
        workspace_id()
            .and_then(|id| workspaces.find(id))
            .filter(|w| w.role.at_least(Role::Admin))
            .map(|w| (w.id, w.role))
    });
    let version = RwSignal::new(0u32);
    let members = LocalResource::new(move || {
        version.track();
        let id = workspace_id();
        async move {
            match id {
                Some(id) => api::list_members(id).await.map(|r| r.members),
                None => Ok(Vec::new()),
            }
        }
    });
    let invitations = LocalResource::new(move || {
        version.track();
        let (id, admin) = (workspace_id(), admin());
        async move {
            match id {
                Some(id) if admin => api::list_invitations(id).await.map(|r| r.invitations),
                _ => Ok(Vec::new()),
            }
        }
    });
    let reload = Callback::new(move |()| version.update(|v| *v += 1));
    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <h1>"Members"</h1>
                    <p class="muted">
                        {move || workspace_id().and_then(|id| workspaces.find(id)).map(|w| w.name).unwrap_or_default()}
                    </p>
                </div>
            </header>
            {move || {
                // Keyed on (id, role) only: a rename refetches the list but keeps this card.
                settings_for.get().map(|(id, role)| {
                    let found = untrack(|| workspaces.find(id));
                    let log_read_role = found.as_ref().map_or(Role::Member, |w| w.log_read_role);
                    let name = found.map(|w| w.name).unwrap_or_default();
                    view! { <WorkspaceSettings workspace=id name role log_read_role /> }
                })
            }}
            <Show when=admin>
                <InviteForm workspace=Signal::derive(workspace_id) my_role on_invited=reload />
            </Show>
            {move || workspace_id().map(|workspace| view! { <MemberTable workspace members my_role reload /> })}
            <Show when=admin>
                {move || workspace_id().map(|workspace| view! { <PendingInvitations workspace invitations reload /> })}
            </Show>
        </section>
    }
}
