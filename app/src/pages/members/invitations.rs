//! Invitations: the form that creates one (admins; the link to send shows once), and the
//! pending ones with revocation.

use leptos::{ev::SubmitEvent, prelude::*};
use railyard_shared::WorkspaceId;
use railyard_shared::auth::{Invitation, Role};
use uuid::Uuid;

use super::{confirm, role_label};
use crate::{
    api::{self, ApiError},
    components::{auth_card::FormError, loading::Loaded},
};

#[component]
pub fn PendingInvitations(
    workspace: WorkspaceId,
    invitations: LocalResource<Result<Vec<Invitation>, ApiError>>,
    reload: Callback<()>,
) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let revoke = Action::new_local(move |id: &Uuid| {
        let id = *id;
        async move {
            match api::revoke_invitation(workspace, id).await {
                Ok(()) => error.try_set(None),
                Err(err) => error.try_set(Some(err.message)),
            };
            reload.run(());
        }
    });
    let busy = revoke.pending();
    view! {
        <div class="card table-card">
            <h2 class="card-title">"Pending invitations"</h2>
            <FormError error=error.into() />
            <Loaded fallback=|| ()>
                {move || Suspend::new(async move {
                    invitations.await.map(|list| if list.is_empty() {
                        view! { <p class="muted empty">"No pending invitations."</p> }.into_any()
                    } else {
                        view! {
                            <table class="table" data-testid="invitations">
                                <tbody>
                                    {list.into_iter().map(|inv| {
                                        let (id, email) = (inv.id, inv.email.clone());
                                        let on_revoke = move |_| {
                                            if !busy.get_untracked() && confirm(&format!("Revoke the invitation of {email}?")) {
                                                revoke.dispatch(id);
                                            }
                                        };
                                        view! {
                                            <tr>
                                                <td class="mono">{inv.email.clone()}</td>
                                                <td>{role_label(inv.role)}</td>
                                                <td class="muted wide-only">"expires " {inv.expires_at.format("%Y-%m-%d").to_string()}</td>
                                                <td class="actions"><button class="button-ghost danger" type="button"
                                                    disabled=move || busy.get() on:click=on_revoke>"Revoke"</button></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    })
                })}
            </Loaded>
        </div>
    }
}

#[component]
pub fn InviteForm(
    workspace: Signal<Option<WorkspaceId>>,
    my_role: Signal<Option<Role>>,
    on_invited: Callback<()>,
) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Member);
    let invite = Action::new_local(|(id, email, role): &(WorkspaceId, String, Role)| {
        api::create_invitation(*id, email.clone(), *role)
    });
    Effect::new(move || {
        if let Some(Ok(_)) = invite.value().get() {
            email.set(String::new());
            on_invited.run(());
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
