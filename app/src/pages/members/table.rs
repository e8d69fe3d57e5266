//! The members table: each member's role (a select for those who may change it), "Make
//! owner" for the owner, and removal (or "Leave" for oneself). One write at a time: while one
//! is in flight, every control of the table is disabled.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use railyard_shared::WorkspaceId;
use railyard_shared::auth::{Member, Role};

use super::{confirm, role_label};
use crate::{
    api::{self, ApiError},
    components::{auth_card::FormError, loading::Loaded, session::use_session, workspace::use_workspaces},
};

/// A change to one member.
#[derive(Debug, Clone)]
enum Change {
    Role(Member, Role),
    Transfer(Member),
    Remove { member: Member, leaving: bool },
}

#[component]
pub fn MemberTable(
    workspace: WorkspaceId,
    members: LocalResource<Result<Vec<Member>, ApiError>>,
    my_role: Signal<Option<Role>>,
    reload: Callback<()>,
) -> impl IntoView {
    let session = use_session();
    let workspaces = use_workspaces();
    let navigate = use_navigate();
    let error = RwSignal::new(None::<String>);
    let change = Action::new_local(move |change: &Change| {
        let (change, navigate) = (change.clone(), navigate.clone());
        async move {
            let result = match &change {
                Change::Role(member, role) => api::update_member(workspace, member.user_id, *role)
                    .await
                    .map(drop),
                Change::Transfer(member) => {
                    api::transfer_ownership(workspace, member.user_id).await.map(drop)
                }
                Change::Remove { member, .. } => api::remove_member(workspace, member.user_id).await,
            };
            match result {
                Ok(()) => {
                    error.try_set(None);
                    if matches!(change, Change::Transfer(_) | Change::Remove { leaving: true, .. }) {
                        workspaces.refetch();
                    }
                    if matches!(change, Change::Remove { leaving: true, .. }) {
                        navigate("/", Default::default());
                        return;
                    }
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
            reload.run(());
        }
    });
    let busy = change.pending();
    let run = Callback::new(move |request: Change| {
        if busy.get_untracked() {
            return;
        }
        let question = match &request {
            Change::Role(..) => None,
            Change::Transfer(member) => {
                Some(format!("Make {} the owner? You become an admin.", member.email))
            }
            Change::Remove { leaving: true, .. } => Some("Leave this workspace?".to_owned()),
            Change::Remove { member, .. } => Some(format!("Remove {} from this workspace?", member.email)),
        };
        if question.is_none_or(|q| confirm(&q)) {
            change.dispatch(request);
        }
    });
    let me = move || session.user().map(|u| u.id);
    view! {
        <div class="card table-card">
            <FormError error=error.into() />
            <table class="table" data-testid="members">
                <thead>
                    <tr><th>"Name"</th><th class="wide-only">"Email"</th><th>"Role"</th><th></th></tr>
                </thead>
                <tbody>
                    <Loaded fallback=|| view! { <tr><td colspan="4" class="muted">"Loading…"</td></tr> }>
                        {move || Suspend::new(async move {
                            // A signal: the workspaces (and so one's role) may load after the members.
                            let mine = Signal::derive(move || my_role.get().unwrap_or(Role::Viewer));
                            members.await.map(|list| list.into_iter().map(|member| {
                                let is_me = me() == Some(member.user_id);
                                view! { <MemberRow member mine is_me busy=busy.into() run /> }
                            }).collect_view())
                        })}
                    </Loaded>
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn MemberRow(
    member: Member,
    mine: Signal<Role>,
    is_me: bool,
    busy: Signal<bool>,
    run: Callback<Change>,
) -> impl IntoView {
    let role = member.role;
    let can_edit = move || {
        let mine = mine.get();
        !is_me && mine.at_least(Role::Admin) && (mine == Role::Owner || role != Role::Owner)
    };
    let can_transfer = move || !is_me && mine.get() == Role::Owner && role != Role::Owner;
    let (for_role, for_transfer, for_remove) = (member.clone(), member.clone(), member.clone());
    view! {
        <tr data-testid="member-row">
            <td>
                {member.name.clone()} {is_me.then(|| view! { <span class="tag">"you"</span> })}
                <span class="phone-only muted mono small">{member.email.clone()}</span>
            </td>
            <td class="mono wide-only">{member.email.clone()}</td>
            <td>
                <select aria-label=format!("Role of {}", member.email) disabled=move || !can_edit() || busy.get()
                    on:change=move |ev| {
                        if let Some(role) = Role::parse(&event_target_value(&ev)) {
                            run.run(Change::Role(for_role.clone(), role));
                        }
                    }>
                    {move || Role::ALL.into_iter().filter(|r| mine.get() == Role::Owner || *r != Role::Owner || *r == role).map(|r| view! {
                        <option value=r.as_str() selected=r == role>{role_label(r)}</option>
                    }).collect_view()}
                </select>
            </td>
            <td class="actions">
                {move || can_transfer().then(|| {
                    let member = for_transfer.clone();
                    view! {
                        <button class="button-ghost" type="button" disabled=move || busy.get()
                            on:click=move |_| run.run(Change::Transfer(member.clone()))>"Make owner"</button>
                    }
                })}
                {move || (is_me || can_edit()).then(|| {
                    let member = for_remove.clone();
                    view! {
                        <button class="button-ghost danger" type="button" disabled=move || busy.get()
                            on:click=move |_| run.run(Change::Remove { member: member.clone(), leaving: is_me })>
                            {if is_me { "Leave" } else { "Remove" }}
                        </button>
                    }
                })}
            </td>
        </tr>
    }
}
