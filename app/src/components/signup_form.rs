use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;
use railyard_shared::auth::SignupRequest;

use crate::{
    api,
    components::{auth_card::FormError, session::use_session},
};

/// Name, email and password; signs up (with the setup token for the first account) and
/// opens the dashboard.
#[component]
pub fn SignupForm(setup_token: Option<String>, submit_label: &'static str) -> impl IntoView {
    let (name, email, password) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let session = use_session();
    let navigate = use_navigate();
    let signup = Action::new_local(|request: &SignupRequest| api::signup(request.clone()));
    Effect::new(move || {
        if let Some(Ok(user)) = signup.value().get() {
            session.signed_in(user);
            navigate("/", Default::default());
        }
    });
    let error = Signal::derive(move || signup.value().get().and_then(Result::err).map(|e| e.message));
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        signup.dispatch(SignupRequest {
            email: email.get_untracked(),
            password: password.get_untracked(),
            name: name.get_untracked(),
            setup_token: setup_token.clone(),
            invitation_token: None,
        });
    };
    view! {
        <form class="form" on:submit=on_submit>
            <FormError error />
            <label>"Your name" <input type="text" required autocomplete="name" bind:value=name /></label>
            <label>"Email" <input type="email" required autocomplete="email" bind:value=email /></label>
            <label>
                "Password"
                <input type="password" required minlength="8" maxlength="128" autocomplete="new-password" bind:value=password />
                <span class="hint">"At least 8 characters; common passwords are refused."</span>
            </label>
            <button class="button" type="submit" disabled=move || signup.pending().get()>
                {move || if signup.pending().get() { "Creating…" } else { submit_label }}
            </button>
        </form>
    }
}
