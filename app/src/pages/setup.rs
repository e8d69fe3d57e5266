use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_query_map};

use crate::components::{auth_card::AuthCard, signup_form::SignupForm};

/// `/setup?token=…`: the one-time link the server prints creates the first (admin) account.
#[component]
pub fn SetupPage() -> impl IntoView {
    let token = use_query_map()
        .with_untracked(|q| q.get("token"))
        .unwrap_or_default();
    let has_token = !token.is_empty();
    view! {
        <AuthCard title="Set up Railyard" subtitle="Create the first account. It administers this instance.".to_owned()>
            {if has_token {
                view! { <SignupForm setup_token=Some(token) submit_label="Create admin account" /> }.into_any()
            } else {
                view! {
                    <p class="form-error" role="alert">
                        "This link has no setup token. Use the link the server printed when it started."
                    </p>
                }
                    .into_any()
            }}
            <p class="muted auth-alt">"Already set up? " <A href="/login">"Sign in"</A></p>
        </AuthCard>
    }
}

/// `/signup`: open sign-up, when the instance allows it.
#[component]
pub fn SignupPage() -> impl IntoView {
    view! {
        <AuthCard title="Create your account" subtitle="Deploy your code on this Railyard instance.".to_owned()>
            <SignupForm setup_token=None submit_label="Create account" />
            <p class="muted auth-alt">"Have an account? " <A href="/login">"Sign in"</A></p>
        </AuthCard>
    }
}
