use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::{
    components::A,
    hooks::{use_navigate, use_query_map},
};
use railyard_shared::auth::SignupRequest;

use crate::{
    api,
    components::{
        auth_card::{AuthCard, FormError},
        session::use_session,
    },
};

/// `/setup?token=…`: the one-time link the server prints creates the first (admin) account.
#[component]
pub fn SetupPage() -> impl IntoView {
    let token = use_query_map()
        .with_untracked(|q| q.get("token"))
        .unwrap_or_default();
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
    let error = Signal::derive(move || match signup.value().get() {
        Some(Err(err)) => Some(err.message),
        _ => None,
    });
    let token_for_submit = token.clone();
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        signup.dispatch(SignupRequest {
            email: email.get_untracked(),
            password: password.get_untracked(),
            name: name.get_untracked(),
            setup_token: Some(token_for_submit.clone()),
            invitation_token: None,
        });
    };

    view! {
        <AuthCard
            title="Set up Railyard"
            subtitle="Create the first account. It administers this instance.".to_owned()
        >
            <Show
                when=move || !token.is_empty()
                fallback=|| {
                    view! {
                        <p class="form-error" role="alert">
                            "This link has no setup token. Use the link the server printed when it started."
                        </p>
                    }
                }
            >
                <form class="form" on:submit=on_submit.clone()>
                    <FormError error />
                    <label>
                        "Your name" <input type="text" required autocomplete="name" bind:value=name />
                    </label>
                    <label>
                        "Email" <input type="email" required autocomplete="email" bind:value=email />
                    </label>
                    <label>
                        "Password"
                        <input type="password" required minlength="8" maxlength="128" autocomplete="new-password" bind:value=password />
                        <span class="hint">"At least 8 characters; common passwords are refused."</span>
                    </label>
                    <button class="button" type="submit" disabled=move || signup.pending().get()>
                        {move || if signup.pending().get() { "Creating…" } else { "Create admin account" }}
                    </button>
                </form>
            </Show>
            <p class="muted auth-alt">"Already set up? " <A href="/login">"Sign in"</A></p>
        </AuthCard>
    }
}
