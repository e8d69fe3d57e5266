//! `/verify-email?token=…`: the link mailed to prove an account's email address.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_query_map};

use crate::{api, components::auth_card::AuthCard};

#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let token = use_query_map()
        .with_untracked(|q| q.get("token"))
        .unwrap_or_default();
    let result = LocalResource::new(move || api::verify_email(token.clone()));
    view! {
        <AuthCard title="Confirm your email" subtitle="Proving your address keeps your account yours.".to_owned()>
            {move || match result.get() {
                None => view! { <p class="muted">"Confirming…"</p> }.into_any(),
                Some(Ok(())) => view! {
                    <p class="form-ok" role="status">"Your email address is confirmed."</p>
                    <p class="auth-alt"><A href="/">"Go to your workspaces"</A></p>
                }.into_any(),
                Some(Err(err)) => view! {
                    <p class="form-error" role="alert">{err.message}</p>
                    <p class="auth-alt"><A href="/account">"Ask for a new link"</A></p>
                }.into_any(),
            }}
        </AuthCard>
    }
}
