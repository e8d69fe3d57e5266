//! `/workspaces/:id/members`: members and their roles, invitations.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::hooks::use_params_map;
use railyard_shared::auth::{Member, Role};
use uuid::Uuid;

use super::workspace_settings::WorkspaceSettings;
use crate::{
    api,
    components::{auth_card::FormError, session::use_session, workspace::use_workspaces},
};

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
    let workspace_id = move || params.read().get("id").and_then(|id| id.parse::<Uuid>().ok());
    let workspaces = use_workspaces();
    let session = use_session();
    // The caller's role here decides which controls show (the server checks again).
    let my_role = move || workspace_id().and_then(|id| workspaces.find(id)).map(|w| w.role);
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
        let (id, admin) = (workspace_id(), my_role().is_some_and(|r| r.at_least(Role::Admin)));
        async move {
            match id {
                Some(id) if admin => api::list_invitations(id).await.map(|r| r.invitations),
                _ => Ok(Vec::new()),
            }
        }
    });
    let error = RwSignal::new(None::<String>);
    let reload = move || version.update(|v| *v += 1);

    let change_role = move |member: Member, role: Role| {
        let Some(id) = workspace_id() else { return };
        spawn_local(async move {
            match api::update_member(id, member.user_id, role).await {
                Ok(_) => error.set(None),
                Err(err) => error.set(Some(err.message)),
            }
            reload();
        });
    };
    let transfer = move |member: Member| {
        let Some(id) = workspace_id() else { return };
        if !confirm(&format!("Make {} the owner? You become an admin.", member.email)) {
            return;
        }
        spawn_local(async move {
            match api::transfer_ownership(id, member.user_id).await {
                Ok(_) => {
                    error.set(None);
                    workspaces.refetch();
                }
                Err(err) => error.set(Some(err.message)),
            }
            reload();
        });
    };
    let remove = move |member: Member| {
        let Some(id) = workspace_id() else { return };
        let me = session.user().map(|u| u.id);
        let leaving = Some(member.user_id) == me;
        let question = if leaving {
            "Leave this workspace?".to_owned()
        } else {
            format!("Remove {} from this workspace?", member.email)
        };
        if !confirm(&question) {
            return;
        }
        spawn_local(async move {
            match api::remove_member(id, member.user_id).await {
                Ok(()) if leaving => {
                    workspaces.refetch();
                    let _ = window().location().set_href("/");
                }
                Ok(()) => error.set(None),
                Err(err) => error.set(Some(err.message)),
            }
            reload();
        });
    };

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
            <FormError error=error.into() />
            {move || {
                // Keyed on (id, role) only: a rename refetches the list but keeps this card.
                settings_for.get().map(|(id, role)| {
                    let name = untrack(|| workspaces.find(id)).map(|w| w.name).unwrap_or_default();
                    view! { <WorkspaceSettings workspace=id name role /> }
                })
            }}
            <Show when=move || my_role().is_some_and(|r| r.at_least(Role::Admin))>
                <InviteForm workspace=Signal::derive(workspace_id) my_role=Signal::derive(my_role) on_invited=reload />
            </Show>
            <div class="card table-card">
                <table class="table" data-testid="members">
                    <thead>
                        <tr><th>"Name"</th><th class="wide-only">"Email"</th><th>"Role"</th><th></th></tr>
                    </thead>
                    <tbody>
                        <Transition fallback=|| view! { <tr><td colspan="4" class="muted">"Loading…"</td></tr> }>
                            {move || members.get().map(|result| match result {
                                Err(err) => view! { <tr><td colspan="4" class="form-error">{err.message}</td></tr> }.into_any(),
                                Ok(list) => list.into_iter().map(|member| {
                                    let me = session.user().map(|u| u.id) == Some(member.user_id);
                                    let mine = my_role().unwrap_or(Role::Viewer);
                                    let can_edit = !me && mine.at_least(Role::Admin) && (mine == Role::Owner || member.role != Role::Owner);
                                    let (m1, m2, m3) = (member.clone(), member.clone(), member.clone());
                                    view! {
                                        <tr data-testid="member-row">
                                            <td>
                                                {member.name.clone()} {me.then(|| view! { <span class="tag">"you"</span> })}
                                                <span class="phone-only muted mono small">{member.email.clone()}</span>
                                            </td>
                                            <td class="mono wide-only">{member.email.clone()}</td>
                                            <td>
                                                <select
                                                    aria-label=format!("Role of {}", member.email)
                                                    disabled=!can_edit
                                                    on:change=move |ev| {
                                                        if let Some(role) = Role::parse(&event_target_value(&ev)) {
                                                            change_role(m1.clone(), role);
                                                        }
                                                    }
                                                >
                                                    {Role::ALL.into_iter().filter(|r| mine == Role::Owner || *r != Role::Owner || *r == member.role).map(|r| view! {
                                                        <option value=r.as_str() selected=r == member.role>{role_label(r)}</option>
                                                    }).collect_view()}
                                                </select>
                                            </td>
                                            <td class="actions">
                                                <Show when={
                                                    let owner_can_transfer = !me && mine == Role::Owner && member.role != Role::Owner;
                                                    move || owner_can_transfer
                                                }>
                                                    {
                                                        let m = m3.clone();
                                                        view! {
                                                            <button class="button-ghost" type="button" on:click=move |_| transfer(m.clone())>
                                                                "Make owner"
                                                            </button>
                                                        }
                                                    }
                                                </Show>
                                                <Show when=move || me || can_edit>
                                                    {
                                                        let m = m2.clone();
                                                        view! {
                                                            <button class="button-ghost danger" type="button" on:click=move |_| remove(m.clone())>
                                                                {if me { "Leave" } else { "Remove" }}
                                                            </button>
                                                        }
                                                    }
                                                </Show>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view().into_any(),
                            })}
                        </Transition>
                    </tbody>
                </table>
            </div>
            <Show when=move || my_role().is_some_and(|r| r.at_least(Role::Admin))>
                <div class="card table-card">
                    <h2 class="card-title">"Pending invitations"</h2>
                    <Transition fallback=|| ()>
                        {move || invitations.get().map(|result| match result {
                            Err(err) => view! { <p class="form-error">{err.message}</p> }.into_any(),
                            Ok(list) if list.is_empty() => view! { <p class="muted empty">"No pending invitations."</p> }.into_any(),
                            Ok(list) => view! {
                                <table class="table" data-testid="invitations">
                                    <tbody>
                                        {list.into_iter().map(|inv| {
                                            let (workspace, id, email) = (inv.workspace_id, inv.id, inv.email.clone());
                                            let revoke = move |_| {
                                                if !confirm(&format!("Revoke the invitation of {email}?")) { return; }
                                                spawn_local(async move {
                                                    if let Err(err) = api::revoke_invitation(workspace, id).await { error.set(Some(err.message)); }
                                                    reload();
                                                });
                                            };
                                            view! {
                                                <tr>
                                                    <td class="mono">{inv.email.clone()}</td>
                                                    <td>{role_label(inv.role)}</td>
                                                    <td class="muted">"expires " {inv.expires_at.format("%Y-%m-%d").to_string()}</td>
                                                    <td class="actions"><button class="button-ghost danger" type="button" on:click=revoke>"Revoke"</button></td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any(),
                        })}
                    </Transition>
                </div>
            </Show>
        </section>
    }
}

#[component]
fn InviteForm(
    workspace: Signal<Option<Uuid>>,
    my_role: Signal<Option<Role>>,
    on_invited: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Member);
    let invite = Action::new_local(|(id, email, role): &(Uuid, String, Role)| {
        api::create_invitation(*id, email.clone(), *role)
    });
    Effect::new(move || {
        if let Some(Ok(_)) = invite.value().get() {
            email.set(String::new());
            on_invited();
        }
    });
    let error = Signal::derive(move || invite.value().get().and_then(Result::err).map(|e| e.message));
    let created = move || invite.value().get().and_then(Result::ok);
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if let Some(id) = workspace.get_untracked() {
            invite.dispatch((id, email.get_untracked(), role.get_untracked()));
        }
    };
    view! {
        <form class="card form inline-form" on:submit=on_submit>
            <h2 class="card-title">"Invite someone"</h2>
            <FormError error />
            <div class="row">
                <input type="email" required placeholder="name@example.com" aria-label="Email to invite" bind:value=email />
                <select aria-label="Role for the invitation" on:change=move |ev| {
                    if let Some(r) = Role::parse(&event_target_value(&ev)) { role.set(r); }
                }>
                    {move || {
                        let mine = my_role.get().unwrap_or(Role::Viewer);
                        Role::ALL.into_iter().filter(move |r| mine.at_least(*r)).map(|r| view! {
                            <option value=r.as_str() selected=r == Role::Member>{role_label(r)}</option>
                        }).collect_view()
                    }}
                </select>
                <button class="button" type="submit" disabled=move || invite.pending().get()>"Send invitation"</button>
            </div>
            {move || created().map(|created| {
                let note = if created.email_sent {
                    format!("We emailed the invitation to {}. You can also send this link; it works once, for that address, for 7 days:", created.invitation.email)
                } else {
                    "Send this link to them. It works once, for that address, for 7 days:".to_owned()
                };
                view! {
                    <div class="invite-link" data-testid="invite-link">
                        <p class="muted">{note}</p>
                        <pre class="code">{created.accept_url}</pre>
                    </div>
                }
            })}
        </form>
    }
}
