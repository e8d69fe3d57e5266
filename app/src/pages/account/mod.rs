//! `/account`: email address, GitHub, password, signed-in devices, API tokens.

mod email;
mod github;
mod password;
mod sessions;
mod tokens;

use leptos::prelude::*;

use crate::components::session::use_session;
use email::EmailCard;
use github::GithubCard;
use password::PasswordForm;
use sessions::Sessions;
use tokens::Tokens;

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
            <EmailCard />
            <GithubCard />
            <Sessions />
            <Tokens />
            <PasswordForm />
        </section>
    }
}
