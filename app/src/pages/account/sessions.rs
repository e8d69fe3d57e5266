//! The signed-in devices: each session's browser, address and last use; signing one out.

use leptos::prelude::*;
use uuid::Uuid;

use crate::{
    api,
    components::{auth_card::FormError, loading::Loaded},
};

#[component]
pub fn Sessions() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let sessions = LocalResource::new(move || {
        version.track();
        api::list_sessions()
    });
    let error = RwSignal::new(None::<String>);
    let revoke = Action::new_local(move |id: &Uuid| {
        let id = *id;
        async move {
            match api::revoke_session(id).await {
                Ok(()) => error.try_set(None),
                Err(err) => error.try_set(Some(err.message)),
            };
            version.try_update(|v| *v += 1);
        }
    });
    let revoking = revoke.pending();
    view! {
        <div class="card table-card">
            <h2 class="card-title">"Signed-in devices"</h2>
            <FormError error=error.into() />
            <table class="table" data-testid="sessions">
                <tbody>
                    <Loaded fallback=|| ()>
                        {move || Suspend::new(async move {
                            sessions.await.map(|res| res.sessions.into_iter().map(|s| {
                                let id = s.id;
                                view! {
                                    <tr>
                                        <td class="ellipsis">{s.user_agent.clone()}</td>
                                        <td class="mono muted wide-only">{s.ip.clone()}</td>
                                        <td class="muted nowrap wide-only">"last active " {s.last_used_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                        <td class="actions">
                                            {if s.current {
                                                view! { <span class="tag">"this device"</span> }.into_any()
                                            } else {
                                                view! {
                                                    <button class="button-ghost danger" type="button" disabled=move || revoking.get()
                                                        on:click=move |_| { if !revoking.get_untracked() { revoke.dispatch(id); } }>"Sign out"</button>
                                                }.into_any()
                                            }}
                                        </td>
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
