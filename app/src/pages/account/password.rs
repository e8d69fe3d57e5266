//! Changing the password (the other devices are signed out).

use leptos::{ev::SubmitEvent, prelude::*};
use railyard_shared::auth::ChangePasswordRequest;

use crate::{api, components::auth_card::FormError};

#[component]
pub fn PasswordForm() -> impl IntoView {
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
