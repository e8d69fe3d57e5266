//! `/account`: password, signed-in devices, API tokens.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use railyard_shared::auth::{ChangePasswordRequest, CreateTokenRequest, Role};
use uuid::Uuid;

use crate::{
    api,
    components::{auth_card::FormError, session::use_session, workspace::use_workspaces},
};

#[component]
pub fn AccountPage() -> impl IntoView {
    let session = use_session();
    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <h1>"Account"</h1>
                    <p class="muted">{move || session.user().map(|u| format!("{} · {}", u.name, u.email)).unwrap_or_default()}</p>
                </div>
            </header>
            <Sessions />
            <Tokens />
            <PasswordForm />
        </section>
    }
}

#[component]
fn Sessions() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let sessions = LocalResource::new(move || {
        version.track();
        api::list_sessions()
    });
    let error = RwSignal::new(None::<String>);
    view! {
        <div class="card table-card">
            <h2 class="card-title">"Signed-in devices"</h2>
            <FormError error=error.into() />
            <table class="table" data-testid="sessions">
                <tbody>
                    <Transition fallback=|| ()>
                        {move || sessions.get().map(|r| r.map(|res| res.sessions).unwrap_or_default().into_iter().map(|s| {
                            let id = s.id;
                            let revoke = move |_| {
                                spawn_local(async move {
                                    if let Err(err) = api::revoke_session(id).await { error.set(Some(err.message)); }
                                    version.update(|v| *v += 1);
                                });
                            };
                            view! {
                                <tr>
                                    <td class="ellipsis">{s.user_agent.clone()}</td>
                                    <td class="mono muted wide-only">{s.ip.clone()}</td>
                                    <td class="muted nowrap wide-only">"last active " {s.last_used_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                    <td class="actions">
                                        {if s.current {
                                            view! { <span class="tag">"this device"</span> }.into_any()
                                        } else {
                                            view! { <button class="button-ghost danger" type="button" on:click=revoke>"Sign out"</button> }.into_any()
                                        }}
                                    </td>
                                </tr>
                            }
                        }).collect_view())}
                    </Transition>
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn Tokens() -> impl IntoView {
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
    let create_error = Signal::derive(move || create.value().get().and_then(Result::err).map(|e| e.message));
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
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
    let workspace_name = move |id: Uuid| {
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
                    <button class="button" type="submit">"Create token"</button>
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
                    <Transition fallback=|| ()>
                        {move || tokens.get().map(|r| r.map(|res| res.tokens).unwrap_or_default().into_iter().map(|t| {
                            let id = t.id;
                            let revoke = move |_| {
                                if !window().confirm_with_message("Revoke this token? Anything using it stops working.").unwrap_or(false) { return; }
                                spawn_local(async move {
                                    if let Err(err) = api::revoke_token(id).await { error.set(Some(err.message)); }
                                    version.update(|v| *v += 1);
                                });
                            };
                            view! {
                                <tr>
                                    <td>{t.name.clone()}</td>
                                    <td class="mono">{t.prefix.clone()} "…"</td>
                                    <td>{workspace_name(t.workspace_id)} " · " {t.role.as_str()}</td>
                                    <td class="muted nowrap">{t.expires_at.map(|e| format!("expires {}", e.format("%Y-%m-%d"))).unwrap_or_else(|| "no expiry".into())}</td>
                                    <td class="actions"><button class="button-ghost danger" type="button" on:click=revoke>"Revoke"</button></td>
                                </tr>
                            }
                        }).collect_view())}
                    </Transition>
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn PasswordForm() -> impl IntoView {
    let (current, new) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let change = Action::new_local(|request: &ChangePasswordRequest| api::change_password(request.clone()));
    let error = Signal::derive(move || change.value().get().and_then(Result::err).map(|e| e.message));
    let done = move || matches!(change.value().get(), Some(Ok(())));
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        change.dispatch(ChangePasswordRequest {
            current_password: current.get_untracked(),
            new_password: new.get_untracked(),
        });
    };
    view! {
        <form class="card form narrow" on:submit=on_submit>
            <h2 class="card-title">"Change password"</h2>
            <FormError error />
            <Show when=done>
                <p class="form-ok" role="status">"Password changed. Your other devices were signed out."</p>
            </Show>
            <label>"Current password" <input type="password" required autocomplete="current-password" bind:value=current /></label>
            <label>"New password" <input type="password" required minlength="8" maxlength="128" autocomplete="new-password" bind:value=new /></label>
            <button class="button" type="submit" disabled=move || change.pending().get()>"Change password"</button>
        </form>
    }
}
