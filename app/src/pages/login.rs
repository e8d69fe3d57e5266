use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::hooks::use_navigate;
use railyard_shared::auth::LoginRequest;

use crate::{
    api,
    components::{
        auth_card::{AuthCard, FormError},
        session::use_session,
    },
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let (email, password) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let session = use_session();
    let navigate = use_navigate();
    let login = Action::new_local(|request: &LoginRequest| api::login(request.clone()));
    Effect::new(move || {
        if let Some(Ok(user)) = login.value().get() {
            session.signed_in(user);
            navigate("/", Default::default());
        }
    });
    let error = Signal::derive(move || match login.value().get() {
        Some(Err(err)) => Some(err.message),
        _ => None,
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        login.dispatch(LoginRequest {
            email: email.get_untracked(),
            password: password.get_untracked(),
        });
    };

    view! {
        <AuthCard title="Sign in" subtitle="Welcome back to Railyard.".to_owned()>
            <form class="form" on:submit=on_submit>
                <FormError error />
                <label>"Email" <input type="email" required autocomplete="email" bind:value=email /></label>
                <label>
                    "Password" <input type="password" required autocomplete="current-password" bind:value=password />
                </label>
                <button class="button" type="submit" disabled=move || login.pending().get()>
                    {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </AuthCard>
    }
}
