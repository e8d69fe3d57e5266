use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::{
    components::A,
    hooks::{use_navigate, use_query_map},
};
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
    // A failed "Continue with GitHub" comes back as `?error=github_…`.
    let github_code = use_query_map().with_untracked(|q| q.get("error"));
    let linking = github_code.as_deref() == Some("github_link_password");
    let github_error = github_code.map(|code| github_message(&code).to_owned());
    let separate = Action::new_local(|(): &()| api::github_separate_account());
    let navigate_separate = use_navigate();
    Effect::new(move || {
        if let Some(Ok(user)) = separate.value().get() {
            session.signed_in(user);
            navigate_separate("/", Default::default());
        }
    });
    let separate_error =
        Signal::derive(move || separate.value().get().and_then(Result::err).map(|e| e.message));
    let error = Signal::derive(move || match login.value().get() {
        Some(Err(err)) => Some(err.message),
        _ => github_error.clone(),
    });
    let providers = LocalResource::new(api::fetch_providers);
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
            <Show when=move || linking>
                <div class="divider"><span>"or"</span></div>
                <FormError error=separate_error />
                <button class="button button-ghost" type="button" disabled=move || separate.pending().get()
                    on:click=move |_| { separate.dispatch(()); }>
                    "Create a separate account with GitHub"
                </button>
            </Show>
            {move || providers.get().and_then(Result::ok).filter(|p| p.github).map(|_| view! {
                <div class="divider"><span>"or"</span></div>
                <a class="button button-github" href="/api/v1/auth/github/start?redirect=/" rel="external">
                    "Continue with GitHub"
                </a>
            })}
            {move || providers.get().and_then(Result::ok).filter(|p| p.open_signup).map(|_| view! {
                <p class="muted auth-alt">"New here? " <A href="/signup">"Create an account"</A></p>
            })}
        </AuthCard>
    }
}

fn github_message(code: &str) -> &'static str {
    match code {
        "github_unverified" => {
            "GitHub has no verified email address for this account; verify one on GitHub first."
        }
        "github_no_account" => {
            "No Railyard account uses a verified email of this GitHub account. Ask a workspace admin for an invitation."
        }
        "github_setup" => "This instance has no accounts yet: create the first one through the setup link.",
        "github_other_account" => "Your Railyard account is already linked to another GitHub account.",
        "github_link_password" => {
            "An account with your GitHub email already exists, but its address was never confirmed. \
             Sign in with its password to connect GitHub to it, or create a separate account."
        }
        "github_denied" => "GitHub sign-in was cancelled.",
        "github_state" => "The GitHub sign-in expired or did not start here; try again.",
        _ => "GitHub sign-in did not work; try again.",
    }
}
