//! API tokens: create one (shown once) for a workspace, list and revoke them.

use leptos::{ev::SubmitEvent, prelude::*};
use railyard_shared::WorkspaceId;
use railyard_shared::auth::{CreateTokenRequest, Role};
use uuid::Uuid;

use crate::{
    api,
    components::{auth_card::FormError, loading::Loaded, workspace::use_workspaces},
};

#[component]
pub fn Tokens() -> impl IntoView {
    let workspaces = use_workspaces();
    let version = RwSignal::new(0u32);
    let tokens = LocalResource::new(move || {
        version.track();
        api::list_tokens()
    });
    let (name, role, days) = (
        RwSignal::new(String::new()),
        RwSignal::new(None::<Role>),
        RwSignal::new(String::new()),
    );
    let create = Action::new_local(|request: &CreateTokenRequest| api::create_token(request.clone()));
    Effect::new(move || {
        if let Some(Ok(_)) = create.value().get() {
            name.set(String::new());
            version.update(|v| *v += 1);
        }
    });
    let error = RwSignal::new(None::<String>);
    let revoke = Action::new_local(move |id: &Uuid| {
        let id = *id;
        async move {
            match api::revoke_token(id).await {
                Ok(()) => error.try_set(None),
                Err(err) => error.try_set(Some(err.message)),
            };
            version.try_update(|v| *v += 1);
        }
    });
    let revoking = revoke.pending();
    let create_error = Signal::derive(move || create.value().get().and_then(Result::err).map(|e| e.message));
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if create.pending().get_untracked() {
            return;
        }
        let Some(workspace) = workspaces.current() else {
            error.set(Some("create a workspace first".into()));
            return;
        };
        create.dispatch(CreateTokenRequest {
            workspace_id: workspace.id,
            name: name.get_untracked(),
            role: role.get_untracked(),
            expires_in_days: days.get_untracked().trim().parse().ok(),
        });
    };
    let workspace_name = move |id: WorkspaceId| {
        workspaces
            .find(id)
            .map(|w| w.name)
            .unwrap_or_else(|| id.to_string())
    };
    view! {
        <div class="card table-card">
            <h2 class="card-title">"API tokens"</h2>
            <p class="muted">"For the CLI and automation: sent as " <code>"Authorization: Bearer …"</code> ", scoped to one workspace."</p>
            <form class="form" on:submit=on_submit>
                <FormError error=create_error />
                <FormError error=error.into() />
                <div class="row">
                    <input type="text" required maxlength="100" placeholder="Token name, e.g. ci" aria-label="Token name" bind:value=name />
                    <select aria-label="Token role" on:change=move |ev| role.set(Role::parse(&event_target_value(&ev)))>
                        <option value="">"Your role"</option>
                        {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
                    </select>
                    <input type="number" min="1" max="365" placeholder="Expiry (days)" aria-label="Expires in days" bind:value=days />
                    <button class="button" type="submit" disabled=move || create.pending().get()>"Create token"</button>
                </div>
                <p class="muted">{move || workspaces.current().map(|w| format!("For workspace {}.", w.name))}</p>
            </form>
            {move || create.value().get().and_then(Result::ok).map(|created| view! {
                <div class="invite-link" data-testid="new-token">
                    <p class="muted">"Copy it now: it is not shown again."</p>
                    <pre class="code">{created.token}</pre>
                </div>
            })}
            <table class="table" data-testid="tokens">
                <tbody>
                    <Loaded fallback=|| ()>
                        {move || Suspend::new(async move {
                            tokens.await.map(|res| res.tokens.into_iter().map(|t| {
                                let id = t.id;
                                let on_revoke = move |_| {
                                    if !revoking.get_untracked()
                                        && window().confirm_with_message("Revoke this token? Anything using it stops working.").unwrap_or(false)
                                    {
                                        revoke.dispatch(id);
                                    }
                                };
                                view! {
                                    <tr>
                                        <td>{t.name.clone()}</td>
                                        <td class="mono wide-only">{t.prefix.clone()} "…"</td>
                                        <td>{workspace_name(t.workspace_id)} " · " {t.role.as_str()}</td>
                                        <td class="muted nowrap wide-only">{t.expires_at.map(|e| format!("expires {}", e.format("%Y-%m-%d"))).unwrap_or_else(|| "no expiry".into())}</td>
                                        <td class="actions"><button class="button-ghost danger" type="button"
                                            disabled=move || revoking.get() on:click=on_revoke>"Revoke"</button></td>
                                    </tr>
                                }
                            }).collect_view())
                        })}
                    </Loaded>
                </tbody>
            </table>
        </div>
    }
}
